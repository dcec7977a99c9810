"""Comparing commitments with the registry's records (reads only; no Flask, no database).

Shared by the anchoring service, the anchor-verify endpoint and the offline verifier (`ves-verify --rpc-url`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass

from app.chain.errors import ChainError
from app.chain.registry import OnChainBatch
from app.chain.registry import RegistryClient
from app.commitment import Commitment
from app.ves.encoding import parse_hex
from app.ves.encoding import to_hex
from app.ves.errors import VesError
from app.ves.merkle import padded_leaf_count
from app.ves.merkle import tree_depth

NIL_UUID = uuid.UUID(int=0)


def show(value: object) -> str:
    return to_hex(value) if isinstance(value, (bytes, bytearray)) else str(value)


def chain_mismatches(commitment: Commitment, on_chain: OnChainBatch,
                     stream_id: bytes | None = None) -> list[tuple[str, object, object]]:
    """`(field, ours, chain's)` for every field the registry stores that differs between `commitment` and the
    registry's batch (`leaf_count` is the contract's `eventCount`). Empty means identical.

    `stream_id` stands in for the commitment's own when known otherwise (an export's commitment may omit its tenant
    and store).
    """
    ours = {
        "stream_id": commitment.stream_id if stream_id is None else stream_id,
        "sequence_start": commitment.sequence_start,
        "sequence_end": commitment.sequence_end,
        "leaf_count": commitment.leaf_count,
        "merkle_root": commitment.merkle_root,
        "prev_state_root": commitment.prev_state_root,
        "new_state_root": commitment.new_state_root,
    }
    theirs = {
        "stream_id": on_chain.stream_id,
        "sequence_start": on_chain.sequence_start,
        "sequence_end": on_chain.sequence_end,
        "leaf_count": on_chain.event_count,
        "merkle_root": on_chain.merkle_root,
        "prev_state_root": on_chain.prev_state_root,
        "new_state_root": on_chain.new_state_root,
    }
    return [(name, ours[name], theirs[name]) for name in ours if ours[name] != theirs[name]]


@dataclass(frozen=True)
class ChainDiscrepancy:
    """A commitment whose on-chain record is missing or differs. `field` is None when it is not on chain."""

    batch_id: str
    field: str | None
    expected: object
    found: object

    def describe(self) -> str:
        if self.field is None:
            return f"commitment {self.batch_id} is not anchored on chain"
        return (f"commitment {self.batch_id}: on-chain {self.field} differs (expected: {show(self.expected)}, "
                f"found: {show(self.found)})")


def check_commitments_on_chain(client: RegistryClient, stream_id: bytes,
                               commitments: Iterable[Commitment]) -> list[ChainDiscrepancy]:
    """Compare each commitment of the stream `stream_id` with the registry's record of its batch id. ChainError
    propagates."""
    found: list[ChainDiscrepancy] = []
    for commitment in commitments:
        on_chain = client.get_batch(commitment.batch_id)
        if on_chain is None:
            found.append(ChainDiscrepancy(str(commitment.batch_id), None, "anchored", "absent"))
            continue
        found.extend(ChainDiscrepancy(str(commitment.batch_id), name, ours, theirs)
                     for name, ours, theirs in chain_mismatches(commitment, on_chain, stream_id))
    return found


def commitment_from_export(exported: Mapping) -> Commitment:
    """A commitment as an export or the API wrote it (hex hashes; `tenant_id`/`store_id`, `ves_version`,
    `padded_leaf_count` and `tree_depth` optional). Raises ValueError, TypeError or VesError when malformed."""
    start, end = int(exported["sequence_start"]), int(exported["sequence_end"])
    count = int(exported.get("leaf_count", end - start + 1))
    return Commitment(
        batch_id=uuid.UUID(str(exported["batch_id"])),
        tenant_id=uuid.UUID(str(exported.get("tenant_id", NIL_UUID))),
        store_id=uuid.UUID(str(exported.get("store_id", NIL_UUID))),
        ves_version=int(exported.get("ves_version", 1)), sequence_start=start, sequence_end=end, leaf_count=count,
        padded_leaf_count=int(exported.get("padded_leaf_count", padded_leaf_count(count))),
        tree_depth=int(exported.get("tree_depth", tree_depth(count))),
        merkle_root=parse_hex(exported["merkle_root"], 32, "merkle_root"),
        prev_state_root=parse_hex(exported["prev_state_root"], 32, "prev_state_root"),
        new_state_root=parse_hex(exported["new_state_root"], 32, "new_state_root"),
    )


def bundle_chain_checker(client: RegistryClient):
    """A `chain_checker(commitment, stream_id)` for `app.verify.verify_bundle`: the first on-chain discrepancy of
    the bundle's commitment as an `app.verify.report.Discrepancy`, else None."""
    from app.verify.report import Discrepancy

    def check(exported: Mapping, stream_id: bytes):
        try:
            commitment = commitment_from_export(exported)
        except (KeyError, TypeError, ValueError, VesError) as error:
            return Discrepancy("chain_anchor", f"The commitment cannot be compared with the registry ({error})",
                               None, str(exported.get("batch_id")))
        try:
            problems = check_commitments_on_chain(client, stream_id, [commitment])
        except ChainError as error:
            return Discrepancy("chain_anchor", f"Could not read the registry ({error})", None,
                               str(commitment.batch_id))
        if not problems:
            return None
        first = problems[0]
        if first.field is None:
            return Discrepancy("chain_anchor", "The commitment is not anchored on chain", None, first.batch_id,
                               "anchored", "absent")
        return Discrepancy("chain_anchor", f"The on-chain {first.field} differs from the commitment's", None,
                           first.batch_id, show(first.expected), show(first.found))

    return check

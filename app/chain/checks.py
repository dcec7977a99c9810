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
from app.ves.encoding import parse_hex
from app.ves.encoding import to_hex


def show(value: object) -> str:
    return to_hex(value) if isinstance(value, (bytes, bytearray)) else str(value)


def chain_mismatches(expected: Mapping[str, object], on_chain: OnChainBatch) -> list[tuple[str, object, object]]:
    """`(field, ours, chain's)` for every field of the registry's batch that differs from `expected`.

    `expected` holds raw bytes for `stream_id`, `merkle_root`, `prev_state_root`, `new_state_root` and ints for
    `sequence_start`, `sequence_end`, `leaf_count` (the contract's `eventCount`). Empty means identical.
    """
    chain_values = {
        "stream_id": on_chain.stream_id,
        "sequence_start": on_chain.sequence_start,
        "sequence_end": on_chain.sequence_end,
        "leaf_count": on_chain.event_count,
        "merkle_root": on_chain.merkle_root,
        "prev_state_root": on_chain.prev_state_root,
        "new_state_root": on_chain.new_state_root,
    }
    return [(name, expected[name], chain_values[name]) for name in chain_values if expected[name] != chain_values[name]]


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


def registry_fields(commitment: Mapping, stream_id: bytes) -> tuple[str, dict[str, object]]:
    """`(batch_id, fields the registry stores)` of a commitment given as an API/bundle dict (hex or raw bytes)."""

    def _bytes(name: str) -> bytes:
        value = commitment[name]
        return bytes(value) if isinstance(value, (bytes, bytearray)) else parse_hex(value, 32, name)

    start, end = int(commitment["sequence_start"]), int(commitment["sequence_end"])
    return str(commitment["batch_id"]), {
        "stream_id": stream_id, "sequence_start": start, "sequence_end": end,
        "leaf_count": int(commitment.get("leaf_count", end - start + 1)),
        "merkle_root": _bytes("merkle_root"), "prev_state_root": _bytes("prev_state_root"),
        "new_state_root": _bytes("new_state_root"),
    }


def check_wire_commitments_on_chain(client: RegistryClient, stream_id: bytes,
                                    commitments: Iterable[Mapping]) -> list[ChainDiscrepancy]:
    """Compare each commitment with the registry's record of its batch id. ChainError propagates."""
    found: list[ChainDiscrepancy] = []
    for commitment in commitments:
        batch_id, fields = registry_fields(commitment, stream_id)
        on_chain = client.get_batch(uuid.UUID(batch_id))
        if on_chain is None:
            found.append(ChainDiscrepancy(batch_id, None, "anchored", "absent"))
            continue
        found.extend(ChainDiscrepancy(batch_id, name, ours, theirs)
                     for name, ours, theirs in chain_mismatches(fields, on_chain))
    return found


def bundle_chain_checker(client: RegistryClient):
    """A `chain_checker(commitment, stream_id)` for `app.verify.verify_bundle`: the first on-chain discrepancy of
    the bundle's commitment as an `app.verify.report.Discrepancy`, else None."""
    from app.verify.report import Discrepancy

    def check(commitment: Mapping, stream_id: bytes):
        try:
            problems = check_wire_commitments_on_chain(client, stream_id, [commitment])
        except ChainError as error:
            return Discrepancy("chain_anchor", f"Could not read the registry ({error})", None,
                               str(commitment.get("batch_id")))
        if not problems:
            return None
        first = problems[0]
        if first.field is None:
            return Discrepancy("chain_anchor", "The commitment is not anchored on chain", None, first.batch_id,
                               "anchored", "absent")
        return Discrepancy("chain_anchor", f"The on-chain {first.field} differs from the commitment's", None,
                           first.batch_id, show(first.expected), show(first.found))

    return check

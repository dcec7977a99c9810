"""Creating Merkle commitments and serving inclusion proofs (VES.md §Merkle commitments, DESIGN.md §Commitments).

`plan_range` and `proof_rejection` are pure; `create_commitment` and `build_proof` do the I/O around them. Proofs
are always rebuilt from the stored leaves, never from a cached tree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from app.commitment import Commitment
from app.db import commitments as store
from app.db.locks import commitment_lock_key
from app.db.locks import lock_transaction
from app.errors import InvalidRequest
from app.errors import Conflict
from app.errors import NotFound
from app.errors import IntegrityFailure
from app.metrics import COMMITMENTS_TOTAL
from app.services import fence as fence_service
from app.ves.hashing import ZERO_HASH
from app.ves.hashing import stream_id
from app.ves.merkle import InclusionProof
from app.ves.merkle import build_tree
from app.ves.merkle import inclusion_proof_from_tree
from app.ves.merkle import leaf_hash
from app.ves.merkle import padded_leaf_count
from app.ves.merkle import state_root
from app.ves.merkle import tree_depth
from app.ves.merkle import verify_inclusion

log = logging.getLogger("stateset_sequencer.commitments")

ReadCheck = Callable[[uuid.UUID, uuid.UUID], bool]
"""`may_read(tenant_id, store_id)`: whether the caller may read that stream."""

DEFAULT_MAX_EVENTS = 1024
MAX_COMMITMENT_EVENTS = 1 << 20
COMMITMENT_VES_VERSION = 1


class NothingToCommit(Conflict):
    """Every sequenced event of the stream is already committed; `commit_pending` answers None."""

    code = "NOTHING_TO_COMMIT"


class CommitmentIntegrityError(IntegrityFailure):
    """Stored events disagree with a commitment (a gap in the range, or a rebuilt root that differs).

    Never caused by input: it means the database no longer holds what was committed.
    """

    code = "COMMITMENT_INTEGRITY"


def plan_range(last_committed_end: int, head_sequence: int, sequence_start: int | None = None,
               sequence_end: int | None = None, max_events: int = DEFAULT_MAX_EVENTS) -> tuple[int, int]:
    """The `(start, end)` of the next commitment of a stream (VES.md: first starts at 1, next at previous end + 1).

    Without a range: from the next uncommitted number up to `max_events` events, never past the head.
    :raise InvalidRequest INVALID_RANGE: `sequence_end < sequence_start`, a range longer than MAX_COMMITMENT_EVENTS,
        or a `max_events` outside 1..MAX_COMMITMENT_EVENTS.
    :raise InvalidRequest RANGE_PAST_HEAD: `sequence_end` beyond the stream head.
    :raise Conflict RANGE_SKIPS / RANGE_OVERLAPS: the range does not start right after the last commitment.
    :raise NothingToCommit: the head is already committed.
    """
    if isinstance(max_events, bool) or not isinstance(max_events, int) or not 1 <= max_events <= MAX_COMMITMENT_EVENTS:
        raise InvalidRequest(f"max_events must be between 1 and {MAX_COMMITMENT_EVENTS}.", code="INVALID_RANGE")
    if sequence_start is not None and sequence_end is not None and sequence_end < sequence_start:
        raise InvalidRequest(f"sequence_end ({sequence_end}) is before sequence_start ({sequence_start}).",
                         code="INVALID_RANGE")
    next_start = last_committed_end + 1
    if sequence_start is not None and sequence_start < next_start:
        raise Conflict(f"The range overlaps the last commitment, which ends at {last_committed_end} (the next "
                       f"commitment must start at {next_start}).", code="RANGE_OVERLAPS")
    if sequence_start is not None and sequence_start > next_start:
        raise Conflict(f"The range skips uncommitted events (sequence_start {sequence_start}; the next commitment "
                       f"must start at {next_start}).", code="RANGE_SKIPS")
    if sequence_end is not None and sequence_end < next_start:
        raise Conflict(f"sequence_end ({sequence_end}) is already committed (the next commitment must start at "
                       f"{next_start}).", code="RANGE_OVERLAPS")
    if sequence_end is not None and sequence_end > head_sequence:
        raise InvalidRequest(f"sequence_end ({sequence_end}) is past the stream head ({head_sequence}).",
                         code="RANGE_PAST_HEAD")
    if head_sequence < next_start:
        raise NothingToCommit(f"Nothing to commit: every event up to the head ({head_sequence}) is committed.")
    if sequence_end is None:
        return next_start, min(head_sequence, next_start + max_events - 1)
    if sequence_end - next_start + 1 > MAX_COMMITMENT_EVENTS:
        raise InvalidRequest(f"A commitment covers at most {MAX_COMMITMENT_EVENTS} events.", code="INVALID_RANGE")
    return next_start, sequence_end


def _leaves(tenant_id: uuid.UUID, store_id: uuid.UUID, start: int, end: int,
            inputs: Sequence[tuple[int, bytes, bytes | None]]) -> list[bytes]:
    numbers = [number for number, _, _ in inputs]
    if numbers != list(range(start, end + 1)):
        raise CommitmentIntegrityError(f"Stored events do not fill the range {start}..{end} "
                                       f"({len(numbers)} of {end - start + 1} found).")
    return [leaf_hash(tenant_id, store_id, number, signing_hash, signature)
            for number, signing_hash, signature in inputs]


def create_commitment(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_start: int | None = None,
                      sequence_end: int | None = None, max_events: int = DEFAULT_MAX_EVENTS,
                      batch_id: uuid.UUID | None = None,
                      expect_roots: tuple[bytes, bytes] | None = None) -> Commitment:
    """Commit the stream's next range in one transaction under the stream's commitment lock.

    The new state root chains from the previous commitment's (32 zero bytes at genesis). Errors as `plan_range`;
    a stream fenced after a restore is refused (StreamFenced/StreamDiverged: a new range could never match what was
    anchored). Healing (app/services/heal.py) re-creates an exported commitment: its `batch_id`, and `expect_roots`
    `(merkle_root, new_state_root)` that MUST come out (else CommitmentIntegrityError, nothing written).
    """
    with engine.begin() as conn:
        lock_transaction(conn, commitment_lock_key(tenant_id, store_id))
        if expect_roots is None:
            fence_service.check_writable(conn, tenant_id, store_id)
        previous = store.last_commitment(conn, tenant_id, store_id)
        head_sequence, _ = store.stream_positions(conn, tenant_id, store_id)
        start, end = plan_range(previous.sequence_end if previous else 0, head_sequence, sequence_start,
                                sequence_end, max_events)
        leaves = _leaves(tenant_id, store_id, start, end, store.read_leaf_inputs(conn, tenant_id, store_id, start, end))
        root = build_tree(leaves)[-1][0]
        prev_state_root = previous.new_state_root if previous else ZERO_HASH
        new_state_root = state_root(stream_id(tenant_id, store_id), prev_state_root, root, start, end, len(leaves))
        if expect_roots is not None and expect_roots != (root, new_state_root):
            raise CommitmentIntegrityError(f"The re-created commitment {start}..{end} has other roots than the "
                                           "exported one; nothing was written.")
        record = store.insert_commitment(
            conn, tenant_id=tenant_id, store_id=store_id, sequence_start=start, sequence_end=end,
            padded_leaf_count=padded_leaf_count(len(leaves)), tree_depth=tree_depth(len(leaves)), merkle_root=root,
            prev_state_root=prev_state_root,
            new_state_root=new_state_root, ves_version=COMMITMENT_VES_VERSION, batch_id=batch_id,
        )
        store.advance_last_committed(conn, tenant_id, store_id, end)
    COMMITMENTS_TOTAL.inc()
    log.info("commitment created", extra={"batch_id": str(record.batch_id), "tenant_id": str(tenant_id),
                                          "store_id": str(store_id), "sequence_start": start, "sequence_end": end})
    return record


def commit_pending(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID,
                   max_events: int = DEFAULT_MAX_EVENTS) -> Commitment | None:
    """Commit the next uncommitted range (up to `max_events`), or return None when there is none."""
    try:
        return create_commitment(engine, tenant_id, store_id, max_events=max_events)
    except NothingToCommit:
        return None


def build_proof(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_number: int,
                batch_id: uuid.UUID | None = None) -> tuple[Commitment, InclusionProof]:
    """The inclusion proof of `sequence_number` in its covering commitment (or in `batch_id`), rebuilt from rows.

    :raise NotFound NOT_COMMITTED: no commitment of this stream covers it yet, or `batch_id` is unknown, of another
        stream, or does not cover it (one message for all three, so other streams' batch ids are not revealed).
    :raise CommitmentIntegrityError: the rebuilt root differs from the stored one.
    """
    with engine.connect() as conn:
        if batch_id is None:
            record = store.covering_commitment(conn, tenant_id, store_id, sequence_number)
            if record is None:
                raise NotFound(f"No commitment covers sequence number {sequence_number} of this stream yet.",
                               code="NOT_COMMITTED")
        else:
            record = store.get_commitment(conn, batch_id)
            if (record is None or (record.tenant_id, record.store_id) != (tenant_id, store_id)
                    or not record.covers(sequence_number)):
                raise NotFound(f"No commitment {batch_id} of this stream covers sequence number {sequence_number}.",
                               code="NOT_COMMITTED")
        inputs = store.read_leaf_inputs(conn, tenant_id, store_id, record.sequence_start, record.sequence_end)
    levels = build_tree(_leaves(tenant_id, store_id, record.sequence_start, record.sequence_end, inputs))
    if levels[-1][0] != record.merkle_root:
        log.error("rebuilt Merkle root differs from the stored commitment", extra={"batch_id": str(record.batch_id)})
        raise CommitmentIntegrityError(f"The stored events no longer match commitment {record.batch_id}.")
    return record, inclusion_proof_from_tree(levels, sequence_number - record.sequence_start, record.leaf_count)


def proof_rejection(leaf_hash_value: bytes, merkle_root: bytes, proof_path: Sequence[bytes], leaf_index: int,
                    leaf_count: int | None = None, directions: Sequence[bool] | None = None) -> str | None:
    """None when the proof verifies (`verify_inclusion`, strict per VES.md); otherwise why it does not."""
    if verify_inclusion(leaf_hash_value, merkle_root, proof_path, leaf_index, leaf_count, directions):
        return None
    depth = len(proof_path)
    if leaf_index >> depth:
        return f"leaf_index is outside the {2 ** min(depth, 64)} leaves a path of length {depth} describes."
    if leaf_count is not None and leaf_index >= leaf_count:
        return "leaf_index is a padding slot, not an event (leaf_index >= leaf_count)."
    if leaf_count is not None and depth != tree_depth(leaf_count):
        return f"proof_path has length {depth}, but a tree of {leaf_count} leaves has depth {tree_depth(leaf_count)}."
    if directions is not None and (len(directions) != depth
                                   or any(directions[d] is not ((leaf_index >> d) & 1 == 0) for d in range(depth))):
        return "directions disagree with the bits of leaf_index."
    return "Folding proof_path from leaf_hash does not give merkle_root."


@dataclass(frozen=True)
class EventProof:
    """The inclusion proof of event `sequence_number` in `commitment`."""

    sequence_number: int
    commitment: Commitment
    proof: InclusionProof


@dataclass(frozen=True)
class ProofVerdict:
    """Whether an inclusion proof verifies (`reason` says why not), with the proof's own coordinates."""

    valid: bool
    reason: str | None
    leaf_index: int
    leaf_count: int | None
    tree_depth: int
    merkle_root: bytes


def prove(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_number: int,
          batch_id: uuid.UUID | None = None) -> EventProof:
    """`build_proof` as one value."""
    record, proof = build_proof(engine, tenant_id, store_id, sequence_number, batch_id)
    return EventProof(sequence_number, record, proof)


def verify_proof(leaf_hash: bytes, merkle_root: bytes, proof_path: Sequence[bytes], leaf_index: int,
                 leaf_count: int | None = None, directions: Sequence[bool] | None = None) -> ProofVerdict:
    """Check a proof strictly (`proof_rejection`)."""
    reason = proof_rejection(leaf_hash, merkle_root, proof_path, leaf_index, leaf_count, directions)
    return ProofVerdict(reason is None, reason, leaf_index, leaf_count, len(proof_path), merkle_root)


def visible_commitment(engine: Engine, batch_id: uuid.UUID, may_read: ReadCheck) -> Commitment:
    """The commitment, if the caller may read its stream.

    :raise NotFound: unknown, or of a stream the caller may not read (the same answer, so existence is not revealed).
    """
    with engine.connect() as conn:
        record = store.get_commitment(conn, batch_id)
    if record is None or not may_read(record.tenant_id, record.store_id):
        raise NotFound("No such commitment.")
    return record


def list_commitments(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, anchored: bool | None = None,
                     limit: int = 100, after: int = 0) -> list[Commitment]:
    """The stream's commitments with `sequence_start > after`, in sequence order, optionally only (un)anchored."""
    with engine.connect() as conn:
        return store.list_commitments(conn, tenant_id, store_id, anchored=anchored, limit=limit, after=after)

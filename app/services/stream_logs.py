"""Every stream a transparency log (LOG.md): extended in the sequencing transaction, checkpointed, proven, backfilled.

- `plan_log_growth` is called by ingest inside the sequencing transaction, under the stream lock, and its result
  written in the same statement as the events (`app.db.sequencing.write_stream_batch`): the log is never behind a
  committed event, and a rolled-back ingest leaves no log rows. `extend_stream_log` does the same read-plan-write
  in statements of its own (the tlog bench, tests).
  A stream whose log is not complete (events from before migration 0002, until the backfill reaches its head) is
  left to `backfill_logs`.
- `sign_checkpoint` signs and persists the checkpoint of the current tree under the stream's checkpoint lock,
  after proving it consistent with the last one signed (a tampered node or event makes it refuse, never sign).
  `current_checkpoint` decides (pure `checkpoint_due`) whether the latest one still honours `LOG_MAX_DELAY_SECONDS`.
- `prove_inclusion`, `prove_consistency`, `tree_root` run in the caller's connection (so a view can read the
  latest checkpoint and a proof in one place): O(log n) stored nodes, one read statement each plus one for the
  log's size.

Design and costs: docs/LOG.md.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Connection
from sqlalchemy import Engine

from app import metrics
from app.config import Settings
from app.db import stream_logs as store
from app.db.locks import checkpoint_lock_key
from app.db.locks import lock_transaction
from app.db.locks import set_lock_timeout
from app.db.locks import stream_lock_key
from app.db.sequencing import LogGrowth
from app.db.stream_logs import EntryRow
from app.db.stream_logs import LogStatus
from app.db.tables import LOG_NODES_MIN_LEVEL
from app.errors import Conflict
from app.errors import IntegrityFailure
from app.errors import InvalidRequest
from app.errors import NotFound
from app.errors import Unavailable
from app.ves import tlog
from app.ves.errors import ProofError
from app.ves.checkpoint import Checkpoint
from app.ves.checkpoint import sign_checkpoint as sign_checkpoint_note
from app.ves.checkpoint import stream_origin
from app.ves.checkpoint import stream_signer
from app.ves.checkpoint import stream_verifier
from app.ves.hashing import HASH_SIZE
from app.ves.hashing import stream_id
from app.ves.merkle import leaf_hash as ves_leaf_hash
from app.ves.merkle import stream_leaf_hashes
from app.ves.note import NoteSigner
from app.ves.signing import public_key_from_seed

log = logging.getLogger("stateset_sequencer.stream_logs")

DEFAULT_BACKFILL_CHUNK = 2000


class LogNotReady(Unavailable):
    """The stream holds events from before the log existed and the backfill has not reached its head yet, so no
    checkpoint may be signed. Transient (`retry_after`); run `stateset-sequencer-admin build-logs`."""

    code = "LOG_NOT_READY"

    def __init__(self, message: str, code: str | None = None, retry_after: int | None = 5):
        super().__init__(message, code, retry_after)


class LogIntegrityError(IntegrityFailure):
    """Stored log data contradicts itself or a checkpoint already signed (a stored node or event changed, or the
    database went back in time). Nothing is signed. Never caused by input."""

    code = "LOG_INTEGRITY"


class LogRangeError(InvalidRequest):
    """A sequence number or tree size outside the log (`sequence_number < 1` or `> tree_size`, `first > second`)."""

    code = "LOG_RANGE"


class TreeSizeBeyondLog(NotFound):
    """A tree size larger than the log has."""

    code = "TREE_SIZE_NOT_FOUND"


class LogDisabled(Unavailable):
    """No log key is configured (`LOG_DISABLED=1`), so no checkpoint can be signed or served."""

    code = "LOG_DISABLED"


@dataclass(frozen=True)
class LogKey:
    """The deployment's log key (`LOG_SIGNING_KEY`, a 32-byte Ed25519 seed) and `LOG_ORIGIN`. Each stream signs
    under its own origin `<LOG_ORIGIN>/<hex stream_id>`, so each stream has its own verifier key."""

    log_origin: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        stream_origin(self.log_origin, bytes(HASH_SIZE))  # validates the origin once

    @classmethod
    def from_settings(cls, settings: Settings) -> LogKey | None:
        """`LOG_SIGNING_KEY` under `LOG_ORIGIN`, or None when no key is configured (no checkpoint can be signed)."""
        if settings.log_signing_key is None or settings.log_disabled:
            return None
        return cls(settings.log_origin, settings.log_signing_key)

    @property
    def public_key(self) -> bytes:
        return public_key_from_seed(self.seed)

    def origin(self, tenant_id: uuid.UUID, store_id: uuid.UUID) -> str:
        return stream_origin(self.log_origin, stream_id(tenant_id, store_id))

    def signer(self, tenant_id: uuid.UUID, store_id: uuid.UUID) -> NoteSigner:
        return stream_signer(self.origin(tenant_id, store_id), self.seed)

    def verifier_key(self, tenant_id: uuid.UUID, store_id: uuid.UUID) -> str:
        """The stream's `X-Log-Vkey`: `<origin>+<key ID>+<base64(0x01 || public key)>`."""
        return stream_verifier(self.origin(tenant_id, store_id), self.public_key).verifier_key


def entry_of(tenant_id: uuid.UUID, store_id: uuid.UUID, row: EntryRow) -> bytes:
    """The log entry of an event: its VES leaf hash (`VES_LEAF_V1`; 64 zero bytes for an unsigned event)."""
    return ves_leaf_hash(tenant_id, store_id, row.sequence_number, row.event_signing_hash, row.agent_signature)


def _frontier(tree_size: int, frontier: bytes) -> tlog.CompactRange:
    try:
        return tlog.CompactRange(tree_size, [frontier[i:i + HASH_SIZE] for i in range(0, len(frontier), HASH_SIZE)])
    except ProofError as exc:
        raise LogIntegrityError(f"The stored compact range of a log is malformed ({exc})") from None


def _extend(tenant_id: uuid.UUID, store_id: uuid.UUID, compact: tlog.CompactRange, entries: Sequence[EntryRow]
            ) -> tuple[tlog.CompactRange, list[tuple[int, int, bytes]]]:
    """The compact range after appending `entries` (sequence numbers compact.size + 1, …) and the stored nodes
    (level >= LOG_NODES_MIN_LEVEL) they complete. Pure."""
    for offset, row in enumerate(entries):
        if row.sequence_number != compact.size + offset + 1:
            raise LogIntegrityError(f"Log entries are not contiguous (expected sequence number "
                                    f"{compact.size + offset + 1}, got {row.sequence_number})")
    entries_hashed = stream_leaf_hashes(tenant_id, store_id, ((row.sequence_number, row.event_signing_hash,
                                                                row.agent_signature) for row in entries))
    leaves = [tlog.hash_leaf(entry) for entry in entries_hashed]
    extended, completed = compact.extend(leaves)
    return extended, [(node.level, node.index, value) for node, value in completed
                      if node.level >= LOG_NODES_MIN_LEVEL]


def plan_log_growth(tenant_id: uuid.UUID, store_id: uuid.UUID, log_size: int | None, log_frontier: bytes,
                    rows: Sequence[Mapping]) -> LogGrowth | None:
    """What appending the events about to be inserted (`rows`: `events` rows in sequence order, keyed by column
    name) does to the stream's log of `log_size` leaves (None: no log row yet) and compact range `log_frontier`,
    for `app.db.sequencing.write_stream_batch` to persist in the sequencing transaction, under the stream lock.
    None (nothing to write) when the log is not complete up to the first row: the backfill will build it. Pure."""
    if not rows:
        return None
    tree_size = log_size or 0
    if tree_size != int(rows[0]["sequence_number"]) - 1:
        return None
    entries = [EntryRow(int(row["sequence_number"]), row["event_signing_hash"], row.get("agent_signature"))
               for row in rows]
    extended, nodes = _extend(tenant_id, store_id, _frontier(tree_size, log_frontier if log_size else b""),
                              entries)
    return LogGrowth(tree_size, extended.size, b"".join(extended.hashes), nodes)


def _grow(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, compact: tlog.CompactRange,
          entries: Sequence[EntryRow]) -> tlog.CompactRange:
    """Append `entries` (sequence numbers compact.size + 1, …) to the log and persist what they complete."""
    extended, nodes = _extend(tenant_id, store_id, compact, entries)
    try:
        store.save_log_growth(conn, tenant_id, store_id, compact.size, extended.size, b"".join(extended.hashes),
                              nodes)
    except store.LogWriteConflict as exc:
        log.error("log write conflict; transaction rolled back", extra={"tenant_id": str(tenant_id),
                                                                         "store_id": str(store_id)})
        raise Conflict("A concurrent write conflicted with this request; nothing was written. Retry it.",
                       code="SEQUENCE_CONFLICT") from exc
    return extended


def extend_stream_log(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                      rows: Sequence[Mapping]) -> bool:
    """Append the events just inserted (`rows`: `events` rows in sequence order, keyed by column name) to the
    stream's log; two statements. MUST run in the sequencing transaction, under the stream lock, after the insert.

    Returns False (and writes nothing) when the log is not complete up to the first row: the backfill will build
    it. Raises Conflict (code SEQUENCE_CONFLICT) if the stored log moved under the lock (the transaction must roll
    back).
    """
    if not rows:
        return False
    first = int(rows[0]["sequence_number"])
    stored = store.read_log_frontier(conn, tenant_id, store_id)
    tree_size, frontier = stored if stored is not None else (0, b"")
    if tree_size != first - 1:
        return False
    entries = [EntryRow(int(row["sequence_number"]), row["event_signing_hash"], row.get("agent_signature"))
               for row in rows]
    _grow(conn, tenant_id, store_id, _frontier(tree_size, frontier), entries)
    return True


def node_reader(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                entries: dict[int, bytes] | None = None) -> tlog.NodeReader:
    """A NodeReader over the stream's stored log: one statement per call. Subtrees of level >= LOG_NODES_MIN_LEVEL
    come from `log_nodes`; leaves and smaller subtrees (at most 2**LOG_NODES_MIN_LEVEL - 1 events each) are folded
    from the event rows. Raises LogIntegrityError for a node or event that should exist and does not. When
    `entries` is given, the VES leaf hash of every leaf read is put there (keyed by leaf index)."""

    def read(nodes: Sequence[tlog.Node]) -> list[bytes]:
        folded = [n for n in nodes if n.level < LOG_NODES_MIN_LEVEL]
        sequence_numbers = sorted({leaf + 1 for n in folded for leaf in range(n.start, n.end)})
        stored, rows = store.read_log_nodes(conn, tenant_id, store_id,
                                            [(n.level, n.index) for n in nodes if n.level >= LOG_NODES_MIN_LEVEL],
                                            sequence_numbers)
        leaves: dict[int, bytes] = {}
        for sequence_number in sequence_numbers:
            row = rows.get(sequence_number)
            if row is None:
                raise LogIntegrityError(f"A log entry has no event (sequence number {sequence_number})")
            entry = entry_of(tenant_id, store_id, row)
            if entries is not None:
                entries[sequence_number - 1] = entry
            leaves[sequence_number - 1] = tlog.hash_leaf(entry)
        hashes = []
        for node in nodes:
            if node.level < LOG_NODES_MIN_LEVEL:
                level = [leaves[leaf] for leaf in range(node.start, node.end)]
                while len(level) > 1:
                    level = [tlog.hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
                hashes.append(level[0])
                continue
            value = stored.get((node.level, node.index))
            if value is None:
                raise LogIntegrityError(f"A stored log node is missing (level {node.level}, index {node.index})")
            hashes.append(value)
        return hashes

    return read


def log_status(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> LogStatus:
    """The log's size, compact range and the stream head in one snapshot (one statement)."""
    return store.read_log_status(conn, tenant_id, store_id)


def _require_size(status: LogStatus, tree_size: int) -> None:
    if isinstance(tree_size, bool) or not isinstance(tree_size, int) or tree_size < 0:
        raise LogRangeError(f"tree_size must be a non-negative integer (got {tree_size!r}).")
    if tree_size > status.tree_size:
        raise TreeSizeBeyondLog(f"The log has no tree of that size yet (tree_size {tree_size}; the log has "
                                f"{status.tree_size} entries).")


def tree_root(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, tree_size: int) -> bytes:
    """`MTH` of the stream's first `tree_size` events: two statements, O(log n) rows (the current tree's root comes
    from the compact range alone). Runs in the caller's connection. Raises TreeSizeBeyondLog beyond the log."""
    status = log_status(conn, tenant_id, store_id)
    _require_size(status, tree_size)
    if tree_size == status.tree_size:
        return _frontier(status.tree_size, status.frontier).root()
    return tlog.root_hash(tree_size, node_reader(conn, tenant_id, store_id))


@dataclass(frozen=True)
class LogInclusion:
    """LOG.md's inclusion proof: `entry` (the VES leaf hash) at `leaf_index` (`sequence_number - 1`), its RFC 9162
    `leaf_hash`, and the audit path in RFC order for the tree of `tree_size` leaves."""

    leaf_index: int
    tree_size: int
    entry: bytes
    leaf_hash: bytes
    proof: list[bytes]


def prove_inclusion(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_number: int,
                    tree_size: int) -> LogInclusion:
    """The inclusion proof of event `sequence_number` in the stream's tree of `tree_size` leaves: two statements,
    O(log n) rows, in the caller's connection. Raises LogRangeError for `sequence_number` outside 1..tree_size,
    TreeSizeBeyondLog for a `tree_size` beyond the log."""
    if isinstance(sequence_number, bool) or not isinstance(sequence_number, int) or not (
            isinstance(tree_size, int) and 1 <= sequence_number <= tree_size):
        raise LogRangeError(f"sequence_number must be between 1 and the tree size (got {sequence_number!r}, "
                            f"tree_size {tree_size!r}).")
    index = sequence_number - 1
    _require_size(log_status(conn, tenant_id, store_id), tree_size)
    plan = tlog.inclusion_plan(index, tree_size)
    leaf = tlog.Node(0, index)
    entries: dict[int, bytes] = {}
    wanted = tuple(dict.fromkeys(plan.nodes + (leaf,)))
    hashes = dict(zip(wanted, node_reader(conn, tenant_id, store_id, entries)(wanted)))
    return LogInclusion(index, tree_size, entries[index], hashes[leaf], plan.assemble(hashes))


def prove_consistency(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, first: int,
                      second: int) -> list[bytes]:
    """The consistency proof from the stream's tree of `first` leaves to the one of `second` (empty when `first`
    is 0 or equals `second`): two statements, O(log n) rows, in the caller's connection. Raises LogRangeError
    unless 0 <= first <= second, TreeSizeBeyondLog for a `second` beyond the log."""
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (first, second)) or not 0 <= first <= second:
        raise LogRangeError(f"first and second must satisfy 0 <= first <= second (got {first!r}, {second!r}).")
    _require_size(log_status(conn, tenant_id, store_id), second)
    return tlog.consistency_proof(first, second, node_reader(conn, tenant_id, store_id))


@dataclass(frozen=True)
class SignedLogCheckpoint:
    """A signed checkpoint as served: `note` is the exact signed note; `signed_at` is the database time of the
    transaction that read the tree (every event committed before it is covered). `persisted` is False only for
    the empty tree, which is signed on demand and never stored."""

    checkpoint: Checkpoint
    note: bytes
    signed_at: datetime.datetime
    persisted: bool = True


def _from_row(origin: str, row: store.CheckpointRow) -> SignedLogCheckpoint:
    return SignedLogCheckpoint(Checkpoint(origin, row.tree_size, row.root_hash), row.note.encode(), row.signed_at)


def latest_checkpoint(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                      key: LogKey) -> SignedLogCheckpoint | None:
    """The largest checkpoint signed for the stream (one index probe), or None; never signs."""
    row = store.latest_checkpoint(conn, tenant_id, store_id)
    return None if row is None else _from_row(key.origin(tenant_id, store_id), row)


def checkpoint_due(latest_size: int | None, latest_signed_at: datetime.datetime | None, tree_size: int,
                   now: datetime.datetime, max_delay_seconds: float) -> bool:
    """Whether a new checkpoint must be signed before answering (LOG.md "Maximum merge delay").

    The latest checkpoint covers every event committed before its `signed_at`, so it may be served while no event
    it misses can be older than `max_delay_seconds`: until `signed_at + max_delay_seconds`. A tree that has not
    grown never needs a new one.
    """
    if tree_size == 0 or (latest_size is not None and latest_size >= tree_size):
        return False
    if latest_size is None or latest_signed_at is None:
        return True
    return (now - latest_signed_at).total_seconds() >= max_delay_seconds


def _empty_checkpoint(key: LogKey, tenant_id: uuid.UUID, store_id: uuid.UUID,
                      now: datetime.datetime) -> SignedLogCheckpoint:
    checkpoint = Checkpoint(key.origin(tenant_id, store_id), 0, tlog.EMPTY_ROOT)
    return SignedLogCheckpoint(checkpoint, sign_checkpoint_note(checkpoint, key.signer(tenant_id, store_id)), now,
                               persisted=False)


def _check_before_signing(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, tree_size: int,
                          root: bytes, latest: store.CheckpointRow | None) -> None:
    """With one read of O(log n) stored nodes: the compact range's root MUST equal the root folded from the stored
    subtrees and event rows, and the stored log MUST prove the new tree consistent with the latest signed one."""
    root_plan = tlog.root_plan(tree_size)
    proof_plan = tlog.consistency_plan(latest.tree_size, tree_size) if latest is not None else tlog.ProofPlan(())
    wanted = tuple(dict.fromkeys(root_plan.nodes + proof_plan.nodes))
    hashes = dict(zip(wanted, node_reader(conn, tenant_id, store_id)(wanted)))
    if root_plan.assemble(hashes)[0] != root:
        log.error("stored log nodes disagree with the stored compact range; refusing to sign",
                  extra={"tenant_id": str(tenant_id), "store_id": str(store_id), "tree_size": tree_size})
        raise LogIntegrityError(f"The stored log disagrees with itself at size {tree_size}; nothing was signed.")
    if latest is not None and not tlog.verify_consistency(latest.tree_size, tree_size, proof_plan.assemble(hashes),
                                                          latest.root_hash, root):
        log.error("stored log is not consistent with the latest signed checkpoint; refusing to sign",
                  extra={"tenant_id": str(tenant_id), "store_id": str(store_id), "signed_size": latest.tree_size,
                         "tree_size": tree_size})
        raise LogIntegrityError(f"The stored log is not consistent with the checkpoint signed at size "
                                f"{latest.tree_size}; nothing was signed.")


def sign_checkpoint(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, key: LogKey,
                    lock_timeout_ms: int | None = None) -> SignedLogCheckpoint:
    """See `_sign_checkpoint`; counts signatures and integrity refusals (app.metrics)."""
    with _counting_integrity_failures():
        signed, new = _sign_checkpoint(engine, tenant_id, store_id, key, lock_timeout_ms)
    if new:
        metrics.LOG_CHECKPOINTS_SIGNED.inc()
        metrics.LOG_CHECKPOINT_SIZE.labels(tenant_id=str(tenant_id), store_id=str(store_id)).set(
            signed.checkpoint.tree_size)
    return signed


@contextlib.contextmanager
def _counting_integrity_failures():
    try:
        yield
    except LogIntegrityError:
        metrics.LOG_INTEGRITY_FAILURES.inc()
        raise


def _sign_checkpoint(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, key: LogKey,
                     lock_timeout_ms: int | None = None) -> tuple[SignedLogCheckpoint, bool]:
    """Sign and persist the checkpoint of the stream's current tree, or return the latest if the tree has not
    grown since. One transaction under the stream's checkpoint lock:

    never a size below one already signed, never two different roots for one size, never a root the stored
    subtrees disagree with, and never a checkpoint the stored log cannot prove consistent with the latest one
    (verified with the pure verifier before signing). Raises LogNotReady while the log is still being
    backfilled, LogIntegrityError when stored data contradicts itself or a signed checkpoint.
    """
    origin = key.origin(tenant_id, store_id)
    with engine.begin() as conn:
        if lock_timeout_ms is not None:
            set_lock_timeout(conn, lock_timeout_ms)
        lock_transaction(conn, checkpoint_lock_key(tenant_id, store_id))
        now = store.transaction_time(conn)
        status = log_status(conn, tenant_id, store_id)
        if not status.complete:
            raise LogNotReady(f"This stream's log is still being built ({status.tree_size} of "
                              f"{status.head_sequence} events); retry after the backfill.")
        latest = store.latest_checkpoint(conn, tenant_id, store_id)
        if status.tree_size == 0:
            if latest is not None:
                raise LogIntegrityError("The log is empty but a checkpoint was signed for it.")
            return _empty_checkpoint(key, tenant_id, store_id, now), False
        root = _frontier(status.tree_size, status.frontier).root()
        if latest is not None:
            if latest.tree_size > status.tree_size:
                raise LogIntegrityError(f"The log is smaller than a checkpoint already signed (log: "
                                        f"{status.tree_size}, signed: {latest.tree_size}).")
            if latest.tree_size == status.tree_size:
                if latest.root_hash != root:
                    raise LogIntegrityError(f"The log's root differs from the checkpoint signed for its size "
                                            f"({status.tree_size}).")
                return _from_row(origin, latest), False
        _check_before_signing(conn, tenant_id, store_id, status.tree_size, root, latest)
        checkpoint = Checkpoint(origin, status.tree_size, root)
        note = sign_checkpoint_note(checkpoint, key.signer(tenant_id, store_id))
        row = store.insert_checkpoint(conn, tenant_id, store_id, status.tree_size, root, note.decode(), now)
    log.info("checkpoint signed", extra={"tenant_id": str(tenant_id), "store_id": str(store_id),
                                         "tree_size": status.tree_size})
    return _from_row(origin, row), True


def current_checkpoint(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, key: LogKey,
                       max_delay_seconds: float, lock_timeout_ms: int | None = None
                       ) -> SignedLogCheckpoint:
    """The checkpoint to serve now: the latest signed one while `checkpoint_due` says it still covers every event
    older than `max_delay_seconds`, else a new one (`sign_checkpoint`). Raises LogNotReady while backfilling."""
    with engine.connect() as conn:
        now = store.transaction_time(conn)
        status = log_status(conn, tenant_id, store_id)
        latest = store.latest_checkpoint(conn, tenant_id, store_id)
    if not status.complete:
        raise LogNotReady(f"This stream's log is still being built ({status.tree_size} of "
                          f"{status.head_sequence} events); retry after the backfill.")
    if status.tree_size == 0 and latest is None:
        return _empty_checkpoint(key, tenant_id, store_id, now)
    if latest is not None and not checkpoint_due(latest.tree_size, latest.signed_at, status.tree_size, now,
                                                 max_delay_seconds):
        return _from_row(key.origin(tenant_id, store_id), latest)
    return sign_checkpoint(engine, tenant_id, store_id, key, lock_timeout_ms)


@dataclass(frozen=True)
class BackfillProgress:
    """One stream after a backfill pass: `tree_size` of `head_sequence` events logged, `added` in this pass."""

    tenant_id: uuid.UUID
    store_id: uuid.UUID
    tree_size: int
    head_sequence: int
    added: int

    @property
    def complete(self) -> bool:
        return self.tree_size >= self.head_sequence


def backfill_chunk(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID,
                   chunk_events: int = DEFAULT_BACKFILL_CHUNK,
                   lock_timeout_ms: int | None = None) -> BackfillProgress:
    """Log up to `chunk_events` more events of one stream, in one short transaction under the stream's sequencing
    lock (so ingest, which extends only complete logs, waits at most one chunk). Resumable: progress is the
    committed `tree_size`; a killed run loses at most its current chunk. `lock_timeout_ms` None keeps the engine's
    per-transaction bound (STREAM_LOCK_TIMEOUT_MS)."""
    if isinstance(chunk_events, bool) or not isinstance(chunk_events, int) or chunk_events < 1:
        raise ValueError("chunk_events must be a positive integer")
    with engine.begin() as conn:
        if lock_timeout_ms is not None:
            set_lock_timeout(conn, lock_timeout_ms)
        lock_transaction(conn, stream_lock_key(tenant_id, store_id))
        status = log_status(conn, tenant_id, store_id)
        if status.tree_size >= status.head_sequence:
            return BackfillProgress(tenant_id, store_id, status.tree_size, status.head_sequence, 0)
        last = min(status.tree_size + chunk_events, status.head_sequence)
        rows = store.read_entry_rows(conn, tenant_id, store_id, status.tree_size + 1, last)
        if len(rows) != last - status.tree_size:
            raise LogIntegrityError(f"The stream has gaps below its head (expected {last - status.tree_size} "
                                    f"events from {status.tree_size + 1}, found {len(rows)}).")
        extended = _grow(conn, tenant_id, store_id, _frontier(status.tree_size, status.frontier), rows)
    return BackfillProgress(tenant_id, store_id, extended.size, status.head_sequence, len(rows))


@dataclass
class BackfillSummary:
    """What one `backfill_logs` run did: streams completed, events logged, and what is left."""

    streams_completed: int = 0
    events_logged: int = 0
    streams_remaining: int = 0
    events_remaining: int = 0


def backfill_logs(engine: Engine, chunk_events: int = DEFAULT_BACKFILL_CHUNK, max_events: int | None = None,
                  lock_timeout_ms: int | None = None,
                  on_progress: Callable[[BackfillProgress], None] | None = None) -> BackfillSummary:
    """Build the logs of every stream whose log is behind its head (streams from before migration 0002), chunk by
    chunk, while ingest continues; stop after about `max_events` (bounded runs, e.g. from cron). Resumable: run it
    again until `streams_remaining` is 0. Never inside a migration's transaction."""
    summary = BackfillSummary()
    after = None
    while max_events is None or summary.events_logged < max_events:
        with engine.connect() as conn:
            batch = store.incomplete_logs(conn, limit=100, after=after)
        if not batch:
            break
        for tenant_id, store_id, _, _ in batch:
            after = (tenant_id, store_id)
            while max_events is None or summary.events_logged < max_events:
                budget = chunk_events if max_events is None else min(chunk_events, max_events - summary.events_logged)
                progress = backfill_chunk(engine, tenant_id, store_id, budget, lock_timeout_ms)
                summary.events_logged += progress.added
                if on_progress is not None:
                    on_progress(progress)
                if progress.complete:
                    summary.streams_completed += 1
                    break
            else:
                break
    with engine.connect() as conn:
        summary.streams_remaining, summary.events_remaining = store.count_incomplete_logs(conn)
    log.info("transparency-log backfill pass finished", extra={
        "streams_completed": summary.streams_completed, "events_logged": summary.events_logged,
        "streams_remaining": summary.streams_remaining, "events_remaining": summary.events_remaining})
    return summary


# --- Serving (LOG.md §HTTP): every size is bounded by the checkpoint served now -------------------------------------


def _serving_key(key: LogKey | None) -> LogKey:
    if key is None:
        raise LogDisabled("This sequencer signs no transparency-log checkpoints (LOG_DISABLED=1).")
    return key


@dataclass(frozen=True)
class ServedConsistency:
    first: int
    second: int
    proof: list[bytes]


def serve_checkpoint(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, key: LogKey | None,
                     max_delay_seconds: float) -> tuple[SignedLogCheckpoint, str]:
    """The checkpoint to serve now and the stream's verifier key. Raises LogDisabled without a key, LogNotReady
    while the stream's log is being backfilled."""
    key = _serving_key(key)
    return (current_checkpoint(engine, tenant_id, store_id, key, max_delay_seconds),
            key.verifier_key(tenant_id, store_id))


def serve_inclusion(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, key: LogKey | None,
                    max_delay_seconds: float, sequence_number: int, tree_size: int | None) -> LogInclusion:
    """LOG.md's inclusion proof: `tree_size` defaults to the latest checkpoint's size; LogRangeError (400) unless
    1 <= sequence_number <= tree_size, TreeSizeBeyondLog (404) when tree_size exceeds the latest checkpoint's."""
    latest = current_checkpoint(engine, tenant_id, store_id, _serving_key(key), max_delay_seconds)
    size = latest.checkpoint.tree_size if tree_size is None else tree_size
    if not 1 <= sequence_number <= size:
        raise LogRangeError(f"sequence_number must be between 1 and the tree size (got {sequence_number}, "
                            f"tree_size {size}).")
    _beyond_checkpoint(size, latest)
    with engine.connect() as conn, _counting_integrity_failures():
        return prove_inclusion(conn, tenant_id, store_id, sequence_number, size)


def serve_consistency(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, key: LogKey | None,
                      max_delay_seconds: float, first: int, second: int) -> ServedConsistency:
    """LOG.md's consistency proof for 0 <= first <= second <= the latest checkpoint's size (LogRangeError 400 for
    first > second, TreeSizeBeyondLog 404 for second beyond the checkpoint)."""
    latest = current_checkpoint(engine, tenant_id, store_id, _serving_key(key), max_delay_seconds)
    if first > second:
        raise LogRangeError(f"first must not exceed second (got {first}, {second}).")
    _beyond_checkpoint(second, latest)
    with engine.connect() as conn, _counting_integrity_failures():
        return ServedConsistency(first, second, prove_consistency(conn, tenant_id, store_id, first, second))


def _beyond_checkpoint(size: int, latest: SignedLogCheckpoint) -> None:
    if size > latest.checkpoint.tree_size:
        raise TreeSizeBeyondLog(f"No checkpoint covers that tree size yet (tree_size {size}; the latest checkpoint "
                                f"has {latest.checkpoint.tree_size} entries).")


def public_stream(engine: Engine, stream_id_bytes: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The stream with this VES stream id, or None if nothing was ever sequenced in it (one index probe)."""
    with engine.connect() as conn:
        return store.stream_by_id(conn, stream_id_bytes)


def serve_public_checkpoint(engine: Engine, stream_id_bytes: bytes, key: LogKey | None,
                            max_delay_seconds: float) -> tuple[SignedLogCheckpoint, str]:
    """`serve_checkpoint` by stream id. A stream id no event was sequenced in is an empty stream: the signed
    size-0 checkpoint (a caller cannot tell an unused stream id from an empty stream, as LOG.md wants)."""
    key = _serving_key(key)
    found = public_stream(engine, stream_id_bytes)
    if found is not None:
        return serve_checkpoint(engine, *found, key, max_delay_seconds)
    origin = stream_origin(key.log_origin, stream_id_bytes)
    checkpoint = Checkpoint(origin, 0, tlog.EMPTY_ROOT)
    with engine.connect() as conn:
        now = store.transaction_time(conn)
    signed = SignedLogCheckpoint(checkpoint, sign_checkpoint_note(checkpoint, stream_signer(origin, key.seed)), now,
                                 persisted=False)
    return signed, stream_verifier(origin, key.public_key).verifier_key


def serve_public_consistency(engine: Engine, stream_id_bytes: bytes, key: LogKey | None, max_delay_seconds: float,
                             first: int, second: int) -> ServedConsistency:
    """`serve_consistency` by stream id (an unknown stream id is the empty stream)."""
    key = _serving_key(key)
    found = public_stream(engine, stream_id_bytes)
    if found is not None:
        return serve_consistency(engine, *found, key, max_delay_seconds, first, second)
    if first > second:
        raise LogRangeError(f"first must not exceed second (got {first}, {second}).")
    if second > 0:
        raise TreeSizeBeyondLog(f"No checkpoint covers that tree size yet (tree_size {second}; the latest "
                                f"checkpoint has 0 entries).")
    return ServedConsistency(first, second, [])

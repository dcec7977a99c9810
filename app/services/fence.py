"""The post-restore fence (docs/RESTORE.md, "After a restore: the fence"): a restored database must never hand out
a sequence number a second time.

A restore to time T forgets events that already had receipts, commitments, anchors or checkpoints. What was
published beyond the database still says how far each stream had got: the registry contract's head per stream
(anchored commitments), and the head watermark (`export_watermark`: every stream's head and the receipt hash there,
written to a file outside the database, e.g. by cron next to the base backups). `fence_streams` compares those with
the restored heads, under each stream's lock:

- head behind what was published: fenced, `STREAM_FENCED` (503) on every write until the missing events are
  re-ingested in their original order (app/services/heal.py); the fence lifts by itself in the transaction that
  brings the head to the published one, when the receipt hash there is the published one;
- the database disagrees with what was published at a number it holds (another receipt hash, another state root):
  `STREAM_DIVERGED` (503), never lifted by a replay; only `declare_loss`.

Signed log checkpoints live in the same database, so a restore rolls them back with everything else: only an
exported one says more. The watermark carries each stream's latest signed checkpoint (tree size, root, note): a
restored stream shorter than it is fenced, and one whose log root at that size differs is diverged.

Every decision is written to `fence_audit` and logged as one JSON line (ids and numbers; never keys or payloads).
The ingest transaction's check is `check_writable`: one primary-key lookup under the stream lock.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy import Engine

from app.db import commitments as commitment_store
from app.db import events as event_store
from app.db import fences as store
from app.db.fences import FenceRow
from app.db.locks import lock_transaction
from app.db.locks import stream_lock_key
from app.errors import InvalidRequest
from app.errors import NotFound
from app.errors import Unavailable
from app.ves.encoding import to_hex

log = logging.getLogger("stateset_sequencer.fence")

WATERMARK_FORMAT = "stateset-sequencer-watermark/1"
FENCED = "STREAM_FENCED"
DIVERGED = "STREAM_DIVERGED"


class StreamFenced(Unavailable):
    """Writes to this stream are refused: after a restore its head is behind what was published (anchored on chain
    or in the exported head watermark). Re-ingest the missing events from an export (`stateset-sequencer-admin
    heal`) or declare the loss (`declare-loss`); docs/RESTORE.md."""

    code = FENCED


class StreamDiverged(Unavailable):
    """Writes to this stream are refused: the restored database holds something other than what was published at
    the same sequence number (another receipt hash or state root). Only an operator's `declare-loss` lifts it."""

    code = DIVERGED


class InvalidWatermark(InvalidRequest):
    code = "WATERMARK_INVALID"


class NotFenced(NotFound):
    code = "NOT_FENCED"


@dataclass(frozen=True)
class Published:
    """One stream's position as published beyond the database: from the watermark (`receipt_hash` at
    `sequence`), a signed log checkpoint exported with it (`log_root`, the tree root of the first `sequence`
    events) or the chain (`state_root` of the anchored commitment ending at `sequence`)."""

    tenant_id: uuid.UUID
    store_id: uuid.UUID
    sequence: int
    source: str
    receipt_hash: bytes | None = None
    state_root: bytes | None = None
    log_root: bytes | None = None

    @property
    def stream(self) -> tuple[uuid.UUID, uuid.UUID]:
        return self.tenant_id, self.store_id


@dataclass(frozen=True)
class StreamVerdict:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    database_head: int
    published_sequence: int
    status: str  # "ok", "fenced", "diverged", "healed" (an earlier fence found lifted)
    sources: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"tenant_id": str(self.tenant_id), "store_id": str(self.store_id), "status": self.status,
                "database_head": self.database_head, "published_sequence": self.published_sequence,
                "sources": self.sources, "detail": self.detail}


@dataclass
class FenceReport:
    verdicts: list[StreamVerdict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    def to_dict(self) -> dict:
        return {"streams_checked": len(self.verdicts), "fenced": self.count("fenced"),
                "diverged": self.count("diverged"), "ok": self.count("ok"), "healed": self.count("healed"),
                "streams": [v.to_dict() for v in self.verdicts if v.status != "ok"]}


# --- the watermark --------------------------------------------------------------------------------------------------

def export_watermark(engine: Engine, sequencer_id: str) -> dict:
    """Every non-empty stream's head and the receipt hash of the event there, and its latest signed log checkpoint
    (tree size, root, the signed note) when it has one, as a JSON-ready document."""
    with engine.connect() as conn:
        heads = store.stream_heads(conn)
        checkpoints = store.latest_checkpoints(conn)
    return {
        "format": WATERMARK_FORMAT,
        "sequencer_id": sequencer_id,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "streams": [_watermark_entry(t, s, head, rh, checkpoints.get((t, s)))
                    for t, s, head, rh in heads if head > 0 and rh is not None],
    }


def _watermark_entry(tenant_id, store_id, head: int, receipt_hash: bytes, checkpoint) -> dict:
    entry = {"tenant_id": str(tenant_id), "store_id": str(store_id), "head_sequence": head,
             "receipt_hash": to_hex(receipt_hash)}
    if checkpoint is not None:
        size, root, note = checkpoint
        entry["checkpoint"] = {"tree_size": size, "root_hash": to_hex(root), "note": note}
    return entry


def write_watermark(path: Path, document: dict) -> None:
    """Write atomically (temporary file, fsync, rename): a crash never leaves a half-written watermark."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=1, sort_keys=True)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _hash32(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidWatermark(f"Invalid watermark ({where}: expected a hex string).")
    text = value[2:] if value.startswith("0x") else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidWatermark(f"Invalid watermark ({where}: not hex).") from None
    if len(raw) != 32:
        raise InvalidWatermark(f"Invalid watermark ({where}: expected 32 bytes).")
    return raw


def parse_watermark(document: object) -> list[Published]:
    """The streams of a watermark document. :raise InvalidWatermark: not one, or a malformed entry."""
    if not isinstance(document, dict) or document.get("format") != WATERMARK_FORMAT:
        raise InvalidWatermark(f"Not a head watermark (expected format {WATERMARK_FORMAT!r}).")
    entries = document.get("streams")
    if not isinstance(entries, list):
        raise InvalidWatermark("Invalid watermark (streams: expected a list).")
    published = []
    for index, entry in enumerate(entries):
        where = f"streams[{index}]"
        if not isinstance(entry, dict):
            raise InvalidWatermark(f"Invalid watermark ({where}: expected an object).")
        try:
            tenant_id, store_id = uuid.UUID(str(entry["tenant_id"])), uuid.UUID(str(entry["store_id"]))
        except (KeyError, ValueError):
            raise InvalidWatermark(f"Invalid watermark ({where}: tenant_id and store_id must be UUIDs).") from None
        head = entry.get("head_sequence")
        if isinstance(head, bool) or not isinstance(head, int) or head < 1:
            raise InvalidWatermark(f"Invalid watermark ({where}.head_sequence: expected a positive integer).")
        published.append(Published(tenant_id, store_id, head, "watermark",
                                   receipt_hash=_hash32(entry.get("receipt_hash"), f"{where}.receipt_hash")))
        checkpoint = entry.get("checkpoint")
        if checkpoint is not None:
            size = checkpoint.get("tree_size") if isinstance(checkpoint, dict) else None
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise InvalidWatermark(f"Invalid watermark ({where}.checkpoint.tree_size: expected a positive "
                                       "integer).")
            published.append(Published(tenant_id, store_id, size, "checkpoint",
                                       log_root=_hash32(checkpoint.get("root_hash"), f"{where}.checkpoint.root_hash")))
    return published


def read_watermark(path: Path) -> list[Published]:
    try:
        with open(path, encoding="utf-8") as source:
            document = json.load(source)
    except OSError as error:
        raise InvalidWatermark(f"Cannot read the watermark ({path}: {error.strerror}).") from None
    except ValueError:
        raise InvalidWatermark(f"The watermark is not JSON ({path}).") from None
    return parse_watermark(document)


# --- the chain ------------------------------------------------------------------------------------------------------

def chain_positions(client, streams: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> list[Published]:
    """The registry's head (`getHead(stream_id)`) of each stream that has anything anchored. `client` is an
    `app.chain.RegistryClient` (read-only is enough); chain errors propagate."""
    from app.ves.hashing import stream_id

    published = []
    for tenant_id, store_id in streams:
        end, root = client.get_head(stream_id(tenant_id, store_id))
        if end > 0:
            published.append(Published(tenant_id, store_id, int(end), "chain", state_root=bytes(root)))
    return published


def known_streams(engine: Engine) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with engine.connect() as conn:
        return [(t, s) for t, s, _, _ in store.stream_heads(conn)]


# --- deciding -------------------------------------------------------------------------------------------------------

def fence_streams(engine: Engine, published: Iterable[Published], actor: str = "fence") -> FenceReport:
    """Compare every published position with the database, stream by stream under its lock; fence the streams that
    are behind (`STREAM_FENCED`) or disagree (`STREAM_DIVERGED`); lift fences that no longer apply. Idempotent."""
    by_stream: dict[tuple[uuid.UUID, uuid.UUID], list[Published]] = {}
    for position in published:
        by_stream.setdefault(position.stream, []).append(position)
    report = FenceReport()
    for (tenant_id, store_id), positions in sorted(by_stream.items(), key=lambda item: (str(item[0][0]),
                                                                                          str(item[0][1]))):
        with engine.begin() as conn:
            lock_transaction(conn, stream_lock_key(tenant_id, store_id))
            report.verdicts.append(_judge(conn, tenant_id, store_id, positions, actor))
    return report


def _judge(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, positions: list[Published],
           actor: str) -> StreamVerdict:
    head = event_store.read_stream_head(conn, tenant_id, store_id)
    existing = store.read_fence(conn, tenant_id, store_id)
    if existing is not None:
        positions = positions + [Published(tenant_id, store_id, existing.published_sequence, existing.sources)]
        if existing.receipt_sequence is not None:
            positions.append(Published(tenant_id, store_id, existing.receipt_sequence, existing.sources,
                                       receipt_hash=existing.receipt_hash))
    target = max(p.sequence for p in positions)
    sources = ",".join(sorted({name for p in positions for name in p.source.split(",")}))
    receipt = max((p for p in positions if p.receipt_hash is not None), key=lambda p: p.sequence, default=None)
    root = max((p for p in positions if p.state_root is not None), key=lambda p: p.sequence, default=None)
    checkpoint = max((p for p in positions if p.log_root is not None), key=lambda p: p.sequence, default=None)
    if checkpoint is None and existing is not None and existing.log_tree_size is not None:
        checkpoint = Published(tenant_id, store_id, existing.log_tree_size, existing.sources,
                               log_root=existing.log_root)
    problem = _disagreement(conn, tenant_id, store_id, head, receipt, root, checkpoint)
    if problem is None and head >= target:
        if existing is None:
            return StreamVerdict(tenant_id, store_id, head, target, "ok", sources)
        if existing.code == DIVERGED:
            return StreamVerdict(tenant_id, store_id, head, existing.published_sequence, "diverged",
                                 existing.sources, "fenced earlier as diverged; only declare-loss lifts it")
        store.delete_fence(conn, tenant_id, store_id)
        store.audit(conn, tenant_id, store_id, "healed", code=existing.code,
                    published_sequence=existing.published_sequence, database_head=head, actor=actor)
        _log("stream fence lifted", tenant_id, store_id, existing.code, existing.published_sequence, head, actor)
        return StreamVerdict(tenant_id, store_id, head, target, "healed", sources)
    code = DIVERGED if problem is not None or (existing is not None and existing.code == DIVERGED) else FENCED
    fence = FenceRow(tenant_id, store_id, code, target,
                     receipt.sequence if receipt else (existing.receipt_sequence if existing else None),
                     receipt.receipt_hash if receipt else (existing.receipt_hash if existing else None),
                     root.state_root if root else (existing.state_root if existing else None), sources, head,
                     checkpoint.sequence if checkpoint else None, checkpoint.log_root if checkpoint else None)
    store.save_fence(conn, fence)
    detail = problem or f"the database head {head} is behind the published {target}"
    store.audit(conn, tenant_id, store_id, "diverged" if code == DIVERGED else "fenced", code=code,
                published_sequence=target, database_head=head, actor=actor, detail={"sources": sources,
                                                                                    "detail": detail})
    _log("stream fenced", tenant_id, store_id, code, target, head, actor, detail=detail)
    return StreamVerdict(tenant_id, store_id, head, target, "diverged" if code == DIVERGED else "fenced", sources,
                         detail)


def _disagreement(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, head: int,
                  receipt: Published | None, root: Published | None,
                  checkpoint: Published | None = None) -> str | None:
    """Why the database contradicts a published position it already covers, or None."""
    if checkpoint is not None and head >= checkpoint.sequence:
        ours = _log_root(conn, tenant_id, store_id, checkpoint.sequence)
        if ours is not None and ours != checkpoint.log_root:
            return (f"log root of the first {checkpoint.sequence} events is {to_hex(ours)}, the exported checkpoint "
                    f"says {to_hex(checkpoint.log_root)}")
    if receipt is not None and head >= receipt.sequence:
        ours = store.receipt_hash_at(conn, tenant_id, store_id, receipt.sequence)
        if ours != receipt.receipt_hash:
            return (f"receipt hash at {receipt.sequence} is {to_hex(ours) if ours else 'missing'}, "
                    f"the watermark says {to_hex(receipt.receipt_hash)}")
    if root is not None and head >= root.sequence:
        commitment = commitment_store.covering_commitment(conn, tenant_id, store_id, root.sequence)
        if (commitment is not None and commitment.sequence_end == root.sequence
                and commitment.new_state_root != root.state_root):
            return (f"state root of the commitment ending at {root.sequence} is {to_hex(commitment.new_state_root)}, "
                    f"the chain says {to_hex(root.state_root)}")
    return None


def _log_root(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, tree_size: int) -> bytes | None:
    """The stream log's root at `tree_size`, or None when the log does not reach it (a stream whose log backfill
    has not caught up): then the receipt hash and the chain decide."""
    from app.services.stream_logs import TreeSizeBeyondLog
    from app.services.stream_logs import tree_root

    try:
        return tree_root(conn, tenant_id, store_id, tree_size)
    except TreeSizeBeyondLog:
        return None


# --- inside the ingest transaction ----------------------------------------------------------------------------------

def check_writable(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                   healing: bool = False) -> FenceRow | None:
    """Under the stream lock: raise StreamFenced/StreamDiverged when the stream is fenced, unless `healing` (a
    replay from an export), which may write to a `STREAM_FENCED` stream and gets its fence back."""
    fence = store.read_fence(conn, tenant_id, store_id)
    if fence is None:
        return None
    if fence.code == DIVERGED:
        raise StreamDiverged("Writes to this stream are refused: the restored database disagrees with what was "
                             f"published at sequence {fence.published_sequence} (docs/RESTORE.md).")
    if not healing:
        raise StreamFenced("Writes to this stream are refused until it is healed: after a restore its head "
                           f"{fence.database_head} is behind the published {fence.published_sequence} "
                           "(docs/RESTORE.md).", retry_after=60)
    return fence


def after_replay(conn: Connection, fence: FenceRow, head: int, actor: str = "heal") -> str | None:
    """In the replay's transaction, after the head moved to `head`: lift the fence when the head reached the
    published one and the receipt hash there is the published one ("healed"); a different receipt hash turns it
    into `STREAM_DIVERGED` ("diverged"); None while still behind."""
    if head < fence.published_sequence:
        return None
    tenant_id, store_id = fence.tenant_id, fence.store_id
    if fence.receipt_sequence is not None:
        ours = store.receipt_hash_at(conn, tenant_id, store_id, fence.receipt_sequence)
        if ours != fence.receipt_hash:
            detail = (f"receipt hash at {fence.receipt_sequence} is {to_hex(ours) if ours else 'missing'}, the "
                      f"watermark says {to_hex(fence.receipt_hash)}")
            return _diverge(conn, fence, head, actor, detail)
    if fence.log_tree_size is not None:
        ours = _log_root(conn, tenant_id, store_id, fence.log_tree_size)
        if ours is not None and ours != fence.log_root:
            detail = (f"log root of the first {fence.log_tree_size} events is {to_hex(ours)}, the exported "
                      f"checkpoint says {to_hex(fence.log_root)}")
            return _diverge(conn, fence, head, actor, detail)
    store.delete_fence(conn, tenant_id, store_id)
    store.audit(conn, tenant_id, store_id, "healed", code=fence.code, published_sequence=fence.published_sequence,
                database_head=head, actor=actor)
    _log("stream fence lifted", tenant_id, store_id, fence.code, fence.published_sequence, head, actor)
    return "healed"


def _diverge(conn: Connection, fence: FenceRow, head: int, actor: str, detail: str) -> str:
    tenant_id, store_id = fence.tenant_id, fence.store_id
    store.save_fence(conn, dataclasses.replace(fence, code=DIVERGED, database_head=head))
    store.audit(conn, tenant_id, store_id, "diverged", code=DIVERGED, published_sequence=fence.published_sequence,
                database_head=head, actor=actor, detail={"detail": detail})
    _log("stream fenced", tenant_id, store_id, DIVERGED, fence.published_sequence, head, actor, detail=detail)
    return "diverged"


# --- the operator ---------------------------------------------------------------------------------------------------

def declare_loss(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, reason: str, actor: str) -> dict:
    """The operator accepts that the events after the database head are lost: the fence is removed, the decision
    audited. Receipts beyond the head are void; new events reuse their numbers (docs/RESTORE.md).

    :raise InvalidRequest REASON_REQUIRED: an empty reason. :raise NotFenced: the stream is not fenced.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("A reason is required to declare a loss.", code="REASON_REQUIRED")
    with engine.begin() as conn:
        lock_transaction(conn, stream_lock_key(tenant_id, store_id))
        fence = store.read_fence(conn, tenant_id, store_id)
        if fence is None:
            raise NotFenced(f"The stream is not fenced (tenant: {tenant_id}, store: {store_id}).")
        head = event_store.read_stream_head(conn, tenant_id, store_id)
        store.delete_fence(conn, tenant_id, store_id)
        audit_id = store.audit(conn, tenant_id, store_id, "loss_declared", code=fence.code,
                               published_sequence=fence.published_sequence, database_head=head, actor=actor,
                               reason=reason, detail={"sources": fence.sources})
    lost = fence.published_sequence - head
    _log("stream loss declared", tenant_id, store_id, fence.code, fence.published_sequence, head, actor,
         reason=reason, events_lost=lost, audit_id=audit_id)
    return {"tenant_id": str(tenant_id), "store_id": str(store_id), "code": fence.code, "database_head": head,
            "published_sequence": fence.published_sequence, "events_lost": max(lost, 0), "audit_id": audit_id}


def list_fences(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = store.list_fences(conn)
    return [{"tenant_id": str(r.tenant_id), "store_id": str(r.store_id), "code": r.code,
             "database_head": r.database_head, "published_sequence": r.published_sequence, "sources": r.sources}
            for r in rows]


def fenced_streams(conn: Connection) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Every fenced stream (the anchoring run skips them)."""
    return store.fenced_streams(conn)


def _log(message: str, tenant_id: uuid.UUID, store_id: uuid.UUID, code: str, published: int, head: int, actor: str,
         **extra) -> None:
    log.warning(message, extra={"tenant_id": str(tenant_id), "store_id": str(store_id), "code": code,
                                "published_sequence": published, "database_head": head, "actor": actor, **extra})

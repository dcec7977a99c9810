"""Ingest: validate → verify → sequence → receipts (DESIGN.md, "Sequencing a request").

Stage 1 parses every envelope, recomputes hashes and authorises each event with no database work at all. Everything
after it is one transaction on one pooled connection, so a request pays for one checkout and one BEGIN/COMMIT
(docs/PERFORMANCE.md): read the agent keys and latest schema versions (one statement), verify signatures and
validate payloads while no lock is held yet, then per stream, in ascending lock-key order, take the advisory lock
and read what the stream holds (head, replays, entity versions, log frontier) in the same call, resolve idempotent
replays and `base_version`s, and write the events, entity versions, log growth and head with one statement. The
caller gets the outcome only after the commit, so an accepted event is durable before its receipt exists anywhere
but in the database.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from app import metrics
from app.config import Settings
from app.db import events as event_store
from app.db import sequencing
from app.db import sequencer_keys as sequencer_key_store
from app.db.events import ExistingEvent
from app.db.locks import stream_lock_key
from app.db.stream_logs import LogWriteConflict
from app.errors import Conflict
from app.errors import InvalidRequest
from app.errors import NotPermitted
from app.errors import TooLarge
from app.errors import Unavailable
from app.services.envelopes import NIL_UUID
from app.services.envelopes import EventRejected
from app.services.envelopes import ParsedEvent
from app.services.envelopes import event_id_of
from app.services.envelopes import legacy_reason
from app.services.envelopes import parse_signed_envelope
from app.services.envelopes import parse_unsigned_event
from app.services.envelopes import verify_agent_signature
from app.services import fence as fence_service
from app.services.schemas import SchemaValidator
from app.services.stream_logs import plan_log_growth
from app.ves import hashing
from app.ves.signing import Ed25519Signer

log = logging.getLogger("stateset_sequencer.ingest")

Authorizer = Callable[[uuid.UUID, uuid.UUID], bool]


@dataclass(frozen=True)
class Receipt:
    """A sequencer receipt (VES.md §Sequencer receipt). `duplicate` marks an idempotent replay."""

    sequencer_id: str
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    event_id: uuid.UUID
    sequence_number: int
    sequenced_at: datetime.datetime
    receipt_hash: bytes
    sequencer_signature: bytes | None
    duplicate: bool = False
    sequencer_key_version: int = 0

    @property
    def signature_alg(self) -> str:
        return "ed25519" if self.sequencer_signature else "none"

    @property
    def signature_scheme(self) -> int | None:
        """The original's `receiptSignatureScheme`: 1 for an Ed25519-signed receipt, absent (None) when unsigned."""
        return 1 if self.sequencer_signature else None


@dataclass(frozen=True)
class Rejection:
    """`reason`: API.md's; `ves_reason`/`legacy_reason`: the original sequencer's strings for the same rejection."""

    index: int
    event_id: str | None
    reason: str
    message: str
    ves_reason: str = ""

    @property
    def legacy_reason(self) -> str:
        return legacy_reason(self.reason, self.ves_reason)


@dataclass
class StreamOutcome:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    sequence_start: int | None = None
    sequence_end: int | None = None
    head_sequence: int = 0


@dataclass
class IngestOutcome:
    batch_id: uuid.UUID
    receipts: list[Receipt] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    streams: list[StreamOutcome] = field(default_factory=list)
    receipts_by_index: dict[int, Receipt] = field(default_factory=dict, repr=False)
    deferred: list[tuple[ParsedEvent, EventRejected]] = field(default_factory=list, repr=False)

    head_sequence: int = 0
    """The head of the request's first stream when nothing reached a stream (every event rejected)."""

    @property
    def events_accepted(self) -> int:
        """New events sequenced by this request; a replay (its stored receipt returned) is not counted."""
        return sum(1 for r in self.receipts if not r.duplicate)

    @property
    def events_rejected(self) -> int:
        return len(self.rejections)


class ReceiptSigner:
    """Signs receipt hashes with `VES_SEQUENCER_SIGNING_KEY`, or leaves them unsigned (`signature_alg: none`).

    The key's version (`sequencer_keys`, docs/KEYS.md) is registered on first use and re-read every
    `VERSION_RECHECK_SECONDS`, so a key retired by `stateset-sequencer-admin retire-sequencer-key` stops signing
    within that time (ingest answers 503 RECEIPT_KEY_RETIRED until the key is replaced).
    """

    VERSION_RECHECK_SECONDS = 10.0

    def __init__(self, sequencer_id: str, seed: bytes | None):
        self.sequencer_id = sequencer_id
        self._signer = Ed25519Signer(seed) if seed else None
        self._version: int | None = None
        self._retired_at: datetime.datetime | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def key_version(self, engine: Engine) -> int:
        """The running key's version (0 when receipts are unsigned).

        :raise Unavailable RECEIPT_KEY_RETIRED: the version has a retirement cutoff that has passed.
        """
        if self._signer is None:
            return 0
        with self._lock:
            if self._version is None or time.monotonic() - self._checked_at > self.VERSION_RECHECK_SECONDS:
                with engine.begin() as conn:
                    record = sequencer_key_store.register(conn, self._signer.public_key)
                self._version, self._retired_at = record.version, record.retired_at
                self._checked_at = time.monotonic()
            version, retired_at = self._version, self._retired_at
        if retired_at is not None and retired_at <= _now():
            raise Unavailable(f"The receipt signing key (version {version}) was retired at {retired_at.isoformat()}; "
                              "configure a new VES_SEQUENCER_SIGNING_KEY.", code="RECEIPT_KEY_RETIRED")
        return version

    @property
    def cached_version(self) -> int | None:
        return self._version

    @property
    def public_key(self) -> bytes | None:
        return self._signer.public_key if self._signer else None

    @property
    def signature_alg(self) -> str:
        return "ed25519" if self._signer else "none"

    def sign(self, receipt_hash: bytes) -> bytes | None:
        return self._signer.sign(receipt_hash) if self._signer else None


def ingest_signed(engine: Engine, settings: Settings, signer: ReceiptSigner, schemas: SchemaValidator,
                  envelopes: list, may_write: Authorizer, key_agent_id: uuid.UUID | None = None,
                  agent_id: uuid.UUID | None = None) -> IngestOutcome:
    """Sequence a batch of signed VES envelopes (POST /api/v1/ves/events/ingest).

    Each envelope is a JSON object under VES.md's field names, or an `EventRejected` the caller already decided for
    that index. :raise TooLarge TOO_MANY_EVENTS: more than MAX_EVENTS_PER_BATCH envelopes.
    :raise InvalidRequest SOURCE_AGENT_MISMATCH: the request names `agent_id` and an envelope's `source_agent_id`
        is another agent (the original refuses such a batch whole).
    """
    _check_batch_size(envelopes, settings.max_events_per_batch)
    _check_source_agents(envelopes, agent_id)
    started = time.perf_counter()
    sequenced_at = _now()
    outcome = IngestOutcome(batch_id=uuid.uuid4())
    parsed: list[ParsedEvent] = []
    for index, envelope in enumerate(envelopes):
        try:
            event = parse_signed_envelope(envelope, index, settings.max_event_payload_size)
            _authorise(event, may_write, key_agent_id)
            parsed.append(event)
        except EventRejected as rejection:
            _reject(outcome, index, rejection, event_id_of(envelope))
    if parsed:
        key_version = signer.key_version(engine)  # before the transaction: its first use registers the key
        with _transaction(engine, outcome) as conn:
            keys, latest = sequencing.read_keys_and_schemas(
                conn, {(e.tenant_id, e.fields.source_agent_id, e.fields.agent_key_id) for e in parsed},
                schemas.wanted(parsed))
            parsed = _check_agent_keys(keys, outcome, parsed, sequenced_at)
            parsed = _check_schemas(conn, schemas, outcome, parsed, latest)
            _answer_replays_of_deferred(conn, signer, outcome)
            _sequence(conn, signer, key_version, outcome, parsed, sequenced_at)
    _finish(outcome, parsed)
    _head_of_untouched_stream(engine, outcome, envelopes, may_write)
    _record(outcome, started, len(envelopes))
    return outcome


def _check_source_agents(envelopes: list, agent_id: uuid.UUID | None, name: str = "source_agent_id") -> None:
    if agent_id is None:
        return
    for index, envelope in enumerate(envelopes):
        raw = envelope.get(name) if isinstance(envelope, dict) else None
        try:
            source = uuid.UUID(raw) if isinstance(raw, str) else None
        except ValueError:
            source = None
        if source is not None and source != agent_id:
            raise InvalidRequest(f"event {name} must match request agent_id (event {index}).",
                                 code="SOURCE_AGENT_MISMATCH")


def _head_of_untouched_stream(engine: Engine, outcome: IngestOutcome, envelopes: list,
                              may_write: Authorizer) -> None:
    """When no event reached a stream, `head_sequence` is still the request's stream's head (0 when empty), as
    the original answers: the first event naming a tenant and store the key may write to."""
    if outcome.streams:
        return
    for envelope in envelopes:
        if not isinstance(envelope, dict):
            continue
        try:
            stream = uuid.UUID(str(envelope.get("tenant_id"))), uuid.UUID(str(envelope.get("store_id")))
        except ValueError:
            continue
        if may_write(*stream):
            with engine.connect() as conn:
                outcome.head_sequence = event_store.read_stream_head(conn, *stream)
        return


def ingest_unsigned(engine: Engine, settings: Settings, signer: ReceiptSigner, schemas: SchemaValidator,
                    raw_events: list, agent_id: uuid.UUID | None, may_write: Authorizer,
                    key_agent_id: uuid.UUID | None = None) -> IngestOutcome:
    """Sequence events without agent signatures (POST /api/v1/events/ingest): same log, same numbering.

    The events' agent is `agent_id`, else the key's agent, else the nil UUID.
    :raise NotPermitted SIGNATURES_REQUIRED: REQUIRE_AGENT_SIGNATURES=1.
    :raise NotPermitted: a key bound to an agent submits for another agent.
    :raise TooLarge TOO_MANY_EVENTS: more than MAX_EVENTS_PER_BATCH events.
    :raise InvalidRequest SOURCE_AGENT_MISMATCH: an event's `source_agent` is not `agent_id` (the original's rule).
    """
    if settings.require_agent_signatures:
        raise NotPermitted("Unsigned ingest is disabled (REQUIRE_AGENT_SIGNATURES=1); use /api/v1/ves/events/ingest.",
                           code="SIGNATURES_REQUIRED")
    _check_batch_size(raw_events, settings.max_events_per_batch)
    _check_source_agents(raw_events, agent_id, "source_agent")
    agent_id = agent_id or key_agent_id or NIL_UUID
    if key_agent_id is not None and agent_id != key_agent_id:
        raise NotPermitted("This API key may only submit events of its own agent.")
    started = time.perf_counter()
    sequenced_at = _now()
    outcome = IngestOutcome(batch_id=uuid.uuid4())
    parsed: list[ParsedEvent] = []
    for index, raw in enumerate(raw_events):
        try:
            event = parse_unsigned_event(raw, index, agent_id, settings.max_event_payload_size, sequenced_at)
            _authorise(event, may_write, None)
            parsed.append(event)
        except EventRejected as rejection:
            _reject(outcome, index, rejection, event_id_of(raw))
    if parsed:
        key_version = signer.key_version(engine)
        with _transaction(engine, outcome) as conn:
            parsed = _check_schemas(conn, schemas, outcome, parsed)
            _answer_replays_of_deferred(conn, signer, outcome)
            _sequence(conn, signer, key_version, outcome, parsed, sequenced_at)
    _finish(outcome, parsed)
    _head_of_untouched_stream(engine, outcome, raw_events, may_write)
    _record(outcome, started, len(raw_events))
    return outcome


class ReplayDiverged(Conflict):
    """A replayed event did not get the number and receipt hash the export says it had; nothing was written."""

    code = "REPLAY_DIVERGED"


class ReplayRejected(Conflict):
    """A replayed event failed a check it passed when it was first sequenced (its key, its signature); nothing was
    written."""

    code = "REPLAY_REJECTED"


def replay_events(engine: Engine, settings: Settings, signer: ReceiptSigner, parsed: list[ParsedEvent],
                  sequenced_at: datetime.datetime, expected: dict[uuid.UUID, tuple[int, bytes]],
                  actor: str = "heal") -> IngestOutcome:
    """Re-sequence events that were sequenced before a restore, in their original order and with their original
    `sequenced_at` (app/services/heal.py): agent keys and signatures are checked at that moment, schemas are not
    (they were when the events were first accepted), and a `STREAM_FENCED` stream accepts them.

    Every new event MUST get the `(sequence_number, receipt_hash)` in `expected` (keyed by event id), else the
    whole transaction rolls back (ReplayDiverged). The stream's fence lifts in the same transaction once its head
    reaches the published one (`fence.after_replay`).
    """
    started = time.perf_counter()
    outcome = IngestOutcome(batch_id=uuid.uuid4())
    key_version = signer.key_version(engine)
    with _transaction(engine, outcome) as conn:
        signed_events = [e for e in parsed if e.agent_signature is not None]
        keys, _ = sequencing.read_keys_and_schemas(
            conn, {(e.tenant_id, e.fields.source_agent_id, e.fields.agent_key_id) for e in signed_events}, set())
        signed = _check_agent_keys(keys, outcome, signed_events, sequenced_at)
        kept = {id(e) for e in signed}
        parsed = [e for e in parsed if e.agent_signature is None or id(e) in kept]
        _answer_replays_of_deferred(conn, signer, outcome)
        if outcome.rejections:
            first = outcome.rejections[0]
            raise ReplayRejected(f"A replayed event was rejected ({first.reason}: {first.message}; event_id: "
                                 f"{first.event_id}); nothing was written.")
        _sequence(conn, signer, key_version, outcome, parsed, sequenced_at, _Replay(expected, actor))
    _finish(outcome, parsed)
    if outcome.rejections:
        first = outcome.rejections[0]
        raise ReplayRejected(f"A replayed event was rejected ({first.reason}: {first.message}; event_id: "
                             f"{first.event_id}).")
    _record(outcome, started, len(parsed))
    return outcome


@dataclass(frozen=True)
class _Replay:
    expected: dict[uuid.UUID, tuple[int, bytes]]
    actor: str


def _check_batch_size(events: list, limit: int) -> None:
    if len(events) > limit:
        raise TooLarge(f"The request has {len(events)} events; at most {limit} are allowed per batch "
                       "(MAX_EVENTS_PER_BATCH).", code="TOO_MANY_EVENTS")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _reject(outcome: IngestOutcome, index: int, rejection: EventRejected, fallback_event_id: str | None) -> None:
    outcome.rejections.append(
        Rejection(index, rejection.event_id or fallback_event_id, rejection.reason, rejection.message,
                  rejection.original)
    )


def _authorise(event: ParsedEvent, may_write: Authorizer, key_agent_id: uuid.UUID | None) -> None:
    """Rule 6, judged event by event. Out of scope → `Forbidden`, without saying whether the stream exists."""
    if not may_write(event.tenant_id, event.store_id):
        raise EventRejected("Forbidden", "This API key may not write to that tenant or store.", str(event.event_id))
    if key_agent_id is not None and event.fields.source_agent_id != key_agent_id:
        raise EventRejected("Forbidden", "This API key may only submit events of its own agent.",
                            str(event.event_id))


@contextlib.contextmanager
def _transaction(engine: Engine, outcome: IngestOutcome):
    """The request's one transaction (the engine's begin hook bounds its statements and lock waits: a stream lock
    not granted within STREAM_LOCK_TIMEOUT_MS aborts the whole request, nothing written; the API answers 503
    STREAM_BUSY). A backstop that fires (a duplicate sequence number, a log not at the size read) rolls everything
    back and is answered 409 SEQUENCE_CONFLICT."""
    try:
        with engine.begin() as conn:
            yield conn
    except (IntegrityError, LogWriteConflict):
        log.error("sequencing backstop constraint fired; request rolled back",
                  extra={"batch_id": str(outcome.batch_id)})
        raise Conflict("A concurrent write conflicted with this request; nothing was written. Retry it.",
                       code="SEQUENCE_CONFLICT") from None


def _check_agent_keys(keys: dict, outcome: IngestOutcome, parsed: list[ParsedEvent],
                      sequenced_at: datetime.datetime) -> list[ParsedEvent]:
    """Rules 3 and 4: the key exists, is valid and unrevoked at `sequenced_at`, and the signature verifies. `keys`
    (by `(tenant_id, agent_id, key_id)`) were read in the request's transaction, never cached: a revocation
    committed before it is always seen."""
    accepted = []
    for event in parsed:
        record = keys.get((event.tenant_id, event.fields.source_agent_id, event.fields.agent_key_id))
        try:
            if record is None:
                raise EventRejected("UnknownAgentKey", "No agent key is registered for (tenant_id, source_agent_id, "
                                    f"agent_key_id {event.fields.agent_key_id}).", str(event.event_id))
            status = record.status_at(sequenced_at)
            if status == "revoked":
                raise EventRejected("AgentKeyRevoked", "The agent key was revoked before this event was sequenced.",
                                    str(event.event_id))
            if status == "not_valid":
                early = record.valid_from is not None and sequenced_at < record.valid_from
                raise EventRejected("AgentKeyNotValid", "The sequencer's clock is outside the agent key's "
                                    "validity window (valid_from..valid_to).", str(event.event_id),
                                    original="agent_key_invalid: Agent key is not yet valid" if early else None)
            verify_agent_signature(event, record.public_key)
            accepted.append(event)
        except EventRejected as rejection:
            outcome.deferred.append((event, rejection))
    return accepted


def _check_schemas(conn: Connection, schemas: SchemaValidator, outcome: IngestOutcome,
                   parsed: list[ParsedEvent], latest: dict | None = None) -> list[ParsedEvent]:
    accepted = []
    for event in schemas.validate_batch(parsed, conn, latest):
        if isinstance(event, tuple):
            outcome.deferred.append(event)
        else:
            accepted.append(event)
    return accepted


def _answer_replays_of_deferred(conn: Connection, signer: ReceiptSigner, outcome: IngestOutcome) -> None:
    """Rule 5 before rules 3/4 and schemas: an exact replay of an already sequenced event gets its original receipt
    even if its key was revoked or its schema tightened since, so client retries stay safe. Anything else that
    failed those checks is rejected. Sequenced rows never change, so reading them outside the lock is safe."""
    deferred, outcome.deferred = outcome.deferred, []
    by_stream: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[ParsedEvent, EventRejected]]] = {}
    for event, rejection in deferred:
        by_stream.setdefault(event.stream, []).append((event, rejection))
    if not by_stream:
        return
    for (tenant_id, store_id), items in by_stream.items():
        existing = event_store.find_existing_events(conn, tenant_id, store_id, [e.event_id for e, _ in items], [])
        by_event_id = {row.event_id: row for row in existing}
        for event, rejection in items:
            prior = by_event_id.get(event.event_id)
            if (prior is not None and prior.event_signing_hash == event.event_signing_hash
                    and prior.agent_signature == event.agent_signature):
                outcome.receipts_by_index[event.index] = _receipt_of(signer.sequencer_id, tenant_id, store_id,
                                                                     prior, duplicate=True)
            else:
                _reject(outcome, event.index, rejection, str(event.event_id))


def _sequence(conn: Connection, signer: ReceiptSigner, key_version: int, outcome: IngestOutcome,
              parsed: list[ParsedEvent], sequenced_at: datetime.datetime, replay: _Replay | None = None) -> None:
    """Stage 2, in the request's transaction: streams locked in ascending key order so two requests never
    deadlock."""
    by_stream: "OrderedDict[tuple[uuid.UUID, uuid.UUID], list[ParsedEvent]]" = OrderedDict()
    for event in parsed:
        by_stream.setdefault(event.stream, []).append(event)
    for stream in sorted(by_stream, key=lambda s: stream_lock_key(*s)):
        outcome.streams.append(_sequence_stream(conn, signer, key_version, outcome, stream, by_stream[stream],
                                                sequenced_at, outcome.receipts_by_index, replay))


def _finish(outcome: IngestOutcome, parsed: list[ParsedEvent]) -> None:
    """Receipts and rejections in request order; streams in the order of their first event in the request."""
    receipts = outcome.receipts_by_index
    outcome.receipts = [receipts[i] for i in sorted(receipts)]
    outcome.rejections.sort(key=lambda r: r.index)
    order = {stream: n for n, stream in enumerate(dict.fromkeys(event.stream for event in parsed))}
    outcome.streams.sort(key=lambda s: order.get((s.tenant_id, s.store_id), len(order)))


def _sequence_stream(conn, signer: ReceiptSigner, key_version: int, outcome: IngestOutcome,
                     stream: tuple[uuid.UUID, uuid.UUID], batch: list[ParsedEvent], sequenced_at: datetime.datetime,
                     receipts: dict[int, Receipt], heal: _Replay | None = None) -> StreamOutcome:
    tenant_id, store_id = stream
    state = sequencing.open_stream(
        conn, tenant_id, store_id, stream_lock_key(tenant_id, store_id), [e.event_id for e in batch],
        [e.fields.command_id for e in batch if e.fields.command_id is not None], {e.entity for e in batch})
    # The fence check, under the lock: its row is read only when open_stream saw one (a restored stream).
    fence = fence_service.check_writable(conn, tenant_id, store_id, healing=heal is not None) if state.fenced else None
    head = state.head
    by_event_id = {row.event_id: row for row in state.existing}
    by_command_id = {row.command_id: row for row in state.existing if row.command_id is not None}
    versions = state.versions
    touched_versions: dict[tuple[str, str], int] = {}
    rows: list[dict] = []
    start = head + 1
    for event in batch:
        try:
            replay = _find_replay(event, by_event_id, by_command_id)
            if replay is not None:
                receipts[event.index] = _receipt_of(signer.sequencer_id, tenant_id, store_id, replay, duplicate=True)
                continue
            current = versions.get(event.entity, 0)
            base = event.fields.base_version
            if base is not None and base != current:
                raise EventRejected(
                    "VersionConflict",
                    f"Base version mismatch (entity: {event.entity[0]}/{event.entity[1]}, expected: {base}, "
                    f"actual: {current}).", str(event.event_id),
                    original=f"version_conflict: expected {base}, actual {current}")
        except EventRejected as rejection:
            _reject(outcome, event.index, rejection, None)
            continue
        head += 1
        versions[event.entity] = touched_versions[event.entity] = current + 1
        receipt_hash = hashing.receipt_hash(tenant_id, store_id, event.event_id, head, event.event_signing_hash)
        if heal is not None and heal.expected.get(event.event_id) != (head, receipt_hash):
            raise ReplayDiverged(f"Replayed event {event.event_id} would be sequence {head} with another receipt "
                                 "than the export's; nothing was written.")
        signature = signer.sign(receipt_hash)
        rows.append(_event_row(event, head, current + 1, sequenced_at, receipt_hash, signature, key_version))
        sequenced = ExistingEvent(event.event_id, event.fields.command_id, head, event.event_signing_hash,
                                  event.agent_signature, receipt_hash, signature, sequenced_at, key_version)
        by_event_id[event.event_id] = sequenced
        if event.fields.command_id is not None:
            by_command_id[event.fields.command_id] = sequenced
        receipts[event.index] = _receipt_of(signer.sequencer_id, tenant_id, store_id, sequenced, duplicate=False)
    if rows:
        growth = plan_log_growth(tenant_id, store_id, state.log_size, state.log_frontier, rows)
        sequencing.write_stream_batch(conn, tenant_id, store_id, rows, touched_versions, head, growth)
    if fence is not None:
        fence_service.after_replay(conn, fence, head, heal.actor)
    return StreamOutcome(tenant_id, store_id, start if rows else None, head if rows else None, head)


def _find_replay(event: ParsedEvent, by_event_id: dict, by_command_id: dict) -> ExistingEvent | None:
    """Rule 5: the same event again (same signing hash and signature) is a replay; anything else reusing its
    event_id or command_id is `DuplicateEventConflict`."""
    prior = by_event_id.get(event.event_id)
    if prior is None and event.fields.command_id is not None:
        prior = by_command_id.get(event.fields.command_id)
    if prior is None:
        return None
    if (prior.event_id == event.event_id and prior.event_signing_hash == event.event_signing_hash
            and prior.agent_signature == event.agent_signature):
        return prior
    what = "event_id" if prior.event_id == event.event_id else "command_id"
    raise EventRejected("DuplicateEventConflict",
                        f"This {what} was already sequenced with different content (sequence number "
                        f"{prior.sequence_number}).", str(event.event_id), original=f"duplicate_{what}")


def _event_row(event: ParsedEvent, sequence_number: int, entity_version: int, sequenced_at: datetime.datetime,
               receipt_hash: bytes, sequencer_signature: bytes | None, key_version: int) -> dict:
    f = event.fields
    return {
        "tenant_id": f.tenant_id, "store_id": f.store_id, "sequence_number": sequence_number,
        "event_id": f.event_id, "command_id": f.command_id, "ves_version": f.ves_version,
        "source_agent_id": f.source_agent_id, "agent_key_id": f.agent_key_id, "entity_type": f.entity_type,
        "entity_id": f.entity_id, "event_type": f.event_type, "created_at_raw": f.created_at,
        "created_at": event.created_at, "sequenced_at": sequenced_at, "payload_kind": f.payload_kind,
        "payload": event.payload if f.payload_kind == 0 else None, "payload_encrypted": event.payload_encrypted,
        "payload_plain_hash": f.payload_plain_hash, "payload_cipher_hash": f.payload_cipher_hash,
        "event_signing_hash": event.event_signing_hash, "agent_signature": event.agent_signature,
        "base_version": f.base_version, "entity_version": entity_version, "receipt_hash": receipt_hash,
        "sequencer_signature": sequencer_signature, "sequencer_key_version": key_version if sequencer_signature else 0,
    }


def _receipt_of(sequencer_id: str, tenant_id: uuid.UUID, store_id: uuid.UUID, row: ExistingEvent,
                duplicate: bool) -> Receipt:
    return Receipt(sequencer_id, tenant_id, store_id, row.event_id, row.sequence_number, row.sequenced_at,
                   row.receipt_hash, row.sequencer_signature, duplicate,
                   row.sequencer_key_version if row.sequencer_signature else 0)


def _record(outcome: IngestOutcome, started: float, submitted: int) -> None:
    """After the commit: metrics and one log line per batch (counts only; never payloads or keys)."""
    elapsed_ms = (time.perf_counter() - started) * 1000
    new_events = sum(1 for r in outcome.receipts if not r.duplicate)
    metrics.EVENTS_INGESTED.inc(new_events)
    metrics.EVENTS_DUPLICATE.inc(len(outcome.receipts) - new_events)
    for rejection in outcome.rejections:
        metrics.EVENTS_REJECTED.labels(reason=rejection.reason).inc()
    metrics.INGEST_LATENCY_MS.observe(elapsed_ms)
    metrics.INGEST_BATCH_SIZE.observe(submitted)
    for stream in outcome.streams:
        metrics.SEQUENCE_HEAD.labels(tenant_id=str(stream.tenant_id), store_id=str(stream.store_id)).set(
            stream.head_sequence)
    log.info("Event batch ingested", extra={
        "batch_id": str(outcome.batch_id), "events_accepted": outcome.events_accepted,
        "events_rejected": outcome.events_rejected, "events_duplicate": len(outcome.receipts) - new_events,
        "streams": len(outcome.streams), "duration_ms": round(elapsed_ms, 2),
    })

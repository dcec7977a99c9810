"""Anchoring: put each stream's commitment chain on the SetRegistry contract, oldest first, exactly once.

The registry client is always passed in (`app.chain.RegistryClient`), so the same code runs against eth-tester,
ganache or an L2. Crash safety rests on two facts: a commitment is recorded as anchored only after a successful
receipt, and before sending anything the chain is read (`getBatch(batch_id)`, `getHead(stream)`): a batch already
on chain with our content is recorded, never resent. Anything else on chain that is not "the head we expect" is a
fork or a foreign writer (`ForkDetected`): that stream stops, nothing is overwritten. The contract itself refuses
non-contiguous ranges and wrong `prev_state_root`s (VES.md §Anchoring), so even a buggy job cannot anchor a fork.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

from eth_account import Account
from sqlalchemy import Engine

from app.chain import ChainError
from app.chain import ChainUnavailable
from app.chain import OnChainBatch
from app.chain import ReceiptTimeout
from app.chain import RegistryClient
from app.chain import TransactionReverted
from app.chain.checks import chain_mismatches
from app.chain.checks import show
from app.commitment import Commitment
from app.config import Settings
from app.db import commitments as store
from app.db.locks import ANCHOR_RUN_LOCK_KEY
from app.db.engine import lift_transaction_bounds
from app.db.locks import try_lock_transaction
from app.errors import Conflict
from app.errors import NotFound
from app.errors import SequencerError
from app.errors import Unavailable
from app.metrics import ANCHORED_TOTAL
from app.services import commitments as commitment_service
from app.services import fence as fence_service
from app.ves.encoding import to_hex

log = logging.getLogger("stateset_sequencer.anchoring")

AfterSend = Callable[[Commitment, bytes], None]
"""Called with the commitment and tx hash right after a transaction is sent, before its receipt (a test seam)."""

_STREAM_PAGE = 1000


class AnchoringNotConfigured(Unavailable):
    """L2_RPC_URL, SET_REGISTRY_ADDRESS or SEQUENCER_PRIVATE_KEY is unset; permanent until configured."""

    code = "ANCHORING_NOT_CONFIGURED"


class ChainUnreachable(Unavailable):
    """The L2 RPC endpoint did not answer (or a receipt did not arrive in time); transient (`retry_after`)."""

    code = "CHAIN_UNAVAILABLE"


class RegistryMisconfigured(Unavailable):
    """No SetRegistry at SET_REGISTRY_ADDRESS on L2_CHAIN_ID, or the endpoint is another chain."""

    code = "REGISTRY_UNAVAILABLE"


class ForkDetected(Conflict):
    """The chain holds something for this stream that is not our commitment chain. Never overwritten:
    an operator must investigate (a foreign writer with the submitter key, or a database restored from backup)."""

    code = "ANCHOR_FORK_DETECTED"


class AnchorRejected(Conflict):
    """The registry reverted our commitBatch; the commitment stays unanchored."""

    code = "ANCHOR_REJECTED"


class AnchorAction(enum.Enum):
    SEND = "send"
    RECORD = "record"


@dataclass(frozen=True)
class AnchorOutcome:
    """What happened to one commitment. `status`: anchored (sent now), recovered (found on chain from an earlier
    run and recorded), already_anchored (recorded before this call)."""

    commitment: Commitment
    status: str
    chain_id: int
    chain_tx_hash: bytes
    chain_block_number: int


@dataclass
class StreamFailure:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    batch_id: uuid.UUID | None
    code: str
    message: str


@dataclass
class RunReport:
    """One anchoring run. `lock_busy`: another run held ANCHOR_RUN_LOCK_KEY and this one did nothing."""

    lock_busy: bool = False
    committed: list[Commitment] = field(default_factory=list)
    outcomes: list[AnchorOutcome] = field(default_factory=list)
    failures: list[StreamFailure] = field(default_factory=list)
    skipped_fenced: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def plan_anchor(commitment: Commitment, head: tuple[int, bytes], on_chain: OnChainBatch | None) -> AnchorAction:
    """Decide from chain state alone: RECORD when the registry already holds this batch with our content, SEND
    when the stream's head is exactly where this commitment chains from. Raise ForkDetected otherwise."""
    context = f"batch: {commitment.batch_id}, range: {commitment.sequence_start}..{commitment.sequence_end}"
    if on_chain is not None:
        differences = chain_mismatches(commitment, on_chain)
        if differences:
            detail = ", ".join(f"{name}: ours {show(ours)} chain {show(theirs)}" for name, ours, theirs in differences)
            raise ForkDetected(f"The registry holds this batch id with other content ({context}; {detail}).")
        return AnchorAction.RECORD
    head_end, head_root = head
    expected_end = commitment.sequence_start - 1
    if head_end == expected_end and head_root == commitment.prev_state_root:
        return AnchorAction.SEND
    if head_end == expected_end:
        problem = (f"the chain head's state root {to_hex(head_root)} is not our prev_state_root "
                   f"{to_hex(commitment.prev_state_root)}")
    elif head_end > expected_end:
        problem = f"the chain already covers this stream up to {head_end} with batches we did not anchor"
    else:
        problem = f"the chain head is at {head_end}, so commitments before {commitment.sequence_start} are missing"
    raise ForkDetected(f"The registry's head for this stream disagrees with our commitment chain: {problem} "
                       f"({context}).")


def registry_client(settings: Settings, read_only: bool = False, timeout: float | None = None) -> RegistryClient:
    """A client for the configured registry, signing with SEQUENCER_PRIVATE_KEY for L2_CHAIN_ID (EIP-155).

    Does no I/O. Raises AnchoringNotConfigured when a needed variable is unset.
    """
    required = {"L2_RPC_URL": settings.l2_rpc_url, "SET_REGISTRY_ADDRESS": settings.set_registry_address}
    if not read_only:
        required["SEQUENCER_PRIVATE_KEY"] = settings.sequencer_private_key
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise AnchoringNotConfigured(f"Anchoring is not configured (unset: {', '.join(missing)}).")
    return RegistryClient.from_url(settings.l2_rpc_url, settings.set_registry_address,
                                   private_key=None if read_only else settings.sequencer_private_key,
                                   chain_id=settings.l2_chain_id,
                                   **({} if timeout is None else {"timeout": timeout}))


@contextlib.contextmanager
def chain_errors_as_domain_errors() -> Iterator[None]:
    """Re-raise a ChainError inside the block as `as_sequencer_error(error)`."""
    try:
        yield
    except ChainError as error:
        raise as_sequencer_error(error) from None


def as_sequencer_error(error: ChainError) -> SequencerError:
    """The domain error a chain error means to a caller of the API (transient ones carry `retry_after`)."""
    if isinstance(error, (ChainUnavailable, ReceiptTimeout)):
        return ChainUnreachable(str(error), retry_after=30)
    if isinstance(error, TransactionReverted):
        return AnchorRejected(str(error))
    return RegistryMisconfigured(str(error))


def check_chain(client: RegistryClient) -> None:
    """Raise ChainError unless the RPC answers, is on the client's chain id and has the registry deployed."""
    client.ensure_deployed()


def anchor_commitment(engine: Engine, client: RegistryClient, commitment: Commitment,
                      after_send: AfterSend | None = None, deadline: "Deadline | None" = None) -> AnchorOutcome:
    """Anchor one commitment whose predecessors are anchored; record it only after a successful receipt.

    Raises ForkDetected, or a ChainError (TransactionReverted, ChainUnavailable, ReceiptTimeout) leaving the
    commitment unanchored in the database.
    """
    if commitment.is_anchored:
        return AnchorOutcome(commitment, "already_anchored", commitment.chain_id, commitment.chain_tx_hash,
                             commitment.chain_block_number)
    stream_id = commitment.stream_id
    if deadline is not None:
        deadline.check(commitment)
    action = plan_anchor(commitment, client.get_head(stream_id), client.get_batch(commitment.batch_id))
    if action is AnchorAction.RECORD:
        return _record_found_on_chain(engine, client, commitment, "recovered")
    tx_hash = client.send_commit_batch(stream_id, commitment.sequence_start, commitment.sequence_end,
                                       commitment.leaf_count, commitment.merkle_root, commitment.prev_state_root,
                                       commitment.new_state_root, commitment.batch_id)
    log.info("anchor transaction sent", extra={"batch_id": str(commitment.batch_id), "tx_hash": to_hex(tx_hash)})
    if after_send is not None:
        after_send(commitment, tx_hash)
    try:
        if deadline is None:
            receipt = client.wait_for_receipt(tx_hash)
        else:
            receipt = client.wait_for_receipt(tx_hash, timeout=deadline.remaining())
    except ReceiptTimeout:
        if deadline is None:
            raise
        raise AnchorPending.sent(commitment, tx_hash) from None
    except TransactionReverted:
        if client.get_batch(commitment.batch_id) is not None:
            return _record_found_on_chain(engine, client, commitment, "recovered")
        raise
    return _record(engine, client, commitment, "anchored", tx_hash, int(receipt["blockNumber"]))


def _record_found_on_chain(engine: Engine, client: RegistryClient, commitment: Commitment,
                           status: str) -> AnchorOutcome:
    on_chain = client.get_batch(commitment.batch_id)
    tx_hash = client.find_commit_transaction(commitment.batch_id) if on_chain is not None else None
    if on_chain is None or tx_hash is None:
        raise ChainError(f"The registry reports batch {commitment.batch_id} but not its commit transaction")
    log.warning("commitment found on chain from an earlier run; recording it without resending",
                extra={"batch_id": str(commitment.batch_id), "tx_hash": to_hex(tx_hash)})
    return _record(engine, client, commitment, status, tx_hash, on_chain.block_number)


def _record(engine: Engine, client: RegistryClient, commitment: Commitment, status: str, tx_hash: bytes,
            block_number: int) -> AnchorOutcome:
    anchored_at = datetime.datetime.now(datetime.timezone.utc)
    with engine.begin() as conn:
        changed = store.mark_anchored(conn, commitment.batch_id, client.chain_id, tx_hash, block_number, anchored_at)
    if not changed:
        with engine.connect() as conn:
            current = store.get_commitment(conn, commitment.batch_id)
        return AnchorOutcome(current, "already_anchored", current.chain_id, current.chain_tx_hash,
                             current.chain_block_number)
    ANCHORED_TOTAL.inc()
    log.info("commitment anchored", extra={
        "batch_id": str(commitment.batch_id), "tenant_id": str(commitment.tenant_id),
        "store_id": str(commitment.store_id), "sequence_start": commitment.sequence_start,
        "sequence_end": commitment.sequence_end, "chain_id": client.chain_id, "tx_hash": to_hex(tx_hash),
        "block_number": block_number, "status": status})
    with engine.connect() as conn:
        current = store.get_commitment(conn, commitment.batch_id)
    return AnchorOutcome(current, status, client.chain_id, tx_hash, block_number)


def unanchored_of_stream(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID) -> list[Commitment]:
    """The stream's unanchored commitments, oldest first."""
    found: list[Commitment] = []
    after = 0
    with engine.connect() as conn:
        while True:
            page = store.list_commitments(conn, tenant_id, store_id, anchored=False, limit=_STREAM_PAGE, after=after)
            found.extend(page)
            if len(page) < _STREAM_PAGE:
                return found
            after = page[-1].sequence_start


def anchor_stream_through(engine: Engine, client: RegistryClient, target: Commitment,
                          after_send: AfterSend | None = None, deadline: "Deadline | None" = None) -> AnchorOutcome:
    """Anchor every unanchored commitment of `target`'s stream up to and including `target`, oldest first (the
    contract only accepts the next range), and return `target`'s outcome."""
    if target.is_anchored:
        return AnchorOutcome(target, "already_anchored", target.chain_id, target.chain_tx_hash,
                             target.chain_block_number)
    outcome = None
    for commitment in unanchored_of_stream(engine, target.tenant_id, target.store_id):
        if commitment.sequence_start > target.sequence_start:
            break
        outcome = anchor_commitment(engine, client, commitment, after_send, deadline)
    if outcome is None or outcome.commitment.batch_id != target.batch_id:
        with engine.connect() as conn:
            current = store.get_commitment(conn, target.batch_id)
        return AnchorOutcome(current, "already_anchored", current.chain_id, current.chain_tx_hash,
                             current.chain_block_number)
    return outcome


def commit_all_pending(engine: Engine, max_events: int,
                       skipped: set[tuple[uuid.UUID, uuid.UUID]] | None = None) -> list[Commitment]:
    """Commit every stream's uncommitted events in commitments of at most `max_events` events each, except on
    streams fenced after a restore (added to `skipped`): a new range there could never match what was anchored."""
    created: list[Commitment] = []
    with engine.connect() as conn:
        pending = store.streams_with_uncommitted_events(conn)
        fenced = fence_service.fenced_streams(conn)
    for tenant_id, store_id, _head, _committed in pending:
        if (tenant_id, store_id) in fenced:
            if skipped is not None:
                skipped.add((tenant_id, store_id))
            continue
        while (record := commitment_service.commit_pending(engine, tenant_id, store_id, max_events)) is not None:
            created.append(record)
    return created


def _group_by_stream(records: Iterable[Commitment]) -> dict[tuple[uuid.UUID, uuid.UUID], list[Commitment]]:
    grouped: dict[tuple[uuid.UUID, uuid.UUID], list[Commitment]] = {}
    for record in records:
        grouped.setdefault((record.tenant_id, record.store_id), []).append(record)
    return grouped


def run_once(engine: Engine, client: RegistryClient, max_events: int,
             after_send: AfterSend | None = None) -> RunReport:
    """One cron run: check the chain, take the run lock, commit pending events, anchor every stream oldest first.

    Checks the chain before changing anything: ChainError propagates with the database untouched. A second
    concurrent run returns `lock_busy`. Streams fenced after a restore are neither committed nor anchored
    (`skipped_fenced`). A ForkDetected or TransactionReverted stops only that stream (a StreamFailure);
    ChainUnavailable and ReceiptTimeout abort the run (raised).
    """
    check_chain(client)
    report = RunReport()
    with run_lock(engine) as taken:
        if not taken:
            log.info("another anchoring run holds the lock; exiting")
            report.lock_busy = True
            return report
        skipped: set[tuple[uuid.UUID, uuid.UUID]] = set()
        report.committed = commit_all_pending(engine, max_events, skipped)
        with engine.connect() as conn:
            unanchored = store.unanchored_commitments(conn)
            fenced = fence_service.fenced_streams(conn)
        for (tenant_id, store_id), stream_commitments in _group_by_stream(unanchored).items():
            if (tenant_id, store_id) in fenced:
                skipped.add((tenant_id, store_id))
                continue
            for commitment in stream_commitments:
                try:
                    report.outcomes.append(anchor_commitment(engine, client, commitment, after_send))
                except (ForkDetected, TransactionReverted) as error:
                    code = error.code if isinstance(error, SequencerError) else AnchorRejected.code
                    log.error("anchoring stopped for this stream", extra={
                        "tenant_id": str(tenant_id), "store_id": str(store_id),
                        "batch_id": str(commitment.batch_id), "code": code, "error": str(error)})
                    report.failures.append(StreamFailure(tenant_id, store_id, commitment.batch_id, code, str(error)))
                    break
        report.skipped_fenced = sorted(skipped, key=lambda stream: (str(stream[0]), str(stream[1])))
        for tenant_id, store_id in report.skipped_fenced:
            log.warning("stream fenced after a restore; not committed or anchored", extra={
                "tenant_id": str(tenant_id), "store_id": str(store_id), "code": fence_service.FENCED})
    return report


class AnchorRunInProgress(Conflict):
    """Another anchoring run (the cron job or another request) holds the run lock; retry shortly (`retry_after`)."""

    code = "ANCHOR_RUN_IN_PROGRESS"


@contextlib.contextmanager
def run_lock(engine: Engine) -> Iterator[bool]:
    """Hold the transaction-level advisory lock ANCHOR_RUN_LOCK_KEY for the block; yields False (and holds nothing)
    when another run has it.

    The lock lives in a transaction kept open (idle, lifted bounds) on its own connection for the whole block, so
    it holds through PgBouncer in transaction pooling mode; it is released by the rollback at the end, or by
    PostgreSQL when a killed holder's connection drops.
    """
    with engine.connect() as conn:
        conn.begin()
        try:
            lift_transaction_bounds(conn)
            yield try_lock_transaction(conn, ANCHOR_RUN_LOCK_KEY)
        finally:
            conn.rollback()


def target_commitment(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_start: int | None,
                      sequence_end: int | None, max_events: int) -> Commitment:
    """The commitment an "anchor now" request means: the existing one with exactly the requested range, else a new
    one (create_commitment's rules and errors); without a range, the next pending range, else the latest commitment.
    """
    with engine.connect() as conn:
        existing = (store.covering_commitment(conn, tenant_id, store_id, sequence_start)
                    if sequence_start is not None else None)
    if existing is not None:
        if sequence_end is not None and existing.sequence_end != sequence_end:
            raise Conflict(f"Commitment {existing.batch_id} covers {existing.sequence_start}..{existing.sequence_end},"
                           f" not the requested range {sequence_start}..{sequence_end}.", code="RANGE_MISMATCH")
        if existing.sequence_start != sequence_start:
            raise Conflict(f"Sequence number {sequence_start} is inside commitment {existing.batch_id} "
                           f"({existing.sequence_start}..{existing.sequence_end}).", code="RANGE_MISMATCH")
        return existing
    if sequence_start is not None or sequence_end is not None:
        return commitment_service.create_commitment(engine, tenant_id, store_id, sequence_start, sequence_end,
                                                    max_events)
    created = commitment_service.commit_pending(engine, tenant_id, store_id, max_events)
    if created is not None:
        return created
    with engine.connect() as conn:
        latest = store.last_commitment(conn, tenant_id, store_id)
    if latest is None:
        raise commitment_service.NothingToCommit("Nothing to anchor: this stream has no events.")
    return latest


@contextlib.contextmanager
def anchoring_turn(engine: Engine, client: RegistryClient, tenant_id: uuid.UUID, store_id: uuid.UUID) -> Iterator[None]:
    """An HTTP request's turn to anchor one stream: the chain answers, the run lock is held (else
    AnchorRunInProgress: it never races the cron job) and the stream is not fenced; chain failures inside are raised
    as the domain errors they mean."""
    with chain_errors_as_domain_errors():
        check_chain(client)
        with run_lock(engine) as taken:
            if not taken:
                raise AnchorRunInProgress("An anchoring run is in progress; retry shortly.", retry_after=10)
            with engine.connect() as conn:
                fence_service.check_writable(conn, tenant_id, store_id)
            yield


def anchor_now(engine: Engine, client: RegistryClient, tenant_id: uuid.UUID, store_id: uuid.UUID,
               sequence_start: int | None = None, sequence_end: int | None = None,
               max_events: int = 1024, deadline: "Deadline | None" = None) -> AnchorOutcome:
    """POST /api/v1/ves/commitments/anchor: commit if needed, then anchor the stream through that commitment.

    Checks the chain before committing anything. Holds the run lock so it never races the cron job. A chain failure
    is raised as the domain error it means (`as_sequencer_error`). With a `deadline` (HTTP requests), a transaction
    not mined in time is `AnchorPending` (the job records it), and no further step starts once it has passed.
    """
    with anchoring_turn(engine, client, tenant_id, store_id):
        target = target_commitment(engine, tenant_id, store_id, sequence_start, sequence_end, max_events)
        return anchor_stream_through(engine, client, target, deadline=deadline)


@dataclass(frozen=True)
class AnchorStatus:
    """Whether anchoring is configured, for which chain, registry and signer address (never a key)."""

    anchor_enabled: bool
    chain_id: int
    registry_address: str | None
    signer_address: str | None
    message: str


def anchor_status(settings: Settings, client: RegistryClient | None = None) -> AnchorStatus:
    """From the settings alone, or from `client` when one was supplied in their place. Never contacts the chain."""
    if client is not None:
        signer, registry = client.sender, client.address
    else:
        key = settings.sequencer_private_key
        signer, registry = (Account.from_key(key).address if key else None), settings.set_registry_address
    enabled = client is not None or settings.anchoring_configured
    # The original's two sentences (its get_anchor_status), word for word.
    message = ("Anchor service is configured and ready" if enabled else
               "Anchor service not configured. Set L2_RPC_URL, SET_REGISTRY_ADDRESS, SEQUENCER_PRIVATE_KEY")
    return AnchorStatus(enabled, settings.l2_chain_id, registry, signer, message)


@dataclass(frozen=True)
class AnchorVerification:
    """The registry's record of one commitment compared field by field with ours. Every `*_matches` is False when
    the batch is not on chain."""

    batch_id: uuid.UUID
    anchored_on_chain: bool
    root_matches: bool
    prev_state_root_matches: bool
    new_state_root_matches: bool
    range_matches: bool
    recorded_as_anchored: bool
    chain_id: int | None
    chain_tx_hash: bytes | None
    chain_block_number: int | None
    stream_id: bytes


def verify_anchor(engine: Engine, registry: Callable[[], RegistryClient], batch_id: uuid.UUID,
                  may_read: commitment_service.ReadCheck) -> AnchorVerification:
    """Read the registry's record of a commitment the caller may read and compare it with ours.

    :raise NotFound: as `visible_commitment`. Chain failures are raised as the domain errors they mean.
    """
    record = commitment_service.visible_commitment(engine, batch_id, may_read)
    with chain_errors_as_domain_errors():
        client = registry()
        on_chain = client.get_batch(batch_id)
        differing = set() if on_chain is None else {name for name, _, _ in chain_mismatches(record, on_chain)}
        chain_tx_hash = record.chain_tx_hash
        if on_chain is not None and chain_tx_hash is None:
            chain_tx_hash = client.find_commit_transaction(batch_id)
    anchored = on_chain is not None
    return AnchorVerification(
        batch_id=batch_id, anchored_on_chain=anchored,
        root_matches=anchored and "merkle_root" not in differing,
        prev_state_root_matches=anchored and "prev_state_root" not in differing,
        new_state_root_matches=anchored and "new_state_root" not in differing,
        range_matches=anchored and not differing & {"stream_id", "sequence_start", "sequence_end", "leaf_count"},
        recorded_as_anchored=record.is_anchored,
        chain_id=record.chain_id if record.chain_id is not None else client.chain_id,
        chain_tx_hash=chain_tx_hash, chain_block_number=on_chain.block_number if on_chain is not None else None,
        stream_id=record.stream_id)


# --- Bounded anchoring for HTTP requests, and the original's anchoring routes (issue 18) ---------------------------


class AnchorPending(Unavailable):
    """The request's time budget (ANCHOR_REQUEST_TIMEOUT_SECONDS) ran out before the commitment was anchored. Nothing
    is lost: a transaction already sent is found on chain and recorded by the anchoring job (`plan_anchor`), one not
    yet sent is sent by it; `GET /api/v1/ves/commitments/{batch_id}` shows when."""

    code = "ANCHOR_PENDING"

    @classmethod
    def sent(cls, commitment: Commitment, tx_hash: bytes) -> "AnchorPending":
        return cls(f"The anchor transaction was sent but not mined within the request's time budget; the anchoring "
                   f"job records it (GET /api/v1/ves/commitments/{commitment.batch_id}; tx: {to_hex(tx_hash)}).",
                   retry_after=30)

    @classmethod
    def not_started(cls, commitment: Commitment) -> "AnchorPending":
        return cls(f"The request's time budget ran out before commitment {commitment.batch_id} was sent; the "
                   f"anchoring job anchors it (GET /api/v1/ves/commitments/{commitment.batch_id}).", retry_after=30)


@dataclass
class Deadline:
    """A monotonic time budget for the chain work of one HTTP request."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    def check(self, commitment: Commitment) -> None:
        if self.remaining() <= 0.0:
            raise AnchorPending.not_started(commitment)


def request_rpc_timeout(settings: Settings) -> float:
    """Per-RPC timeout of a client serving an HTTP request: a quarter of the request budget, at most the default."""
    return max(0.5, min(10.0, settings.anchor_request_timeout_seconds / 4))


def anchor_batch(engine: Engine, client: RegistryClient, commitment: Commitment,
                 deadline: Deadline | None = None) -> AnchorOutcome:
    """POST /api/v1/ves/anchor and /api/v1/anchor: anchor the stream through `commitment` (its unanchored
    predecessors first), under the run lock, as `anchor_now` does for an existing commitment."""
    if commitment.is_anchored:
        return AnchorOutcome(commitment, "already_anchored", commitment.chain_id, commitment.chain_tx_hash,
                             commitment.chain_block_number)
    with anchoring_turn(engine, client, commitment.tenant_id, commitment.store_id):
        return anchor_stream_through(engine, client, commitment, deadline=deadline)


def pending_commitments(engine: Engine, limit: int) -> list[Commitment]:
    """Every stream's unanchored commitments, oldest first per stream, at most `limit` (the anchor service's feed),
    without those of streams fenced after a restore (docs/RESTORE.md, "After a restore: the fence")."""
    with engine.connect() as conn:
        return store.unanchored_commitments(conn, limit, skip_fenced=True)


@dataclass(frozen=True)
class ExternalAnchorResult:
    commitment: Commitment
    newly_recorded: bool


class AnchorMismatch(Conflict):
    code = "ANCHOR_MISMATCH"


def record_external_anchor(engine: Engine, batch_id: uuid.UUID, chain_tx_hash: bytes, chain_id: int,
                           block_number: int | None) -> ExternalAnchorResult:
    """POST /v1/commitments/{batch_id}/anchored: an external anchor service reports the transaction that anchored
    a commitment. The same transaction again is `newly_recorded` False; another one is a 409 (never overwritten).

    :raise NotFound: no such commitment. :raise AnchorMismatch: anchored by another transaction.
    """
    with engine.begin() as conn:
        current = store.get_commitment(conn, batch_id)
        if current is None:
            raise NotFound("Commitment not found.", code="COMMITMENT_NOT_FOUND")
        if current.is_anchored:
            if bytes(current.chain_tx_hash) != chain_tx_hash:
                raise AnchorMismatch(f"Commitment {batch_id} is anchored by another transaction "
                                     f"({to_hex(current.chain_tx_hash)}).")
            return ExternalAnchorResult(current, False)
        store.mark_anchored(conn, batch_id, chain_id, chain_tx_hash, block_number,
                            datetime.datetime.now(datetime.timezone.utc))
        recorded = store.get_commitment(conn, batch_id)
    log.info("commitment anchored by an external anchor service", extra={
        "batch_id": str(batch_id), "chain_id": chain_id, "tx_hash": to_hex(chain_tx_hash),
        "block_number": block_number})
    return ExternalAnchorResult(recorded, True)

"""Healing a fenced stream from an export (docs/RESTORE.md, "After a restore: the fence"): the events the restore
forgot are sequenced again in their original order, from a `ves-verify export` bundle (app/verify/bundle.py, format
"ves-audit-bundle/1").

Receipt hashes and signatures do not depend on time (VES.md §Sequencer receipt), so the same events in the same
order get the same numbers, identical receipt hashes and sequencer signatures; each event is also given back its
original `sequenced_at`. Every number and receipt hash is checked against the bundle inside the transaction
(`ingest.replay_events`), so a replay can only reproduce the published log, never fork it. The bundle's commitments
are then re-created with their original batch ids and ranges (their roots checked against the bundle's), so the
anchoring run finds them already on chain and records them ("recovered") instead of sending anything.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Engine

from app.config import Settings
from app.db import commitments as commitment_store
from app.db import events as event_store
from app.db import fences as fence_store
from app.errors import Conflict
from app.errors import InvalidRequest
from app.services import commitments as commitment_service
from app.services.agent_keys import register_agent_key
from app.services.envelopes import EventRejected
from app.services.envelopes import parse_signed_envelope
from app.services.envelopes import parse_unsigned_event
from app.services.ingest import ReceiptSigner
from app.services.ingest import replay_events

log = logging.getLogger("stateset_sequencer.heal")

BUNDLE_FORMAT = "ves-audit-bundle/1"
_SEQUENCING_FIELDS = ("event_signing_hash", "sequence_number", "sequenced_at", "entity_version", "sequencer_receipt")


class InvalidBundle(InvalidRequest):
    code = "BUNDLE_INVALID"


class HealRefused(Conflict):
    """The bundle cannot heal this database: it disagrees with events the database holds, or does not start where
    the database ends."""

    code = "HEAL_REFUSED"


@dataclass
class HealReport:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    head_before: int
    head_after: int = 0
    events_replayed: int = 0
    commitments_restored: int = 0
    agent_keys_registered: int = 0
    fence: str = "none"  # none | lifted | still_fenced | diverged
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"tenant_id": str(self.tenant_id), "store_id": str(self.store_id), "head_before": self.head_before,
                "head_after": self.head_after, "events_replayed": self.events_replayed,
                "commitments_restored": self.commitments_restored,
                "agent_keys_registered": self.agent_keys_registered, "fence": self.fence,
                "seconds": round(self.seconds, 3)}


def _hex(value: object, where: str, length: int = 32) -> bytes:
    if not isinstance(value, str):
        raise InvalidBundle(f"Invalid bundle ({where}: expected a hex string).")
    text = value[2:] if value.startswith("0x") else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidBundle(f"Invalid bundle ({where}: not hex).") from None
    if len(raw) != length:
        raise InvalidBundle(f"Invalid bundle ({where}: expected {length} bytes).")
    return raw


def _timestamp(value: object, where: str) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidBundle(f"Invalid bundle ({where}: not an RFC 3339 timestamp).") from None
    if moment.tzinfo is None:
        raise InvalidBundle(f"Invalid bundle ({where}: a timestamp needs a zone).")
    return moment


def heal_from_bundle(engine: Engine, settings: Settings, signer: ReceiptSigner, bundle: object,
                     actor: str = "heal", progress: Callable[[int], None] | None = None) -> HealReport:
    """Replay the bundle's events after the database head, then re-create its commitments. Idempotent: a second run
    replays nothing. :raise InvalidBundle, HealRefused, ingest.ReplayDiverged / ReplayRejected (nothing of that
    batch written), StreamDiverged."""
    started = time.monotonic()
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise InvalidBundle(f"Not an export bundle (expected format {BUNDLE_FORMAT!r}; `ves-verify export`).")
    try:
        tenant_id, store_id = uuid.UUID(str(bundle["tenant_id"])), uuid.UUID(str(bundle["store_id"]))
    except (KeyError, ValueError):
        raise InvalidBundle("Invalid bundle (tenant_id and store_id must be UUIDs).") from None
    events = bundle.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise InvalidBundle("Invalid bundle (events: expected a list of objects).")
    if not all(isinstance(e.get("sequence_number"), int) and not isinstance(e.get("sequence_number"), bool)
               for e in events):
        raise InvalidBundle("Invalid bundle (events[].sequence_number: expected integers).")
    ordered = sorted(events, key=lambda e: e["sequence_number"])
    numbers = [e.get("sequence_number") for e in ordered]
    if numbers and (numbers[0] < 1 or numbers != list(range(numbers[0], numbers[0] + len(numbers)))):
        raise InvalidBundle("Invalid bundle (events: sequence numbers must be contiguous and positive).")
    _check_sequencer_key(bundle.get("sequencer"), signer)
    with engine.connect() as conn:
        head = event_store.read_stream_head(conn, tenant_id, store_id)
    report = HealReport(tenant_id, store_id, head_before=head)
    report.agent_keys_registered = _register_keys(engine, tenant_id, bundle.get("agent_keys") or [])

    with engine.connect() as conn:
        for event in ordered:
            number = event["sequence_number"]
            if number > head:
                break
            ours = fence_store.receipt_hash_at(conn, tenant_id, store_id, number)
            if ours is not None and ours != _receipt_hash(event, number):
                raise HealRefused(f"The bundle disagrees with the database at sequence {number} (another receipt "
                                  "hash): it is not an export of this log. Nothing was written.")
    missing = [e for e in ordered if e["sequence_number"] > head]
    if missing and missing[0]["sequence_number"] != head + 1:
        raise HealRefused(f"The bundle starts at {missing[0]['sequence_number']} but the database ends at {head}: "
                          f"export from {head + 1} or earlier. Nothing was written.")
    for group in _groups(missing):
        where = f"events[{group[0]['sequence_number']}].sequencer_receipt.sequenced_at"
        sequenced_at = _timestamp(group[0]["sequencer_receipt"].get("sequenced_at"), where)
        if sequenced_at is None:
            raise InvalidBundle(f"Invalid bundle ({where}: missing).")
        parsed, expected = [], {}
        for index, event in enumerate(group):
            parsed.append(_parse(event, index, settings))
            if parsed[-1].stream != (tenant_id, store_id):
                raise InvalidBundle(f"Invalid bundle (event {event['sequence_number']} belongs to another stream "
                                    "than the bundle's tenant_id/store_id).")
            expected[parsed[-1].event_id] = (event["sequence_number"], _receipt_hash(event, event["sequence_number"]))
        outcome = replay_events(engine, settings, signer, parsed, sequenced_at, expected, actor)
        report.events_replayed += sum(1 for r in outcome.receipts if not r.duplicate)
        if progress is not None:
            progress(report.events_replayed)
    report.commitments_restored = _restore_commitments(engine, tenant_id, store_id, bundle.get("commitments") or [])
    with engine.connect() as conn:
        report.head_after = event_store.read_stream_head(conn, tenant_id, store_id)
        fence = fence_store.read_fence(conn, tenant_id, store_id)
        trail = fence_store.audit_trail(conn, tenant_id, store_id)
    if fence is not None:
        report.fence = "diverged" if fence.code == "STREAM_DIVERGED" else "still_fenced"
    elif trail and trail[-1]["action"] == "healed":
        report.fence = "lifted"
    report.seconds = time.monotonic() - started
    log.info("stream healed from an export", extra={**report.to_dict(), "actor": actor})
    return report


def _check_sequencer_key(sequencer: object, signer: ReceiptSigner) -> None:
    """The bundle's receipts were signed with `sequencer.public_key`: replaying them under another key (or none)
    would give the same receipt hashes but other signatures."""
    published = sequencer.get("public_key") if isinstance(sequencer, dict) else None
    if not published:
        return
    ours = signer.public_key
    if ours is None or _hex(published, "sequencer.public_key") != ours:
        raise HealRefused("The bundle's receipts were signed by another sequencer key than VES_SEQUENCER_SIGNING_KEY "
                          "(or none is configured): start the heal with the key that signed them. Nothing was "
                          "written.")


def _receipt_hash(event: dict, number: int) -> bytes:
    receipt = event.get("sequencer_receipt")
    if not isinstance(receipt, dict):
        raise InvalidBundle(f"Invalid bundle (events[{number}].sequencer_receipt: expected an object).")
    return _hex(receipt.get("receipt_hash"), f"events[{number}].sequencer_receipt.receipt_hash")


def _groups(events: list[dict]) -> list[list[dict]]:
    """Consecutive events sequenced at the same moment (one original request, as far as the export shows)."""
    groups: list[list[dict]] = []
    for event in events:
        moment = (event.get("sequencer_receipt") or {}).get("sequenced_at")
        if groups and (groups[-1][0].get("sequencer_receipt") or {}).get("sequenced_at") == moment \
                and len(groups[-1]) < 1000:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def _parse(event: dict, index: int, settings: Settings):
    envelope = {name: value for name, value in event.items() if name not in _SEQUENCING_FIELDS}
    try:
        if envelope.get("agent_signature") is None:
            raw = dict(envelope)
            agent_id = uuid.UUID(str(raw.get("source_agent_id")))
            return parse_unsigned_event(raw, index, agent_id, settings.max_event_payload_size,
                                        datetime.datetime.now(datetime.timezone.utc))
        return parse_signed_envelope(envelope, index, settings.max_event_payload_size)
    except (EventRejected, ValueError) as error:
        message = error.message if isinstance(error, EventRejected) else str(error)
        raise InvalidBundle(f"Invalid bundle (event {event.get('sequence_number')}: {message}).") from None


def _register_keys(engine: Engine, tenant_id: uuid.UUID, keys: list) -> int:
    """Register the bundle's agent keys the restored database lacks (a key registered after the restore target)."""
    registered = 0
    for index, key in enumerate(keys):
        if not isinstance(key, dict):
            raise InvalidBundle(f"Invalid bundle (agent_keys[{index}]: expected an object).")
        try:
            agent_id, key_id = uuid.UUID(str(key["agent_id"])), int(key["key_id"])
        except (KeyError, ValueError, TypeError):
            raise InvalidBundle(f"Invalid bundle (agent_keys[{index}]: agent_id and key_id).") from None
        _, created = register_agent_key(engine, tenant_id, agent_id, key_id,
                                        _hex(key.get("public_key"), f"agent_keys[{index}].public_key"),
                                        _timestamp(key.get("valid_from"), f"agent_keys[{index}].valid_from"),
                                        _timestamp(key.get("valid_to"), f"agent_keys[{index}].valid_to"))
        registered += int(created)
    return registered


def _restore_commitments(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, commitments: list) -> int:
    """Re-create the bundle's commitments the database lacks, oldest first, with their batch ids and ranges; each
    one's roots MUST come out as the bundle's (else CommitmentIntegrityError, nothing of it written)."""
    restored = 0
    wanted = sorted((c for c in commitments if isinstance(c, dict)), key=lambda c: c.get("sequence_start") or 0)
    for index, item in enumerate(wanted):
        try:
            batch_id = uuid.UUID(str(item["batch_id"]))
            start, end = int(item["sequence_start"]), int(item["sequence_end"])
        except (KeyError, ValueError, TypeError):
            raise InvalidBundle(f"Invalid bundle (commitments[{index}]: batch_id and range).") from None
        with engine.connect() as conn:
            if commitment_store.get_commitment(conn, batch_id) is not None:
                continue
            head, last_committed = commitment_store.stream_positions(conn, tenant_id, store_id)
        if start != last_committed + 1 or end > head:
            break
        commitment_service.create_commitment(
            engine, tenant_id, store_id, start, end, batch_id=batch_id,
            expect_roots=(_hex(item.get("merkle_root"), f"commitments[{index}].merkle_root"),
                          _hex(item.get("new_state_root"), f"commitments[{index}].new_state_root")))
        restored += 1
    return restored

"""`verify_bundle`: re-derive everything an audit bundle claims, from the bytes up (VES.md), with no network.

Pure: the bundle is a dict (see `app.verify.bundle` for its shape); on-chain checks are injected as `chain_checker`.
Checks run events first (in sequence order), then commitments (in range order), so the first discrepancy is the
earliest record that is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING

from app.client.wire import event_receipt
from app.client.wire import field
from app.client.wire import optional_bytes
from app.client.wire import receipt_key_problem
from app.client.wire import receipt_keys
from app.verify.log import verify_log
from app.verify.report import Discrepancy
from app.verify.report import VerificationReport
from app.ves import PAYLOAD_KIND_ENCRYPTED
from app.ves import PAYLOAD_KIND_PLAIN
from app.ves import SIGNATURE_SIZE
from app.ves import ZERO_HASH
from app.ves import EventSigningFields
from app.ves import VesError
from app.ves import event_signing_hash
from app.ves import leaf_hash
from app.ves import merkle_root
from app.ves import padded_leaf_count
from app.ves import parse_hex
from app.ves import parse_uuid
from app.ves import payload_cipher_hash
from app.ves import payload_plain_hash
from app.ves import receipt_hash
from app.ves import state_root
from app.ves import stream_id
from app.ves import to_hex
from app.ves import tree_depth
from app.ves import verify_signature
from app.ves.encrypted import draft_payload_cipher_hash
from app.ves.encrypted import is_draft_payload_encrypted

BUNDLE_FORMAT = "ves-audit-bundle/1"

if TYPE_CHECKING:
    from app.client.log import VerifiedCheckpoint

ChainChecker = Callable[[Mapping, bytes], "Discrepancy | None"]
"""`chain_checker(commitment, stream_id)` → a Discrepancy when the anchored root disagrees, else None."""


class _Stop(Exception):
    """A check failed in a way that makes this record's later checks meaningless."""


def verify_bundle(
    bundle: Mapping,
    chain_checker: ChainChecker | None = None,
    sequencer_public_key: bytes | None = None,
    log_checkpoint: "VerifiedCheckpoint | None" = None,
    log_public_key: bytes | None = None,
) -> VerificationReport:
    """Verify every event, receipt, leaf, commitment root and state root in `bundle`, and the stream's signed
    transparency-log checkpoint against the events (`app.verify.log`).

    `sequencer_public_key`, when given, pins the receipt key instead of trusting the bundle's; `log_public_key` pins
    the log key; `log_checkpoint` is a checkpoint the auditor already holds (the events must hash to it too). Never
    raises for a malformed bundle: every problem is a Discrepancy.
    """
    report = VerificationReport()
    try:
        context = _Context.from_bundle(bundle, sequencer_public_key, report)
    except _Stop:
        return report
    leaves = {}
    for event in context.events:
        report.events_checked += 1
        checked = _verify_event(event, context, report)
        if checked is not None:
            leaves[checked[0]] = checked[1]
    _verify_head(context, report)
    _verify_commitments(context, leaves, chain_checker, report)
    verify_log(bundle, context.tenant_id, context.store_id, leaves, context.range_from, report, log_checkpoint,
               log_public_key)
    return report


class _Context:
    """The bundle's parsed stream, range, sequencer key and agent key registry."""

    def __init__(self, bundle, tenant_id, store_id, sequencer_key, keys, report, receipt_keys=None):
        self.bundle = bundle
        self.receipt_keys = receipt_keys or {}
        self.tenant_id = tenant_id
        self.store_id = store_id
        self.stream_id = stream_id(tenant_id, store_id)
        self.sequencer_key = sequencer_key
        self.keys = keys
        self.events = list(bundle.get("events") or [])
        self.commitments = list(bundle.get("commitments") or [])
        bounds = bundle.get("range") or {}
        self.range_from = bounds.get("from") or 1
        self.head = bundle.get("head_sequence")
        to = bounds.get("to")
        self.range_to = to if to is not None else self.head
        self.next_expected = self.range_from
        self.seen_event_ids = set()

    @classmethod
    def from_bundle(cls, bundle, pinned_key, report) -> _Context:
        def fail(check, message, expected=None, found=None):
            report.discrepancies.append(Discrepancy(check, message, expected=expected, found=found))
            raise _Stop

        if not isinstance(bundle, Mapping):
            fail("bundle_format", "The bundle is not a JSON object")
        if bundle.get("format") != BUNDLE_FORMAT:
            fail("bundle_format", "Unknown bundle format", BUNDLE_FORMAT, bundle.get("format"))
        try:
            tenant_id = parse_uuid(bundle.get("tenant_id"), "tenant_id")
            store_id = parse_uuid(bundle.get("store_id"), "store_id")
        except VesError as error:
            fail("bundle_format", error.message)
        sequencer = bundle.get("sequencer") or {}
        sequencer_key = None
        if sequencer.get("signature_alg") == "ed25519":
            try:
                sequencer_key = parse_hex(sequencer.get("public_key"), 32, "sequencer.public_key")
            except VesError as error:
                fail("bundle_format", error.message)
        else:
            report.unchecked.append("receipt signatures (the sequencer publishes no Ed25519 receipt key: "
                                    f"signature_alg {sequencer.get('signature_alg', 'none')!r})")
        try:
            versions = receipt_keys(sequencer)
        except VesError as error:
            fail("bundle_format", error.message)
        if pinned_key is not None:
            if sequencer_key != pinned_key:
                fail("sequencer_public_key", "The bundle's sequencer key is not the pinned one", to_hex(pinned_key),
                     sequencer.get("public_key"))
        keys = {}
        for key in bundle.get("agent_keys") or []:
            try:
                coordinates = (parse_uuid(field(key, "agent_id"), "agent_id"), int(field(key, "key_id")))
                keys[coordinates] = (parse_hex(field(key, "public_key"), 32, "public_key"), key)
            except (VesError, TypeError, ValueError) as error:
                fail("agent_keys", f"Malformed agent key entry ({error})")
        return cls(bundle, tenant_id, store_id, sequencer_key, keys, report, versions)


def _verify_event(event: Mapping, context: _Context, report: VerificationReport) -> tuple[int, bytes] | None:
    """Run every per-event check; return `(sequence_number, leaf_hash)` when the event is well-formed."""
    number = event.get("sequence_number") if isinstance(event, Mapping) else None
    expected_number = context.next_expected

    def fail(check, message, expected=None, found=None, stop=False):
        report.discrepancies.append(Discrepancy(check, message, number, None, expected, found))
        if stop:
            raise _Stop

    try:
        if isinstance(number, bool) or not isinstance(number, int):
            fail("sequence_contiguity", "The event has no integer sequence_number", expected_number, number,
                 stop=True)
        if number != expected_number:
            message = ("Events are missing before this one (a gap in the sequence)" if number > expected_number
                       else "Sequence numbers must ascend by one")
            fail("sequence_contiguity", message, expected_number, number)
        context.next_expected = number + 1
        try:
            fields = EventSigningFields.from_envelope(event)
        except VesError as error:
            fail("event_envelope", error.message, stop=True)
        if (fields.tenant_id, fields.store_id) != (context.tenant_id, context.store_id):
            fail("stream", "The event belongs to another stream",
                 f"{context.tenant_id}/{context.store_id}", f"{fields.tenant_id}/{fields.store_id}", stop=True)
        if fields.event_id in context.seen_event_ids:
            fail("event_id_unique", "The event_id appears twice in the stream", None, str(fields.event_id))
        context.seen_event_ids.add(fields.event_id)
        _check_payload(event, fields, fail)
        signing_hash = _signing_hash(fields, fail)
        served_signing_hash = event.get("event_signing_hash")
        if served_signing_hash is not None and _hex_or_none(served_signing_hash, 32) != signing_hash:
            fail("event_signing_hash", "The served signing hash is not the one recomputed from the fields",
                 to_hex(signing_hash), served_signing_hash)
        signature = _agent_signature(event, fields, signing_hash, context, fail)
        _check_receipt(event, fields, number, signing_hash, context, report, fail)
        return number, leaf_hash(fields.tenant_id, fields.store_id, number, signing_hash, signature)
    except _Stop:
        return None


def _hex_or_none(value: object, length: int) -> bytes | None:
    try:
        return optional_bytes(value, length, "value")
    except VesError:
        return None


def _check_payload(event, fields, fail) -> None:
    if fields.payload_kind == PAYLOAD_KIND_PLAIN:
        try:
            expected = payload_plain_hash(event.get("payload"))
        except VesError as error:
            fail("payload_plain_hash", error.message, stop=True)
        if expected != fields.payload_plain_hash:
            fail("payload_plain_hash", "The payload does not hash (JCS) to payload_plain_hash",
                 to_hex(expected), to_hex(fields.payload_plain_hash))
        if fields.payload_cipher_hash != ZERO_HASH:
            fail("payload_cipher_hash", "A plaintext event's cipher hash must be zero", to_hex(ZERO_HASH),
                 to_hex(fields.payload_cipher_hash))
    elif fields.payload_kind == PAYLOAD_KIND_ENCRYPTED:
        sealed = event.get("payload_encrypted")
        rule = draft_payload_cipher_hash if is_draft_payload_encrypted(sealed) else payload_cipher_hash
        try:
            expected = rule(sealed, fields)
        except VesError as error:
            fail("payload_cipher_hash", error.message, stop=True)
        if expected != fields.payload_cipher_hash:
            fail("payload_cipher_hash", "payload_encrypted does not hash to payload_cipher_hash",
                 to_hex(expected), to_hex(fields.payload_cipher_hash))
    else:
        fail("event_envelope", "payload_kind must be 0 or 1", "0 or 1", fields.payload_kind, stop=True)


def _signing_hash(fields, fail) -> bytes:
    try:
        return event_signing_hash(fields)
    except VesError as error:
        fail("event_signing_hash", error.message, stop=True)


def _agent_signature(event, fields, signing_hash, context, fail) -> bytes | None:
    """The 64-byte agent signature after checking it, or None for an event ingested unsigned."""
    served = event.get("agent_signature")
    try:
        signature = optional_bytes(served, SIGNATURE_SIZE, "agent_signature")
    except VesError as error:
        fail("agent_signature", error.message, stop=True)
    if signature is not None and not any(signature):
        signature = None
    if signature is None:
        if fields.agent_key_id != 0:
            fail("agent_signature", "The event names an agent key but carries no signature",
                 f"a signature by key {fields.agent_key_id}", served)
        return None
    registered = context.keys.get((fields.source_agent_id, fields.agent_key_id))
    if registered is None:
        fail("agent_key_registered", "No registered agent key for (source_agent_id, agent_key_id)",
             f"a key for {fields.source_agent_id}/{fields.agent_key_id}", None)
        return signature
    public_key, key_record = registered
    if not verify_signature(public_key, signing_hash, signature):
        fail("agent_signature", "The agent signature does not verify over the event signing hash",
             f"a signature by {to_hex(public_key)} over {to_hex(signing_hash)}", served)
    _check_key_validity(event, key_record, fail)
    return signature


def _timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _check_key_validity(event, key_record, fail) -> None:
    """VES.md §Acceptance rules 3: the key was valid and unrevoked at `sequenced_at`."""
    sequenced_raw = field(event, "sequenced_at")
    sequenced_at = _timestamp(sequenced_raw)
    if sequenced_at is None:
        return
    revoked_at = _timestamp(field(key_record, "revoked_at"))
    valid_from = _timestamp(field(key_record, "valid_from"))
    valid_to = _timestamp(field(key_record, "valid_to"))
    if revoked_at is not None and sequenced_at >= revoked_at:
        fail("agent_key_validity", "The event was sequenced after its key was revoked",
             f"before {field(key_record, 'revoked_at')}", sequenced_raw)
    if valid_from is not None and sequenced_at < valid_from:
        fail("agent_key_validity", "The event was sequenced before its key became valid",
             f"from {field(key_record, 'valid_from')}", sequenced_raw)
    if valid_to is not None and sequenced_at > valid_to:
        fail("agent_key_validity", "The event was sequenced after its key expired",
             f"until {field(key_record, 'valid_to')}", sequenced_raw)


def _check_receipt(event, fields, number, signing_hash, context, report, fail) -> None:
    receipt = event_receipt(event)
    receipt_number = field(receipt, "sequence_number", number)
    if receipt_number != number:
        fail("receipt_sequence_number", "The receipt is for another sequence number", number, receipt_number)
    receipt_event = field(receipt, "event_id", str(fields.event_id))
    if str(receipt_event).lower() != str(fields.event_id):
        fail("receipt_event_id", "The receipt is for another event", str(fields.event_id), receipt_event)
    expected = receipt_hash(fields.tenant_id, fields.store_id, fields.event_id, number, signing_hash)
    served = field(receipt, "receipt_hash")
    if _hex_or_none(served, 32) != expected:
        fail("receipt_hash", "The receipt hash is not the one recomputed from the event", to_hex(expected), served)
    if context.sequencer_key is None and not context.receipt_keys:
        return
    sequencer_key, problem = receipt_key_problem(receipt, field(event, "sequenced_at"), context.receipt_keys,
                                                 context.sequencer_key)
    if problem is not None:
        fail("sequencer_key_version", f"The receipt's key cannot be trusted: {problem}",
             "a key version of sequencer.keys valid when the event was sequenced",
             field(receipt, "sequencer_key_version"))
        return
    served_signature = field(receipt, "sequencer_signature")
    signature = _hex_or_none(served_signature, SIGNATURE_SIZE)
    if signature is None or not verify_signature(sequencer_key, expected, signature):
        fail("sequencer_signature", "The sequencer signature does not verify over the receipt hash",
             f"a signature by {to_hex(sequencer_key)} over {to_hex(expected)}", served_signature)


def _verify_head(context: _Context, report: VerificationReport) -> None:
    """The bundle MUST hold every event up to its range end (or the exported head)."""
    if context.range_to is None:
        return
    last = context.next_expected - 1
    if last < context.range_to:
        report.discrepancies.append(Discrepancy(
            "sequence_contiguity", "Events are missing at the end of the range", last + 1, None,
            context.range_to, last))


def _verify_commitments(context, leaves, chain_checker, report) -> None:
    expected_prev = ZERO_HASH
    expected_start = 1
    ordered = sorted(context.commitments, key=lambda c: field(c, "sequence_start") or 0)
    for commitment in ordered:
        report.commitments_checked += 1
        batch_id = str(field(commitment, "batch_id"))

        def fail(check, message, expected=None, found=None):
            report.discrepancies.append(Discrepancy(check, message, None, batch_id, expected, found))

        try:
            start = int(field(commitment, "sequence_start"))
            end = int(field(commitment, "sequence_end"))
            leaf_count = int(field(commitment, "leaf_count"))
            claimed_root = parse_hex(field(commitment, "merkle_root"), 32, "merkle_root")
            claimed_prev = parse_hex(field(commitment, "prev_state_root"), 32, "prev_state_root")
            claimed_new = parse_hex(field(commitment, "new_state_root"), 32, "new_state_root")
            commitment_stream = (parse_uuid(field(commitment, "tenant_id", str(context.tenant_id))),
                                 parse_uuid(field(commitment, "store_id", str(context.store_id))))
        except (VesError, TypeError, ValueError) as error:
            fail("commitment_format", f"Malformed commitment ({error})")
            return
        if commitment_stream != (context.tenant_id, context.store_id):
            fail("stream", "The commitment belongs to another stream")
        if start != expected_start:
            fail("commitment_contiguity",
                 "The first commitment must start at 1" if expected_start == 1 else
                 "A commitment must start right after the previous one ends", expected_start, start)
        if end < start:
            fail("commitment_range", "sequence_end is before sequence_start", f">= {start}", end)
            return
        if context.head is not None and end > context.head:
            fail("commitment_range", "The commitment covers events past the stream head",
                 f"<= {context.head}", end)
        expected_count = end - start + 1
        if leaf_count != expected_count:
            fail("leaf_count", "leaf_count is not sequence_end - sequence_start + 1", expected_count, leaf_count)
        padded = field(commitment, "padded_leaf_count")
        if padded is not None and padded != padded_leaf_count(expected_count):
            fail("padded_leaf_count", "padded_leaf_count is not the next power of two",
                 padded_leaf_count(expected_count), padded)
        depth = field(commitment, "tree_depth")
        if depth is not None and depth != tree_depth(expected_count):
            fail("tree_depth", "tree_depth is not log2(padded_leaf_count)", tree_depth(expected_count), depth)
        covered_to = context.range_to if context.range_to is not None else context.next_expected - 1
        if context.range_from <= start and end <= covered_to:
            missing = [number for number in range(start, end + 1) if number not in leaves]
            if missing:
                fail("merkle_root", "The root cannot be recomputed: covered events are missing or malformed",
                     f"events {start}..{end}", f"{len(missing)} missing, first {missing[0]}")
            else:
                recomputed_root = merkle_root([leaves[number] for number in range(start, end + 1)])
                if recomputed_root != claimed_root:
                    fail("merkle_root", "The root is not the one recomputed from the events' leaves",
                         to_hex(recomputed_root), to_hex(claimed_root))
        else:
            report.notes.append(f"commitment {batch_id}: events {start}..{end} are outside the bundle's range; "
                                "only its state-root chain was checked")
        if claimed_prev != expected_prev:
            fail("prev_state_root", "prev_state_root is not the previous commitment's new_state_root"
                 if expected_prev != ZERO_HASH else "The first commitment must chain from the zero state root",
                 to_hex(expected_prev), to_hex(claimed_prev))
        recomputed_new = state_root(context.stream_id, expected_prev, claimed_root, start, end, leaf_count)
        if recomputed_new != claimed_new:
            fail("new_state_root", "new_state_root is not the one recomputed from the chain",
                 to_hex(recomputed_new), to_hex(claimed_new))
        if chain_checker is not None:
            found = chain_checker(commitment, context.stream_id)
            if found is not None:
                report.discrepancies.append(found)
        expected_prev = recomputed_new
        expected_start = end + 1

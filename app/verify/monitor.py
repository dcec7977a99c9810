"""`ves-verify monitor`: follow streams' transparency logs from cron (LOG.md; docs/VERIFY.md "Monitoring the log").

Each run fetches each stream's latest signed checkpoint, verifies its signature under the log key, and, when the
state file already holds a checkpoint of that stream, demands the consistency proof from the held one to the new
one and verifies it locally. Only then is the new checkpoint written to the state file (atomically). A smaller
tree (`rollback`), another root at the same size or a proof that does not verify (`fork`), a changed log key
(`log_key`), the sequencer refusing with LOG_INTEGRITY (it found its own stored log altered), or, with
`--audit-events N`, a served event that is not the entry the log holds (`entry`, `inclusion`) is reported naming
the checkpoints, and the held checkpoint is kept, so every later run fails too until an operator looks.

State file (`format` "ves-log-monitor/1"): `{format, log_origin, log_public_key (hex, pinned on first use),
streams: {origin: {note, verifier_key, verified_at}}}`.

Exit codes: 0 every stream verified, 1 a fork/rewrite/key change found, 2 usage or I/O error (sequencer
unreachable, bad state file).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.client import SequencerAPIError
from app.client import SequencerClient
from app.client.log import LogVerificationError
from app.client.log import VerifiedCheckpoint
from app.client.log import expected_verifier_key
from app.ves import parse_hex
from app.ves import parse_uuid
from app.ves.checkpoint import stream_origin
from app.ves.checkpoint import stream_verifier

STATE_FORMAT = "ves-log-monitor/1"


class StateError(ValueError):
    """The state file cannot be read or is not a monitor state file."""


@dataclass(frozen=True)
class StreamRef:
    """A monitored stream: by tenant and store (authenticated paths) or by hex stream id (LOG_PUBLIC paths)."""

    tenant_id: str | None = None
    store_id: str | None = None
    stream_id_hex: str | None = None

    @classmethod
    def parse(cls, text: str) -> StreamRef:
        """`TENANT:STORE` (two UUIDs) or a 64-hex-digit stream id."""
        if ":" in text:
            tenant, _, store = text.partition(":")
            return cls(str(parse_uuid(tenant, "tenant")), str(parse_uuid(store, "store")))
        return cls(stream_id_hex=parse_hex(text, 32, "stream id").hex())

    def origin(self, log_origin: str) -> str:
        from app.ves.hashing import stream_id

        sid = bytes.fromhex(self.stream_id_hex) if self.stream_id_hex else stream_id(self.tenant_id, self.store_id)
        return stream_origin(log_origin, sid)


@dataclass
class Finding:
    origin: str
    ok: bool
    line: str


def load_state(path: Path) -> dict:
    if not path.exists():
        return {"format": STATE_FORMAT, "streams": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StateError(f"cannot read the state file {path} ({error})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not isinstance(state.get("streams"),
                                                                                            dict):
        raise StateError(f"{path} is not a {STATE_FORMAT} state file")
    return state


def save_state(path: Path, state: dict) -> None:
    """Write atomically (a temporary file in the same directory, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".monitor-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def held_checkpoint(state: dict, origin: str) -> VerifiedCheckpoint | None:
    record = state["streams"].get(origin)
    if record is None:
        return None
    try:
        return VerifiedCheckpoint.from_dict(record)
    except LogVerificationError as error:
        raise StateError(f"the state file's checkpoint of {origin} does not verify ({error.message})") from None


def run_monitor(client: SequencerClient, streams: list[StreamRef], state_path: Path,
                log_public_key: bytes | None = None, now: Callable[[], dt.datetime] | None = None,
                audit_events: int = 0, rng: random.Random | None = None) -> tuple[int, list[Finding]]:
    """One monitoring pass over `streams`; returns the exit code and one finding per stream. Raises StateError,
    SequencerAPIError (unreachable) for the caller to report as exit 2.

    `audit_events` > 0 (streams by tenant and store, read access): also read that many events of the new tree
    (the newest, the rest at random) through the read API and prove each one's own leaf hash in the new
    checkpoint, so a stored event changed after it was logged is found in time even where no proof the sequencer
    builds passes through it."""
    now = now or (lambda: dt.datetime.now(dt.timezone.utc))
    state = load_state(state_path)
    info = client.sequencer_info(refresh=True)
    log_origin = state.get("log_origin") or info.get("log_origin")
    pinned = state.get("log_public_key")
    key = log_public_key or (parse_hex(pinned, 32, "state log_public_key") if pinned else None)
    if key is None:
        key = parse_hex(info.get("log_public_key") or "", 32, "log_public_key")
    findings = []
    for stream in streams:
        findings.append(_check_stream(client, stream, log_origin, key, state, now, audit_events,
                                      rng or random.Random()))
    state["log_origin"] = log_origin
    state["log_public_key"] = key.hex()
    save_state(state_path, state)
    return (0 if all(f.ok for f in findings) else 1), findings


def _check_stream(client, stream: StreamRef, log_origin: str, key: bytes, state: dict, now, audit_events: int,
                  rng: random.Random) -> Finding:
    origin = stream.origin(log_origin)
    held = held_checkpoint(state, origin)
    if stream.stream_id_hex is not None:
        expected = stream_verifier(origin, key).verifier_key
    else:
        expected = expected_verifier_key(log_origin, key, stream.tenant_id, stream.store_id)
    held_text = held.describe() if held is not None else "none"
    new = None
    try:
        if stream.stream_id_hex is not None:
            new = client.public_log_checkpoint(stream.stream_id_hex, expected)
        else:
            new = client.log_checkpoint(stream.tenant_id, stream.store_id, expected)
        if held is not None:
            client.log_consistency(stream.tenant_id, stream.store_id, held, new, stream.stream_id_hex)
        if audit_events and stream.stream_id_hex is None:
            _audit_events(client, stream, new, audit_events, rng)
    except LogVerificationError as error:
        served = f"; served checkpoint: {new.describe()}" if new is not None else ""
        return Finding(origin, False, f"FORK {origin}: {error.check}: {error.message}; held checkpoint: "
                                      f"{held_text}{served}{_notes(held, 'held')}{_notes(new, 'served')}")
    except SequencerAPIError as error:
        if error.code != "LOG_INTEGRITY":
            raise
        return Finding(origin, False, f"FORK {origin}: the sequencer refuses to prove its log (LOG_INTEGRITY: "
                                      f"{error.message}); held checkpoint: {held_text}{_notes(held, 'held')}")
    state["streams"][origin] = {**new.to_dict(), "verified_at": now().isoformat()}
    if held is None:
        return Finding(origin, True, f"ok {origin}: first checkpoint recorded: {new.describe()}")
    return Finding(origin, True, f"ok {origin}: {held.tree_size} -> {new.tree_size} consistent ({new.describe()})")


def _audit_events(client, stream: StreamRef, checkpoint: VerifiedCheckpoint, count: int, rng: random.Random) -> None:
    size = checkpoint.tree_size
    if size == 0:
        return
    chosen = {size} | set(rng.sample(range(1, size + 1), min(count, size) - 1)) if count > 1 else {size}
    for number in sorted(chosen):
        page = client.events(stream.tenant_id, stream.store_id, from_=number, limit=1)
        events = page["events"]
        if not events or events[0].get("sequence_number") != number:
            raise LogVerificationError("entry", f"Event {number} is not served, yet the signed log holds it "
                                                f"({checkpoint.describe()})")
        try:
            client.verify_event_in_log(events[0], checkpoint)
        except LogVerificationError as error:
            raise LogVerificationError(error.check, f"The served event {number} is not the one the log holds: "
                                                    f"{error.message}") from None


def _notes(checkpoint: VerifiedCheckpoint | None, which: str) -> str:
    if checkpoint is None:
        return ""
    return f"\n--- {which} checkpoint (signed note) ---\n" + checkpoint.note.decode("utf-8", "replace").rstrip("\n")

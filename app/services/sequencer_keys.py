"""Receipt-signing key versions (docs/KEYS.md): what `GET /api/v1/ves/sequencer` lists and what
`stateset-sequencer-admin retire-sequencer-key` changes."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db import sequencer_keys as store
from app.db.sequencer_keys import SequencerKeyRecord
from app.errors import NotFound
from app.services.ingest import ReceiptSigner


@dataclass(frozen=True)
class SequencerKeyVersion:
    """One version: valid for receipts sequenced from `valid_from` until `valid_until` (the next version's
    `valid_from`; None for the newest), and never at or after `retired_at` (a compromise cutoff)."""

    version: int
    public_key: bytes
    valid_from: datetime.datetime
    valid_until: datetime.datetime | None
    retired_at: datetime.datetime | None
    current: bool


@dataclass(frozen=True)
class SequencerInfo:
    sequencer_id: str
    signature_alg: str
    public_key: bytes | None
    key_version: int
    keys: list[SequencerKeyVersion]


def versions_of(records: list[SequencerKeyRecord], current: int) -> list[SequencerKeyVersion]:
    ordered = sorted(records, key=lambda r: r.version)
    return [SequencerKeyVersion(r.version, r.public_key, r.valid_from,
                                ordered[i + 1].valid_from if i + 1 < len(ordered) else None, r.retired_at,
                                r.version == current)
            for i, r in enumerate(ordered)]


def sequencer_info(engine: Engine, signer: ReceiptSigner) -> SequencerInfo:
    """The running key (registered if new) and every version this deployment has used. A retired running key is
    still described (its `retired_at` says so)."""
    try:
        current = signer.key_version(engine)
    except Exception:  # noqa: BLE001 - RECEIPT_KEY_RETIRED: describe it anyway
        current = signer.cached_version or 0
    with engine.connect() as conn:
        records = store.list_keys(conn)
    return SequencerInfo(signer.sequencer_id, signer.signature_alg, signer.public_key, current,
                         versions_of(records, current))


def register_running_key(engine: Engine, signer: ReceiptSigner) -> int:
    """Start-up: register the running key (a new version when it changed). Raises RECEIPT_KEY_RETIRED."""
    return signer.key_version(engine)


def retire_key(engine: Engine, version: int, cutoff: datetime.datetime) -> SequencerKeyRecord:
    """Receipts of `version` sequenced at or after `cutoff` are no longer trusted (an earlier cutoff is kept).

    :raise NotFound: no such version.
    """
    with engine.begin() as conn:
        record = store.retire(conn, version, cutoff)
    if record is None:
        raise NotFound(f"No sequencer key version {version}.")
    return record


def list_versions(engine: Engine) -> list[SequencerKeyVersion]:
    with engine.connect() as conn:
        return versions_of(store.list_keys(conn), 0)

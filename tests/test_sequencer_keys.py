"""Receipt key versions (issue 11 item 4, docs/KEYS.md): rotating VES_SEQUENCER_SIGNING_KEY registers a new version,
receipts name the version that signed them, GET /api/v1/ves/sequencer lists every version, old history still
verifies, and retiring a version from a cutoff makes the SDK and ves-verify refuse its receipts after it."""

from __future__ import annotations

import datetime
import os
import uuid

import pytest

from app.cli import main as admin
from app.client import receipt_is_valid
from app.client import receipt_keys
from app.ves import Ed25519Signer
from tests.controls import Stream


def _served(stream: Stream) -> list[dict]:
    return stream.events()["events"]


def _instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def rotated(make_app, engine):
    """Two events signed by key A, then (a restart with a new key) one by key B, in one stream."""
    seed_a, seed_b = os.urandom(32), os.urandom(32)
    first = make_app(sequencer_signing_key=seed_a).test_client()
    stream = Stream(first, engine)
    before = stream.ingest([stream.event("a")])["receipts"] + stream.ingest([stream.event("b")])["receipts"]
    second = make_app(sequencer_signing_key=seed_b).test_client()
    stream.client = second
    after = stream.ingest([stream.event("c")])["receipts"]
    return stream, seed_a, seed_b, before + after


def test_each_receipt_names_its_key_version_and_every_version_is_listed(rotated):
    stream, seed_a, seed_b, receipts = rotated
    info = stream.client.get("/api/v1/ves/sequencer").json
    by_key = {k["public_key"]: k for k in info["keys"]}
    version_a = by_key[Ed25519Signer(seed_a).public_key.hex()]
    version_b = by_key[Ed25519Signer(seed_b).public_key.hex()]
    assert version_a["version"] < version_b["version"]
    assert info["key_version"] == version_b["version"] and version_b["current"] and not version_a["current"]
    assert info["public_key"] == version_b["public_key"]
    assert version_a["valid_until"] is not None and _instant(version_a["valid_until"]) <= _instant(
        version_b["valid_from"])
    assert version_b["valid_until"] is None and version_a["retired_at"] is None
    assert [r["sequencerKeyVersion"] for r in receipts] == [version_a["version"]] * 2 + [version_b["version"]]
    assert all(r["receiptSignatureScheme"] == 1 for r in receipts)
    served = _served(stream)
    assert [e["sequencer_receipt"]["sequencer_key_version"] for e in served] == [r["sequencerKeyVersion"]
                                                                                   for r in receipts]


def test_after_rotation_the_old_history_still_verifies_against_its_own_version(rotated):
    stream, _, _, _ = rotated
    keys = receipt_keys(stream.client.get("/api/v1/ves/sequencer").json)
    served = _served(stream)
    assert all(receipt_is_valid(e["sequencer_receipt"], e, keys) for e in served)
    current = keys[max(keys)].public_key
    assert [receipt_is_valid(e["sequencer_receipt"], e, current) for e in served] == [False, False, True]
    relabelled = {**served[0]["sequencer_receipt"], "sequencer_key_version": served[2]["sequencer_receipt"][
        "sequencer_key_version"]}
    assert not receipt_is_valid(relabelled, served[0], keys)
    unknown = {**served[0]["sequencer_receipt"], "sequencer_key_version": 2**31}
    assert not receipt_is_valid(unknown, served[0], keys)


def test_retiring_a_version_from_a_cutoff_refuses_its_receipts_after_it(rotated, make_app, database_url, monkeypatch,
                                                                         capsys):
    stream, seed_a, _, _ = rotated
    served = _served(stream)
    version = served[0]["sequencer_receipt"]["sequencer_key_version"]
    cutoff = _instant(served[1]["sequenced_at"])
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert admin(["retire-sequencer-key", "--version", str(version), "--from", cutoff.isoformat()]) == 0
    assert f"version {version} retired" in capsys.readouterr().out
    info = stream.client.get("/api/v1/ves/sequencer").json
    retired = next(k for k in info["keys"] if k["version"] == version)
    assert _instant(retired["retired_at"]) == cutoff
    keys = receipt_keys(info)
    assert [receipt_is_valid(e["sequencer_receipt"], e, keys) for e in served] == [True, False, True]
    later = (cutoff + datetime.timedelta(days=1)).isoformat()
    assert admin(["retire-sequencer-key", "--version", str(version), "--from", later]) == 0  # never moves later
    assert _instant(next(k for k in stream.client.get("/api/v1/ves/sequencer").json["keys"]
                         if k["version"] == version)["retired_at"]) == cutoff
    assert admin(["retire-sequencer-key", "--version", str(2**31 - 1), "--from", later]) == 1

    # A server still running the retired key refuses to sign rather than issue untrusted receipts.
    old = Stream(make_app(sequencer_signing_key=seed_a).test_client(), stream_engine(stream))
    response = old.client.post("/api/v1/ves/events/ingest", json={"events": [old.event("z")]}, headers=old.headers)
    assert response.status_code == 503 and response.json["code"] == "RECEIPT_KEY_RETIRED"


def stream_engine(stream: Stream):
    return stream.engine


def test_an_unsigned_sequencer_has_key_version_0(make_app, engine):
    stream = Stream(make_app(sequencer_signing_key=None).test_client(), engine)
    receipt = stream.ingest([stream.event()])["receipts"][0]
    assert receipt["sequencerKeyVersion"] == 0 and "receiptSignatureScheme" not in receipt
    assert uuid.UUID(receipt["sequencerId"])


def test_start_up_registers_the_key_and_refuses_a_retired_one(settings, engine, capsys):
    from app.serving import register_receipt_key
    from app.services.sequencer_keys import list_versions
    from app.services.sequencer_keys import retire_key

    seed = os.urandom(32)
    public_key = Ed25519Signer(seed).public_key
    configured = settings.replace(sequencer_signing_key=seed)
    register_receipt_key(engine, configured)
    register_receipt_key(engine, configured)  # the same key keeps its version
    versions = [v for v in list_versions(engine) if v.public_key == public_key]
    assert len(versions) == 1
    retire_key(engine, versions[0].version, datetime.datetime.now(datetime.timezone.utc))
    with pytest.raises(SystemExit) as exited:
        register_receipt_key(engine, configured)
    assert exited.value.code == 2 and "VES_SEQUENCER_SIGNING_KEY" in capsys.readouterr().err

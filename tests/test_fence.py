"""The post-restore fence on the normal test database (docs/RESTORE.md "The fence"); the restore itself is in
tests/deploy/test_restore_fence.py.

`events` is append-only, so "a database restored behind what was published" is built the other way round: a stream
holds events 1..4, and what was published (the watermark, the export bundle) also has 5 and 6, made with the same
agent key and the receipt hashes the sequencer gives them. Fencing, refusal, heal, divergence and declare-loss then
run exactly as after a real restore."""

from __future__ import annotations

import datetime
import json
import logging
import uuid

import pytest
import sqlalchemy as sa

from app.cli import main as admin_main
from app.services import fence
from app.services.heal import heal_from_bundle
from app.services.ingest import ReceiptSigner
from app.services.ingest import ReplayDiverged
from app.ves import hashing
from app.ves.encoding import to_hex
from tests.controls import Stream



def plain(hex_value: str) -> str:
    """A hash in the plain form responses use (issue 11); exports written by tests may carry `0x`."""
    return hex_value.removeprefix("0x")

def served(stream: Stream) -> list[dict]:
    return stream.events(limit=1000)["events"]


def synthesized(stream: Stream, first: int, count: int, sequenced_at: str) -> list[dict]:
    """Events `first..first+count-1` as GET /ves/events would have served them had they been sequenced."""
    out = []
    for number in range(first, first + count):
        envelope = stream.event(f"order-{number}", {"n": number})
        signing_hash = hashing.event_signing_hash(hashing.EventSigningFields.from_envelope(envelope))
        receipt_hash = hashing.receipt_hash(stream.tenant_id, stream.store_id, uuid.UUID(envelope["event_id"]),
                                            number, signing_hash)
        out.append({**envelope, "event_signing_hash": to_hex(signing_hash), "sequence_number": number,
                    "sequenced_at": sequenced_at, "entity_version": 1,
                    "sequencer_receipt": {"event_id": envelope["event_id"], "sequence_number": number,
                                          "sequenced_at": sequenced_at, "receipt_hash": to_hex(receipt_hash)}})
    return out


def bundle_of(stream: Stream, events: list[dict]) -> dict:
    keys = stream.client.get(f"/api/v1/agents/keys?tenant_id={stream.tenant_id}", headers=stream.headers).json
    return {"format": "ves-audit-bundle/1", "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
            "events": events, "agent_keys": keys["keys"], "commitments": []}


def watermark_of(stream: Stream, last: dict) -> list[fence.Published]:
    return fence.parse_watermark({"format": fence.WATERMARK_FORMAT, "streams": [{
        "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
        "head_sequence": last["sequence_number"], "receipt_hash": last["sequencer_receipt"]["receipt_hash"]}]})


@pytest.fixture
def behind(client, engine):
    """A stream holding 1..4 while 5 and 6 were published; fenced from the watermark."""
    stream = Stream(client, engine)
    stream.ingest([stream.event(f"order-{n}", {"n": n}) for n in range(1, 5)])
    missing = synthesized(stream, 5, 2, "2026-12-01T10:00:00.123456Z")
    report = fence.fence_streams(engine, watermark_of(stream, missing[-1]), actor="test")
    assert [(v.status, v.database_head, v.published_sequence) for v in report.verdicts] == [("fenced", 4, 6)]
    return stream, served(stream) + missing


def test_writes_to_a_stream_behind_the_watermark_are_refused_503_and_other_streams_write(behind, client, engine):
    stream, _ = behind
    response = client.post("/api/v1/ves/events/ingest", headers=stream.headers,
                           json={"agentId": str(stream.agent_id), "events": [stream.event("late")]})
    assert response.status_code == 503 and response.json["code"] == "STREAM_FENCED", response.json
    assert int(response.headers["Retry-After"]) >= 1
    assert "docs/RESTORE.md" in response.json["error"]
    assert stream.events()["head_sequence"] == 4
    unsigned = client.post("/api/v1/events/ingest", headers=stream.headers, json={"events": [{
        "event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
        "entity_type": "o", "entity_id": "1", "event_type": "t", "payload": {}}]})
    assert unsigned.status_code == 503 and unsigned.json["code"] == "STREAM_FENCED"
    commit = client.post("/api/v1/ves/commitments", headers=stream.headers,
                         json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)})
    assert commit.status_code == 503 and commit.json["code"] == "STREAM_FENCED"
    other = Stream(client, engine)
    assert other.ingest([other.event("fine")])["headSequence"] == 1
    same_tenant_other_store = stream.ingest([stream.event("x", store_id=uuid.uuid4())])
    assert same_tenant_other_store["eventsAccepted"] == 1


def test_fencing_is_idempotent_and_a_stream_at_the_watermark_is_ok(behind, client, engine):
    stream, published = behind
    again = fence.fence_streams(engine, watermark_of(stream, published[5]))
    assert [v.status for v in again.verdicts] == ["fenced"]
    level = fence.fence_streams(engine, watermark_of(stream, published[3]))
    assert [v.status for v in level.verdicts] == ["fenced"], "a lower watermark never lifts a higher fence"
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text(
            "SELECT action FROM fence_audit WHERE tenant_id = :t ORDER BY audit_id"), {"t": stream.tenant_id})]
    assert actions == ["fenced", "fenced", "fenced"]
    fresh = Stream(client, engine)
    fresh.ingest([fresh.event("a")])
    assert [v.status for v in fence.fence_streams(engine, watermark_of(fresh, served(fresh)[-1])).verdicts] == ["ok"]


def test_heal_replays_the_missing_events_to_identical_receipts_and_lifts_the_fence(behind, engine, settings):
    stream, published = behind
    signer = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    report = heal_from_bundle(engine, settings, signer, bundle_of(stream, published), actor="test")
    assert (report.head_before, report.head_after, report.events_replayed, report.fence) == (4, 6, 2, "lifted")
    now = served(stream)
    assert [(e["sequence_number"], plain(e["sequencer_receipt"]["receipt_hash"])) for e in now] == \
        [(e["sequence_number"], plain(e["sequencer_receipt"]["receipt_hash"])) for e in published]
    assert now[4]["sequenced_at"] == "2026-12-01T10:00:00.123456Z", "the original sequenced_at comes back"
    assert signer.sign(bytes.fromhex(plain(now[5]["sequencer_receipt"]["receipt_hash"]))).hex() == \
        now[5]["sequencer_receipt"]["sequencer_signature"].removeprefix("0x")
    assert stream.ingest([stream.event("after")])["headSequence"] == 7
    again = heal_from_bundle(engine, settings, signer, bundle_of(stream, published))
    assert again.events_replayed == 0
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text(
            "SELECT action FROM fence_audit WHERE tenant_id = :t ORDER BY audit_id"), {"t": stream.tenant_id})]
    assert actions == ["fenced", "healed"]


def test_a_replay_that_would_change_a_receipt_writes_nothing(behind, engine, settings):
    stream, published = behind
    forged = [dict(e) for e in published]
    forged[4] = {**forged[4], "sequencer_receipt": {**forged[4]["sequencer_receipt"],
                                                    "receipt_hash": "0x" + "11" * 32}}
    signer = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    with pytest.raises(ReplayDiverged):
        heal_from_bundle(engine, settings, signer, bundle_of(stream, forged))
    assert stream.events()["head_sequence"] == 4


def test_other_events_than_the_published_ones_leave_the_stream_diverged(behind, client, engine, settings):
    """A self-consistent export of other events (not what the watermark saw) heals nothing: STREAM_DIVERGED."""
    stream, published = behind
    other = served(stream) + synthesized(stream, 5, 2, "2026-12-01T11:00:00Z")
    signer = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    report = heal_from_bundle(engine, settings, signer, bundle_of(stream, other))
    assert (report.head_after, report.fence) == (6, "diverged")
    response = client.post("/api/v1/ves/events/ingest", headers=stream.headers,
                           json={"agentId": str(stream.agent_id), "events": [stream.event("late")]})
    assert response.status_code == 503 and response.json["code"] == "STREAM_DIVERGED"
    with pytest.raises(fence.StreamDiverged):
        heal_from_bundle(engine, settings, signer,
                         bundle_of(stream, other + synthesized(stream, 7, 1, "2026-12-01T11:00:01Z")))


def test_declare_loss_lifts_the_fence_audited_and_logged_without_secrets(behind, engine, settings, monkeypatch,
                                                                        capsys):
    stream, _ = behind
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VES_SEQUENCER_SIGNING_KEY", "00" * 32)
    assert admin_main(["declare-loss", "--tenant", str(stream.tenant_id), "--store", str(stream.store_id),
                       "--reason", "  "]) == 1
    assert "reason is required" in capsys.readouterr().err
    assert admin_main(["declare-loss", "--tenant", str(stream.tenant_id), "--store", str(stream.store_id),
                       "--reason", "restore to 10:00 after disk loss; clients re-send", "--operator", "alice"]) == 0
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{\"")]
    logged = [line for line in lines if line.get("message") == "stream loss declared"]
    assert logged and logged[0]["events_lost"] == 2 and logged[0]["actor"] == "alice"
    assert "00" * 32 not in out and settings.database_url.split("@")[0] not in out
    result = json.loads(out[out.rindex("\n{") + 1:] if "\n{" in out else out)
    assert (result["database_head"], result["published_sequence"], result["events_lost"]) == (4, 6, 2)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT actor, reason, published_sequence, database_head FROM fence_audit "
                                   "WHERE tenant_id = :t AND action = 'loss_declared'"),
                           {"t": stream.tenant_id}).one()
    assert tuple(row) == ("alice", "restore to 10:00 after disk loss; clients re-send", 6, 4)
    assert stream.ingest([stream.event("resumed")])["headSequence"] == 5
    assert admin_main(["declare-loss", "--tenant", str(stream.tenant_id), "--store", str(stream.store_id),
                       "--reason", "again"]) == 1
    assert "not fenced" in capsys.readouterr().err


def test_watermark_export_and_fence_cli_round_trip(client, engine, settings, monkeypatch, capsys, tmp_path):
    stream = Stream(client, engine)
    stream.ingest([stream.event(f"o{n}") for n in range(3)])
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    for name in ("L2_RPC_URL", "SET_REGISTRY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "watermark.json"
    assert admin_main(["export-watermark", "--out", str(path)]) == 0
    document = json.loads(path.read_text())
    ours = [s for s in document["streams"] if s["tenant_id"] == str(stream.tenant_id)]
    assert ours == [{"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id), "head_sequence": 3,
                     "receipt_hash": "0x" + plain(served(stream)[-1]["sequencer_receipt"]["receipt_hash"])}]
    capsys.readouterr()
    document["streams"] = ours[:1]
    document["streams"][0]["head_sequence"] = 5
    path.write_text(json.dumps(document))
    assert admin_main(["fence", "--watermark", str(path), "--operator", "bob"]) == 3
    report = _last_json_text(capsys.readouterr().out)
    assert report["sources"] == [f"watermark:{path}"] and report["fenced"] == 1
    assert report["streams"] == [{"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
                                  "status": "fenced", "database_head": 3, "published_sequence": 5,
                                  "sources": "watermark", "detail": "the database head 3 is behind the published 5"}]
    assert admin_main(["list-fences"]) == 0
    listed = _last_json_text(capsys.readouterr().out)
    assert {"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id), "code": "STREAM_FENCED",
            "database_head": 3, "published_sequence": 5, "sources": "watermark"} in listed
    path.write_text("{}")
    assert admin_main(["import-watermark", "--watermark", str(path)]) == 1
    assert "Not a head watermark" in capsys.readouterr().err
    assert admin_main(["fence", "--no-chain"]) == 1
    assert "nothing to compare with" in capsys.readouterr().err
    fence.declare_loss(engine, stream.tenant_id, stream.store_id, "test cleanup", "test")


def _last_json_text(out: str):
    start = max(out.rfind("\n["), out.rfind("\n{"))
    return json.loads(out[start + 1:] if start >= 0 else out)


def test_the_fence_check_is_one_primary_key_lookup(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(sa.text(
            "EXPLAIN SELECT code FROM stream_fences WHERE tenant_id = :t AND store_id = :s"),
            {"t": uuid.uuid4(), "s": uuid.uuid4()}))
    assert "Index Scan using pk_stream_fences" in plan, plan


def test_the_openapi_document_names_the_fence_codes_on_the_ingest_503(client):
    document = client.get("/api/openapi.json").json
    assert "STREAM_FENCED" in document["components"]["responses"]["Error503"]["description"]
    assert "STREAM_DIVERGED" in document["components"]["responses"]["Error503"]["description"]
    ingest = document["paths"]["/api/v1/ves/events/ingest"]["post"]["responses"]
    assert ingest["503"] == {"$ref": "#/components/responses/Error503"}


def test_unsigned_events_heal_too_and_a_malformed_bundle_is_refused(client, engine, settings):
    import datetime as dt

    from app.services.envelopes import parse_unsigned_event
    from app.services.heal import InvalidBundle
    from tests.controls import api_key
    from tests.controls import auth

    tenant, store, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key = auth(api_key(engine, tenant, "read_write"))

    def raw(n):
        return {"event_id": str(uuid.uuid4()), "tenant_id": str(tenant), "store_id": str(store), "entity_type": "o",
                "entity_id": f"e{n}", "event_type": "t", "payload": {"n": n}, "created_at": "2026-12-01T09:00:00.000Z"}

    response = client.post("/api/v1/events/ingest", headers=key,
                           json={"agent_id": str(agent), "events": [raw(n) for n in range(1, 4)]})
    assert response.status_code == 200, response.json
    page = client.get(f"/api/v1/ves/events?tenant_id={tenant}&store_id={store}", headers=key).json["events"]
    missing = []
    for number in (4, 5):
        event = raw(number)
        parsed = parse_unsigned_event(event, 0, agent, 1 << 20, dt.datetime.now(dt.timezone.utc))
        receipt = hashing.receipt_hash(tenant, store, parsed.event_id, number, parsed.event_signing_hash)
        missing.append({**event, "source_agent_id": str(agent), "agent_key_id": 0, "agent_signature": None,
                        "sequence_number": number, "sequencer_receipt": {
                            "sequenced_at": "2026-12-01T10:00:00Z", "receipt_hash": to_hex(receipt)}})
    published = page + missing
    watermark = fence.parse_watermark({"format": fence.WATERMARK_FORMAT, "streams": [{
        "tenant_id": str(tenant), "store_id": str(store), "head_sequence": 5,
        "receipt_hash": missing[-1]["sequencer_receipt"]["receipt_hash"]}]})
    assert [v.status for v in fence.fence_streams(engine, watermark).verdicts] == ["fenced"]
    signer = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    bundle = {"format": "ves-audit-bundle/1", "tenant_id": str(tenant), "store_id": str(store),
              "events": published, "agent_keys": [], "commitments": []}
    for broken in ({**bundle, "format": "x"}, {**bundle, "events": [{**published[0], "sequence_number": "1"}]},
                   {**bundle, "events": published[:2] + published[3:]}):
        with pytest.raises(InvalidBundle):
            heal_from_bundle(engine, settings, signer, broken)
    report = heal_from_bundle(engine, settings, signer, bundle)
    assert (report.events_replayed, report.fence) == (2, "lifted")
    healed = client.get(f"/api/v1/ves/events?tenant_id={tenant}&store_id={store}", headers=key).json["events"]
    assert [plain(e["sequencer_receipt"]["receipt_hash"]) for e in healed] == \
        [plain(e["sequencer_receipt"]["receipt_hash"]) for e in published]


def test_heal_refuses_to_sign_with_another_key_than_the_bundles(behind, engine, settings):
    from app.services.heal import HealRefused

    stream, published = behind
    bundle = {**bundle_of(stream, published), "sequencer": {"public_key": "0x" + "ab" * 32}}
    for signer in (ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key),
                   ReceiptSigner(settings.sequencer_id, None)):
        with pytest.raises(HealRefused, match="another sequencer key"):
            heal_from_bundle(engine, settings, signer, bundle)
    assert stream.events()["head_sequence"] == 4
    ours = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    bundle["sequencer"]["public_key"] = to_hex(ours.public_key)
    assert heal_from_bundle(engine, settings, ours, bundle).fence == "lifted"


def test_an_exported_log_checkpoint_is_compared_with_the_restored_log(client, engine):
    from app.db import stream_logs as log_store
    from app.services.stream_logs import tree_root

    stream = Stream(client, engine)
    stream.ingest([stream.event(f"o{n}") for n in range(4)])
    with engine.begin() as conn:
        root = tree_root(conn, stream.tenant_id, stream.store_id, 3)
        log_store.insert_checkpoint(conn, stream.tenant_id, stream.store_id, 3, root, "test note\n",
                                    datetime.datetime.now(datetime.timezone.utc))
    exported = [e for e in fence.export_watermark(engine, "seq")["streams"]
                if e["tenant_id"] == str(stream.tenant_id)]
    assert exported[0]["checkpoint"] == {"tree_size": 3, "root_hash": to_hex(root), "note": "test note\n"}
    document = {"format": fence.WATERMARK_FORMAT, "streams": exported}
    assert [v.status for v in fence.fence_streams(engine, fence.parse_watermark(document)).verdicts] == ["ok"]
    exported[0]["checkpoint"]["root_hash"] = "0x" + "22" * 32
    verdict = fence.fence_streams(engine, fence.parse_watermark(document)).verdicts[0]
    assert verdict.status == "diverged" and "exported checkpoint" in verdict.detail
    response = stream.client.post("/api/v1/ves/events/ingest", headers=stream.headers,
                                  json={"agentId": str(stream.agent_id), "events": [stream.event("late")]})
    assert response.status_code == 503 and response.json["code"] == "STREAM_DIVERGED"
    fence.declare_loss(engine, stream.tenant_id, stream.store_id, "test cleanup", "test")


def test_heal_cli_needs_the_receipt_key_and_reads_the_bundle_file(behind, settings, monkeypatch, capsys, tmp_path):
    stream, published = behind
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.delenv("VES_SEQUENCER_SIGNING_KEY", raising=False)
    monkeypatch.delenv("ALLOW_UNSIGNED_RECEIPTS", raising=False)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle_of(stream, published)))
    with pytest.raises(SystemExit) as exit_info:
        admin_main(["heal", "--bundle", str(path)])
    assert exit_info.value.code == 2 and "VES_SEQUENCER_SIGNING_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("VES_SEQUENCER_SIGNING_KEY", settings.sequencer_signing_key.hex())
    assert admin_main(["heal", "--bundle", str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert admin_main(["heal", "--bundle", str(path), "--operator", "carol"]) == 0
    report = _last_json_text(capsys.readouterr().out)
    assert (report["head_after"], report["fence"]) == (6, "lifted")


def test_a_bundle_event_of_another_stream_is_refused(behind, engine, settings):
    from app.services.heal import InvalidBundle

    stream, published = behind
    elsewhere = synthesized(stream, 5, 1, "2026-12-01T10:00:00Z")[0]
    other_store = str(uuid.uuid4())
    moved = stream.event("order-5", {"n": 5}, store_id=other_store)
    forged = published[:4] + [{**elsewhere, **moved}] + published[5:]
    signer = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    with pytest.raises(InvalidBundle, match="another stream"):
        heal_from_bundle(engine, settings, signer, bundle_of(stream, forged))
    assert stream.events()["head_sequence"] == 4


def test_a_stream_the_restore_forgot_entirely_is_fenced_from_the_watermark(client, engine):
    stream = Stream(client, engine)
    document = {"format": fence.WATERMARK_FORMAT, "streams": [{
        "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id), "head_sequence": 3,
        "receipt_hash": "0x" + "33" * 32}]}
    verdict = fence.fence_streams(engine, fence.parse_watermark(document)).verdicts[0]
    assert (verdict.status, verdict.database_head, verdict.published_sequence) == ("fenced", 0, 3)
    response = client.post("/api/v1/ves/events/ingest", headers=stream.headers,
                           json={"agentId": str(stream.agent_id), "events": [stream.event("first")]})
    assert response.status_code == 503 and response.json["code"] == "STREAM_FENCED"
    assert stream.events()["head_sequence"] == 0
    fence.declare_loss(engine, stream.tenant_id, stream.store_id, "test cleanup", "test")
    assert stream.ingest([stream.event("first")])["headSequence"] == 1


def test_heal_every_fenced_stream_from_a_directory_of_exports(behind, client, engine, settings, monkeypatch, capsys,
                                                             tmp_path):
    stream, published = behind
    other = Stream(client, engine)
    document = {"format": fence.WATERMARK_FORMAT, "streams": [{
        "tenant_id": str(other.tenant_id), "store_id": str(other.store_id), "head_sequence": 2,
        "receipt_hash": "0x" + "44" * 32}]}
    fence.fence_streams(engine, fence.parse_watermark(document))
    (tmp_path / f"{stream.tenant_id}-{stream.store_id}.json").write_text(json.dumps(bundle_of(stream, published)))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VES_SEQUENCER_SIGNING_KEY", settings.sequencer_signing_key.hex())
    assert admin_main(["heal"]) == 1 and "--bundle FILE" in capsys.readouterr().err
    assert admin_main(["heal", "--exports", str(tmp_path)]) == 3
    results = {(r["tenant_id"], r["store_id"]): r for r in _last_json_text(capsys.readouterr().out)}
    assert results[(str(stream.tenant_id), str(stream.store_id))]["fence"] == "lifted"
    missing = results[(str(other.tenant_id), str(other.store_id))]
    assert missing["fence"] == "still_fenced" and "no export at" in missing["error"]
    fence.declare_loss(engine, other.tenant_id, other.store_id, "test cleanup", "test")

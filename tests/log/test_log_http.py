"""The LOG.md endpoints over HTTP (Flask test client, real PostgreSQL): checkpoints with `X-Log-Vkey`, inclusion and
consistency proofs checked against the served checkpoint and against the events themselves, the defaults and
out-of-range answers LOG.md fixes, authorisation, the LOG_PUBLIC paths, the sequencer view, disabled and unfinished
logs."""

from __future__ import annotations

import base64
import uuid

from app.services import stream_logs as service
from app.ves import checkpoint as cp
from app.ves import tlog
from app.ves.hashing import stream_id
from app.ves.note import NoteVerifier
from tests.commitments.event_rows import append_events
from tests.controls import api_key
from tests.controls import auth
from tests.log.conftest import entries_from_events
from tests.log.conftest import naive_root


def fetch_checkpoint(client, stream, headers=None):
    response = client.get(f"/api/v1/ves/log/checkpoint?{stream.query}", headers=headers or stream.headers)
    assert response.status_code == 200, response.get_data()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    verifier = NoteVerifier.parse(response.headers["X-Log-Vkey"])
    return cp.open_checkpoint(response.get_data(), verifier).checkpoint, response


def test_checkpoint_is_the_signed_note_of_the_stream_under_its_own_verifier_key(client, engine, log_key, log_stream):
    empty, response = fetch_checkpoint(client, log_stream)
    assert (empty.tree_size, empty.root_hash) == (0, tlog.EMPTY_ROOT)
    assert response.headers["X-Log-Vkey"] == log_key.verifier_key(log_stream.tenant_id, log_stream.store_id)
    assert empty.origin == f"sequencer.test/ves/{stream_id(log_stream.tenant_id, log_stream.store_id).hex()}"
    log_stream.add(13)
    checkpoint, response = fetch_checkpoint(client, log_stream)
    entries = entries_from_events(engine, log_stream.tenant_id, log_stream.store_id)
    assert checkpoint.tree_size == 13 and checkpoint.root_hash == naive_root(entries)
    text = response.get_data(as_text=True)
    assert text.startswith(f"{checkpoint.origin}\n13\n{base64.b64encode(checkpoint.root_hash).decode()}\n\n— ")


def test_inclusion_proofs_verify_against_the_served_checkpoint_for_every_entry_and_size(client, engine, log_stream):
    log_stream.add(11)
    checkpoint, _ = fetch_checkpoint(client, log_stream)
    entries = entries_from_events(engine, log_stream.tenant_id, log_stream.store_id)
    for number in range(1, 12):
        body = client.get(f"/api/v1/ves/log/inclusion/{number}?{log_stream.query}", headers=log_stream.headers).json
        assert body["tree_size"] == 11 and body["leaf_index"] == number - 1
        assert body["entry"] == entries[number - 1].hex()
        assert body["leaf_hash"] == tlog.hash_leaf(entries[number - 1]).hex()
        proof = [bytes.fromhex(node) for node in body["proof"]]
        assert tlog.verify_inclusion(number - 1, 11, bytes.fromhex(body["leaf_hash"]), proof, checkpoint.root_hash)
        for size in range(number, 12):
            body = client.get(f"/api/v1/ves/log/inclusion/{number}?{log_stream.query}&tree_size={size}",
                              headers=log_stream.headers).json
            assert tlog.verify_inclusion(number - 1, size, tlog.hash_leaf(entries[number - 1]),
                                         [bytes.fromhex(n) for n in body["proof"]], naive_root(entries[:size]))


def test_consistency_proofs_verify_for_every_pair_and_are_empty_from_zero_or_to_the_same_size(client, engine,
                                                                                              log_stream):
    log_stream.add(10)
    fetch_checkpoint(client, log_stream)
    entries = entries_from_events(engine, log_stream.tenant_id, log_stream.store_id)
    for first in range(0, 11):
        for second in range(first, 11):
            response = client.get(f"/api/v1/ves/log/consistency?{log_stream.query}&first={first}&second={second}",
                                  headers=log_stream.headers)
            assert response.status_code == 200, response.json
            body = response.json
            assert (body["first"], body["second"]) == (first, second)
            proof = [bytes.fromhex(node) for node in body["proof"]]
            if first in (0, second):
                assert proof == []
            assert tlog.verify_consistency(first, second, proof, naive_root(entries[:first]),
                                           naive_root(entries[:second]))


def test_out_of_range_numbers_are_answered_exactly_as_log_md_says(client, log_stream):
    q, headers = log_stream.query, log_stream.headers

    def status(url):
        response = client.get(url, headers=headers)
        return response.status_code, (response.json or {}).get("code")

    assert status(f"/api/v1/ves/log/inclusion/1?{q}") == (400, "LOG_RANGE")  # empty stream: N defaults to 0
    assert status(f"/api/v1/ves/log/inclusion/1?{q}&tree_size=1") == (404, "TREE_SIZE_NOT_FOUND")
    log_stream.add(5)
    assert status(f"/api/v1/ves/log/inclusion/0?{q}")[0] == 400
    assert status(f"/api/v1/ves/log/inclusion/-1?{q}")[0] == 400
    assert status(f"/api/v1/ves/log/inclusion/6?{q}") == (400, "LOG_RANGE")
    assert status(f"/api/v1/ves/log/inclusion/3?{q}&tree_size=2") == (400, "LOG_RANGE")
    assert status(f"/api/v1/ves/log/inclusion/3?{q}&tree_size=6") == (404, "TREE_SIZE_NOT_FOUND")
    assert status(f"/api/v1/ves/log/inclusion/3?{q}&tree_size=x")[0] == 400
    assert status(f"/api/v1/ves/log/consistency?{q}&first=3&second=2") == (400, "LOG_RANGE")
    assert status(f"/api/v1/ves/log/consistency?{q}&first=2&second=6") == (404, "TREE_SIZE_NOT_FOUND")
    assert status(f"/api/v1/ves/log/consistency?{q}&first=-1&second=2")[0] == 400
    assert status(f"/api/v1/ves/log/consistency?{q}&second=2") == (400, "INVALID_REQUEST")
    assert status(f"/api/v1/ves/log/consistency?{q}&first=0&second=5")[0] == 200


def test_sizes_are_bounded_by_the_checkpoint_served_not_by_the_log(make_app, engine, log_key):
    from tests.log.conftest import LogStream

    client = make_app(log_max_delay_seconds=3600.0).test_client()
    stream = LogStream(client, engine)
    stream.add(4)
    first, _ = fetch_checkpoint(client, stream)
    stream.add(3)
    again, _ = fetch_checkpoint(client, stream)
    assert first.tree_size == again.tree_size == 4, "within the merge delay the signed checkpoint is served"
    q, headers = stream.query, stream.headers
    assert client.get(f"/api/v1/ves/log/inclusion/5?{q}", headers=headers).status_code == 400
    assert client.get(f"/api/v1/ves/log/inclusion/5?{q}&tree_size=7", headers=headers).status_code == 404
    assert client.get(f"/api/v1/ves/log/consistency?{q}&first=4&second=7", headers=headers).status_code == 404


def test_reads_need_read_permission_on_the_stream(client, engine, log_stream):
    log_stream.add(2)
    paths = [f"/api/v1/ves/log/checkpoint?{log_stream.query}", f"/api/v1/ves/log/inclusion/1?{log_stream.query}",
             f"/api/v1/ves/log/consistency?{log_stream.query}&first=1&second=2"]
    other = api_key(engine, uuid.uuid4(), "read")
    other_store = api_key(engine, log_stream.tenant_id, "read", store_ids=[uuid.uuid4()])
    reader = api_key(engine, log_stream.tenant_id, "read")
    for url in paths:
        assert client.get(url).status_code == 401
        assert client.get(url, headers=auth(other)).status_code == 403
        assert client.get(url, headers=auth(other_store)).status_code == 403
        assert client.get(url, headers=auth(reader)).status_code == 200


def test_the_sequencer_view_names_the_log_origin_and_key(client, log_key):
    body = client.get("/api/v1/ves/sequencer").json
    assert body["log_origin"] == "sequencer.test/ves"
    assert body["log_public_key"] == log_key.public_key.hex()


def test_public_paths_exist_only_with_log_public_and_need_no_key(make_app, client, engine, log_stream):
    log_stream.add(6)
    sid = stream_id(log_stream.tenant_id, log_stream.store_id).hex()
    assert client.get(f"/api/v1/ves/log/public/{sid}/checkpoint").status_code == 404
    public = make_app(log_public=True).test_client()
    authed = public.get(f"/api/v1/ves/log/checkpoint?{log_stream.query}", headers=log_stream.headers)
    response = public.get(f"/api/v1/ves/log/public/{sid}/checkpoint")
    assert response.status_code == 200 and response.get_data() == authed.get_data()
    assert response.headers["X-Log-Vkey"] == authed.headers["X-Log-Vkey"]
    assert public.get(f"/api/v1/ves/log/public/{sid.upper()}/checkpoint").get_data() == authed.get_data()
    consistency = public.get(f"/api/v1/ves/log/public/{sid}/consistency?first=2&second=6")
    assert consistency.status_code == 200
    assert consistency.json == public.get(f"/api/v1/ves/log/consistency?{log_stream.query}&first=2&second=6",
                                          headers=log_stream.headers).json
    assert public.get(f"/api/v1/ves/log/public/{sid}/consistency?first=2&second=7").status_code == 404
    assert public.get(f"/api/v1/ves/log/public/{sid[:-1]}/checkpoint").status_code == 400
    assert public.get(f"/api/v1/ves/log/public/{sid[:-1]}g/checkpoint").status_code == 400
    assert public.get(f"/api/v1/ves/log/public/{sid}/inclusion/1").status_code == 404, "inclusion is not public"


def test_a_public_stream_id_nothing_was_sequenced_in_is_an_empty_stream(make_app, log_key):
    public = make_app(log_public=True).test_client()
    tenant, store_id = uuid.uuid4(), uuid.uuid4()
    sid = stream_id(tenant, store_id).hex()
    response = public.get(f"/api/v1/ves/log/public/{sid}/checkpoint")
    assert response.headers["X-Log-Vkey"] == log_key.verifier_key(tenant, store_id)
    checkpoint = cp.open_checkpoint(response.get_data(), NoteVerifier.parse(response.headers["X-Log-Vkey"])).checkpoint
    assert (checkpoint.tree_size, checkpoint.root_hash) == (0, tlog.EMPTY_ROOT)
    assert public.get(f"/api/v1/ves/log/public/{sid}/consistency?first=0&second=0").json["proof"] == []
    assert public.get(f"/api/v1/ves/log/public/{sid}/consistency?first=0&second=1").status_code == 404
    assert public.get(f"/api/v1/ves/log/public/{sid}/consistency?first=1&second=0").status_code == 400


def test_the_public_lookup_by_stream_id_uses_the_index(engine, log_stream):
    import sqlalchemy as sa

    from app.db.stream_logs import STREAM_ID_SQL

    log_stream.add(1)
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in conn.execute(sa.text(
            f"EXPLAIN SELECT tenant_id, store_id FROM streams WHERE {STREAM_ID_SQL} = :sid LIMIT 1"),
            {"sid": stream_id(log_stream.tenant_id, log_stream.store_id)}))
    assert "ix_streams_stream_id" in plan, plan


def test_without_a_log_key_the_log_answers_503_log_disabled_and_the_view_says_so(make_app, engine):
    from tests.log.conftest import LogStream

    client = make_app(log_signing_key=None).test_client()
    stream = LogStream(client, engine)
    stream.add(1)
    response = client.get(f"/api/v1/ves/log/checkpoint?{stream.query}", headers=stream.headers)
    assert response.status_code == 503 and response.json["code"] == "LOG_DISABLED"
    assert client.get("/api/v1/ves/sequencer").json["log_public_key"] == ""


def test_an_unfinished_log_is_not_served_until_the_backfill_completes_it(client, engine, log_key):
    tenant, store_id = uuid.uuid4(), uuid.uuid4()
    append_events(engine, tenant, store_id, 12, unsigned=frozenset({2}))
    headers = auth(api_key(engine, tenant, "read"))
    q = f"tenant_id={tenant}&store_id={store_id}"
    for url in (f"/api/v1/ves/log/checkpoint?{q}", f"/api/v1/ves/log/inclusion/1?{q}&tree_size=1",
                f"/api/v1/ves/log/consistency?{q}&first=0&second=1"):
        response = client.get(url, headers=headers)
        assert response.status_code == 503 and response.json["code"] == "LOG_NOT_READY", url
        assert response.headers["Retry-After"] == "5"
    service.backfill_chunk(engine, tenant, store_id, chunk_events=5)
    assert client.get(f"/api/v1/ves/log/checkpoint?{q}", headers=headers).status_code == 503
    service.backfill_chunk(engine, tenant, store_id, chunk_events=100)
    response = client.get(f"/api/v1/ves/log/checkpoint?{q}", headers=headers)
    assert response.status_code == 200
    opened = cp.open_checkpoint(response.get_data(), NoteVerifier.parse(response.headers["X-Log-Vkey"]))
    assert opened.checkpoint.root_hash == naive_root(entries_from_events(engine, tenant, store_id))


def test_signing_and_integrity_refusals_are_counted_in_the_metrics(make_app, engine):
    import sqlalchemy as sa
    from prometheus_client import REGISTRY

    from tests.log.conftest import LogStream

    client = make_app(log_max_delay_seconds=0.0).test_client()
    log_stream = LogStream(client, engine)

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    signed_before = value("sequencer_log_checkpoints_signed_total")
    failures_before = value("sequencer_log_integrity_failures_total")
    log_stream.add(9)
    fetch_checkpoint(client, log_stream)
    assert value("sequencer_log_checkpoints_signed_total") == signed_before + 1
    assert value("sequencer_log_checkpoint_tree_size", tenant_id=str(log_stream.tenant_id),
                 store_id=str(log_stream.store_id)) == 9
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("UPDATE log_nodes SET hash = decode(repeat('aa', 32), 'hex') WHERE tenant_id = :t AND "
                             "store_id = :s AND level = 3 AND node_index = 0"),
                     {"t": log_stream.tenant_id, "s": log_stream.store_id})
    log_stream.add(1)
    refused = client.get(f"/api/v1/ves/log/checkpoint?{log_stream.query}", headers=log_stream.headers)
    assert (refused.status_code, refused.json["code"]) == (500, "LOG_INTEGRITY")
    assert value("sequencer_log_integrity_failures_total") == failures_before + 1

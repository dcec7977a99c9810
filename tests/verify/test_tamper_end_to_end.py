"""Tamper with the sequencer's own database, then `ves-verify verify --url …` MUST name exactly that record.

Each case builds its own stream through the real HTTP API, changes one byte of one stored value directly in
PostgreSQL (lifting the append-only trigger inside the tampering transaction only) and runs the verifier in URL mode.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from app.client import AgentSigner
from app.client import SequencerClient
from app.verify.cli import main
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ADMIN_KEY = "e2e-verify-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "VES_SEQUENCER_SIGNING_KEY": "5a" * 32}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


@pytest.fixture
def stream(server):
    """A stream of 5 signed events with commitments 1..3 and 4..5; returns (tenant, store, batch ids)."""
    client = SequencerClient(server.url, ADMIN_KEY)
    signer = AgentSigner(uuid.uuid4().bytes * 2, uuid.uuid4(), uuid.uuid4(), 1)
    store = str(uuid.uuid4())
    client.register_signer(signer)
    events = [signer.build_event(store, "order", "o-1", "OrderPlaced", {"total": 10 + i}) for i in range(5)]
    assert client.ingest(events, signer.agent_id).events_accepted == 5
    batches = [client.create_commitment(signer.tenant_id, store, sequence_start=1, sequence_end=3)["batch_id"],
               client.create_commitment(signer.tenant_id, store, sequence_start=4, sequence_end=5)["batch_id"]]
    return signer.tenant_id, store, batches


def verify_url(server, tenant: str, store: str, capsys) -> tuple[int, dict]:
    code = main(["verify", "--url", server.url, "--api-key", ADMIN_KEY, "--tenant", tenant, "--store", store,
                 "--json"])
    return code, json.loads(capsys.readouterr().out)


def flip_first_byte(value: bytes | memoryview) -> bytes:
    raw = bytes(value)
    return bytes([raw[0] ^ 0x01]) + raw[1:]


def tamper_event(engine, tenant: str, store: str, number: int, column: str, change) -> None:
    key = {"t": uuid.UUID(tenant), "s": uuid.UUID(store), "n": number}
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        value = conn.execute(sa.text(f"SELECT {column} FROM events WHERE tenant_id = :t AND store_id = :s "
                                     "AND sequence_number = :n"), key).scalar_one()
        conn.execute(sa.text(f"UPDATE events SET {column} = :v WHERE tenant_id = :t AND store_id = :s "
                             "AND sequence_number = :n").bindparams(
            sa.bindparam("v", type_=sa.JSON if column == "payload" else sa.LargeBinary)),
            {**key, "v": change(value)})
        conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER events_append_only"))


def test_an_untampered_stream_verifies(server, stream, capsys):
    tenant, store, _ = stream
    code, report = verify_url(server, tenant, store, capsys)
    assert (code, report["ok"], report["events_checked"], report["commitments_checked"]) == (0, True, 5, 2)


def test_one_payload_byte_changed_in_the_database(server, stream, engine, capsys):
    tenant, store, _ = stream
    tamper_event(engine, tenant, store, 2, "payload", lambda payload: {**payload, "total": payload["total"] + 1})
    code, report = verify_url(server, tenant, store, capsys)
    first = report["discrepancies"][0]
    assert code == 1
    assert (first["sequence_number"], first["check"]) == (2, "payload_plain_hash")
    assert len(report["discrepancies"]) == 1


def test_one_agent_signature_byte_changed_in_the_database(server, stream, engine, capsys):
    tenant, store, batches = stream
    tamper_event(engine, tenant, store, 4, "agent_signature", flip_first_byte)
    code, report = verify_url(server, tenant, store, capsys)
    assert code == 1
    assert [(d["sequence_number"], d["batch_id"], d["check"]) for d in report["discrepancies"]] == [
        (4, None, "agent_signature"), (None, batches[1], "merkle_root"), (None, None, "log_integrity")], \
        "the signature is part of the event's log entry: the sequencer refuses to sign a checkpoint over it"


def test_one_commitment_root_byte_changed_in_the_database(server, stream, engine, capsys):
    tenant, store, batches = stream
    with engine.begin() as conn:
        root = conn.execute(sa.text("SELECT merkle_root FROM batch_commitments WHERE batch_id = :b"),
                            {"b": uuid.UUID(batches[0])}).scalar_one()
        conn.execute(sa.text("UPDATE batch_commitments SET merkle_root = :r WHERE batch_id = :b"),
                     {"r": flip_first_byte(root), "b": uuid.UUID(batches[0])})
    code, report = verify_url(server, tenant, store, capsys)
    first = report["discrepancies"][0]
    assert code == 1
    assert (first["batch_id"], first["check"], first["found"]) == (batches[0], "merkle_root",
                                                                    "0x" + flip_first_byte(root).hex())
    assert first["expected"] == "0x" + bytes(root).hex()


def test_encrypted_payloads_verify_and_a_changed_ciphertext_is_named(server, engine, capsys):
    import os

    from app.ves.encoding import b64u_encode

    client = SequencerClient(server.url, ADMIN_KEY)
    signer = AgentSigner(os.urandom(32), uuid.uuid4(), uuid.uuid4(), 1)
    store = str(uuid.uuid4())
    client.register_signer(signer)
    from tests.support.ves_enc import recipient_keypair
    from tests.support.ves_enc import sealed_event

    sealed, _ = sealed_event(signer, store, "doc", "d-1", "DocSealed", {"secret": True}, {7: recipient_keypair()[1]})
    events = [sealed, signer.build_event(store, "doc", "d-1", "DocNoted", {"plain": 1}, ves_version=2)]
    assert client.ingest(events, signer.agent_id).events_accepted == 2
    client.create_commitment(signer.tenant_id, store, sequence_start=1, sequence_end=2)
    code, report = verify_url(server, signer.tenant_id, store, capsys)
    assert (code, report["events_checked"], report["commitments_checked"]) == (0, 2, 1)

    def change_ciphertext(payload_encrypted):
        return {**payload_encrypted, "ciphertext_b64u": b64u_encode(os.urandom(48))}

    key = {"t": uuid.UUID(signer.tenant_id), "s": uuid.UUID(store)}
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        value = conn.execute(sa.text("SELECT payload_encrypted FROM events WHERE tenant_id = :t AND store_id = :s "
                                     "AND sequence_number = 1"), key).scalar_one()
        conn.execute(sa.text("UPDATE events SET payload_encrypted = :v WHERE tenant_id = :t AND store_id = :s "
                             "AND sequence_number = 1").bindparams(sa.bindparam("v", type_=sa.JSON)),
                     {**key, "v": change_ciphertext(value)})
        conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
    code, report = verify_url(server, signer.tenant_id, store, capsys)
    first = report["discrepancies"][0]
    assert code == 1 and (first["sequence_number"], first["check"]) == (1, "payload_cipher_hash")

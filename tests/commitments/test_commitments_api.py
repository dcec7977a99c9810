"""HTTP contract of API.md §Commitments and proofs: shapes, hex form, errors, and tenant isolation."""

from __future__ import annotations

import datetime
import re
import uuid

import pytest

from app.db import commitments as store
from app.api.wire import hex_of
from tests.commitments import reference
from tests.controls import api_key
from tests.controls import auth

HEX32 = re.compile(r"^[0-9a-f]{64}$")
ANCHORED_AT = datetime.datetime(2025, 5, 1, 12, tzinfo=datetime.timezone.utc)
BOOTSTRAP = auth("test-bootstrap-admin-key-0123456789")
CREATE_FIELDS = {"batch_id", "tenant_id", "store_id", "ves_version", "tree_depth", "leaf_count", "padded_leaf_count",
                 "merkle_root", "prev_state_root", "new_state_root", "sequence_start", "sequence_end", "committed_at"}
CHAIN_FIELDS = {"chain_id", "chain_tx_hash", "chain_block_number", "anchored_at", "is_anchored"}
PROOF_FIELDS = {"sequence_number", "batch_id", "merkle_root", "leaf_hash", "leaf_index", "proof_path", "directions"}


def _create(client, stream, headers, **fields):
    return client.post("/api/v1/ves/commitments", headers=headers,
                       json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id), **fields})


def test_create_returns_the_commitment(client, stream, append, writer):
    rows = append(5)
    response = _create(client, stream, writer)
    assert response.status_code == 200
    body = response.get_json()
    assert CREATE_FIELDS <= set(body)
    expected_root = reference.root([reference.row_leaf(r) for r in rows])
    assert body["merkle_root"] == hex_of(expected_root)
    assert body["prev_state_root"] == "00" * 32
    assert body["new_state_root"] == hex_of(reference.state_root(
        reference.stream_id(stream.tenant_id, stream.store_id), bytes(32), expected_root, 1, 5, 5))
    assert all(HEX32.match(body[name]) for name in ("merkle_root", "prev_state_root", "new_state_root"))
    assert (body["sequence_start"], body["sequence_end"], body["leaf_count"]) == (1, 5, 5)
    assert (body["padded_leaf_count"], body["tree_depth"], body["ves_version"]) == (8, 3, 1)
    assert body["tenant_id"] == str(stream.tenant_id) and uuid.UUID(body["batch_id"])


def test_create_accepts_camel_case(client, stream, append, writer):
    append(6)
    response = client.post("/api/v1/ves/commitments", headers=writer, json={
        "tenantId": str(stream.tenant_id), "storeId": str(stream.store_id), "sequenceStart": 1, "sequenceEnd": 2})
    assert response.status_code == 200 and response.get_json()["sequence_end"] == 2
    response = _create(client, stream, writer, maxEvents=3)
    assert response.status_code == 200 and response.get_json()["sequence_end"] == 5


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"sequence_start": 4}, 409, "RANGE_SKIPS"),
        ({"sequence_start": 1, "sequence_end": 3}, 409, "RANGE_OVERLAPS"),
        ({"sequence_start": 3, "sequence_end": 9}, 400, "RANGE_PAST_HEAD"),
        ({"sequence_start": 3, "sequence_end": 2}, 400, "INVALID_RANGE"),
        ({"sequence_start": 0}, 400, "INVALID_REQUEST"),
        ({"sequence_start": True}, 400, "INVALID_REQUEST"),
        ({"sequence_start": "3"}, 400, "INVALID_REQUEST"),
        ({"max_events": 0}, 400, "INVALID_REQUEST"),
        ({"max_events": 2**40}, 400, "INVALID_REQUEST"),
        ({"surprise": 1}, 400, "INVALID_REQUEST"),
        ({"sequence_start": 3, "sequenceStart": 3}, 400, "INVALID_REQUEST"),
    ],
)
def test_create_errors(client, stream, append, writer, fields, status, code):
    append(5)
    assert _create(client, stream, writer, sequence_end=2).status_code == 200
    response = _create(client, stream, writer, **fields)
    assert response.status_code == status
    body = response.get_json()
    assert body["code"] == code and body["error"] and body["request_id"]


def test_nothing_to_commit_is_a_409(client, stream, writer):
    response = _create(client, stream, writer)
    assert response.status_code == 409 and response.get_json()["code"] == "NOTHING_TO_COMMIT"


@pytest.mark.parametrize("body", ['{"tenant_id": ', "[]", '{"tenant_id": "nope", "store_id": "x"}'])
def test_malformed_create_bodies_are_400(client, writer, body):
    response = client.post("/api/v1/ves/commitments", headers={**writer, "Content-Type": "application/json"},
                           data=body)
    assert response.status_code == 400


def test_list_and_get(client, engine, stream, append, reader, writer):
    append(6)
    first = _create(client, stream, writer, max_events=4).get_json()
    second = _create(client, stream, writer).get_json()
    with engine.begin() as conn:
        store.mark_anchored(conn, uuid.UUID(first["batch_id"]), 84532, b"\xab" * 32, 12, ANCHORED_AT)

    listed = client.get(f"/api/v1/ves/commitments?{stream.query}", headers=reader).get_json()
    assert listed["count"] == 2 and [c["batch_id"] for c in listed["commitments"]] == [first["batch_id"],
                                                                                       second["batch_id"]]
    anchored = client.get(f"/api/v1/ves/commitments?{stream.query}&anchored=true", headers=reader).get_json()
    assert [c["batch_id"] for c in anchored["commitments"]] == [first["batch_id"]]
    pending = client.get(f"/api/v1/ves/commitments?{stream.query}&anchored=false", headers=reader).get_json()
    assert [c["batch_id"] for c in pending["commitments"]] == [second["batch_id"]]
    page = client.get(f"/api/v1/ves/commitments?{stream.query}&limit=1&after=4", headers=reader).get_json()
    assert [c["batch_id"] for c in page["commitments"]] == [second["batch_id"]]

    detail = client.get(f"/api/v1/ves/commitments/{first['batch_id']}", headers=reader).get_json()
    assert CREATE_FIELDS | CHAIN_FIELDS <= set(detail)
    assert {k: detail[k] for k in CREATE_FIELDS} == first
    assert detail["is_anchored"] is True and detail["chain_tx_hash"] == "ab" * 32
    assert (detail["chain_id"], detail["chain_block_number"]) == (84532, 12)
    assert detail["anchored_at"].startswith("2025-05-01")
    unanchored = client.get(f"/api/v1/ves/commitments/{second['batch_id']}", headers=reader).get_json()
    assert unanchored["is_anchored"] is False and unanchored["chain_tx_hash"] is None


@pytest.mark.parametrize("query", ["anchored=maybe", "limit=0", "limit=1001", "after=-1"])
def test_list_rejects_bad_query_parameters(client, stream, reader, query):
    response = client.get(f"/api/v1/ves/commitments?{stream.query}&{query}", headers=reader)
    assert response.status_code == 400 and response.get_json()["code"] == "INVALID_REQUEST"


def test_another_tenants_commitment_looks_like_a_missing_one(client, stream, append, writer, stranger):
    append(2)
    batch_id = _create(client, stream, writer).get_json()["batch_id"]
    theirs = client.get(f"/api/v1/ves/commitments/{batch_id}", headers=stranger)
    missing = client.get(f"/api/v1/ves/commitments/{uuid.uuid4()}", headers=stranger)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json()["error"] == missing.get_json()["error"] == "No such commitment."
    assert client.get(f"/api/v1/ves/commitments/{batch_id}", headers=BOOTSTRAP).status_code == 200
    assert client.get("/api/v1/ves/commitments/not-a-uuid", headers=writer).status_code == 400


def test_store_scoped_keys_see_only_their_stores(client, engine, stream, append, writer):
    append(2)
    batch_id = _create(client, stream, writer).get_json()["batch_id"]
    other_store = auth(api_key(engine, stream.tenant_id, "read", store_ids=[uuid.uuid4()]))
    assert client.get(f"/api/v1/ves/commitments/{batch_id}", headers=other_store).status_code == 404
    assert client.get(f"/api/v1/ves/commitments?{stream.query}", headers=other_store).status_code == 403


def test_tenant_isolation(client, stream, append, writer, reader, stranger):
    append(3)
    assert _create(client, stream, stranger).status_code == 403
    assert _create(client, stream, reader).status_code == 403
    assert _create(client, stream, {}).status_code == 401
    assert _create(client, stream, writer).status_code == 200
    assert client.get(f"/api/v1/ves/commitments?{stream.query}", headers=stranger).status_code == 403
    assert client.get(f"/api/v1/ves/proofs/1?{stream.query}", headers=stranger).status_code == 403
    assert client.get(f"/api/v1/ves/proofs/1?{stream.query}", headers=reader).status_code == 200


def test_proof_shape_and_independent_verification(client, stream, append, writer, reader):
    rows = append(17)
    commitment = _create(client, stream, writer).get_json()
    for row in (rows[0], rows[10], rows[16]):
        number = row["sequence_number"]
        response = client.get(f"/api/v1/ves/proofs/{number}?{stream.query}", headers=reader)
        assert response.status_code == 200
        proof = response.get_json()
        assert PROOF_FIELDS <= set(proof)
        assert (proof["sequence_number"], proof["batch_id"], proof["leaf_index"]) == (number, commitment["batch_id"],
                                                                                     number - 1)
        assert proof["leaf_hash"] == hex_of(reference.row_leaf(row)) and proof["leaf_count"] == 17
        assert proof["merkle_root"] == commitment["merkle_root"]
        path = [bytes.fromhex(h.removeprefix("0x")) for h in proof["proof_path"]]
        assert proof["directions"] == [((number - 1) >> d) & 1 == 0 for d in range(len(path))]
        assert hex_of(reference.fold(reference.row_leaf(row), number - 1, path)) == commitment["merkle_root"]
    by_batch = client.get(f"/api/v1/ves/proofs/5?{stream.query}&batch_id={commitment['batch_id']}", headers=reader)
    assert by_batch.status_code == 200 and by_batch.get_json()["leaf_index"] == 4


def test_proof_errors(client, stream, append, writer, reader):
    append(3)
    batch_id = _create(client, stream, writer, max_events=2).get_json()["batch_id"]
    uncovered = client.get(f"/api/v1/ves/proofs/3?{stream.query}", headers=reader)
    assert uncovered.status_code == 404 and uncovered.get_json()["code"] == "NOT_COMMITTED"
    wrong_batch = client.get(f"/api/v1/ves/proofs/3?{stream.query}&batchId={batch_id}", headers=reader)
    assert wrong_batch.status_code == 404
    for bad in ("0", "-1", "abc", "9" * 30):
        assert client.get(f"/api/v1/ves/proofs/{bad}?{stream.query}", headers=reader).status_code == 400
    assert client.get("/api/v1/ves/proofs/1", headers=reader).status_code == 400


@pytest.fixture
def committed_17(client, stream, append, writer, reader):
    """A 17-event commitment's leaves, the reference tree, and the served proof of sequence number 6."""
    rows = append(17)
    _create(client, stream, writer)
    proof = client.get(f"/api/v1/ves/proofs/6?{stream.query}", headers=reader).get_json()
    return [reference.row_leaf(r) for r in rows], proof


def _verify(client, headers, **body):
    return client.post("/api/v1/ves/proofs/verify", headers=headers, json=body)


def _flip(hex_value: str) -> str:
    return hex_value[:-1] + ("0" if hex_value[-1] != "0" else "1")


def test_verify_accepts_the_served_proof(client, reader, committed_17):
    _, proof = committed_17
    response = client.post("/api/v1/ves/proofs/verify", headers=reader, json=proof)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["valid"] is True and response.get_json()["reason"] is None
    camel = _verify(client, reader, leafHash=proof["leaf_hash"], merkleRoot=proof["merkle_root"],
                    proofPath=proof["proof_path"], leafIndex=5, leafCount=17)
    assert camel.get_json()["valid"] is True


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ("wrong-leaf", "does not give merkle_root"),
        ("wrong-root", "does not give merkle_root"),
        ("modified-path[2]", "does not give merkle_root"),
        ("wrong-index", "does not give merkle_root"),
        ("index-plus-2^depth", "outside"),
        ("truncated-path", "has length 4"),
        ("wrong-directions", "directions"),
    ],
)
def test_verify_rejects_tampering(client, reader, committed_17, mutation, reason):
    _, proof = committed_17
    body = {k: proof[k] for k in ("leaf_hash", "merkle_root", "proof_path", "leaf_index", "directions")}
    body["leaf_count"] = 17
    if mutation == "wrong-leaf":
        body["leaf_hash"] = _flip(body["leaf_hash"])
    elif mutation == "wrong-root":
        body["merkle_root"] = _flip(body["merkle_root"])
    elif mutation == "modified-path[2]":
        body["proof_path"] = [*body["proof_path"][:2], _flip(body["proof_path"][2]), *body["proof_path"][3:]]
    elif mutation == "wrong-index":
        body["leaf_index"], body["directions"] = 4, None
    elif mutation == "index-plus-2^depth":
        body["leaf_index"], body["leaf_count"], body["directions"] = 5 + 32, None, None
    elif mutation == "truncated-path":
        body["proof_path"], body["directions"] = body["proof_path"][:4], body["directions"][:4]
    elif mutation == "wrong-directions":
        body["directions"] = [not d for d in body["directions"]]
    response = _verify(client, reader, **body)
    assert response.status_code == 200
    assert response.get_json()["valid"] is False and reason in response.get_json()["reason"]


def test_verify_rejects_a_padding_slot_only_when_leaf_count_is_given(client, reader, committed_17):
    leaves, proof = committed_17
    tree = reference.levels(leaves)
    pad_index = 20
    body = {"leaf_hash": hex_of(tree[0][pad_index]), "merkle_root": proof["merkle_root"],
            "proof_path": [hex_of(h) for h in reference.path(tree, pad_index)], "leaf_index": pad_index}
    assert _verify(client, reader, **body).get_json()["valid"] is True
    strict = _verify(client, reader, **body, leaf_count=17).get_json()
    assert strict["valid"] is False and "padding slot" in strict["reason"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"leaf_hash": "0x1234"}, "leaf_hash"),
        ({"merkle_root": "zz" * 32}, "merkle_root"),
        ({"proof_path": ["0x" + "00" * 32, "0xnothex"]}, "proof_path[1]"),
        ({"proof_path": "0x" + "00" * 32}, "proof_path"),
        ({"proof_path": [1]}, "proof_path"),
        ({"leaf_index": -1}, "leaf_index"),
        ({"leaf_index": "5"}, "leaf_index"),
        ({"leaf_count": 0}, "leaf_count"),
        ({"directions": ["yes"]}, "directions"),
        ({"leaf_hash": None}, "leaf_hash"),
    ],
)
def test_verify_rejects_malformed_input_with_the_field_name(client, reader, committed_17, change, field):
    _, proof = committed_17
    response = _verify(client, reader, **{**proof, **change})
    assert response.status_code == 400
    assert field in response.get_json()["error"]


def test_verify_requires_a_key(client, committed_17, stranger):
    _, proof = committed_17
    assert _verify(client, {}, **proof).status_code == 401
    assert _verify(client, stranger, **proof).get_json()["valid"] is True

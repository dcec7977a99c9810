"""Inclusion proofs served from stored leaves, checked with the independent verifier in reference.py."""

from __future__ import annotations

import uuid

import pytest

from app.api.wire import status_of
from app.db import commitments as store
from app.errors import NotFound
from app.services.commitments import CommitmentIntegrityError
from app.services.commitments import build_proof
from app.services.commitments import create_commitment
from tests.commitments import reference


def test_every_proof_of_a_17_event_commitment_verifies(engine, stream, append):
    rows = append(17, unsigned=frozenset({9}))
    record = create_commitment(engine, stream.tenant_id, stream.store_id)
    for row in rows:
        number = row["sequence_number"]
        covering, proof = build_proof(engine, stream.tenant_id, stream.store_id, number)
        assert covering.batch_id == record.batch_id
        assert proof.leaf_index == number - 1
        assert proof.leaf_hash == reference.row_leaf(row)
        assert len(proof.proof_path) == record.tree_depth == 5
        assert proof.directions == [(proof.leaf_index >> d) & 1 == 0 for d in range(5)]
        assert reference.fold(proof.leaf_hash, proof.leaf_index, proof.proof_path) == record.merkle_root
        assert proof.merkle_root == record.merkle_root


def test_proofs_in_a_later_commitment_index_from_its_start(engine, stream, append):
    append(5)
    create_commitment(engine, stream.tenant_id, stream.store_id)
    rows = append(3)
    second = create_commitment(engine, stream.tenant_id, stream.store_id)
    covering, proof = build_proof(engine, stream.tenant_id, stream.store_id, 7, batch_id=second.batch_id)
    assert covering == second and proof.leaf_index == 1
    assert proof.leaf_hash == reference.row_leaf(rows[1])
    assert reference.fold(proof.leaf_hash, 1, proof.proof_path) == second.merkle_root


def test_a_single_event_commitment_has_an_empty_path(engine, stream, append):
    (row,) = append(1)
    record, proof = build_proof(engine, stream.tenant_id, stream.store_id, 1,
                                create_commitment(engine, stream.tenant_id, stream.store_id).batch_id)
    assert proof.proof_path == [] and proof.directions == []
    assert proof.leaf_hash == record.merkle_root == reference.row_leaf(row)


def test_proof_not_found(engine, stream, append, make_stream):
    append(6)
    first = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=3)
    other = make_stream()
    append(3, target=other)
    theirs = create_commitment(engine, other.tenant_id, other.store_id)

    cases = [(4, None), (99, None), (4, first.batch_id), (1, theirs.batch_id), (1, uuid.uuid4())]
    for number, batch_id in cases:
        with pytest.raises(NotFound) as raised:
            build_proof(engine, stream.tenant_id, stream.store_id, number, batch_id)
        assert str(number) in raised.value.message and raised.value.code == "NOT_COMMITTED"


def test_a_stored_root_that_no_longer_matches_the_events_is_an_integrity_error(engine, stream, append):
    append(2)
    with engine.begin() as conn:
        store.insert_commitment(conn, tenant_id=stream.tenant_id, store_id=stream.store_id, sequence_start=1,
                                sequence_end=2, padded_leaf_count=2, tree_depth=1, merkle_root=b"\x01" * 32,
                                prev_state_root=bytes(32), new_state_root=b"\x02" * 32)
    with pytest.raises(CommitmentIntegrityError) as raised:
        build_proof(engine, stream.tenant_id, stream.store_id, 1)
    assert status_of(raised.value) == 500

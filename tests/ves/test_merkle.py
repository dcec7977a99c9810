"""Merkle tree, inclusion proofs and strict verification (VES.md §Merkle commitments).

Negative cases are named after the mutation they apply to a genuine proof, in the style of transparency-dev/merkle's
testdata (wrong-leaf, truncated-proof, index-plus-2^depth, ...). Property tests cover batch sizes 1..64.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app import ves
from app.ves import ProofError
from app.ves import parse_hex


def naive_root(leaves: list[bytes]) -> bytes:
    """Reference straight from the spec text: pad to a power of two with PAD, then hash halves recursively."""
    size = 1
    while size < len(leaves):
        size *= 2
    padded = list(leaves) + [hashlib.sha256(b"VES_PAD_LEAF_V1").digest()] * (size - len(leaves))

    def subtree(nodes: list[bytes]) -> bytes:
        if len(nodes) == 1:
            return nodes[0]
        half = len(nodes) // 2
        return hashlib.sha256(b"VES_NODE_V1" + subtree(nodes[:half]) + subtree(nodes[half:])).digest()

    return subtree(padded)


def make_leaves(count: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(4, "big")).digest() for i in range(count)]


def flip_bit(data: bytes, bit: int) -> bytes:
    mutated = bytearray(data)
    mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


batch_sizes = st.integers(min_value=1, max_value=64)
salts = st.binary(min_size=0, max_size=8)


def test_pad_leaf_is_the_tagged_hash():
    assert ves.PAD_LEAF == hashlib.sha256(b"VES_PAD_LEAF_V1").digest()


@pytest.mark.parametrize("count", range(1, 130))
def test_padded_leaf_count_and_depth(count):
    padded = ves.padded_leaf_count(count)
    assert padded >= count and padded & (padded - 1) == 0
    assert padded == 1 or padded < 2 * count
    assert 2 ** ves.tree_depth(count) == padded
    assert len(ves.build_tree(make_leaves(count))) == ves.tree_depth(count) + 1


@pytest.mark.parametrize("count", [0, -1, True])
def test_tree_of_no_leaves_is_a_proof_error(count):
    with pytest.raises(ProofError):
        ves.padded_leaf_count(count)
    with pytest.raises(ProofError):
        ves.tree_depth(count)


def test_merkle_root_of_empty_batch_is_a_proof_error():
    with pytest.raises(ProofError):
        ves.merkle_root([])
    with pytest.raises(ProofError):
        ves.inclusion_proof([], 0)


def test_leaf_that_is_not_32_bytes_is_rejected():
    with pytest.raises(ves.InvalidEncoding):
        ves.merkle_root([bytes(31)])
    with pytest.raises(ves.InvalidEncoding):
        ves.merkle_root([bytes(32), "00" * 32])


def test_single_leaf_is_its_own_root():
    leaf = make_leaves(1)[0]
    assert ves.merkle_root([leaf]) == leaf
    proof = ves.inclusion_proof([leaf], 0)
    assert proof.proof_path == [] and proof.directions == []
    assert ves.verify_inclusion(leaf, leaf, [], 0, 1)


@pytest.mark.parametrize("leaf_index", [3, 4, 7, -1])
def test_proof_for_padding_slot_or_negative_index_is_refused(leaf_index):
    with pytest.raises(ProofError):
        ves.inclusion_proof(make_leaves(3), leaf_index)


def test_unsigned_event_leaf_uses_64_zero_bytes():
    tenant, store = "f441ee61-a478-43a8-b2a4-417327cccfa4", "c7f65a03-9b5f-4de8-81ab-a52bc80e871f"
    signing_hash = bytes(32)
    zero_signed = ves.leaf_hash(tenant, store, 7, signing_hash, bytes(64))
    assert ves.leaf_hash(tenant, store, 7, signing_hash, None) == zero_signed
    assert ves.leaf_hash(tenant, store, 7, signing_hash, b"") == zero_signed
    assert ves.leaf_hash(tenant, store, 7, signing_hash, b"\x01" * 64) != zero_signed
    with pytest.raises(ves.InvalidEncoding):
        ves.leaf_hash(tenant, store, 7, signing_hash, bytes(63))


def test_building_1024_leaves_takes_a_few_milliseconds():
    leaves = make_leaves(1024)
    started = time.perf_counter()
    root = ves.merkle_root(leaves)
    elapsed = time.perf_counter() - started
    assert root == naive_root(leaves)
    assert elapsed < 0.05, f"1024-leaf tree took {elapsed * 1000:.1f} ms"


@settings(max_examples=100, deadline=None)
@given(count=batch_sizes, salt=salts)
def test_root_matches_naive_reference(count, salt):
    leaves = make_leaves(count, salt)
    assert ves.merkle_root(leaves) == naive_root(leaves)


@settings(max_examples=60, deadline=None)
@given(count=batch_sizes, salt=salts)
def test_every_proof_verifies(count, salt):
    leaves = make_leaves(count, salt)
    levels = ves.build_tree(leaves)
    root = levels[-1][0]
    for index, leaf in enumerate(leaves):
        proof = ves.inclusion_proof_from_tree(levels, index, count)
        assert proof == ves.inclusion_proof(leaves, index)
        assert proof.leaf_hash == leaf and proof.merkle_root == root
        assert len(proof.proof_path) == ves.tree_depth(count)
        assert proof.directions == [(index >> d) & 1 == 0 for d in range(len(proof.proof_path))]
        assert ves.verify_inclusion(leaf, root, proof.proof_path, index, count, proof.directions)
        assert ves.verify_inclusion(leaf, root, proof.proof_path, index)


@st.composite
def proofs(draw, min_count=1):
    count = draw(st.integers(min_value=min_count, max_value=64))
    leaves = make_leaves(count, draw(salts))
    index = draw(st.integers(min_value=0, max_value=count - 1))
    return count, ves.inclusion_proof(leaves, index)


@settings(max_examples=100, deadline=None)
@given(case=proofs(), data=st.data())
def test_flipping_any_bit_of_the_leaf_breaks_the_proof(case, data):
    count, proof = case
    bit = data.draw(st.integers(min_value=0, max_value=255))
    leaf = flip_bit(proof.leaf_hash, bit)
    assert not ves.verify_inclusion(leaf, proof.merkle_root, proof.proof_path, proof.leaf_index, count)
    assert not ves.verify_inclusion(leaf, proof.merkle_root, proof.proof_path, proof.leaf_index)


@settings(max_examples=100, deadline=None)
@given(case=proofs(min_count=2), data=st.data())
def test_flipping_any_bit_of_any_path_element_breaks_the_proof(case, data):
    count, proof = case
    position = data.draw(st.integers(min_value=0, max_value=len(proof.proof_path) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    path = list(proof.proof_path)
    path[position] = flip_bit(path[position], bit)
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, path, proof.leaf_index, count)
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, path, proof.leaf_index)


@settings(max_examples=100, deadline=None)
@given(case=proofs(min_count=2), data=st.data())
def test_any_other_index_breaks_the_proof(case, data):
    count, proof = case
    indexes = st.integers(min_value=0, max_value=2 ** (len(proof.proof_path) + 2))
    other = data.draw(indexes.filter(lambda i: i != proof.leaf_index))
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, proof.proof_path, other)
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, proof.proof_path, other, count)


@settings(max_examples=100, deadline=None)
@given(case=proofs(), extra=st.binary(min_size=32, max_size=32), data=st.data())
def test_truncating_or_extending_the_path_breaks_the_proof(case, extra, data):
    count, proof = case
    if proof.proof_path:
        keep = data.draw(st.integers(min_value=0, max_value=len(proof.proof_path) - 1))
        truncated = proof.proof_path[:keep]
        assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, truncated, proof.leaf_index, count)
        assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, truncated, proof.leaf_index)
    extended = [*proof.proof_path, extra]
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, extended, proof.leaf_index, count)
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, extended, proof.leaf_index)


@settings(max_examples=100, deadline=None)
@given(case=proofs())
def test_index_plus_2_to_the_depth_is_rejected(case):
    count, proof = case
    shifted = proof.leaf_index + 2 ** len(proof.proof_path)
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, proof.proof_path, shifted)
    assert not ves.verify_inclusion(proof.leaf_hash, proof.merkle_root, proof.proof_path, shifted, count)


@settings(max_examples=100, deadline=None)
@given(count=st.integers(min_value=3, max_value=63).filter(lambda n: n & (n - 1)), salt=salts, data=st.data())
def test_padding_slot_index_is_rejected_when_leaf_count_is_given(count, salt, data):
    levels = ves.build_tree(make_leaves(count, salt))
    slot = data.draw(st.integers(min_value=count, max_value=len(levels[0]) - 1))
    path = []
    index = slot
    for level in levels[:-1]:
        path.append(level[index ^ 1])
        index //= 2
    root = levels[-1][0]
    assert ves.verify_inclusion(ves.PAD_LEAF, root, path, slot), "the padding slot folds to the root without a count"
    assert not ves.verify_inclusion(ves.PAD_LEAF, root, path, slot, count)


BASE_BATCH = "batch_5"
BASE_INDEX = 2


@pytest.fixture
def genuine(batches_by_name):
    batch = batches_by_name[BASE_BATCH]
    leaves = [parse_hex(event["leaf_hash"], 32, "leaf_hash") for event in batch["events"]]
    proof = ves.inclusion_proof(leaves, BASE_INDEX)
    arguments = {
        "leaf_hash": proof.leaf_hash,
        "merkle_root": parse_hex(batch["merkle_root"], 32, "merkle_root"),
        "proof_path": list(proof.proof_path),
        "leaf_index": proof.leaf_index,
        "leaf_count": batch["leaf_count"],
        "directions": list(proof.directions),
    }
    assert ves.verify_inclusion(**arguments)
    return arguments


MUTATIONS = {
    "wrong-leaf": lambda a: {**a, "leaf_hash": flip_bit(a["leaf_hash"], 0)},
    "wrong-root": lambda a: {**a, "merkle_root": flip_bit(a["merkle_root"], 255)},
    "leaf-is-pad": lambda a: {**a, "leaf_hash": ves.PAD_LEAF},
    "truncated-proof": lambda a: {**a, "proof_path": a["proof_path"][:-1], "directions": a["directions"][:-1]},
    "truncated-proof-no-count": lambda a: {
        **a, "proof_path": a["proof_path"][:-1], "directions": None, "leaf_count": None
    },
    "extended-proof": lambda a: {**a, "proof_path": [*a["proof_path"], bytes(32)], "directions": None},
    "trailing-garbage": lambda a: {
        **a, "proof_path": [*a["proof_path"], a["merkle_root"]], "directions": None, "leaf_count": None
    },
    "empty-proof": lambda a: {**a, "proof_path": [], "directions": None, "leaf_count": None},
    "modified-proof[0]-bit-@3": lambda a: {**a, "proof_path": [flip_bit(a["proof_path"][0], 3), *a["proof_path"][1:]]},
    "modified-proof[-1]-bit-@200": lambda a: {
        **a, "proof_path": [*a["proof_path"][:-1], flip_bit(a["proof_path"][-1], 200)]
    },
    "reversed-proof": lambda a: {**a, "proof_path": a["proof_path"][::-1]},
    "index-plus-one": lambda a: {**a, "leaf_index": a["leaf_index"] + 1, "directions": None},
    "index-minus-one": lambda a: {**a, "leaf_index": a["leaf_index"] - 1, "directions": None},
    "index-plus-2^depth": lambda a: {
        **a, "leaf_index": a["leaf_index"] + 2 ** len(a["proof_path"]), "leaf_count": None
    },
    "index-plus-2^depth-no-directions": lambda a: {
        **a, "leaf_index": a["leaf_index"] + 2 ** len(a["proof_path"]), "leaf_count": None, "directions": None
    },
    "negative-index": lambda a: {**a, "leaf_index": -a["leaf_index"], "leaf_count": None, "directions": None},
    "bool-index": lambda a: {**a, "leaf_index": True, "directions": None},
    "flipped-directions": lambda a: {**a, "directions": [not d for d in a["directions"]]},
    "short-directions": lambda a: {**a, "directions": a["directions"][:-1]},
    "leaf-count-too-small": lambda a: {**a, "leaf_count": a["leaf_index"]},
    "leaf-count-deeper-tree": lambda a: {**a, "leaf_count": 2 ** len(a["proof_path"]) + 1},
    "leaf-count-zero": lambda a: {**a, "leaf_count": 0},
    "short-sibling": lambda a: {**a, "proof_path": [a["proof_path"][0][:31], *a["proof_path"][1:]]},
    "hex-sibling": lambda a: {**a, "proof_path": [a["proof_path"][0].hex(), *a["proof_path"][1:]]},
    "path-is-bytes": lambda a: {**a, "proof_path": b"".join(a["proof_path"]), "directions": None},
    "leaf-is-none": lambda a: {**a, "leaf_hash": None},
    "root-is-hex": lambda a: {**a, "merkle_root": a["merkle_root"].hex()},
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
def test_mutated_proof_is_rejected(genuine, mutation):
    mutated = MUTATIONS[mutation](genuine)
    assert mutated != genuine
    assert ves.verify_inclusion(**mutated) is False


def test_stream_leaf_hashes_equal_leaf_hash_one_by_one():
    import os
    import uuid

    import pytest

    from app.ves.errors import InvalidEncoding
    from app.ves.merkle import leaf_hash
    from app.ves.merkle import stream_leaf_hashes

    tenant, store = uuid.uuid4(), uuid.uuid4()
    entries = [(n, os.urandom(32), None if n % 3 == 0 else (b"" if n % 3 == 1 else os.urandom(64)))
               for n in range(1, 40)]
    assert stream_leaf_hashes(tenant, store, entries) == [leaf_hash(tenant, store, *entry) for entry in entries]
    with pytest.raises(InvalidEncoding):
        stream_leaf_hashes(tenant, store, [(1, os.urandom(31), None)])
    with pytest.raises(InvalidEncoding):
        stream_leaf_hashes(tenant, store, [(1, os.urandom(32), os.urandom(63))])

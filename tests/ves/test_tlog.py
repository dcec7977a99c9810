"""Properties of app/ves/tlog.py: proofs equal the RFC's literal recursion, verify, and break under any bit flip.

Exhaustive over every (index, size) and (first, second) with sizes up to 64, and hypothesis beyond. The reference
is tests/ves/tlog_reference.py (RFC 9162 §2.1 transcribed, nothing shared with the core).
"""

from __future__ import annotations

import functools
import hashlib

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.ves import tlog
from app.ves.errors import ProofError
from tests.ves import tlog_reference as ref

EXHAUSTIVE = 64
TREE = 128
ENTRIES = [hashlib.sha256(b"entry %d" % i).digest() for i in range(TREE)]
LEAVES = [tlog.hash_leaf(entry) for entry in ENTRIES]
READ = tlog.memory_node_reader(LEAVES)
ROOTS = [ref.mth(ENTRIES[:size]) for size in range(TREE + 1)]
BITS = 64


def _flip(value: bytes, bit: int) -> bytes:
    mutated = bytearray(value)
    mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


INCLUSION_PAIRS = [(index, size) for size in range(1, EXHAUSTIVE + 1) for index in range(size)]
CONSISTENCY_PAIRS = [(first, second) for second in range(EXHAUSTIVE + 1) for first in range(second + 1)]


@functools.lru_cache(maxsize=None)
def _inclusion(index: int, size: int) -> tuple[bytes, ...]:
    return tuple(tlog.inclusion_proof(index, size, READ))


@functools.lru_cache(maxsize=None)
def _consistency(first: int, second: int) -> tuple[bytes, ...]:
    return tuple(tlog.consistency_proof(first, second, READ))


def test_roots_equal_the_reference_for_every_size():
    for size in range(TREE + 1):
        assert tlog.tree_hash(ENTRIES[:size]) == ROOTS[size]
        assert tlog.root_hash(size, READ) == ROOTS[size]
    assert ROOTS[0] == tlog.EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_every_inclusion_proof_up_to_64_is_the_rfc_path_and_verifies():
    for index, size in INCLUSION_PAIRS:
        proof = list(_inclusion(index, size))
        assert proof == ref.path(index, ENTRIES[:size]), (index, size)
        assert tlog.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size]), (index, size)


def test_every_consistency_proof_up_to_64_is_the_rfc_proof_and_verifies():
    for first, second in CONSISTENCY_PAIRS:
        proof = list(_consistency(first, second))
        assert proof == ref.proof(first, ENTRIES[:second]), (first, second)
        assert tlog.verify_consistency(first, second, proof, ROOTS[first], ROOTS[second]), (first, second)


ALL_BITS = range(256)
ONE_BIT_PER_WORD = [32 * word + 5 * word % 32 for word in range(8)]


def _bits_for(size: int):
    """Every bit of every hash up to size 8; beyond, one bit in every 32-bit word of every hash (the hypothesis
    tests below draw any bit of any proof up to 64)."""
    return ALL_BITS if size <= 8 else ONE_BIT_PER_WORD


def test_every_bit_of_every_inclusion_proof_node_root_and_leaf_matters():
    for index, size in INCLUSION_PAIRS:
        proof = list(_inclusion(index, size))
        for bit in _bits_for(size):
            for position in range(len(proof)):
                mutated = proof[:position] + [_flip(proof[position], bit)] + proof[position + 1:]
                assert not tlog.verify_inclusion(index, size, LEAVES[index], mutated, ROOTS[size])
            assert not tlog.verify_inclusion(index, size, LEAVES[index], proof, _flip(ROOTS[size], bit))
            assert not tlog.verify_inclusion(index, size, _flip(LEAVES[index], bit), proof, ROOTS[size])


def test_every_bit_of_every_consistency_proof_node_and_root_matters():
    """The second root is bound unless the first tree is empty (every tree extends the empty tree)."""
    for first, second in CONSISTENCY_PAIRS:
        proof = list(_consistency(first, second))
        for bit in _bits_for(second):
            for position in range(len(proof)):
                mutated = proof[:position] + [_flip(proof[position], bit)] + proof[position + 1:]
                assert not tlog.verify_consistency(first, second, mutated, ROOTS[first], ROOTS[second])
            assert not tlog.verify_consistency(first, second, proof, _flip(ROOTS[first], bit), ROOTS[second])
            flipped_second = tlog.verify_consistency(first, second, proof, ROOTS[first], _flip(ROOTS[second], bit))
            assert flipped_second is (first == 0 < second)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(INCLUSION_PAIRS), st.integers(min_value=0, max_value=255), st.data())
def test_any_bit_flip_of_an_inclusion_proof_fails(pair, bit, data):
    index, size = pair
    proof = list(_inclusion(index, size))
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1))
    if target < len(proof):
        proof[target] = _flip(proof[target], bit)
        assert not tlog.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size])
    elif target == len(proof):
        assert not tlog.verify_inclusion(index, size, LEAVES[index], proof, _flip(ROOTS[size], bit))
    else:
        assert not tlog.verify_inclusion(index, size, _flip(LEAVES[index], bit), proof, ROOTS[size])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([pair for pair in CONSISTENCY_PAIRS if pair[0]]), st.integers(min_value=0, max_value=255),
       st.data())
def test_any_bit_flip_of_a_consistency_proof_fails(pair, bit, data):
    first, second = pair
    proof = list(_consistency(first, second))
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1))
    roots = [ROOTS[first], ROOTS[second]]
    if target < len(proof):
        proof[target] = _flip(proof[target], bit)
    else:
        roots[target - len(proof)] = _flip(roots[target - len(proof)], bit)
    assert not tlog.verify_consistency(first, second, proof, *roots)


def _inclusion_trace(index: int, size: int) -> list[str]:
    """The sequence of hash operations RFC 9162 §2.1.3.2 performs for (index, size), one per proof node."""
    fn, sn, ops = index, size - 1, []
    while sn > 0:
        if fn & 1 or fn == sn:
            ops.append("left")
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            ops.append("right")
        fn, sn = fn >> 1, sn >> 1
    return ops


def _consistency_trace(first: int, second: int) -> tuple[bool, list[str]]:
    """Whether RFC 9162 §2.1.4.2 prepends `first_hash`, and its operations, one per (remaining) proof node."""
    fn, sn, ops = first - 1, second - 1, []
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    while sn > 0:
        if fn & 1 or fn == sn:
            ops.append("both")
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            ops.append("second")
        fn, sn = fn >> 1, sn >> 1
    return first & (first - 1) == 0, ops


def test_every_single_bit_flip_of_index_or_size_fails_against_the_root_of_the_claimed_tree():
    """A flipped index or size claims another position or tree: against that tree's true root (known for sizes up
    to 128; larger claims need longer paths than any proof here) the proof fails. Against the *original* root a
    flipped size can only verify when the RFC algorithm performs exactly the same operations for both sizes — the
    proof then proves nothing new about the original tree, and the size that goes with a root is bound by the
    checkpoint signature (LOG.md), not by the proof."""
    for index, size in INCLUSION_PAIRS:
        proof = list(_inclusion(index, size))
        for bit in range(BITS):
            for claimed_index, claimed_size in ((index ^ 1 << bit, size), (index, size ^ 1 << bit)):
                if claimed_size <= TREE:
                    assert not tlog.verify_inclusion(claimed_index, claimed_size, LEAVES[index], proof,
                                                     ROOTS[claimed_size]), (index, size, bit)
                if tlog.verify_inclusion(claimed_index, claimed_size, LEAVES[index], proof, ROOTS[size]):
                    assert claimed_index == index, (index, size, bit)
                    assert _inclusion_trace(index, claimed_size) == _inclusion_trace(index, size)


def test_every_single_bit_flip_of_a_consistency_size_fails_against_the_roots_of_the_claimed_trees():
    """Only trivially true claims survive: an empty proof for `first` in (0, `second`)."""
    for first, second in CONSISTENCY_PAIRS:
        proof = list(_consistency(first, second))
        for bit in range(BITS):
            for claimed_first, claimed_second in ((first ^ 1 << bit, second), (first, second ^ 1 << bit)):
                if claimed_first <= TREE and claimed_second <= TREE:
                    verified = tlog.verify_consistency(claimed_first, claimed_second, proof, ROOTS[claimed_first],
                                                       ROOTS[claimed_second])
                    trivial = not proof and claimed_first in (0, claimed_second)
                    assert verified is trivial, (first, second, bit)
                if tlog.verify_consistency(claimed_first, claimed_second, proof, ROOTS[first], ROOTS[second]):
                    if first == 0:
                        assert claimed_first == 0 and not proof
                    else:
                        assert claimed_first == first, (first, second, bit)
                        assert _consistency_trace(first, claimed_second) == _consistency_trace(first, second)


def test_truncated_extended_and_reordered_proofs_fail():
    junk = hashlib.sha256(b"junk").digest()
    for index, size in INCLUSION_PAIRS:
        proof = list(_inclusion(index, size))
        assert not tlog.verify_inclusion(index, size, LEAVES[index], proof + [junk], ROOTS[size])
        assert not tlog.verify_inclusion(index, size, LEAVES[index], [junk] + proof, ROOTS[size])
        if proof:
            assert not tlog.verify_inclusion(index, size, LEAVES[index], proof[:-1], ROOTS[size])
        if len(set(proof)) > 1:
            assert not tlog.verify_inclusion(index, size, LEAVES[index], proof[::-1], ROOTS[size])
    for first, second in CONSISTENCY_PAIRS:
        proof = list(_consistency(first, second))
        assert not tlog.verify_consistency(first, second, proof + [junk], ROOTS[first], ROOTS[second])
        if proof:
            assert not tlog.verify_consistency(first, second, proof[:-1], ROOTS[first], ROOTS[second])
            assert not tlog.verify_consistency(first, second, [junk] + proof, ROOTS[first], ROOTS[second])
        if len(set(proof)) > 1:
            assert not tlog.verify_consistency(first, second, proof[::-1], ROOTS[first], ROOTS[second])


def test_swapped_roots_and_reversed_sizes_fail():
    for first, second in CONSISTENCY_PAIRS:
        if first == second:
            continue
        proof = list(_consistency(first, second))
        assert not tlog.verify_consistency(first, second, proof, ROOTS[second], ROOTS[first])
        assert not tlog.verify_consistency(second, first, proof, ROOTS[second], ROOTS[first])


def test_the_empty_tree_and_equal_sizes_need_an_empty_proof():
    junk = hashlib.sha256(b"junk").digest()
    for size in range(EXHAUSTIVE + 1):
        assert tlog.verify_consistency(0, size, [], tlog.EMPTY_ROOT, ROOTS[size])
        assert not tlog.verify_consistency(0, size, [], junk, ROOTS[size])
        assert not tlog.verify_consistency(0, size, [junk], tlog.EMPTY_ROOT, ROOTS[size])
        assert tlog.verify_consistency(size, size, [], ROOTS[size], ROOTS[size])
        assert not tlog.verify_consistency(size, size, [junk], ROOTS[size], ROOTS[size])
        if size:
            assert not tlog.verify_consistency(size, size, [], ROOTS[size], ROOTS[size - 1])


@pytest.mark.parametrize("bad", [None, "x", b"", b"\x00" * 31, b"\x00" * 33, 3, [b"\x00" * 32]])
def test_malformed_hashes_are_rejected_without_raising(bad):
    proof = list(_inclusion(3, 8))
    assert not tlog.verify_inclusion(3, 8, bad, proof, ROOTS[8])
    assert not tlog.verify_inclusion(3, 8, LEAVES[3], proof, bad)
    assert not tlog.verify_inclusion(3, 8, LEAVES[3], proof[:1] + [bad] + proof[2:], ROOTS[8])
    consistency = list(_consistency(3, 8))
    assert not tlog.verify_consistency(3, 8, consistency, bad, ROOTS[8])
    assert not tlog.verify_consistency(3, 8, consistency, ROOTS[3], bad)


@pytest.mark.parametrize("bad", [-1, True, 1.0, "3", None, tlog.MAX_TREE_SIZE + 1])
def test_malformed_sizes_are_rejected(bad):
    assert not tlog.verify_inclusion(bad, 8, LEAVES[0], list(_inclusion(0, 8)), ROOTS[8])
    assert not tlog.verify_inclusion(0, bad, LEAVES[0], list(_inclusion(0, 8)), ROOTS[8])
    assert not tlog.verify_consistency(bad, 8, list(_consistency(3, 8)), ROOTS[3], ROOTS[8])
    assert not tlog.verify_consistency(3, bad, list(_consistency(3, 8)), ROOTS[3], ROOTS[8])
    with pytest.raises(ProofError):
        tlog.inclusion_plan(bad, 8)
    with pytest.raises(ProofError):
        tlog.consistency_plan(3, bad)
    with pytest.raises(ProofError):
        tlog.root_plan(bad)


def test_plans_refuse_impossible_requests():
    with pytest.raises(ProofError, match="out of range"):
        tlog.inclusion_plan(8, 8)
    with pytest.raises(ProofError, match="larger"):
        tlog.consistency_plan(9, 8)
    assert tlog.consistency_plan(0, 8).groups == ()
    assert tlog.consistency_plan(8, 8).groups == ()
    assert tlog.root_plan(0).read(lambda nodes: pytest.fail("an empty tree reads nothing")) == [tlog.EMPTY_ROOT]


def test_a_reader_that_returns_the_wrong_number_of_hashes_is_refused():
    with pytest.raises(ProofError, match="returned"):
        tlog.inclusion_proof(3, 8, lambda nodes: [LEAVES[0]])
    with pytest.raises(ProofError, match="missing or malformed"):
        tlog.inclusion_proof(3, 8, lambda nodes: [b"short"] * len(nodes))


def _depth(size: int) -> int:
    return max(size - 1, 1).bit_length()


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=tlog.MAX_TREE_SIZE), st.data())
def test_proof_plans_need_logarithmically_many_nodes_at_any_size(size, data):
    """The storage contract: a root, an inclusion proof and a consistency proof each read O(log n) nodes."""
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=0, max_value=size))
    bound = 2 * _depth(size) + 1
    assert len(tlog.root_plan(size).nodes) <= _depth(size) + 1
    assert len(tlog.inclusion_plan(index, size).nodes) <= bound
    assert len(tlog.consistency_plan(first, size).nodes) <= bound
    for node in tlog.inclusion_plan(index, size).nodes + tlog.consistency_plan(first, size).nodes:
        assert node.end <= size and node.start % (1 << node.level) == 0


class _PeriodicTree:
    """A tree of any size whose leaf i is entry `i mod 1024`: nodes below level 10 repeat with the period, nodes at
    level 10 and above are equal within their level, so every node costs one memoised hash and proofs in trees of
    2**40 leaves are cheap, while positions inside a period (and every right edge) still differ."""

    PERIOD_LEVEL = 10

    @staticmethod
    def leaf(index: int) -> bytes:
        return tlog.hash_leaf((index % (1 << _PeriodicTree.PERIOD_LEVEL)).to_bytes(8, "big"))

    @functools.lru_cache(maxsize=None)
    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            return self.leaf(index)
        index = 0 if level >= self.PERIOD_LEVEL else index % (1 << (self.PERIOD_LEVEL - level))
        return tlog.hash_children(self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1))

    def read(self, nodes):
        return [self.node(node.level, node.index) for node in nodes]


LAZY = _PeriodicTree()


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=1 << 40), st.data())
def test_proofs_in_large_trees_verify_and_any_flip_breaks_them(size, data):
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=1, max_value=size))
    root = tlog.root_hash(size, LAZY.read)
    first_root = tlog.root_hash(first, LAZY.read)
    inclusion = tlog.inclusion_proof(index, size, LAZY.read)
    consistency = tlog.consistency_proof(first, size, LAZY.read)
    assert tlog.verify_inclusion(index, size, LAZY.leaf(index), inclusion, root)
    assert tlog.verify_consistency(first, size, consistency, first_root, root)
    bit = data.draw(st.integers(min_value=0, max_value=255))
    if inclusion:
        position = data.draw(st.integers(min_value=0, max_value=len(inclusion) - 1))
        inclusion[position] = _flip(inclusion[position], bit)
        assert not tlog.verify_inclusion(index, size, LAZY.leaf(index), inclusion, root)
    if consistency:
        position = data.draw(st.integers(min_value=0, max_value=len(consistency) - 1))
        consistency[position] = _flip(consistency[position], bit)
        assert not tlog.verify_consistency(first, size, consistency, first_root, root)
    assert not tlog.verify_inclusion(index, size, LAZY.leaf(index), tlog.inclusion_proof(index, size, LAZY.read),
                                     _flip(root, bit))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_a_compact_range_extended_in_any_batches_equals_the_reference(batch_sizes):
    total = min(sum(batch_sizes), TREE)
    compact = tlog.CompactRange()
    completed: dict[tlog.Node, bytes] = {}
    for batch in batch_sizes:
        start = compact.size
        end = min(start + batch, total)
        compact, new_nodes = compact.extend(LEAVES[start:end])
        for node, value in new_nodes:
            assert node not in completed
            completed[node] = value
        assert compact.size == end
        assert compact.root() == ROOTS[end]
        assert compact.nodes == tlog.frontier_nodes(end)
        assert list(compact.hashes) == READ(compact.nodes)
    expected = {tlog.Node(level, index) for level in range(8) for index in range(total >> level)}
    assert set(completed) == expected
    assert [completed[node] for node in sorted(completed)] == READ(sorted(completed))
    assert tlog.CompactRange(compact.size, compact.hashes) == compact


def test_a_compact_range_checks_its_shape():
    with pytest.raises(ProofError):
        tlog.CompactRange(3, [LEAVES[0]])
    with pytest.raises(ProofError):
        tlog.CompactRange(1, [b"short"])
    with pytest.raises(ProofError):
        tlog.CompactRange().extend([b"short"])
    assert tlog.CompactRange().root() == tlog.EMPTY_ROOT

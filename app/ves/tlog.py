"""The per-stream transparency log of LOG.md (VES-LOG-1): RFC 9162 Merkle tree hashes and proofs.

Hashing is RFC 9162 §2.1.1 exactly (= RFC 6962 §2.1): `leaf = SHA-256(0x00 || entry)`,
`node = SHA-256(0x01 || left || right)`, the tree hash of `n > 1` entries splits at `k`, the largest power of two
smaller than `n`, and the empty tree hashes to `SHA-256("")`. In our logs an entry is an event's 32-byte VES leaf
hash, but nothing here depends on that.

Trees are addressed by perfect subtrees: `Node(level, index)` covers leaves `[index * 2**level,
(index + 1) * 2**level)`; level 0 holds the leaf hashes. Every subtree the RFC recursion visits is either perfect
or ends at the tree's right edge, so its hash is a right fold of at most 64 perfect nodes. The core computes *which*
nodes a root or proof needs (`*_plan`); the caller fetches them (a `NodeReader`, e.g. one SQL statement) and the
core assembles the result: a root, an inclusion proof or a consistency proof costs O(log n) stored nodes.

PURE: stdlib only. Sizes and indices are integers in `0 .. MAX_TREE_SIZE`; hashes are 32 raw bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from app.ves.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "CompactRange",
    "Node",
    "NodeReader",
    "ProofPlan",
    "consistency_plan",
    "consistency_proof",
    "frontier_nodes",
    "hash_children",
    "hash_leaf",
    "inclusion_plan",
    "inclusion_proof",
    "memory_node_reader",
    "root_hash",
    "root_plan",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
MAX_TREE_SIZE = (1 << 63) - 1
"""Largest tree size or index accepted: PostgreSQL's bigint, and within RFC 9162's uint64."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_BYTES_LIKE = (bytes, bytearray, memoryview)


def hash_leaf(entry: bytes) -> bytes:
    """`MTH({d(0)}) = SHA-256(0x00 || d(0))` (RFC 9162 §2.1.1). `entry` is any byte string (ours: 32 bytes)."""
    if not isinstance(entry, _BYTES_LIKE):
        raise ProofError("A log entry must be bytes")
    return hashlib.sha256(_LEAF_PREFIX + bytes(entry)).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """`SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1), for two 32-byte subtree hashes."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class Node(NamedTuple):
    """The perfect subtree of `2**level` leaves starting at leaf `index * 2**level`."""

    level: int
    index: int

    @property
    def start(self) -> int:
        """First leaf index covered (inclusive)."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """Leaf index just past the last one covered (exclusive)."""
        return (self.index + 1) << self.level


NodeReader = Callable[[Sequence[Node]], Sequence[bytes]]
"""Fetches stored perfect-subtree hashes: called once per root or proof with distinct nodes, it MUST return one
32-byte hash per node, in the same order, and raise if any is unknown (never guess)."""


def _require_size(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"Invalid {what} (expected an integer between 0 and {MAX_TREE_SIZE}, got {value!r})")
    return value


def _largest_power_of_two_below(n: int) -> int:
    """`k` of RFC 9162 §2.1.1: the largest power of two smaller than `n` (`n >= 2`)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_nodes(start: int, end: int) -> tuple[Node, ...]:
    """The perfect subtrees, left to right, whose right fold is `MTH(D[start:end])` for a subtree of the RFC
    recursion (`start` is a multiple of the smallest power of two >= `end - start`)."""
    nodes = []
    position = start
    width = end - start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            if position & ((1 << level) - 1):
                raise AssertionError(f"logic error: unaligned subtree [{start}, {end})")
            nodes.append(Node(level, position >> level))
            position += 1 << level
    return tuple(nodes)


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold `H(h0, H(h1, … H(h[-2], h[-1])))`: the tree hash of adjacent perfect subtrees, largest first."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hash_children(left, result)
    return result


@dataclass(frozen=True)
class ProofPlan:
    """Which stored nodes a root or proof needs, and how to assemble it.

    `groups[i]` lists the perfect subtrees whose right fold is proof element `i` (RFC order); `nodes` is the
    distinct nodes of all groups, the single read a caller MUST make.
    """

    groups: tuple[tuple[Node, ...], ...]

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(dict.fromkeys(node for group in self.groups for node in group))

    def assemble(self, hashes: Mapping[Node, bytes]) -> list[bytes]:
        """The proof elements from `hashes[node]` for every node of the plan. Raises ProofError for a missing or
        malformed hash."""
        for node in self.nodes:
            value = hashes.get(node)
            if not isinstance(value, _BYTES_LIKE) or len(value) != HASH_SIZE:
                raise ProofError(f"A stored log node is missing or malformed (level: {node.level}, "
                                 f"index: {node.index})")
        return [_fold([bytes(hashes[node]) for node in group]) for group in self.groups]

    def read(self, read_nodes: NodeReader) -> list[bytes]:
        """Fetch `nodes` with one `read_nodes` call and assemble."""
        wanted = self.nodes
        if not wanted:
            return self.assemble({})
        fetched = list(read_nodes(wanted))
        if len(fetched) != len(wanted):
            raise ProofError(f"The node reader returned {len(fetched)} hashes for {len(wanted)} nodes")
        return self.assemble(dict(zip(wanted, fetched)))


def frontier_nodes(size: int) -> tuple[Node, ...]:
    """The compact range of `[0, size)`: one perfect subtree per set bit of `size`, largest first (RFC 9162's
    recursion splits off exactly these). Empty for `size == 0`."""
    return _subtree_nodes(0, _require_size(size, "tree size"))


def root_plan(size: int) -> ProofPlan:
    """The nodes whose fold is `MTH(D[size])`. For `size == 0` the plan has one empty group: `EMPTY_ROOT`."""
    return ProofPlan((frontier_nodes(size),))


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The audit path `PATH(index, D[size])` of RFC 9162 §2.1.3.1, as subtrees, from the leaf's sibling upward.

    Raises ProofError unless `0 <= index < size`.
    """
    _require_size(index, "leaf index")
    _require_size(size, "tree size")
    if index >= size:
        raise ProofError(f"Leaf index out of range (index: {index}, tree_size: {size})")
    siblings = []
    low, high = 0, size
    while high - low > 1:
        k = _largest_power_of_two_below(high - low)
        if index < low + k:
            siblings.append(_subtree_nodes(low + k, high))
            high = low + k
        else:
            siblings.append(_subtree_nodes(low, low + k))
            low = low + k
    return ProofPlan(tuple(reversed(siblings)))


def consistency_plan(first: int, second: int) -> ProofPlan:
    """The consistency proof `PROOF(first, D[second])` of RFC 9162 §2.1.4.1, as subtrees, in the RFC's order.

    Empty when `first == 0` or `first == second` (LOG.md: every tree extends the empty tree and itself). Raises
    ProofError unless `0 <= first <= second`.
    """
    _require_size(first, "first tree size")
    _require_size(second, "second tree size")
    if first > second:
        raise ProofError(f"The first tree is larger than the second (first: {first}, second: {second})")
    if first == 0 or first == second:
        return ProofPlan(())
    elements = []
    low, high = 0, second
    starts_at_root = True
    while True:
        if first == high:
            if not starts_at_root:
                elements.append(_subtree_nodes(low, high))
            break
        k = _largest_power_of_two_below(high - low)
        if first <= low + k:
            elements.append(_subtree_nodes(low + k, high))
            high = low + k
        else:
            elements.append(_subtree_nodes(low, low + k))
            low = low + k
            starts_at_root = False
    return ProofPlan(tuple(reversed(elements)))


def root_hash(size: int, read_nodes: NodeReader) -> bytes:
    """`MTH(D[size])` from O(log size) stored nodes (one `read_nodes` call; none for an empty tree)."""
    return root_plan(size).read(read_nodes)[0]


def inclusion_proof(index: int, size: int, read_nodes: NodeReader) -> list[bytes]:
    """The RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves, from stored nodes."""
    return inclusion_plan(index, size).read(read_nodes)


def consistency_proof(first: int, second: int, read_nodes: NodeReader) -> list[bytes]:
    """The RFC 9162 §2.1.4.1 consistency proof from tree size `first` to `second`, from stored nodes."""
    return consistency_plan(first, second).read(read_nodes)


class CompactRange:
    """The right edge of a growing tree `[0, size)`: one hash per `frontier_nodes(size)`, largest first.

    Enough to append leaves and compute the root without reading anything else; `extend` returns the new range and
    every perfect subtree the new leaves complete (level 0 included), which is what a store of nodes persists.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        _require_size(size, "tree size")
        hashes = tuple(bytes(h) for h in hashes)
        if len(hashes) != bin(size).count("1") or any(len(h) != HASH_SIZE for h in hashes):
            raise ProofError(f"A compact range of size {size} needs {bin(size).count('1')} hashes of "
                             f"{HASH_SIZE} bytes (got {len(hashes)})")
        self.size = size
        self.hashes = hashes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompactRange) and (self.size, self.hashes) == (other.size, other.hashes)

    def __repr__(self) -> str:
        return f"CompactRange(size={self.size})"

    @property
    def nodes(self) -> tuple[Node, ...]:
        return frontier_nodes(self.size)

    def root(self) -> bytes:
        """`MTH(D[size])`."""
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT

    def extend(self, leaf_hashes: Iterable[bytes]) -> tuple[CompactRange, list[tuple[Node, bytes]]]:
        """Append leaves (RFC 9162 leaf hashes, i.e. `hash_leaf(entry)`); return the new range and the completed
        perfect subtrees in completion order."""
        stack = list(self.hashes)
        size = self.size
        completed = []
        sha256 = hashlib.sha256
        for leaf in leaf_hashes:
            if not isinstance(leaf, _BYTES_LIKE) or len(leaf) != HASH_SIZE:
                raise ProofError(f"Invalid leaf hash at index {size} (expected {HASH_SIZE} bytes)")
            if size >= MAX_TREE_SIZE:
                raise ProofError(f"The log is full ({MAX_TREE_SIZE} leaves)")
            node = bytes(leaf)
            level, index = 0, size
            completed.append((Node(0, index), node))
            while index & 1:
                node = sha256(_NODE_PREFIX + stack.pop() + node).digest()
                level += 1
                index >>= 1
                completed.append((Node(level, index), node))
            stack.append(node)
            size += 1
        extended = CompactRange.__new__(CompactRange)
        extended.size, extended.hashes = size, tuple(stack)
        return extended, completed


def tree_hash(entries: Iterable[bytes]) -> bytes:
    """`MTH(D[n])` over the entries themselves (RFC 9162 §2.1.1): O(n) time, O(log n) memory."""
    compact, _ = CompactRange().extend(hash_leaf(entry) for entry in entries)
    return compact.root()


def memory_node_reader(leaf_hashes: Sequence[bytes]) -> NodeReader:
    """A NodeReader over leaf hashes held in memory (an export, a test): each node is hashed from its leaves."""
    leaves = [bytes(h) for h in leaf_hashes]

    def read(nodes: Sequence[Node]) -> list[bytes]:
        hashes = []
        for node in nodes:
            if node.end > len(leaves):
                raise ProofError(f"No such node in a tree of {len(leaves)} leaves (level: {node.level}, "
                                 f"index: {node.index})")
            level = leaves[node.start:node.end]
            while len(level) > 1:
                level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            hashes.append(level[0])
        return hashes

    return read


def _is_hash(value: object) -> bool:
    return isinstance(value, _BYTES_LIKE) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TREE_SIZE


def _is_proof(proof: object) -> bool:
    if isinstance(proof, (str, *_BYTES_LIKE)) or not isinstance(proof, Sequence):
        return False
    return all(_is_hash(element) for element in proof)


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff `proof` proves leaf hash `leaf_hash` at `index` in the tree of `size` leaves with hash `root`.

    RFC 9162 §2.1.3.2 step by step; `leaf_hash` is `hash_leaf(entry)`. Never raises: malformed input (a hash that
    is not 32 bytes, `index >= size`, a proof of the wrong length) returns False.
    """
    if not (_is_size(index) and _is_size(size) and _is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in proof:
        p = bytes(p)
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == bytes(root)


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes,
                       second_root: bytes) -> bool:
    """True iff `proof` proves the tree of `second` leaves with hash `second_root` extends the tree of `first`
    leaves with hash `first_root`.

    RFC 9162 §2.1.4.2 for `0 < first < second`. The cases the RFC leaves out, as LOG.md serves them: `first ==
    second` needs an empty proof and equal roots; `first == 0` needs an empty proof and `first_root == EMPTY_ROOT`
    (the empty tree is a prefix of every tree). Never raises: malformed input returns False.
    """
    if not (_is_size(first) and _is_size(second) and _is_hash(first_root) and _is_hash(second_root)
            and _is_proof(proof)):
        return False
    first_root, second_root = bytes(first_root), bytes(second_root)
    path = [bytes(element) for element in proof]
    if first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0

"""Merkle commitments of VES.md §Merkle commitments: leaves, padded binary tree, inclusion proofs, state roots.

Leaves are in sequence order and padded with `PAD_LEAF` to the next power of two; a single leaf is its own root
(depth 0). The core computes from leaf hashes passed in; callers fetch and persist.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from app.ves.encoding import u32
from app.ves.encoding import u64
from app.ves.encoding import uuid_bytes
from app.ves.errors import InvalidEncoding
from app.ves.errors import ProofError
from app.ves.hashing import HASH_SIZE
from app.ves.hashing import SIGNATURE_SIZE
from app.ves.hashing import TAG_LEAF
from app.ves.hashing import TAG_NODE
from app.ves.hashing import TAG_PAD_LEAF
from app.ves.hashing import TAG_STATE_ROOT
from app.ves.hashing import require_bytes

PAD_LEAF = hashlib.sha256(TAG_PAD_LEAF).digest()
UNSIGNED_AGENT_SIGNATURE = bytes(SIGNATURE_SIZE)

_BYTES_LIKE = (bytes, bytearray, memoryview)


def leaf_hash(
    tenant_id: uuid.UUID | str,
    store_id: uuid.UUID | str,
    sequence_number: int,
    event_signing_hash: bytes,
    agent_signature: bytes | None,
) -> bytes:
    """`leaf_i = SHA256("VES_LEAF_V1" || UUID(tenant) || UUID(store) || U64(sequence_number) || event_signing_hash
    || agent_signature(64))`. An event ingested unsigned (`None` or empty signature) uses 64 zero bytes."""
    signature = UNSIGNED_AGENT_SIGNATURE if not agent_signature else agent_signature
    preimage = b"".join(
        (
            TAG_LEAF,
            uuid_bytes(tenant_id, "tenant_id"),
            uuid_bytes(store_id, "store_id"),
            u64(sequence_number),
            require_bytes(event_signing_hash, HASH_SIZE, "event_signing_hash"),
            require_bytes(signature, SIGNATURE_SIZE, "agent_signature"),
        )
    )
    return hashlib.sha256(preimage).digest()


def stream_leaf_hashes(
    tenant_id: uuid.UUID | str,
    store_id: uuid.UUID | str,
    entries: Iterable[tuple[int, bytes, bytes | None]],
) -> list[bytes]:
    """`leaf_hash` of many events of one stream, `entries` being `(sequence_number, event_signing_hash,
    agent_signature)`: the same bytes, with the stream's prefix encoded once (the log write of every ingest)."""
    prefix = TAG_LEAF + uuid_bytes(tenant_id, "tenant_id") + uuid_bytes(store_id, "store_id")
    sha256 = hashlib.sha256
    hashes = []
    for sequence_number, signing_hash, signature in entries:
        signature = UNSIGNED_AGENT_SIGNATURE if not signature else signature
        if len(signing_hash) != HASH_SIZE or len(signature) != SIGNATURE_SIZE:
            raise InvalidEncoding(f"Invalid event signing hash or agent signature (sequence number: "
                                  f"{sequence_number})")
        hashes.append(sha256(prefix + u64(sequence_number) + bytes(signing_hash) + bytes(signature)).digest())
    return hashes


def node_hash(left: bytes, right: bytes) -> bytes:
    """`SHA256("VES_NODE_V1" || left || right)`."""
    return hashlib.sha256(TAG_NODE + left + right).digest()


def _require_count(leaf_count: int) -> int:
    if isinstance(leaf_count, bool) or not isinstance(leaf_count, int) or leaf_count < 1:
        raise ProofError(f"A Merkle tree needs at least one leaf (got {leaf_count!r})")
    return leaf_count


def padded_leaf_count(leaf_count: int) -> int:
    """The next power of two >= `leaf_count` (1 for 1). Raises ProofError for counts below 1."""
    return 1 << (_require_count(leaf_count) - 1).bit_length()


def tree_depth(leaf_count: int) -> int:
    """`log2(padded_leaf_count(leaf_count))`: the proof path length for this many leaves."""
    return (_require_count(leaf_count) - 1).bit_length()


def _require_leaves(leaves: Sequence[bytes]) -> list[bytes]:
    _require_count(len(leaves))
    checked = []
    for index, leaf in enumerate(leaves):
        if not isinstance(leaf, _BYTES_LIKE) or len(leaf) != HASH_SIZE:
            raise InvalidEncoding(f"Invalid Merkle leaf (index: {index}, expected {HASH_SIZE} bytes)")
        checked.append(bytes(leaf))
    return checked


def build_tree(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the padded tree: `levels[0]` is the padded leaf level, `levels[-1] == [root]`.

    `len(levels) == tree_depth(len(leaves)) + 1`. Raises ProofError for no leaves, InvalidEncoding for a leaf
    that is not 32 bytes.
    """
    level = _require_leaves(leaves)
    level.extend([PAD_LEAF] * (padded_leaf_count(len(level)) - len(level)))
    levels = [level]
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [sha256(TAG_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over `leaves` in sequence order (VES.md §Merkle commitments). Raises ProofError for no leaves."""
    return build_tree(leaves)[-1][0]


@dataclass(frozen=True)
class InclusionProof:
    """Proof that `leaf_hash` sits at `leaf_index` under `merkle_root`.

    `proof_path` holds sibling hashes from the leaf level upward; `directions[d]` is True when the current node is
    the left child at depth d (bit d of `leaf_index` is 0).
    """

    leaf_index: int
    leaf_hash: bytes
    proof_path: list[bytes]
    directions: list[bool]
    merkle_root: bytes


def inclusion_proof_from_tree(levels: Sequence[Sequence[bytes]], leaf_index: int, leaf_count: int) -> InclusionProof:
    """The proof for `leaf_index` from levels built by `build_tree` over `leaf_count` leaves.

    Raises ProofError unless `0 <= leaf_index < leaf_count` (a padding slot is not an event).
    """
    if isinstance(leaf_index, bool) or not isinstance(leaf_index, int) or not 0 <= leaf_index < leaf_count:
        raise ProofError(f"Leaf index out of range (index: {leaf_index!r}, leaf_count: {leaf_count})")
    path = []
    directions = []
    index = leaf_index
    for level in levels[:-1]:
        is_left = index % 2 == 0
        path.append(level[index + 1] if is_left else level[index - 1])
        directions.append(is_left)
        index //= 2
    return InclusionProof(leaf_index, levels[0][leaf_index], path, directions, levels[-1][0])


def inclusion_proof(leaves: Sequence[bytes], leaf_index: int) -> InclusionProof:
    """The inclusion proof for `leaves[leaf_index]`, where `leaf_index = sequence_number - sequence_start`."""
    return inclusion_proof_from_tree(build_tree(leaves), leaf_index, len(leaves))


def _is_hash(value: object) -> bool:
    return isinstance(value, _BYTES_LIKE) and len(value) == HASH_SIZE


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(
    leaf_hash: bytes,
    merkle_root: bytes,
    proof_path: Sequence[bytes],
    leaf_index: int,
    leaf_count: int | None = None,
    directions: Sequence[bool] | None = None,
) -> bool:
    """True iff folding `proof_path` from `leaf_hash` at `leaf_index` yields `merkle_root`. Strict per VES.md:

    rejects `leaf_index >= 2**len(proof_path)`; when `leaf_count` is known, rejects `leaf_index >= leaf_count`
    and `len(proof_path) != tree_depth(leaf_count)`; when `directions` are given, each MUST equal "bit d of
    `leaf_index` is 0". Never raises: malformed input returns False.
    """
    if not (_is_hash(leaf_hash) and _is_hash(merkle_root) and _is_index(leaf_index)):
        return False
    if isinstance(proof_path, (str, bytes, bytearray, memoryview)) or not isinstance(proof_path, Sequence):
        return False
    if not all(_is_hash(sibling) for sibling in proof_path):
        return False
    depth = len(proof_path)
    if leaf_index >> depth:
        return False
    if leaf_count is not None:
        if not _is_index(leaf_count) or leaf_count == 0:
            return False
        if leaf_index >= leaf_count or depth != tree_depth(leaf_count):
            return False
    if directions is not None:
        if isinstance(directions, (str, bytes)) or not isinstance(directions, Sequence) or len(directions) != depth:
            return False
        if any(directions[d] is not ((leaf_index >> d) & 1 == 0) for d in range(depth)):
            return False
    node = bytes(leaf_hash)
    for d, sibling in enumerate(proof_path):
        node = node_hash(bytes(sibling), node) if (leaf_index >> d) & 1 else node_hash(node, bytes(sibling))
    return node == bytes(merkle_root)


def state_root(
    stream_id: bytes,
    prev_state_root: bytes,
    merkle_root: bytes,
    sequence_start: int,
    sequence_end: int,
    leaf_count: int,
) -> bytes:
    """`new_state_root = SHA256("VES_STATE_ROOT_V1" || stream_id || prev_state_root || merkle_root
    || U64(sequence_start) || U64(sequence_end) || U32(leaf_count))`. Genesis `prev_state_root` is ZERO_HASH."""
    preimage = b"".join(
        (
            TAG_STATE_ROOT,
            require_bytes(stream_id, HASH_SIZE, "stream_id"),
            require_bytes(prev_state_root, HASH_SIZE, "prev_state_root"),
            require_bytes(merkle_root, HASH_SIZE, "merkle_root"),
            u64(sequence_start),
            u64(sequence_end),
            u32(leaf_count),
        )
    )
    return hashlib.sha256(preimage).digest()

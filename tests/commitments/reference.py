"""An independent reading of VES.md §Merkle commitments in plain hashlib (deliberately not app.ves), to check the
server against the spec rather than against itself."""

from __future__ import annotations

import hashlib
import uuid


def sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def stream_id(tenant_id: uuid.UUID, store_id: uuid.UUID) -> bytes:
    return sha256(b"VES_STREAM_V1", tenant_id.bytes, store_id.bytes)


def leaf(tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_number: int, signing_hash: bytes,
         signature: bytes | None) -> bytes:
    return sha256(b"VES_LEAF_V1", tenant_id.bytes, store_id.bytes, sequence_number.to_bytes(8, "big"), signing_hash,
                  signature or bytes(64))


def levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree, padded leaf level first, `[root]` last."""
    width = 1
    while width < len(leaves):
        width *= 2
    level = leaves + [sha256(b"VES_PAD_LEAF_V1")] * (width - len(leaves))
    tree = [level]
    while len(level) > 1:
        level = [sha256(b"VES_NODE_V1", level[i], level[i + 1]) for i in range(0, len(level), 2)]
        tree.append(level)
    return tree


def root(leaves: list[bytes]) -> bytes:
    return levels(leaves)[-1][0]


def path(tree: list[list[bytes]], index: int) -> list[bytes]:
    """The sibling hashes of slot `index` (padding slots included) from the leaf level upward."""
    return [level[(index >> depth) ^ 1] for depth, level in enumerate(tree[:-1])]


def state_root(stream: bytes, prev: bytes, merkle_root: bytes, start: int, end: int, count: int) -> bytes:
    return sha256(b"VES_STATE_ROOT_V1", stream, prev, merkle_root, start.to_bytes(8, "big"), end.to_bytes(8, "big"),
                  count.to_bytes(4, "big"))


def fold(leaf_hash: bytes, leaf_index: int, path: list[bytes]) -> bytes:
    """The root a proof path implies: sibling on the right where bit d of `leaf_index` is 0."""
    node = leaf_hash
    for depth, sibling in enumerate(path):
        if (leaf_index >> depth) & 1:
            node = sha256(b"VES_NODE_V1", sibling, node)
        else:
            node = sha256(b"VES_NODE_V1", node, sibling)
    return node


def row_leaf(row: dict) -> bytes:
    return leaf(row["tenant_id"], row["store_id"], row["sequence_number"], row["event_signing_hash"],
                row["agent_signature"])

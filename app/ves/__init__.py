"""The VES protocol core (VES.md), byte for byte.

PURE: stdlib, `rfc8785` and PyNaCl only. No Flask, SQLAlchemy, environment or clock reads (enforced by
tests/ves/test_purity.py). Functions take and return raw bytes; hex/base64 wire forms are parsed in `encoding`.

The per-stream transparency log of LOG.md lives in its own modules, imported as modules because their names
overlap `merkle`'s: `tlog` (RFC 9162 tree hashes and proofs), `note` (C2SP signed notes, verifier keys) and
`checkpoint` (C2SP tlog-checkpoints, stream origins).

    >>> from app.ves import stream_id, to_hex
    >>> to_hex(stream_id("f441ee61-a478-43a8-b2a4-417327cccfa4", "c7f65a03-9b5f-4de8-81ab-a52bc80e871f"))[:10]
    '0xcbdc6a71'
"""

from app.ves.encoding import MAX_U32
from app.ves.encoding import MAX_U64
from app.ves.encoding import b64u_decode
from app.ves.encoding import b64u_encode
from app.ves.encoding import jcs
from app.ves.encoding import parse_hex
from app.ves.encoding import parse_key_material
from app.ves.encoding import parse_uuid
from app.ves.encoding import str_field
from app.ves.encoding import to_hex
from app.ves.encoding import u32
from app.ves.encoding import u64
from app.ves.encoding import uuid_bytes
from app.ves.encrypted import PayloadEncrypted
from app.ves.encrypted import Recipient
from app.ves.encrypted import check_payload_encrypted
from app.ves.encrypted import decode_payload_encrypted
from app.ves.encrypted import payload_aad
from app.ves.encrypted import payload_cipher_hash
from app.ves.encrypted import payload_plain_hash_salted
from app.ves.encrypted import recipients_hash
from app.ves.errors import CanonicalizationFailed
from app.ves.errors import InvalidEncoding
from app.ves.errors import ProofError
from app.ves.errors import UnsupportedVesVersion
from app.ves.errors import VesError
from app.ves.hashing import HASH_SIZE
from app.ves.hashing import PAYLOAD_KIND_ENCRYPTED
from app.ves.hashing import PAYLOAD_KIND_PLAIN
from app.ves.hashing import SIGNATURE_SIZE
from app.ves.hashing import SUPPORTED_VES_VERSIONS
from app.ves.hashing import TAG_EVENTSIG_V1
from app.ves.hashing import TAG_EVENTSIG_V2
from app.ves.hashing import TAG_LEAF
from app.ves.hashing import TAG_NODE
from app.ves.hashing import TAG_PAD_LEAF
from app.ves.hashing import TAG_PAYLOAD_AAD
from app.ves.hashing import TAG_PAYLOAD_CIPHER
from app.ves.hashing import TAG_PAYLOAD_PLAIN
from app.ves.hashing import TAG_RECEIPT
from app.ves.hashing import TAG_RECIPIENTS
from app.ves.hashing import TAG_STATE_ROOT
from app.ves.hashing import TAG_STREAM
from app.ves.hashing import ZERO_HASH
from app.ves.hashing import EventSigningFields
from app.ves.hashing import event_signing_hash
from app.ves.hashing import event_signing_hash_v1_inner
from app.ves.hashing import payload_plain_hash
from app.ves.hashing import receipt_hash
from app.ves.hashing import stream_id
from app.ves.merkle import PAD_LEAF
from app.ves.merkle import UNSIGNED_AGENT_SIGNATURE
from app.ves.merkle import InclusionProof
from app.ves.merkle import build_tree
from app.ves.merkle import inclusion_proof
from app.ves.merkle import inclusion_proof_from_tree
from app.ves.merkle import leaf_hash
from app.ves.merkle import merkle_root
from app.ves.merkle import node_hash
from app.ves.merkle import padded_leaf_count
from app.ves.merkle import state_root
from app.ves.merkle import stream_leaf_hashes
from app.ves.merkle import tree_depth
from app.ves.merkle import verify_inclusion
from app.ves.signing import Ed25519Signer
from app.ves.signing import public_key_from_seed
from app.ves.signing import sign
from app.ves.signing import verify_signature

__all__ = [
    "HASH_SIZE",
    "MAX_U32",
    "MAX_U64",
    "PAD_LEAF",
    "PAYLOAD_KIND_ENCRYPTED",
    "PAYLOAD_KIND_PLAIN",
    "SIGNATURE_SIZE",
    "SUPPORTED_VES_VERSIONS",
    "TAG_EVENTSIG_V1",
    "TAG_EVENTSIG_V2",
    "TAG_LEAF",
    "TAG_NODE",
    "TAG_PAD_LEAF",
    "TAG_PAYLOAD_AAD",
    "TAG_PAYLOAD_CIPHER",
    "TAG_PAYLOAD_PLAIN",
    "TAG_RECEIPT",
    "TAG_RECIPIENTS",
    "TAG_STATE_ROOT",
    "TAG_STREAM",
    "UNSIGNED_AGENT_SIGNATURE",
    "ZERO_HASH",
    "CanonicalizationFailed",
    "Ed25519Signer",
    "EventSigningFields",
    "InclusionProof",
    "InvalidEncoding",
    "PayloadEncrypted",
    "ProofError",
    "Recipient",
    "UnsupportedVesVersion",
    "VesError",
    "b64u_decode",
    "b64u_encode",
    "build_tree",
    "check_payload_encrypted",
    "decode_payload_encrypted",
    "event_signing_hash",
    "event_signing_hash_v1_inner",
    "inclusion_proof",
    "inclusion_proof_from_tree",
    "jcs",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "padded_leaf_count",
    "parse_hex",
    "to_hex",
    "parse_key_material",
    "parse_uuid",
    "payload_aad",
    "payload_cipher_hash",
    "payload_plain_hash",
    "payload_plain_hash_salted",
    "public_key_from_seed",
    "receipt_hash",
    "recipients_hash",
    "sign",
    "state_root",
    "stream_leaf_hashes",
    "str_field",
    "stream_id",
    "tree_depth",
    "u32",
    "u64",
    "uuid_bytes",
    "verify_inclusion",
    "verify_signature",
]

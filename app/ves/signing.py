"""Ed25519 (RFC 8032) with PyNaCl: 32-byte seeds, 32-byte public keys, 64-byte detached signatures.

Agent signatures are over the 32-byte event signing hash; sequencer receipts are over the 32-byte receipt hash.
"""

from __future__ import annotations

import functools

import nacl.exceptions
import nacl.signing

from app.ves.errors import InvalidEncoding

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_BYTES_LIKE = (bytes, bytearray, memoryview)


def _seed_bytes(seed: bytes) -> bytes:
    if not isinstance(seed, _BYTES_LIKE) or len(seed) != SEED_SIZE:
        raise InvalidEncoding(f"Invalid Ed25519 seed (expected {SEED_SIZE} bytes)")
    return bytes(seed)


@functools.lru_cache(maxsize=64)
def _signing_key(seed: bytes) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(seed)


@functools.lru_cache(maxsize=1024)
def _verify_key(public_key: bytes) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(public_key)


class Ed25519Signer:
    """A signer for one 32-byte seed (e.g. the decoded `VES_SEQUENCER_SIGNING_KEY`).

    `repr` never shows the seed. Raises InvalidEncoding if the seed is not 32 bytes.
    """

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes):
        self._key = _signing_key(_seed_bytes(seed))
        self.public_key: bytes = bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of `message`."""
        if not isinstance(message, _BYTES_LIKE):
            raise InvalidEncoding(f"Ed25519 signs bytes (got {type(message).__name__})")
        return self._key.sign(bytes(message)).signature

    def __repr__(self) -> str:
        return f"Ed25519Signer(public_key=0x{self.public_key.hex()})"


def public_key_from_seed(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte seed."""
    return Ed25519Signer(seed).public_key


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `message` under `seed` (deterministic, RFC 8032)."""
    return Ed25519Signer(seed).sign(message)


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message` under `public_key`.

    Never raises: wrong types, wrong lengths, invalid points and bad signatures all return False.
    """
    if not all(isinstance(value, _BYTES_LIKE) for value in (public_key, message, signature)):
        return False
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        _verify_key(bytes(public_key)).verify(bytes(message), bytes(signature))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True

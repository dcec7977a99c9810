"""Ed25519 signing and verification: deterministic signatures, and a verifier that never raises."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app import ves
from app.ves import InvalidEncoding

SEED = hashlib.sha256(b"test seed").digest()
MESSAGE = hashlib.sha256(b"event signing hash").digest()


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=64))
def test_sign_then_verify_round_trip(seed, message):
    signer = ves.Ed25519Signer(seed)
    signature = signer.sign(message)
    assert len(signature) == 64 and len(signer.public_key) == 32
    assert signature == ves.sign(seed, message)
    assert signer.public_key == ves.public_key_from_seed(seed)
    assert ves.verify_signature(signer.public_key, message, signature)
    assert not ves.verify_signature(signer.public_key, message + b"\x00", signature)


@settings(max_examples=50, deadline=None)
@given(bit=st.integers(min_value=0, max_value=511))
def test_any_flipped_signature_bit_fails(bit):
    signature = bytearray(ves.sign(SEED, MESSAGE))
    signature[bit // 8] ^= 1 << (bit % 8)
    assert not ves.verify_signature(ves.public_key_from_seed(SEED), MESSAGE, bytes(signature))


def test_other_key_fails():
    other = ves.public_key_from_seed(bytes(32))
    assert other != ves.public_key_from_seed(SEED)
    assert not ves.verify_signature(other, MESSAGE, ves.sign(SEED, MESSAGE))


GOOD_KEY = ves.public_key_from_seed(SEED)
GOOD_SIGNATURE = ves.sign(SEED, MESSAGE)


@pytest.mark.parametrize(
    ("public_key", "message", "signature"),
    [
        (GOOD_KEY[:31], MESSAGE, GOOD_SIGNATURE),
        (GOOD_KEY + b"\x00", MESSAGE, GOOD_SIGNATURE),
        (GOOD_KEY, MESSAGE, GOOD_SIGNATURE[:63]),
        (GOOD_KEY, MESSAGE, b""),
        (GOOD_KEY.hex(), MESSAGE, GOOD_SIGNATURE),
        (GOOD_KEY, MESSAGE, GOOD_SIGNATURE.hex()),
        (GOOD_KEY, MESSAGE.hex(), GOOD_SIGNATURE),
        (GOOD_KEY, 32, GOOD_SIGNATURE),
        (None, MESSAGE, GOOD_SIGNATURE),
        (GOOD_KEY, MESSAGE, None),
        (b"\xff" * 32, MESSAGE, GOOD_SIGNATURE),
        (bytes(32), MESSAGE, bytes(64)),
        (b"\x01" + bytes(31), MESSAGE, bytes(64)),
    ],
    ids=[
        "short-key", "long-key", "short-signature", "empty-signature", "hex-key", "hex-signature", "hex-message",
        "int-message", "none-key", "none-signature", "invalid-point", "zero-key-zero-signature", "identity-point",
    ],
)
def test_verify_signature_never_raises_on_garbage(public_key, message, signature):
    assert ves.verify_signature(public_key, message, signature) is False


def test_good_signature_accepts_bytes_like():
    assert ves.verify_signature(bytearray(GOOD_KEY), memoryview(MESSAGE), bytearray(GOOD_SIGNATURE))


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), SEED.hex(), None])
def test_bad_seed_is_invalid_encoding(seed):
    with pytest.raises(InvalidEncoding):
        ves.Ed25519Signer(seed)


def test_signing_a_non_bytes_message_is_invalid_encoding():
    with pytest.raises(InvalidEncoding):
        ves.Ed25519Signer(SEED).sign(MESSAGE.hex())


def test_signer_repr_shows_public_key_never_seed():
    text = repr(ves.Ed25519Signer(SEED))
    assert GOOD_KEY.hex() in text
    assert SEED.hex() not in text

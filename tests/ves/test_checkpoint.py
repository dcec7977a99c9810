"""Checkpoints (app/ves/checkpoint.py): the exact LOG.md / C2SP tlog-checkpoint bytes, origins, verifier keys."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest

from app.ves import checkpoint as cp
from app.ves import note
from app.ves import tlog
from app.ves.errors import InvalidNoteSignature
from app.ves.errors import MalformedNote
from app.ves.errors import NoteError
from app.ves.errors import UnverifiedNote
from app.ves.hashing import stream_id

LOG_SEED = bytes(range(32, 64))
TENANT = uuid.UUID("f441ee61-a478-43a8-b2a4-417327cccfa4")
STORE = uuid.UUID("c7f65a03-9b5f-4de8-81ab-a52bc80e871f")
ORIGIN = cp.stream_origin("sequencer.example.com/ves", stream_id(TENANT, STORE))
ROOT = hashlib.sha256(b"root").digest()


def test_origin_is_the_log_origin_slash_lowercase_hex_stream_id():
    expected = hashlib.sha256(b"VES_STREAM_V1" + TENANT.bytes + STORE.bytes).hexdigest()
    assert ORIGIN == f"sequencer.example.com/ves/{expected}"


@pytest.mark.parametrize("base", ["", "has space", "a+b", "ends/with/", "tab\there"])
def test_invalid_log_origins_are_refused(base):
    with pytest.raises(MalformedNote):
        cp.stream_origin(base, stream_id(TENANT, STORE))


def test_checkpoint_text_is_exactly_three_lines():
    text = cp.Checkpoint(ORIGIN, 20852163, ROOT).text()
    assert text == f"{ORIGIN}\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert cp.Checkpoint.parse(text) == cp.Checkpoint(ORIGIN, 20852163, ROOT)


def test_the_empty_checkpoint():
    text = cp.Checkpoint(ORIGIN, 0, tlog.EMPTY_ROOT).text()
    assert text.split("\n")[1:] == ["0", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", ""]


def test_extension_lines_round_trip():
    checkpoint = cp.Checkpoint(ORIGIN, 5, ROOT, ("ext one", "ext two"))
    assert cp.Checkpoint.parse(checkpoint.text()) == checkpoint


def test_c2sp_example_parses():
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    parsed = cp.Checkpoint.parse(text)
    assert (parsed.origin, parsed.tree_size) == ("example.com/behind-the-sofa", 20852163)


ROOT_LINE = base64.b64encode(ROOT).decode()
URLSAFE_ROOT = base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode()


@pytest.mark.parametrize("text", [
    f"{ORIGIN}\n5\n{ROOT_LINE}",
    f"{ORIGIN}\n5\n",
    f"\n5\n{ROOT_LINE}\n",
    f"{ORIGIN}\n05\n{ROOT_LINE}\n",
    f"{ORIGIN}\n+5\n{ROOT_LINE}\n",
    f"{ORIGIN}\n-5\n{ROOT_LINE}\n",
    f"{ORIGIN}\n 5\n{ROOT_LINE}\n",
    f"{ORIGIN}\n0x5\n{ROOT_LINE}\n",
    f"{ORIGIN}\n\u0665\n{ROOT_LINE}\n",
    f"{ORIGIN}\n{tlog.MAX_TREE_SIZE + 1}\n{ROOT_LINE}\n",
    f"{ORIGIN}\n5\n{ROOT_LINE.rstrip('=')}\n",
    f"{ORIGIN}\n5\n{URLSAFE_ROOT}\n",
    f"{ORIGIN}\n5\n{base64.b64encode(b'x' * 31).decode()}\n",
    f"{ORIGIN}\n5\n{base64.b64encode(b'x' * 33).decode()}\n",
    f"{ORIGIN}\n5\n{ROOT_LINE}\n\n",
    f"{ORIGIN}\n5\n{ROOT_LINE}\n\nextension after an empty line\n",
])
def test_malformed_checkpoint_texts_are_refused(text):
    with pytest.raises(MalformedNote):
        cp.Checkpoint.parse(text)


def test_sign_and_open():
    signer = cp.stream_signer(ORIGIN, LOG_SEED)
    checkpoint = cp.Checkpoint(ORIGIN, 7, ROOT)
    message = cp.sign_checkpoint(checkpoint, signer)
    assert message.startswith(checkpoint.text().encode() + "\n\u2014 ".encode() + ORIGIN.encode() + b" ")
    opened = cp.open_checkpoint(message, cp.stream_verifier(ORIGIN, signer.public_key))
    assert opened.checkpoint == checkpoint and opened.note == message


def test_the_verifier_key_is_origin_key_id_and_typed_public_key():
    signer = cp.stream_signer(ORIGIN, LOG_SEED)
    vkey = cp.stream_verifier(ORIGIN, signer.public_key).verifier_key
    name, hex_id, encoded = vkey.split("+", 2)
    assert name == ORIGIN
    assert hex_id == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key).digest()[:4].hex()
    assert base64.b64decode(encoded) == b"\x01" + signer.public_key


def test_each_stream_has_its_own_key_id_under_the_one_log_key():
    other = cp.stream_origin("sequencer.example.com/ves", stream_id(TENANT, uuid.uuid4()))
    assert cp.stream_signer(ORIGIN, LOG_SEED).key_id != cp.stream_signer(other, LOG_SEED).key_id
    assert cp.stream_signer(ORIGIN, LOG_SEED).public_key == cp.stream_signer(other, LOG_SEED).public_key


def test_a_checkpoint_of_another_stream_is_refused():
    other = cp.stream_origin("sequencer.example.com/ves", stream_id(TENANT, uuid.uuid4()))
    message = cp.sign_checkpoint(cp.Checkpoint(other, 7, ROOT), cp.stream_signer(other, LOG_SEED))
    with pytest.raises(UnverifiedNote):
        cp.open_checkpoint(message, cp.stream_verifier(ORIGIN, note.NoteSigner("x", LOG_SEED).public_key))


def test_a_note_whose_origin_line_is_not_its_key_name_is_refused():
    signer = cp.stream_signer(ORIGIN, LOG_SEED)
    forged_text = cp.Checkpoint("someone.else/log", 7, ROOT).text()
    message = note.sign_note(forged_text, [signer])
    with pytest.raises(NoteError) as raised:
        cp.open_checkpoint(message, signer.verifier)
    assert raised.value.code == "WRONG_ORIGIN"
    with pytest.raises(NoteError):
        cp.sign_checkpoint(cp.Checkpoint("someone.else/log", 7, ROOT), signer)


def test_a_wrong_log_key_or_an_altered_checkpoint_is_refused():
    signer = cp.stream_signer(ORIGIN, LOG_SEED)
    message = cp.sign_checkpoint(cp.Checkpoint(ORIGIN, 7, ROOT), signer)
    with pytest.raises(UnverifiedNote):
        cp.open_checkpoint(message, cp.stream_signer(ORIGIN, bytes(32)).verifier)
    altered = message.replace(b"\n7\n", b"\n8\n")
    with pytest.raises(InvalidNoteSignature):
        cp.open_checkpoint(altered, signer.verifier)


def test_witness_cosignatures_are_kept_and_checked_when_known():
    signer = cp.stream_signer(ORIGIN, LOG_SEED)
    checkpoint = cp.Checkpoint(ORIGIN, 7, ROOT)
    witness = note.NoteSigner("witness.example/w", bytes(32))
    cosigned = cp.sign_checkpoint(checkpoint, signer, [witness.sign(checkpoint.text().encode())])
    unknown = cp.open_checkpoint(cosigned, signer.verifier)
    assert [s.key_name for s in unknown.unverified] == ["witness.example/w"]
    known = cp.open_checkpoint(cosigned, signer.verifier, [witness.verifier])
    assert {s.key_name for s in known.verified} == {ORIGIN, "witness.example/w"}


def test_a_note_signed_only_by_a_witness_is_not_the_logs():
    signer = cp.stream_signer(ORIGIN, LOG_SEED)
    witness = note.NoteSigner("witness.example/w", bytes(32))
    message = note.sign_note(cp.Checkpoint(ORIGIN, 7, ROOT).text(), [witness])
    with pytest.raises(NoteError, match="not signed by the log key"):
        cp.open_checkpoint(message, signer.verifier, [witness.verifier])


@pytest.mark.parametrize("fields", [
    ("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, True, ROOT), (ORIGIN, 1, b"short"),
    (ORIGIN, 1, "0" * 32),
])
def test_a_checkpoint_validates_its_fields(fields):
    with pytest.raises(MalformedNote):
        cp.Checkpoint(*fields)

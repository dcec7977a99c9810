"""C2SP signed notes (app/ves/note.py): Go's x/mod note test vectors, round trips, and every way a note breaks."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from app.ves import note
from app.ves.errors import InvalidNoteSignature
from app.ves.errors import MalformedNote
from app.ves.errors import NoteError
from app.ves.errors import UnverifiedNote

GO = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "tlog" / "go_note_vectors.json").read_text())
TEXT = GO["text"]
PETER_LINE = GO["peter"]["signature_line"]
ENOCH_LINE = GO["enoch"]["signature_line"]
PETER = note.NoteVerifier.parse(GO["peter"]["verifier_key"])
ENOCH = note.NoteVerifier.parse(GO["enoch"]["verifier_key"])


def _peter_signer() -> note.NoteSigner:
    """Go's encoded private key is `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>` (base64 may contain '+')."""
    _, _, name, hex_id, encoded = GO["peter"]["signer_key"].split("+", 4)
    raw = base64.b64decode(encoded)
    assert raw[0] == note.ED25519
    signer = note.NoteSigner(name, raw[1:])
    assert f"{signer.key_id:08x}" == hex_id
    return signer


def test_signing_reproduces_gos_signature_line_byte_for_byte():
    assert note.sign_note(TEXT, [_peter_signer()]) == (TEXT + "\n" + PETER_LINE).encode()


def test_verifier_keys_parse_and_print_back_exactly():
    for who in ("peter", "enoch"):
        verifier = note.NoteVerifier.parse(GO[who]["verifier_key"])
        assert verifier.key_name == GO[who]["name"]
        assert f"{verifier.key_id:08x}" == GO[who]["key_id"]
        assert verifier.verifier_key == GO[who]["verifier_key"]
    assert _peter_signer().verifier == PETER


def test_key_id_is_the_c2sp_hash_of_name_newline_type_and_key():
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + PETER.public_key).digest()[:4]
    assert note.key_id("PeterNeumann", PETER.public_key) == int.from_bytes(expected, "big") == 0xC74F20A3


def test_gos_open_cases():
    opened = note.open_note(TEXT + "\n" + PETER_LINE + ENOCH_LINE, [PETER])
    assert opened.text == TEXT
    assert [s.key_name for s in opened.verified] == ["PeterNeumann"]
    assert [s.key_name for s in opened.unverified] == ["EnochRoot"]
    both = note.open_note(TEXT + "\n" + PETER_LINE + ENOCH_LINE, [PETER, ENOCH])
    assert [s.key_name for s in both.verified] == ["PeterNeumann", "EnochRoot"] and both.unverified == ()
    with pytest.raises(UnverifiedNote) as raised:
        note.open_note(TEXT + "\n" + PETER_LINE + ENOCH_LINE, [])
    assert [s.key_name for s in raised.value.note.signatures] == ["PeterNeumann", "EnochRoot"]


def test_repeated_signatures_are_dropped():
    opened = note.open_note(TEXT + "\n" + PETER_LINE + PETER_LINE + ENOCH_LINE + ENOCH_LINE, [PETER])
    assert len(opened.verified) == 1 and len(opened.unverified) == 1


@pytest.mark.parametrize("bad_key", GO["bad_verifier_keys"])
def test_gos_bad_verifier_keys_are_refused(bad_key):
    with pytest.raises(MalformedNote):
        note.NoteVerifier.parse(bad_key)


def test_every_substring_and_every_byte_change_of_a_verifier_key_is_refused():
    """As Go's TestNewVerifier: any proper substring, and any single character incremented."""
    key = GO["peter"]["verifier_key"]
    for i in range(len(key) + 1):
        for j in range(i + 1, len(key) + 1):
            if (i, j) != (0, len(key)):
                with pytest.raises(MalformedNote):
                    note.NoteVerifier.parse(key[i:j])
    for i in range(len(key)):
        mangled = key[:i] + chr(ord(key[i]) + 1) + key[i + 1:]
        with pytest.raises(MalformedNote):
            note.NoteVerifier.parse(mangled)


SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))


def test_round_trip_with_a_fresh_key():
    signer = note.NoteSigner("example.com/log", SEED)
    message = note.sign_note("hello\nworld\n", [signer])
    opened = note.open_note(message, [signer.verifier])
    assert opened.text == "hello\nworld\n" and opened.verified[0].key_id == signer.key_id
    assert note.parse_note(message).encode() == message
    assert note.open_note(message.decode(), [note.NoteVerifier.parse(signer.verifier.verifier_key)]).text


def test_a_text_with_empty_lines_is_separated_at_the_last_empty_line():
    signer = note.NoteSigner("k", SEED)
    text = "a\n\nb\n\n"
    assert note.open_note(note.sign_note(text, [signer]), [signer.verifier]).text == text


def test_the_wrong_key_proves_nothing():
    message = note.sign_note(TEXT, [note.NoteSigner("k", SEED)])
    stranger = note.NoteSigner("k", OTHER_SEED).verifier
    with pytest.raises(UnverifiedNote):
        note.open_note(message, [stranger])


def test_a_known_key_whose_signature_fails_rejects_the_note():
    signer = note.NoteSigner("k", SEED)
    impostor = note.NoteVerifier("k", signer.key_id, note.NoteSigner("k", OTHER_SEED).public_key)
    with pytest.raises(InvalidNoteSignature) as raised:
        note.open_note(note.sign_note(TEXT, [signer]), [impostor])
    assert raised.value.key_name == "k" and raised.value.key_id == signer.key_id


def test_every_altered_byte_of_the_text_breaks_the_signature():
    signer = note.NoteSigner("k", SEED)
    message = note.sign_note(TEXT, [signer])
    for position in range(len(TEXT)):
        altered = TEXT[:position] + ("X" if TEXT[position] != "X" else "Y") + TEXT[position + 1:]
        forged = altered.encode() + message[len(TEXT):]
        with pytest.raises(NoteError):
            note.open_note(forged, [signer.verifier])


def test_an_extra_text_line_breaks_the_signature():
    signer = note.NoteSigner("k", SEED)
    message = note.sign_note(TEXT, [signer]).decode()
    with pytest.raises(InvalidNoteSignature):
        note.open_note("extra line\n" + message, [signer.verifier])
    with pytest.raises(InvalidNoteSignature):
        note.open_note(TEXT + "extra line\n" + message[len(TEXT):], [signer.verifier])


def test_unknown_key_names_are_ignored_even_if_they_share_the_id_or_the_name():
    signer = note.NoteSigner("k", SEED)
    witness = note.NoteSigner("witness.example/w1", OTHER_SEED)
    same_name_other_key = note.NoteSigner("k", OTHER_SEED)
    message = note.sign_note(TEXT, [witness, same_name_other_key, signer])
    same_id_other_name = note.NoteSignature("other", signer.key_id, b"\x01" * 64).line().encode()
    opened = note.open_note(message + same_id_other_name, [signer.verifier])
    assert [s.key_name for s in opened.verified] == ["k"]
    assert [s.key_name for s in opened.unverified] == ["witness.example/w1", "k", "other"]


def test_sign_note_keeps_cosignatures_and_replaces_the_signers_own():
    signer = note.NoteSigner("k", SEED)
    witness = note.NoteSigner("w", OTHER_SEED).sign(TEXT.encode())
    stale = note.NoteSignature("k", signer.key_id, b"\x00" * 64)
    message = note.sign_note(TEXT, [signer], existing=[witness, stale])
    parsed = note.parse_note(message)
    assert [s.key_name for s in parsed.signatures] == ["w", "k"]
    assert note.open_note(message, [signer.verifier, note.NoteSigner("w", OTHER_SEED).verifier]).verified


def _line(name: str = "k", payload: bytes = b"\x00\x00\x00\x01" + b"\x02" * 64) -> str:
    return f"\u2014 {name} {base64.b64encode(payload).decode()}\n"


@pytest.mark.parametrize("message", [
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_LINE[:-1],
    "\x01" + TEXT + "\n" + PETER_LINE,
    TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_LINE,
    TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
    TEXT + "\n" + PETER_LINE + "Unexpected line.\n",
    TEXT + "\n" + PETER_LINE.replace("\u2014", "-"),
    TEXT + "\n" + PETER_LINE.replace("\u2014 ", "\u2014"),
    TEXT + "\n" + PETER_LINE.replace("PeterNeumann ", "PeterNeumann  "),
    TEXT + "\n" + _line("a+b"),
    TEXT + "\n" + _line(""),
    TEXT + "\n" + _line("k", b"\x00\x00\x00\x01"),
    TEXT + "\n" + "\u2014 k " + base64.urlsafe_b64encode(b"\xff\xfe\xfd" * 23).decode() + "\n",
    TEXT + "\n" + "\u2014 k " + base64.b64encode(b"\x00" * 68).decode().rstrip("=") + "\n",
    TEXT + "\n" + "\u2014 k AAAAAQB=\n",
    TEXT + "\n" + _line() * (note.MAX_SIGNATURES + 1),
], ids=lambda message: repr(message[-30:]))
def test_malformed_notes_are_refused(message):
    with pytest.raises(MalformedNote):
        note.open_note(message, [PETER])


def test_an_empty_line_between_signatures_makes_the_first_one_part_of_the_text():
    signer = note.NoteSigner("k", SEED)
    message = note.sign_note(TEXT, [signer]).decode()
    doubled = message + "\n" + message[len(TEXT) + 1:]
    assert note.parse_note(doubled).text == message
    with pytest.raises(InvalidNoteSignature):
        note.open_note(doubled, [signer.verifier])


def test_verifier_keys_whose_base64_holds_a_plus_sign_parse():
    signer = note.NoteSigner("example.com/log", SEED)
    assert "+" in signer.verifier.verifier_key.split("+", 2)[2]
    assert note.NoteVerifier.parse(signer.verifier.verifier_key) == signer.verifier


def test_invalid_utf8_is_refused():
    with pytest.raises(MalformedNote):
        note.open_note(b"\xff" + (TEXT + "\n" + PETER_LINE).encode(), [PETER])
    with pytest.raises(MalformedNote):
        note.parse_note("\ud800\n\n" + PETER_LINE)


def test_up_to_the_limit_of_signatures_is_accepted():
    signer = note.NoteSigner("k", SEED)
    message = note.sign_note(TEXT, [signer]).decode()
    filler = "".join(_line(f"w{i}") for i in range(note.MAX_SIGNATURES - 1))
    assert note.open_note(TEXT + "\n" + filler + message[len(TEXT) + 1:], [signer.verifier]).verified


def test_ambiguous_verifiers_are_an_error_but_a_repeated_one_is_not():
    signer = note.NoteSigner("k", SEED)
    message = note.sign_note(TEXT, [signer])
    assert note.open_note(message, [signer.verifier, signer.verifier]).verified
    twin = note.NoteVerifier("k", signer.key_id, note.NoteSigner("k", OTHER_SEED).public_key)
    with pytest.raises(NoteError, match="Ambiguous"):
        note.open_note(message, [signer.verifier, twin])


@pytest.mark.parametrize("text", ["no newline", "", "a\x00b\n", "tab\there\n"])
def test_sign_note_refuses_texts_that_are_not_note_texts(text):
    with pytest.raises(MalformedNote):
        note.sign_note(text, [note.NoteSigner("k", SEED)])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\nb", "a\x7fb"[:2] + "\x01"])
def test_invalid_key_names(name):
    assert not note.is_valid_key_name(name)
    with pytest.raises(MalformedNote):
        note.NoteSigner(name, SEED)


def test_valid_key_names():
    for name in ("example.com/log", "sequencer.example.com/ves/" + "ab" * 32, "ünïcode", "a/b:c@d"):
        assert note.is_valid_key_name(name)


def test_a_signer_never_shows_its_seed():
    signer = note.NoteSigner("k", SEED)
    assert SEED.hex() not in repr(signer) and base64.b64encode(SEED).decode() not in repr(signer)

"""Primitives of VES.md §Primitives: U32/U64/STR/UUID, JCS domain errors, hex/base64 wire forms."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app import ves
from app.ves import CanonicalizationFailed
from app.ves import InvalidEncoding
from app.ves import VesError


def test_error_hierarchy_and_codes():
    assert issubclass(VesError, ValueError)
    assert VesError("x").code == "INVALID"
    assert VesError("x", code="OTHER").code == "OTHER"
    assert InvalidEncoding("x").code == "INVALID_ENCODING"
    assert CanonicalizationFailed("x").code == "INVALID_EVENT"
    assert ves.UnsupportedVesVersion("x").code == "UNSUPPORTED_VES_VERSION"
    for error in (InvalidEncoding, CanonicalizationFailed, ves.ProofError, ves.UnsupportedVesVersion):
        assert issubclass(error, VesError)


def test_u32_u64_are_big_endian_at_the_bounds():
    assert ves.u32(0) == b"\x00\x00\x00\x00"
    assert ves.u32(258) == b"\x00\x00\x01\x02"
    assert ves.u32(2**32 - 1) == b"\xff\xff\xff\xff"
    assert ves.u64(2**32 + 5) == b"\x00\x00\x00\x01\x00\x00\x00\x05"
    assert ves.u64(2**64 - 1) == b"\xff" * 8


@pytest.mark.parametrize(
    ("encoder", "value"),
    [
        (ves.u32, -1),
        (ves.u32, 2**32),
        (ves.u64, -1),
        (ves.u64, 2**64),
        (ves.u32, True),
        (ves.u64, False),
        (ves.u32, 1.0),
        (ves.u64, "1"),
        (ves.u64, None),
    ],
)
def test_integer_out_of_range_or_not_int_is_invalid_encoding(encoder, value):
    with pytest.raises(InvalidEncoding):
        encoder(value)


def test_str_field_is_byte_length_prefixed_without_normalisation():
    assert ves.str_field("") == b"\x00\x00\x00\x00"
    assert ves.str_field("é") == b"\x00\x00\x00\x02\xc3\xa9"
    assert ves.str_field("e\u0301") == b"\x00\x00\x00\x03e\xcc\x81"
    assert ves.str_field(" a ") == b"\x00\x00\x00\x03 a "


def test_str_field_lone_surrogate_is_a_ves_error_not_unicode_error():
    with pytest.raises(CanonicalizationFailed) as raised:
        ves.str_field("ab\ud800", "entity_id")
    assert "entity_id" in str(raised.value)
    with pytest.raises(InvalidEncoding):
        ves.str_field(b"bytes", "entity_id")


def test_uuid_bytes_is_network_order():
    text = "f441ee61-a478-43a8-b2a4-417327cccfa4"
    assert ves.uuid_bytes(text) == bytes.fromhex("f441ee61a47843a8b2a4417327cccfa4")
    assert ves.uuid_bytes(uuid.UUID(text)) == ves.uuid_bytes(text.upper())


@pytest.mark.parametrize("value", ["not-a-uuid", "", 12345, None, b"\x00" * 16])
def test_bad_uuid_is_invalid_encoding_naming_the_field(value):
    with pytest.raises(InvalidEncoding) as raised:
        ves.uuid_bytes(value, "tenant_id")
    assert "tenant_id" in str(raised.value)


@pytest.mark.parametrize(
    "payload",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        {"amount": float("nan")},
        [1, float("inf")],
        2**53,
        -(2**53),
        {"big": 2**53},
        [2**64],
        "\ud800",
        {"\udfff": 1},
        {"k": ["ok", "x\ud83d"]},
        {1: "non-string key"},
        b"bytes",
        {"set": {1, 2}},
    ],
    ids=repr,
)
def test_jcs_rejects_what_rfc8785_cannot_encode(payload):
    with pytest.raises(CanonicalizationFailed) as raised:
        ves.jcs(payload)
    assert raised.value.code == "INVALID_EVENT"


def test_jcs_rejects_pathological_nesting_without_recursion_error():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(CanonicalizationFailed):
        ves.jcs(deep)


def test_jcs_accepts_the_edge_of_the_integer_domain_and_bools():
    assert ves.jcs(2**53 - 1) == b"9007199254740991"
    assert ves.jcs(-(2**53 - 1)) == b"-9007199254740991"
    assert ves.jcs({"b": True, "a": False, "n": None}) == b'{"a":false,"b":true,"n":null}'
    assert ves.jcs(-0.0) == b"0"


def test_jcs_sorts_keys_by_utf16_code_units():
    assert ves.jcs({"\ue000": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ue000":1}'.encode()


_JSON_TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from(list("\x00\x01\x1f\x7f\"\\/\b\f\n\r\t\u2028\ue000\U0001f600")))
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.integers() | _JSON_TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=4) | st.sampled_from(["a", "B", "\ue000", "\U0001f600", "\x00"]), children,
                      max_size=5),
    max_leaves=30)


@given(_JSON_VALUES)
@settings(max_examples=600, deadline=None)
def test_jcs_fast_path_gives_exactly_what_rfc8785_gives(value):
    import rfc8785

    try:
        expected = rfc8785.dumps(value)
    except (ValueError, TypeError):
        with pytest.raises(CanonicalizationFailed):
            ves.jcs(value)
        return
    assert ves.jcs(value) == expected


@pytest.mark.parametrize("value", [
    {"k": "line\nbreak \x00 \x1f \x7f \"q\" back\\slash \u2028 é 😀"}, {"z": 1, "a": [True, None, -5, "x"]},
    {"\ud800": 1}, {"k": "\udfff"}, [2**53], {"k": 1.5}, {"é": 1, "e": 2},
], ids=repr)
def test_jcs_fast_path_edges(value):
    import rfc8785

    try:
        expected = rfc8785.dumps(value)
    except (ValueError, TypeError):
        with pytest.raises(CanonicalizationFailed):
            ves.jcs(value)
        return
    assert ves.jcs(value) == expected


HASH = bytes(range(32))


@pytest.mark.parametrize(
    "text",
    ["0x" + HASH.hex(), HASH.hex(), "0X" + HASH.hex(), "0x" + HASH.hex().upper(), HASH.hex().upper()],
)
def test_parse_hex_normalises_prefix_and_case(text):
    assert ves.parse_hex(text, 32, "merkle_root") == HASH
    assert ves.to_hex(ves.parse_hex(text, 32, "merkle_root")) == "0x" + HASH.hex()


@pytest.mark.parametrize(
    "text",
    [
        "0x" + HASH.hex()[:-2],
        "0x" + HASH.hex() + "00",
        "0x" + HASH.hex()[:-1],
        "0x" + HASH.hex()[:-1] + "g",
        "0x",
        "",
        "0x0x" + HASH.hex()[4:],
        " " + HASH.hex()[1:],
        None,
        HASH,
        32,
    ],
    ids=repr,
)
def test_parse_hex_wrong_length_or_not_hex_names_field_and_length(text):
    with pytest.raises(InvalidEncoding) as raised:
        ves.parse_hex(text, 32, "payload_plain_hash")
    message = str(raised.value)
    assert "payload_plain_hash" in message
    assert "32 bytes" in message and "66 characters" in message


def test_to_hex_is_lowercase_with_prefix():
    assert ves.to_hex(b"\xab\xcd") == "0xabcd"
    assert ves.to_hex(b"") == "0x"
    assert len(ves.to_hex(bytes(64))) == 130


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=80))
def test_hex_round_trip(data):
    text = ves.to_hex(data)
    assert text == text.lower() and text.startswith("0x")
    assert ves.parse_hex(text, len(data), "field") == data
    assert ves.parse_hex(text[2:].upper(), len(data), "field") == data


KEY = bytes(range(100, 132))


@pytest.mark.parametrize(
    "text",
    [
        KEY.hex(),
        "0x" + KEY.hex(),
        KEY.hex().upper(),
        base64.b64encode(KEY).decode(),
        base64.b64encode(KEY).decode().rstrip("="),
        base64.urlsafe_b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
        "  " + KEY.hex() + "\n",
    ],
)
def test_parse_key_material_accepts_hex_and_both_base64_alphabets(text):
    assert ves.parse_key_material(text, field="VES_SEQUENCER_SIGNING_KEY") == KEY


def test_parse_key_material_alphabets_really_differ_for_this_key():
    assert base64.b64encode(KEY) != base64.urlsafe_b64encode(KEY)


@pytest.mark.parametrize(
    "text",
    [KEY.hex()[:-2], base64.b64encode(KEY[:31]).decode(), base64.b64encode(KEY + b"x").decode(), "", "!!!!", None],
    ids=repr,
)
def test_parse_key_material_wrong_length_is_invalid_encoding(text):
    with pytest.raises(InvalidEncoding) as raised:
        ves.parse_key_material(text, field="VES_SEQUENCER_SIGNING_KEY")
    assert "VES_SEQUENCER_SIGNING_KEY" in str(raised.value) and "32 bytes" in str(raised.value)


def test_parse_key_material_other_lengths():
    assert ves.parse_key_material(base64.b64encode(bytes(64)).decode(), length=64) == bytes(64)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=80))
def test_base64url_round_trip_without_padding(data):
    text = ves.b64u_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert ves.b64u_decode(text) == data
    assert ves.b64u_decode(text + "=" * (-len(text) % 4)) == data


@pytest.mark.parametrize("text", ["a", "abcde", "ab+c", "ab/c", "ab c", "a=bc", None, b"abcd"], ids=repr)
def test_base64url_rejects_bad_input(text):
    with pytest.raises(InvalidEncoding) as raised:
        ves.b64u_decode(text, "payload_encrypted.nonce_b64u")
    assert "payload_encrypted.nonce_b64u" in str(raised.value)


def test_jcs_takes_the_fast_path_for_plain_payloads_only(monkeypatch):
    import rfc8785

    calls = []
    real = rfc8785.dumps
    monkeypatch.setattr(rfc8785, "dumps", lambda value: calls.append(value) or real(value))
    assert ves.jcs({"b": [1, "x", None, True], "a": {"c": -(2**53 - 1)}}) == \
        b'{"a":{"c":-9007199254740991},"b":[1,"x",null,true]}'
    assert calls == []
    for slow in ({"k": 1.5}, {"é": 1}, {"k": 2**53}):
        ves.jcs(slow) if slow != {"k": 2**53} else pytest.raises(CanonicalizationFailed, ves.jcs, slow)
    assert len(calls) == 3

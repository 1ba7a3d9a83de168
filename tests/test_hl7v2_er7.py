"""The ER7 tokenizer and serializer (mappings/hl7v2/er7.py; HL7 v2.5 chapter 2): round trip, delimiters,
escapes, character sets, batches, limits, and a fuzz that may raise only Hl7ParseError."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.hl7v2.er7 import (
    MAX_MESSAGE_BYTES,
    Codec,
    Delimiters,
    Hl7ParseError,
    iter_messages,
    parse,
    parse_bytes,
    split_messages,
)
from mappings.problems import InputError

MSG = (
    "MSH|^~\\&|ZIS|Martini|HISGW|01234567|20240301120000||ADT^A04^ADT_A01|M1|P|2.5|||||NLD|UNICODE UTF-8\r"
    "EVN|A04|20240301115900\r"
    "PID|1||123456782^^^NLMINBIZA^NNNLD~77^^^ZIS^PI||van der Berg&van der&Berg^Jan\\T\\Piet^J.||19800101|M\r"
    "PV1|1|O\r"
)


def _err(fn, *args, **kw):
    with pytest.raises(Hl7ParseError) as exc:
        fn(*args, **kw)
    assert isinstance(exc.value, InputError)
    p = exc.value.problems[0]
    return p.code, p.location


# --------------------------------------------------------------------------- tokenizing and round trip


@pytest.mark.parametrize("term", ["\r", "\n", "\r\n"])
def test_round_trip_on_normalised_terminators(term):
    text = MSG.replace("\r", term)
    assert str(parse(text)) == MSG
    assert parse_bytes(text.encode()).to_bytes() == MSG.encode()


def test_fields_are_counted_as_the_spec_counts():
    m = parse(MSG)
    msh, pid = m.msh, m.segment("PID")
    assert (msh.get(1), msh.get(2), msh.get(9, 2), msh.get(10), msh.get(12)) == (
        "|",
        "^~\\&",
        "A04",
        "M1",
        "2.5",
    )
    assert pid.get(3) == "123456782" and pid.get(3, 4) == "NLMINBIZA" and pid.get(3, 1, rep=2) == "77"
    assert (
        pid.get(5, 1, 2) == "van der"
        and pid.get(5, 2) == "Jan&Piet"
        and pid.get(5, 9) == ""
        and pid.get(99) == ""
    )
    assert pid.reps(3) == ["123456782^^^NLMINBIZA^NNNLD", "77^^^ZIS^PI"]
    assert pid.components(5) == [["van der Berg", "van der", "Berg"], ["Jan&Piet"], ["J."]]
    assert [s.loc() for s in m.segments] == ["MSH", "EVN", "PID", "PV1"]


def test_repeated_segments_are_named_with_their_occurrence():
    m = parse(MSG + "OBX|1|NM|x\rOBX|2|NM|y\r")
    assert [s.loc(5) for s in m.all("OBX")] == ["OBX[1]-5", "OBX[2]-5"]
    assert m.segment("PID").loc(3, 2, 4, 1) == "PID-3[2].4.1"


def test_any_delimiters_declared_in_msh_1_and_msh_2():
    text = MSG.replace("|", "#").replace("^", "$").replace("~", "*").replace("\\", "!").replace("&", "@")
    m = parse(text)
    assert m.delimiters == Delimiters("#", "$", "*", "!", "@")
    assert m.segment("PID").get(5, 2) == "Jan@Piet" and m.segment("PID").get(3, 4, rep=2) == "ZIS"
    assert str(m) == text


def test_truncation_character_of_v27():
    m = parse(MSG.replace("^~\\&|", "^~\\&#|", 1).replace("Jan\\T\\Piet", "Jan\\P\\Piet"))
    assert m.delimiters.truncation == "#" and m.segment("PID").get(5, 2) == "Jan#Piet"


# --------------------------------------------------------------------------- escapes

CODEC = Codec()


@pytest.mark.parametrize(
    ("escaped", "value"),
    [
        ("\\F\\", "|"),
        ("\\S\\", "^"),
        ("\\T\\", "&"),
        ("\\R\\", "~"),
        ("\\E\\", "\\"),
        ("a\\.br\\b", "a\nb"),
        ("\\X0D0A\\", "\r\n"),
        ("caf\\XC3A9\\", "café"),
        ("\\H\\vet\\N\\", "\\H\\vet\\N\\"),
        ("\\.sp2\\", "\\.sp2\\"),
        ("\\Zvendor\\", "\\Zvendor\\"),
        ("plain", "plain"),
    ],
)
def test_escape_sequences_decode(escaped, value):
    assert CODEC.decode(escaped) == value


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=string.printable + "éĳ€\x0b\x1c\x00\x7f", max_size=40))
def test_every_text_survives_encode_then_decode(value):
    encoded = CODEC.encode(value)
    assert CODEC.decode(encoded) == value
    assert not set(encoded) & {"|", "^", "~", "&", "\r", "\n", "\x0b", "\x1c"}


@pytest.mark.parametrize("broken", ["a\\F", "\\\\", "\\X0\\", "\\XZZ\\", "\\X\\", "\\XC3\\"])
def test_broken_escapes_are_declared_parse_errors(broken):
    assert _err(CODEC.decode, broken, "PID-5")[0] == "HL7-006"


def test_broken_escape_is_found_while_parsing_with_its_location():
    assert _err(parse, MSG.replace("Jan\\T\\Piet", "Jan\\T")) == ("HL7-006", "PID-5.2")
    assert _err(parse, MSG + "OBX|1|TX|x||a\rOBX|2|TX|x||b\\Xq\\\r") == ("HL7-006", "OBX[2]-5")


def test_hex_escape_is_decoded_in_the_message_charset():
    m = parse_bytes(
        MSG.replace("UNICODE UTF-8", "8859/1").replace("Jan\\T\\Piet", "Ren\\XE9\\").encode("latin-1")
    )
    assert m.segment("PID").get(5, 2) == "René"
    assert (
        _err(parse_bytes, MSG.replace("|UNICODE UTF-8", "").replace("Jan\\T\\Piet", "Ren\\XE9\\").encode())[0]
        == "HL7-006"
    )


# --------------------------------------------------------------------------- character sets

NAME = "Zoë Ĳsbrand Şükrü €"


@pytest.mark.parametrize(
    ("charset", "codec", "name"),
    [
        ("UNICODE UTF-8", "utf-8", NAME),
        ("8859/1", "latin-1", "Zoë Hoëvenaars"),
        ("8859/15", "iso8859-15", "Zoë € Œuvre"),
        ("", "ascii", "Zoe"),
    ],
)
def test_msh_18_decides_how_bytes_are_decoded_and_encoded(charset, codec, name):
    text = MSG.replace("|UNICODE UTF-8", f"|{charset}" if charset else "").replace("Jan\\T\\Piet", name)
    data = text.encode(codec)
    m = parse_bytes(data)
    assert m.segment("PID").get(5, 2) == name and m.charset == charset
    assert m.to_bytes() == data


def test_unknown_charset_and_bytes_outside_the_charset_are_errors():
    assert _err(parse_bytes, MSG.replace("UNICODE UTF-8", "UNICODE UTF-16").encode()) == ("HL7-004", "MSH-18")
    assert _err(parse_bytes, MSG.replace("UNICODE UTF-8", "8859/1~ISO IR87").encode()) == (
        "HL7-004",
        "MSH-18",
    )
    assert _err(parse_bytes, MSG.replace("Jan", "J\xe9n").encode("latin-1")) == ("HL7-005", "segment 3 (PID)")
    no_charset = MSG.replace("|UNICODE UTF-8", "").replace("Jan", "Jän").encode()
    assert _err(parse_bytes, no_charset) == ("HL7-005", "segment 3 (PID)")
    assert parse_bytes(no_charset, default_charset="UNICODE UTF-8").segment("PID").get(5, 2) == "Jän&Piet"


def test_utf8_byte_order_mark_is_accepted_only_for_utf8():
    assert parse_bytes(b"\xef\xbb\xbf" + MSG.encode()).segment("PID").get(3) == "123456782"
    assert (
        _err(parse_bytes, b"\xef\xbb\xbf" + MSG.replace("UNICODE UTF-8", "8859/1").encode())[0] == "HL7-005"
    )


def test_writing_a_character_the_charset_cannot_carry_is_refused():
    m = parse(MSG.replace("UNICODE UTF-8", "8859/1").replace("Jan\\T\\Piet", "€"))
    with pytest.raises(InputError) as exc:
        m.to_bytes()
    assert exc.value.problems[0].code == "HL7-030" and "PID" in exc.value.problems[0].location


# --------------------------------------------------------------------------- structure errors and limits


@pytest.mark.parametrize(
    ("text", "code", "location"),
    [
        ("PID|1\r", "HL7-002", "segment 1"),
        ("", "HL7-002", "segment 1"),
        ("MSH|^~\r", "HL7-003", "MSH-2"),
        ("MSH|^^\\&|a\r", "HL7-003", "MSH-2"),
        ("MSHa^~\\&|a\r", "HL7-003", "MSH-2"),
        ("MSH|^~\\&|a|b\rpid|1\r", "HL7-007", "segment 2"),
        ("MSH|^~\\&|a|b\rPI|1\r", "HL7-007", "segment 2"),
        (MSG + MSG, "HL7-041", "segment 5 (MSH)"),
    ],
)
def test_structure_errors_name_where(text, code, location):
    assert _err(parse, text) == (code, location)


def test_size_limits_refuse_before_splitting():
    huge_obx = MSG + "OBX|1|TX|x||" + "A" * (20 * 1024 * 1024) + "\r"
    assert _err(parse_bytes, huge_obx.encode())[0] == "HL7-001"
    assert _err(parse_bytes, MSG.encode(), max_bytes=100)[0] == "HL7-001"
    assert _err(parse, MSG + "ZZZ|1\r" * 20_001)[0] == "HL7-001"
    assert _err(parse, MSG + "ZZZ" + "|" * 600 + "\r")[0] == "HL7-001"
    assert _err(lambda: parse(MSG + "ZZZ|" + "a~" * 2000 + "\r").segment("ZZZ").reps(1))[0] == "HL7-001"
    assert len(MSG) < MAX_MESSAGE_BYTES
    assert len(parse(MSG + "\r" * 100_000).segments) == 4  # empty lines are not segments


# --------------------------------------------------------------------------- batches and files


def test_file_of_messages_separated_by_newlines_and_blank_lines():
    data = (MSG.replace("\r", "\n") + "\n\n" + MSG.replace("M1", "M2").replace("\r", "\r\n")).encode()
    assert [m.msh.get(10) for m in iter_messages(data)] == ["M1", "M2"]


def test_fhs_bhs_envelopes_and_their_counts():
    batch = ("FHS|^~\\&|ZIS\rBHS|^~\\&|ZIS\r" + MSG + MSG.replace("M1", "M2") + "BTS|2\rFTS|1\r").encode()
    assert [m.msh.get(10) for m in iter_messages(batch)] == ["M1", "M2"]
    assert [p.number for p in split_messages(batch)] == [1, 2]
    wrong = batch.replace(b"BTS|2", b"BTS|3")
    assert _err(lambda: list(iter_messages(wrong))) == ("HL7-040", "line 11 BTS-1")
    assert _err(lambda: list(iter_messages(b"PID|1\r" + MSG.encode()))) == ("HL7-041", "line 1")
    assert _err(lambda: list(iter_messages(MSG.encode() + MSG.replace("Jan\\T", "Jan\\").encode()))) == (
        "HL7-006",
        "message 2 (line 5) PID-5.2",
    )


# ------------------------------------------------------------------ tolerance where the standard allows


@pytest.mark.parametrize(
    ("msh18", "codec"),
    [
        ("UNICODE", "utf-8"),
        ("unicode utf-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("ISO-8859-1", "latin-1"),
        ("ISO IR100", "latin-1"),
        ("8859/1 ", "latin-1"),
        ("US-ASCII", "ascii"),
    ],
)
def test_legacy_msh_18_names_decode_and_are_written_back_as_sent(msh18, codec):
    name = "Jan" if codec == "ascii" else "Jös"
    data = MSG.replace("UNICODE UTF-8", msh18).replace("Jan\\T\\Piet", name).encode(codec)
    m = parse_bytes(data)
    assert m.segment("PID").get(5, 2) == name and m.codec.python == codec
    assert m.to_bytes() == data


def test_fewer_encoding_characters_declare_fewer_delimiters():
    three = parse(MSG.replace("MSH|^~\\&|", "MSH|^~\\|").replace("\\T\\", "&"))
    assert three.segment("PID").get(5, 2) == "Jan&Piet"  # & is no delimiter here
    assert three.segment("PID").reps(3) == ["123456782^^^NLMINBIZA^NNNLD", "77^^^ZIS^PI"]
    two = parse(MSG.replace("MSH|^~\\&|", "MSH|^~|").replace("\\T\\", "\\"))
    assert two.segment("PID").get(5, 2) == "Jan\\Piet"  # nor \\ an escape
    assert two.delimiters.encoding_characters == "^~" and not two.delimiters.complete
    assert str(two).startswith("MSH|^~|ZIS|")
    five = parse(MSG.replace("MSH|^~\\&|", "MSH|^~\\&#|").replace("|2.5|", "|2.7|"))
    assert five.delimiters.truncation == "#" and five.segment("PID").get(5, 2) == "Jan&Piet"
    assert _err(parse, MSG.replace("MSH|^~\\&|", "MSH|^~\\&#!|"))[0] == "HL7-003"


def test_mllp_framed_file_with_several_frames():
    one, two = MSG.encode(), MSG.replace("M1", "M2").encode()
    framed = b"\x0b" + one + b"\x1c\r" + b"\x0b" + two + b"\x1c\r\n"
    assert [m.msh.get(10) for m in iter_messages(framed)] == ["M1", "M2"]
    assert [p.line for p in split_messages(framed)] == [1, 5]
    unterminated = b"\x0b" + one.rstrip(b"\r") + b"\x1c" + b"\x0b" + two + b"\x1c"
    assert [m.segment("PV1").get(2) for m in iter_messages(unterminated)] == ["O", "O"]
    assert _err(lambda: list(iter_messages(one + b"\x1c")))[0] == "HL7-007"  # not framed: as before


def test_fhs_without_bhs_and_bhs_without_fhs():
    msgs = MSG + MSG.replace("M1", "M2")
    for trailer in ("FTS|1\r", "FTS|2\r", "FTS|0\r", ""):
        data = ("FHS|^~\\&|ZIS\r" + msgs + trailer).encode()
        assert [m.msh.get(10) for m in iter_messages(data)] == ["M1", "M2"], trailer
    assert _err(lambda: list(iter_messages(("FHS|^~\\&\r" + msgs + "FTS|3\r").encode())))[0] == "HL7-040"
    bhs = ("BHS|^~\\&|ZIS\r" + msgs + "BTS|2\r").encode()
    assert [m.msh.get(10) for m in iter_messages(bhs)] == ["M1", "M2"]


# --------------------------------------------------------------------------- fuzz

_TOKENS = [
    "MSH|^~\\&|",
    "MSH",
    "|",
    "^",
    "~",
    "\\",
    "&",
    "\r",
    "\n",
    "PID",
    "OBX",
    "\\X",
    "\\F\\",
    "\\.br\\",
    "UNICODE UTF-8",
    "8859/1",
    "|2.5|",
    "A",
    "1",
    "é",
    "\x00",
    "\x0b",
    "\x1c",
    "#$",
    " ",
]
_fragments = st.lists(st.sampled_from(_TOKENS) | st.text(max_size=3), max_size=30).map("".join)


@st.composite
def _mutated(draw) -> bytes:
    """A valid message with a few bytes replaced, inserted or cut, or hostile bytes from scratch."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return ("MSH" + draw(_fragments)).encode("utf-8", "surrogatepass")
    data = bytearray(MSG.encode())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 2))
        chunk = (
            draw(st.sampled_from(_TOKENS)).encode() if draw(st.booleans()) else draw(st.binary(max_size=3))
        )
        if op == 0:
            data[pos:pos] = chunk
        elif op == 1:
            data[pos : pos + len(chunk)] = chunk
        else:
            del data[pos : pos + draw(st.integers(1, 10))]
    return bytes(data)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_fuzz_parser_raises_only_hl7parseerror(data):
    try:
        m = parse_bytes(data)
    except Hl7ParseError as exc:
        assert exc.problems and exc.problems[0].code.startswith("HL7-")
        return
    for seg in m.segments:  # every value of a parsed message is readable (or a declared error)
        for n in range(1, min(len(seg.fields), 30)):
            try:
                seg.all_components(n)
            except Hl7ParseError:
                pass
    assert parse(str(m)).segments[0].fields == m.segments[0].fields

"""Hostile and broken Edifact (issue 17, acceptance 3): refused with a located error, never a traceback.

Each broken input names the exact place and the stable code; the property tests fuzz the tokenizer with
10,000 generated interchanges (arbitrary bytes and near-valid interchanges with service characters in the
data) and check the syntax layer's round trip and the TXT wrapping.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.edifact import txt
from mappings.edifact.format import read_interchange, write_messages
from mappings.edifact.syntax import Interchange, Writer, parse, tokenize, write_interchange
from mappings.problems import InputError, ProblemSink, Severity
from tests.golden_util import GOLDEN

HEAD = "UNA:+.? 'UNB+UNOC:1+MARTINI+01234567+260105:1432+IC1'"
VRI = (
    "UNH+M1+MEDVRI:1'GGA+Martini Ziekenhuis+Cardiologie+Dr. A. de Vries'DET:1+26:01:05+14:30'"
    "PID+1957:03:12+V+Groot:::::J.++BSN999999011'TXT:1+Goed nieuws.'GGO+Praktijk'UNT+7+M1'"
)
GOOD = HEAD + VRI + "UNZ+1+IC1'"


def refused(data: bytes | str) -> list[str]:
    raw = data.encode("latin-1") if isinstance(data, str) else data
    with pytest.raises(InputError) as info:
        read_interchange(raw, source="in.edi", sink=ProblemSink())
    errors = [p.render_line() for p in info.value.problems if p.severity is Severity.ERROR]
    assert errors
    return errors


def test_the_good_interchange_is_read() -> None:
    (x,) = read_interchange(GOOD.encode("latin-1"), source="in.edi")
    assert x.item.correspondence.text == "Goed nieuws."


def test_wrong_unt_count() -> None:
    assert refused(GOOD.replace("UNT+7+M1", "UNT+6+M1")) == [
        "error EDI-008 in.edi line 1 segment 8 UNT element 1: UNT counts 6 segments; message 'M1' has 7 "
        "(UNH and UNT included)"
    ]


def test_wrong_unz_count_and_reference() -> None:
    errors = refused(GOOD.replace("UNZ+1+IC1", "UNZ+2+IC9"))
    assert errors == [
        "error EDI-008 in.edi line 1 segment 9 UNZ element 1: UNZ counts 2 messages; the interchange holds 1",
        "error EDI-008 in.edi line 1 segment 9 UNZ element 2: UNZ reference 'IC9' is not UNB's 'IC1'",
    ]


@pytest.mark.parametrize("cut", [20, 120, len(GOOD) - 12, len(GOOD) - 1])
def test_truncated_interchange(cut: int) -> None:
    errors = refused(GOOD[:cut])
    assert any("EDI-007" in e and "cut short" in e for e in errors), errors


def test_unknown_segment() -> None:
    bad = GOOD.replace("TXT:1+Goed nieuws.'", "XYZ+1'TXT:1+Goed nieuws.'").replace("UNT+7", "UNT+8")
    assert refused(bad) == ["error EDI-018 in.edi line 1 segment 6 XYZ: segment XYZ is not part of a MEDVRI"]


@pytest.mark.parametrize("level", ["UNOY", "UNOW", "ABCD", ""])
def test_bad_syntax_level(level: str) -> None:
    assert refused(GOOD.replace("UNOC:1", f"{level}:1")) == [
        f"error EDI-006 in.edi line 1 segment 1 UNB element 1 component 1: syntax level {level!r} is not "
        "supported (UNOA, UNOB, UNOC: ISO 646 and ISO 8859-1)"
    ]


def test_twenty_megabyte_txt_is_refused_quickly() -> None:
    big = GOOD.replace("Goed nieuws.", "x" * (20 * 1024 * 1024))
    t0 = time.perf_counter()
    errors = refused(big)
    assert time.perf_counter() - t0 < 1.0
    assert errors == [
        f"error EDI-010 in.edi line 1 segment 6 'TXT': segment of {20 * 1024 * 1024 + 6} characters is over "
        "the limit of 65536"
    ]


def test_bad_bsn_and_released_terminator_are_located() -> None:
    assert refused(GOOD.replace("BSN999999011", "BSN123456789")) == [
        "error EDI-021 in.edi line 1 segment 5 PID element 5: 'BSN123456789' is not BSN and a number passing "
        "the 11-test"
    ]
    # a release before the terminator makes it data: the message swallows the next segment and the count
    # no longer holds
    assert refused(GOOD.replace("Goed nieuws.", "Goed?"))[0].startswith(
        "error EDI-008 in.edi line 1 segment 7 UNT"
    )


def test_utf8_bom_and_garbage_refused() -> None:
    assert refused(b"\xef\xbb\xbf" + GOOD.encode())[0].startswith("error EDI-003")
    assert refused(b"\x00" * 100)[0].startswith("error EDI-007")
    assert refused(b"")[0].startswith("error EDI-001")


def test_line_numbers_count_crlf() -> None:
    text = GOOD.replace("'", "'\r\n").replace("UNT+7+M1", "UNT+6+M1")
    assert refused(text)[0].startswith("error EDI-008 in.edi line 9 segment 8 UNT element 1:")


def test_unwritable_character_is_a_located_error() -> None:
    (x,) = read_interchange(GOOD.encode("latin-1"))
    import msgspec

    k = msgspec.structs.replace(x.item.correspondence, text="Koffie \u2615")
    y = msgspec.structs.replace(x, item=msgspec.structs.replace(x.item, correspondence=k))
    with pytest.raises(InputError) as info:
        write_messages([y])
    assert info.value.problems[0].code == "EDI-033"


# --------------------------------------------------------------------------- fuzzing

SERVICE = ":+?'"
TEXT = st.text(alphabet=st.sampled_from("AZaz09 .-/" + SERVICE + "éëÇ"), max_size=12)


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_input_error(data: bytes) -> None:
    try:
        read_interchange(HEAD.encode() + data, source="f.edi", sink=ProblemSink())
    except InputError as exc:
        assert all(p.location.startswith("f.edi") for p in exc.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["TXT", "BEP", "ZZZ", "OPB"]),
            st.lists(st.integers(1, 9), max_size=3),
            st.lists(st.lists(TEXT, min_size=1, max_size=3), max_size=4),
        ),
        max_size=6,
    )
)
def test_segments_survive_write_then_tokenize(segs: list) -> None:
    """Any data with service characters in it comes back exactly (release characters work both ways)."""
    w = Writer()
    body = [
        w.segment(tag, *[tuple(c) for c in els], numbers=tuple(map(str, nums))) for tag, nums, els in segs
    ]
    ic = Interchange(
        syntax="UNOC",
        syntax_version="1",
        sender="S",
        recipient="R",
        prepared_date="260101",
        prepared_time="0000",
        reference="1",
    )
    data = write_interchange(ic, [("1", "MEDVRI", "1", body)])
    parsed = parse(data, sink=ProblemSink())
    got = parsed.messages[0].body
    assert len(got) == len(segs)
    for seg, (tag, nums, els) in zip(got, segs, strict=True):
        assert seg.tag == tag and seg.numbers == tuple(map(str, nums))
        want = [list(c) for c in els]
        while want and not any(want[-1]):
            want.pop()
        for c in want:
            while len(c) > 1 and not c[-1]:
                c.pop()
        assert [c if any(c) else [""] for c in seg.elements] == [c if any(c) else [""] for c in want]


@settings(max_examples=1_000, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from("ab  cé\n"), max_size=300))
def test_wrapping_loses_no_character(text: str) -> None:
    for line in text.split("\n"):
        parts = txt.wrap(line)
        assert "".join(parts) == line
        assert all(len(p) <= txt.MAX_LINE for p in parts)
    assert "".join(txt.lines_of(text)) == text.replace("\n", "")


SEEDS = sorted((GOLDEN / "edifact-medvri").glob("*/message.edi")) + sorted(
    (GOLDEN / "edifact-medlab").glob("*/message.edi")
)
PIECES = [
    b"'",
    b"+",
    b":",
    b"?",
    b"??",
    b"?'",
    b"UNH+9+MEDLAB:1'",
    b"UNT+3+1'",
    b"BEP:1:1:9+0'",
    b"\r\n",
    b"\xff",
    b"\x00",
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """One of: a byte range deleted, a service character or segment inserted, a byte changed, a cut, a
    segment repeated."""
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randrange(1, 40))
    kind = rng.randrange(5)
    if kind == 0:
        return data[:i] + data[j:]
    if kind == 1:
        return data[:i] + rng.choice(PIECES) + data[i:]
    if kind == 2:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    if kind == 3:
        return data[:i]
    return data[:i] + data[i:j] + data[i:]


def test_ten_thousand_mutated_interchanges_are_read_or_refused_with_location() -> None:
    """Seeded mutation fuzzing of the golden interchanges (10,000 examples, about 2 s): every input is
    read or refused with located problems; whatever is read writes and reads back to the same messages."""
    rng = random.Random(17)
    seeds = [p.read_bytes() for p in SEEDS]
    read = refused_count = 0
    for n in range(10_000):
        data = rng.choice(seeds)
        for _ in range(rng.randrange(1, 4)):
            data = _mutate(rng, data) or b"x"
        sink = ProblemSink()
        try:
            items = read_interchange(data, source=f"m{n}.edi", sink=sink)
        except InputError as exc:
            refused_count += 1
            assert exc.problems and all(p.location.startswith(f"m{n}.edi") for p in exc.problems), data
            continue
        read += 1
        if any(p.code == "EDI-016" for p in sink.problems):
            continue  # a line over 70 characters is kept whole and wrapped when written (documented)
        again = read_interchange(write_messages(items), source="again.edi", sink=ProblemSink())
        assert again == items, data
    assert read > 100 and refused_count > 1000  # both paths are exercised


def test_tokenize_keeps_numbering() -> None:
    segs, _, _, _ = tokenize(b"BEP:1:1:2+0+Hb'", sink=ProblemSink())
    assert segs[0].tag == "BEP" and segs[0].numbers == ("1", "1", "2")

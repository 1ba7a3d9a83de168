"""Medicom-style XML export and postbox import (adapters/medicom.py, docs/dialects/medicom.md).

Round trips over every valid dossier and postbox item, golden cases (one folder per rule they prove), the
writer held to lxml's own escaping, the spec held to the tables, the reading rules one by one, hostile
input, and speed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import timeit
import tracemalloc
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from lxml import etree

from adapters.base import get_format, get_postbox_format
from adapters.medicom import ENCODING, FORMAT, POSTBOX, SPECS
from adapters.xmlsafe import parse_xml
from mappings import model as m
from mappings.problems import InputError, ProblemSink, Severity
from tests.factories import typical_dossier
from tests.golden_util import GOLDEN, cases, load_postbox
from tests.strategies import dossiers, postbox_items

REPO = Path(__file__).resolve().parents[1]
CASES = cases("medicom")


def problems_of(data: bytes, *, strict: bool = False, postbox: bool = False) -> list:
    """Read ``data`` expecting failure; return every problem reported."""
    read = FORMAT.read_postbox if postbox else FORMAT.read
    with pytest.raises(InputError) as info:
        read(data, source="bad.xml", sink=ProblemSink(strict=strict))
    return list(info.value.problems)


def errors(problems) -> list[tuple[str, str]]:
    """(code, location without the line number) of every error."""
    return [(p.code, re.sub(r":\d+ ", " ", p.location)) for p in problems if p.severity is Severity.ERROR]


# --------------------------------------------------------------------------- round trips


def test_registered_under_the_cli_names():
    assert get_format("medicom") is FORMAT
    assert get_postbox_format("medicom") is POSTBOX


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_read_write_round_trip_is_exact_and_byte_stable(d):
    data = FORMAT.write(d)
    back = FORMAT.read(data, source="x.xml")
    assert back == d
    assert FORMAT.write(back) == data


@settings(max_examples=200, deadline=None)
@given(postbox_items())
def test_postbox_round_trip_is_exact_and_byte_stable(item):
    data = FORMAT.write_postbox(item)
    back = FORMAT.read_postbox(data, source="p.xml")
    assert back == item
    assert FORMAT.write_postbox(back) == data


@settings(max_examples=100, deadline=None)
@given(dossiers())
def test_the_writer_escapes_exactly_as_lxml_serialises(d):
    """The hand-written serialiser must give what lxml itself writes for the same tree: same escaping of
    markup characters, CR, tab and LF in attributes, same character references, same empty elements."""
    data = FORMAT.write(d)
    root = parse_xml(data, "x.xml").getroot()
    head, body = data.split(b"\n", 1)
    assert head == f'<?xml version="1.0" encoding="{ENCODING}"?>'.encode()
    assert etree.tostring(root, encoding=ENCODING, xml_declaration=False) + b"\n" == body


def _edge_dossier() -> m.Dossier:
    """Values the generated dossiers rarely or never hold: empty and blank texts, control characters in
    attribute values, characters Latin-1 has but Latin-9 replaced, a character outside the BMP, a year
    below 1000, numbers in exponent form, a video consult with nothing filled in."""
    practice = m.Organization(id="p", name=" \t ", agb="01073652")
    patient = m.Patient(
        bsn=None,
        birth_date=dt.date(999, 1, 2),
        name=m.PersonName(family="  Jansen  ", given="", prefix="van\tder"),
        insurance=m.Insurance(uzovi="3311", policy_number='A"B\t<C>\r\n&D '),
    )
    return m.Dossier(
        practice=practice,
        patient=patient,
        episodes=(m.Episode(id="e1", title=""),),
        contacts=(
            m.Contact(
                id="c1",
                start=dt.datetime(2026, 3, 29, 3, 30),
                video=m.VideoDetails(),
                deelcontacten=(
                    m.Deelcontact(
                        episode_id="e1",
                        lines=(
                            m.SoepLine(type="S", text=""),
                            m.SoepLine(type="O", text="\r"),
                            m.SoepLine(type="P", text="½ ¼ ¾ ¤ ¦ ¨ ´ ¸ | € Š š Ž ž Œ œ Ÿ | 😷 ĳ"),
                        ),
                    ),
                ),
            ),
        ),
        measurements=(
            m.Measurement(
                id="x1",
                code="3208",
                effective=dt.datetime(2026, 1, 1),
                value_quantity=Decimal("1E+2"),
                reference_low=Decimal("-0.000"),
                unit="µmol/L",
            ),
        ),
        attention_notes=(m.AttentionNote(id="a1", text="\r\n\r\n x \n"),),
    )


def test_edge_values_survive_and_are_written_as_the_spec_says():
    d = _edge_dossier()
    data = FORMAT.write(d)
    assert FORMAT.read(data) == d
    assert FORMAT.write(FORMAT.read(data)) == data
    assert b'polisnummer="A&quot;B&#9;&lt;C&gt;&#13;&#10;&amp;D "' in data
    assert b"<Voornamen/>" in data and b'<Regel type="S"/>' in data and b"<Videoconsult/>" in data
    assert b'<Regel type="O">&#13;</Regel>' in data
    # Latin-1 characters missing from Latin-9 are references, Latin-9's own are single bytes
    assert (
        b"&#189; &#188; &#190; &#164; &#166; &#168; &#180; &#184; | "
        b"\xa4 \xa6 \xa8 \xb4 \xb8 \xbc \xbd \xbe | &#128567; &#307;"
    ) in data
    assert b'geboortedatum="09990102"' in data and b'waarde="100"' in data and b'ondergrens="-0.000"' in data


# --------------------------------------------------------------------------- golden cases


def test_there_are_golden_cases_of_every_form():
    names = [c.name for c in CASES]
    assert len(names) >= 8
    assert sum((c / "postbox.xml").exists() for c in CASES) >= 2
    assert sum((c / "written.xml").exists() for c in CASES) >= 1  # a case whose input is not writer-normal


# The golden read and write of every case: tests/test_golden.py (one test over every format's cases).


def test_unused_input_is_traced_element_by_element():
    warnings = (GOLDEN / "medicom" / "unused-input-reported" / "warnings.txt").read_text("utf-8").splitlines()
    what = [re.sub(r"^warning MED-010 export\.xml:\d+ ", "", w) for w in warnings if " MED-010 " in w]
    assert what == [
        "/MedicomExport/@xsi:schemaLocation: unknown attribute, not read",
        "/MedicomExport/Patient/Naam/Geslachtsnaam/@bron: unknown attribute, not read",
        "/MedicomExport/Patient/Verwijzer: unknown element, not read",
        "/MedicomExport/Episodes/Episode[1]/@status: unknown attribute, not read",
        "/MedicomExport/Episodes/Episode[1]/text()[1]: text where only elements belong, not read",
        "/MedicomExport/Episodes/Notitie: unknown element, not read",
        "/MedicomExport/Episodes/Episode[2]/Titel/following-sibling::text()[1]: text between elements, "
        "not read",
    ]


def test_the_spec_examples_are_the_golden_files():
    """docs/dialects/medicom.md shows two files verbatim; they must stay what the code writes."""
    spec = (REPO / "docs" / "dialects" / "medicom.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in spec.split("```xml\n")[1:]]
    shown = ["maximal-dossier-every-field/export.xml", "postbox-auto-filing-with-soep-lines/postbox.xml"]
    assert blocks == [(GOLDEN / "medicom" / f).read_bytes().decode(ENCODING) for f in shown]


def test_the_spec_tables_list_every_attribute_and_element():
    """Each record's table in spec §3/§4 names exactly the attributes and elements the code reads."""
    spec = (REPO / "docs" / "dialects" / "medicom.md").read_text("utf-8")
    for heading, s in SPECS.items():
        parts = spec.split(f"\n#### `{heading}`\n", 1)
        assert len(parts) == 2, f"spec has no table headed `{heading}`"
        section = re.split(r"\n#{2,4} ", parts[1], maxsplit=1)[0]
        listed = re.findall(r"^\| `([^`]+)` \|", section, re.M)
        expected = [f"@{a.name}" for a in s.attrs] + ["(text)"] * bool(s.content)
        expected += [r.container or r.name for r in s.rows]
        assert listed == expected, heading


# --------------------------------------------------------------------------- reading rules


def _base() -> m.Dossier:
    return m.Dossier(
        practice=m.Organization(id="praktijk", name="De Linde", agb="01073652"),
        patient=m.Patient(
            bsn="555555914", name=m.PersonName(family="Jansen"), birth_date=dt.date(1950, 5, 20)
        ),
        gp=m.HealthProfessional(id="huisarts", name=m.PersonName(family="Arts"), organization_id="praktijk"),
        episodes=(
            m.Episode(id="ep1", title="Hypertensie", icpc="K86", start=dt.date(2020, 1, 5)),
            m.Episode(id="ep2", title="Astma", icpc="R96"),
        ),
        contacts=(
            m.Contact(
                id="c1",
                start=dt.datetime(2026, 2, 3, 9, 15),
                contact_type="03",
                author_id="huisarts",
                deelcontacten=(
                    m.Deelcontact(
                        episode_id="ep1",
                        lines=(
                            m.SoepLine(type="S", text="Hoofdpijn"),
                            m.SoepLine(type="E", text="HT", icpc="K86"),
                        ),
                    ),
                ),
            ),
        ),
        measurements=(
            m.Measurement(
                id="b1",
                code="3208",
                effective=dt.datetime(2026, 2, 3, 9, 20),
                value_quantity=Decimal("5.4"),
                unit="mmol/L",
            ),
        ),
    )


GOOD = FORMAT.write(_base())


def test_the_base_document_reads_cleanly():
    sink = ProblemSink()
    assert FORMAT.read(GOOD, sink=sink) == _base() and sink.problems == []


@pytest.mark.parametrize(
    "old,new,code,where",
    [
        (b'bsn="555555914"', b'bsn="555555915"', "MED-020", "/MedicomExport/Patient/@bsn"),
        (b'agb="01073652"', b'agb="1073652"', "MED-020", "/MedicomExport/Praktijk/@agb"),
        (b'icpc="R96"', b'icpc="R9"', "MED-020", "/MedicomExport/Episodes/Episode[2]/@icpc"),
        (
            b'<Deelcontact episode="ep1">',
            b'<Deelcontact episode="ep9">',
            "MED-020",
            "/MedicomExport/Contacten/Contact/Deelcontact/@episode",
        ),
        (b'<Episode id="ep2"', b'<Episode id="ep1"', "MED-020", "/MedicomExport/Episodes/Episode[2]/@id"),
        (b'auteur="huisarts"', b'auteur="locum"', "MED-020", "/MedicomExport/Contacten/Contact/@auteur"),
        (
            b'begindatum="20200105"',
            b'begindatum="20200132"',
            "MED-012",
            "/MedicomExport/Episodes/Episode[1]/@begindatum",
        ),
        (
            b'begin="20260203091500"',
            b'begin="2026-02-03T09:15"',
            "MED-012",
            "/MedicomExport/Contacten/Contact/@begin",
        ),
        (b'waarde="5.4"', b'waarde="5,4"', "MED-012", "/MedicomExport/Bepalingen/Bepaling/@waarde"),
        (b'waarde="5.4"', b'waarde="1e5"', "MED-012", "/MedicomExport/Bepalingen/Bepaling/@waarde"),
        (b'geslacht="O"', b'geslacht="F"', "MED-012", "/MedicomExport/Patient/@geslacht"),
        (
            b'<Regel type="S">',
            b'<Regel type="X">',
            "MED-012",
            "/MedicomExport/Contacten/Contact/Deelcontact/Regel[1]/@type",
        ),
        (b' geboortedatum="19500520"', b"", "MED-011", "/MedicomExport/Patient"),
        (b'<Episode id="ep2"', b"<Episode", "MED-011", "/MedicomExport/Episodes/Episode[2]"),
        (
            b"<Titel>Astma</Titel>",
            b"<Titel>Astma</Titel><Titel>Asthma</Titel>",
            "MED-014",
            "/MedicomExport/Episodes/Episode[2]/Titel[2]",
        ),
        (
            b"<Titel>Astma</Titel>",
            b"<Titel>As<b>tm</b>a</Titel>",
            "MED-013",
            "/MedicomExport/Episodes/Episode[2]/Titel/b",
        ),
        (
            b'<Regel type="S">Hoofdpijn</Regel>',
            b'<Regel type="S">Hoofd<br/>pijn</Regel>',
            "MED-013",
            "/MedicomExport/Contacten/Contact/Deelcontact/Regel[1]/br",
        ),
        (b'versie="1"', b'versie="7"', "MED-002", "/MedicomExport/@versie"),
        (b"<MedicomExport xmlns", b"<Export xmlns", "MED-001", "/Export"),
        (b'xmlns="urn:his-gateway:medicom:1"', b'xmlns="urn:other"', "MED-001", "/MedicomExport"),
    ],
)
def test_bad_input_is_an_error_at_its_xpath(old, new, code, where):
    assert old in GOOD
    data = GOOD.replace(old, new, 1)
    if new.startswith(b"<Export"):
        data = data.replace(b"</MedicomExport>", b"</Export>")
    problems = problems_of(data)
    assert (code, f"bad.xml {where}") in errors(problems), problems
    assert all(re.match(r"^bad\.xml:\d+ /", p.location) for p in problems), problems


def test_a_dangling_reference_is_reported_where_it_is_made_and_nothing_else_fails():
    data = GOOD.replace(b'organisatie="praktijk"', b'organisatie="elders"')
    problems = problems_of(data)
    assert errors(problems) == [("MED-020", "bad.xml /MedicomExport/Huisarts/@organisatie")]
    assert "unknown organization 'elders'" in problems[0].message


def test_strict_stops_at_the_first_error_lenient_collects_all():
    data = (
        GOOD.replace(b'bsn="555555914"', b'bsn="123"')
        .replace(b'begindatum="20200105"', b'begindatum="x"')
        .replace(b'waarde="5.4"', b'waarde="veel"')
        .replace(b'<Deelcontact episode="ep1">', b'<Deelcontact episode="q">')
    )
    lenient = problems_of(data)
    assert [c for c, _ in errors(lenient)] == ["MED-020", "MED-012", "MED-012", "MED-020"]
    strict = problems_of(data, strict=True)
    assert len(strict) == 1 and strict[0].code == "MED-020" and strict[0].location.endswith("/Patient/@bsn")


def test_postbox_needs_a_filing_or_a_manual_reason():
    item = load_postbox(GOLDEN / "medicom" / "postbox-feedback-for-manual-filing" / "canonical.json")
    data = FORMAT.write_postbox(item)
    reason = re.search(rb"\s*<RedenHandmatig>.*?</RedenHandmatig>", data, re.S)
    assert reason is not None
    problems = problems_of(data.replace(reason.group(), b""), postbox=True)
    assert errors(problems) == [("MED-020", "bad.xml /MedicomPostbus")]
    assert problems_of(GOOD, postbox=True)[0].code == "MED-001"


def test_another_declared_encoding_is_read_as_declared_with_a_warning():
    utf8 = GOOD.decode(ENCODING).replace(ENCODING, "UTF-8").encode("utf-8")
    sink = ProblemSink()
    assert FORMAT.read(utf8, sink=sink) == _base()
    assert [p.code for p in sink.problems] == ["MED-003"]


def test_a_text_xml_cannot_carry_is_refused_on_write():
    d = m.Dossier(practice=m.Organization(id="p", name="bad\x01name"), patient=_base().patient)
    with pytest.raises(InputError) as info:
        FORMAT.write(d)
    assert info.value.problems[0].code == "MED-030"


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "data,code",
    [
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
            b'<MedicomExport xmlns="urn:his-gateway:medicom:1" versie="1">&e;</MedicomExport>',
            "XML-002",
        ),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY %c "' % (98 + i) + b"&%c;" % (97 + i) * 10 + b'">' for i in range(9))
            + b"]>\n<l>&j;</l>",
            "XML-002",
        ),
        (
            GOOD.replace(b"De Linde", "Direnç € Š".encode(ENCODING)).replace(ENCODING.encode(), b"UTF-8"),
            "XML-004",
        ),  # Latin-9 bytes under a UTF-8 declaration
        (GOOD[: len(GOOD) * 2 // 3], "XML-003"),
        (b"<a>" * 5000 + b"</a>" * 5000, "XML-003"),
    ],
)
def test_hostile_documents_are_refused_with_a_code_and_line(data, code):
    problems = problems_of(data)
    assert problems[0].code == code and re.match(r"^bad\.xml:\d+", problems[0].location), problems


@pytest.mark.parametrize("size_mb", [100, 60])
def test_garbage_is_refused_within_a_second_in_bounded_memory(size_mb):
    garbage = os.urandom(1 << 20) * size_mb  # over the 64 MiB document limit, and under it
    process = psutil.Process()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        problems = problems_of(garbage)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems[0].code in {"XML-001", "XML-003", "XML-004"}
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert peak < 150 * 2**20 and process.memory_info().rss - rss_before < 300 * 2**20


def test_a_flood_of_unknown_elements_is_bounded_in_time_and_in_problems():
    flood = GOOD.replace(b"<Episodes>", b"<Episodes>" + b"<x/>" * 200_000)
    sink = ProblemSink()
    t0 = time.perf_counter()
    assert FORMAT.read(flood, sink=sink) == _base()
    assert time.perf_counter() - t0 < 5.0
    assert len(sink.problems) <= sink.max_warnings + 1 and sink.problems[-1].code == "IO-004"


# --------------------------------------------------------------------------- speed


def test_typical_dossier_reads_and_writes_well_under_5_ms():
    d = typical_dossier()
    data = FORMAT.write(d)
    assert FORMAT.read(data) == d
    timings = {
        "write": min(timeit.repeat(lambda: FORMAT.write(d), number=10, repeat=7)) / 10,
        "read": min(timeit.repeat(lambda: FORMAT.read(data), number=10, repeat=7)) / 10,
    }
    print({k: f"{v * 1000:.2f} ms" for k, v in timings.items()})
    assert max(timings.values()) < 0.005, timings

"""Medicom-style XML (docs/dialects/medicom.md): round trips, golden cases, bad and hostile input."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings

from adapters.medicom import FORMAT
from mappings import model as m
from mappings.problems import InputError, ProblemSink
from tests.golden_util import cases, check_or_write, load_dossier, load_postbox
from tests.strategies import dossiers, postbox_items


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_read_write_round_trip_and_byte_stable(d):
    data = FORMAT.write(d)
    back = FORMAT.read(data, source="x.xml")
    assert back == d
    assert FORMAT.write(back) == data


@settings(max_examples=200, deadline=None)
@given(postbox_items())
def test_postbox_round_trip(item):
    data = FORMAT.write_postbox(item)
    assert FORMAT.read_postbox(data, source="p.xml") == item
    assert FORMAT.write_postbox(FORMAT.read_postbox(data)) == data


@pytest.mark.parametrize("case", cases("medicom"), ids=lambda p: p.name)
def test_golden(case: Path):
    sink = ProblemSink()
    if (case / "postbox.xml").exists():
        native = case / "postbox.xml"
        got = FORMAT.read_postbox(native.read_bytes(), source=native.name, sink=sink)
        expected = load_postbox(case / "canonical.json")
        written = FORMAT.write_postbox(expected)
    else:
        native = case / "export.xml"
        got = FORMAT.read(native.read_bytes(), source=native.name, sink=sink)
        expected = load_dossier(case / "canonical.json")
        written = FORMAT.write(expected)
    assert got == expected
    check_or_write(case / "written.xml" if (case / "written.xml").exists() else native, written)
    check_or_write(case / "warnings.txt", "".join(p.render_line() + "\n" for p in sink.problems))


def test_at_least_eight_golden_cases_including_postbox_forms():
    names = [c.name for c in cases("medicom")]
    assert len(names) >= 8 and sum(n.startswith("postbox-") for n in names) >= 2


GOOD = (Path(__file__).parent / "golden" / "medicom" / "multiline-text-and-markup-chars" / "export.xml").read_bytes()


@pytest.mark.parametrize("old,new,code,where", [
    (b"<BSN>555555914</BSN>", b"<BSN>555555915</BSN>", "MED-020", "/MedicomExport/Patient"),
    (b"<Begindatum>20260105</Begindatum>", b"<Begindatum>20260132</Begindatum>", "MED-012",
     "/MedicomExport/Episode/Begindatum"),
    (b"<EpisodeId>ep1</EpisodeId>", b"<EpisodeId>ep9</EpisodeId>", "MED-020", "/MedicomExport"),
    (b"<Geboortedatum>19500520</Geboortedatum>", b"", "MED-011", "/MedicomExport/Patient"),
    (b"<Geslacht>O</Geslacht>", b"<Geslacht>O</Geslacht><Geslacht>M</Geslacht>", "MED-014",
     "/MedicomExport/Patient/Geslacht[2]"),
    (b"<Type>S</Type>", b"<Type></Type>", "MED-012", "/Regel[1]/Type"),
    (b'versie="1"', b'versie="7"', "MED-002", "/MedicomExport/@versie"),
    (b"<MedicomExport xmlns", b"<Export xmlns", "MED-001", "/Export"),
])
def test_bad_input_is_located(old, new, code, where):
    data = GOOD.replace(old, new, 1)
    if code == "MED-001":
        data = data.replace(b"</MedicomExport>", b"</Export>")
    assert data != GOOD
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml")
    hit = [p for p in info.value.problems if p.code == code]
    assert hit, info.value.problems
    assert hit[0].location.startswith("bad.xml:") and where in hit[0].location, hit[0].location


def test_lenient_collects_all_strict_stops_at_first():
    data = GOOD.replace(b"<Begindatum>20260105</Begindatum>", b"<Begindatum>x</Begindatum>").replace(
        b"<Begin>20260203091500</Begin>", b"<Begin>y</Begin>")
    with pytest.raises(InputError) as lenient:
        FORMAT.read(data, source="bad.xml")
    assert [p.code for p in lenient.value.problems if p.severity.value == "error"] == ["MED-012", "MED-012"]
    with pytest.raises(InputError) as strict:
        FORMAT.read(data, source="bad.xml", sink=ProblemSink(strict=True))
    assert len(strict.value.problems) == 1


@pytest.mark.parametrize("data,code", [
    (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<x>&e;</x>', "XML-002"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n<l>&b;</l>', "XML-002"),
    (GOOD.replace(b"ISO-8859-15", b"UTF-8"), "XML-004"),  # Latin-9 bytes under a UTF-8 declaration
    (GOOD[: len(GOOD) // 2], "XML-003"),
])
def test_hostile_documents_refused(data, code):
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="evil.xml")
    assert info.value.problems[0].code == code and info.value.problems[0].location.startswith("evil.xml")


def test_hundred_megabytes_of_garbage_refused_quickly():
    garbage = os.urandom(1 << 20) * 100
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(InputError):
        FORMAT.read(garbage, source="garbage.xml")
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 2**20


def test_text_xml_cannot_carry_is_refused_on_write():
    d = m.Dossier(practice=m.Organization(id="p", name="bad\x01name"),
                  patient=load_dossier(Path(__file__).parent / "golden" / "medicom" / "minimal-dossier" /
                                       "canonical.json").patient)
    with pytest.raises(InputError) as info:
        FORMAT.write(d)
    assert info.value.problems[0].code == "MED-030"

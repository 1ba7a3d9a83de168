"""The HL7v3 professional summary reader (issue 2, acceptance 2), on the real Nictiz instance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.ps_hl7v3 import FORMAT
from mappings.problems import InputError, ProblemSink
from tests.golden_util import GOLDEN, canonical_pretty, check_or_write

CASE = GOLDEN / "ps-hl7v3" / "nictiz-real-instance"
REAL = (Path(__file__).resolve().parents[2] / "shared" / "external" / "nictiz-huisartswaarneming"
        / "QUPC_IN990002NL_01.hl7v3.xml")


@pytest.fixture(scope="module")
def read_real():
    sink = ProblemSink()
    return FORMAT.read(REAL.read_bytes(), source="input.xml", sink=sink), sink


def test_golden_copy_is_the_shared_instance():
    assert (CASE / "input.xml").read_bytes() == REAL.read_bytes()


def test_real_ps_reads_completely(read_real):
    d, _ = read_real
    assert len(d.episodes) == 6
    assert len(d.contacts) == 13
    lines = [ln for c in d.contacts for dc in c.deelcontacten for ln in dc.lines]
    assert len(lines) == 42
    assert {t: sum(ln.type == t for ln in lines) for t in "SOEP"} == {"S": 11, "O": 9, "E": 12, "P": 10}  # counted in the XML with grep
    assert len(d.medications) == 2
    assert len(d.measurements) == 7  # every Tabel 45 observation, the one without a value included
    assert len(d.contraindications) == 2 and len(d.intolerances) == 1 and len(d.attention_notes) == 1


def test_real_ps_spot_values(read_real):
    d, _ = read_real
    assert d.patient.bsn == "555555914" and d.patient.name.family == "Direnç" and d.patient.name.initials == "A."
    assert d.patient.birth_date == dt.date(1950, 5, 20) and d.patient.gender == "male"
    assert d.gp.agb == "00098765" and d.gp.uzi == "900014719" and d.gp.role == "01.015"
    assert d.practice.ura == "90000388"
    ep = d.episode("525")
    assert (ep.icpc, ep.attention, ep.start) == ("K78", True, dt.date(2016, 5, 17))
    assert [e.id for e in d.episodes if e.attention] == ["525", "531"]
    first = d.contacts[0]
    assert (first.id, first.contact_type, first.start) == ("5837", "03", dt.datetime(2017, 6, 11, 11, 0))
    assert first.deelcontacten[0].episode_id == "532" and first.deelcontacten[0].icpc == "L86.01"
    assert first.deelcontacten[0].lines[0].text == "Voelt zich beter, maar het is nog erg stijf"
    temp = next(x for x in d.measurements if x.id == "5330")
    assert (temp.code, temp.value_quantity, temp.unit) == ("1915", Decimal("37.3"), "Cel")
    ck = next(x for x in d.measurements if x.code == "193")
    assert (ck.reference_low, ck.reference_high, ck.interpretation) == (Decimal(60), Decimal(120), "L")
    assert next(x for x in d.measurements if x.code == "2283").value_text == "Duidelijke uitstulping. L0"
    assert (d.intolerances[0].code, d.intolerances[0].start) == ("35", dt.date(2016, 11, 30))
    assert {c.code for c in d.contraindications} == {"219", "1347"}
    assert d.attention_notes[0].text == "Patient onderschat eigen ziek zijn vaak."
    doxy = d.medications[0]
    assert (doxy.product_system, doxy.product_code, doxy.quantity, doxy.start, doxy.end) == (
        "GPK", "22179", Decimal(28), dt.date(2004, 10, 9), dt.date(2004, 10, 23))
    locum = d.professional(doxy.prescriber_id)
    assert locum.name.family == "Jansma" and locum.organization_id == "org-01073652"


def test_real_ps_matches_golden_canonical(read_real):
    d, _ = read_real
    check_or_write(CASE / "canonical.json", canonical_pretty(d))


def test_unconsumed_elements_are_pinned(read_real):
    _, sink = read_real
    listed = [p.location + "\n" for p in sink.problems if p.code == "PS-090"]
    check_or_write(CASE / "expected-unconsumed.txt", "".join(listed))
    assert not [p for p in sink.problems if p.severity.value == "error"]


def _mutate(old: bytes, new: bytes) -> bytes:
    data = REAL.read_bytes()
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize("data,code,where", [
    (_mutate(b'<id extension="555555914" root="2.16.840.1.113883.2.4.6.3"/>',
             b'<id extension="555555915" root="2.16.840.1.113883.2.4.6.3"/>'), "PS-012", "/subject/Patient/id"),
    (_mutate(b'<birthTime value="19500520"/>', b'<birthTime value="1950052"/>'), "PS-010", "/Person/birthTime/@value"),
    (_mutate(b"<QUPC_IN990002NL ", b"<QUPC_IN990001NL ").replace(b"</QUPC_IN990002NL>", b"</QUPC_IN990001NL>"),
     "PS-001", "/QUPC_IN990001NL"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "XML-002", ""),
    (REAL.read_bytes()[:5000], "XML-003", ""),
])
def test_bad_input_is_located(data, code, where):
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml")
    hit = [p for p in info.value.problems if p.code == code]
    assert hit, info.value.problems
    assert hit[0].location.startswith("bad.xml:") and where in hit[0].location


def test_strict_stops_at_first_error():
    data = _mutate(b'<birthTime value="19500520"/>', b'<birthTime value="x"/>')
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml", sink=ProblemSink(strict=True))
    assert len(info.value.problems) == 1


def test_write_is_refused_with_a_problem(read_real):
    with pytest.raises(InputError) as info:
        FORMAT.write(read_real[0])
    assert info.value.problems[0].code == "PS-100"

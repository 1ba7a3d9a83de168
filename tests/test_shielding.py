"""Issue 20, acceptance 2: shielded (afgeschermd) items of every kind, through every dialect and the summary.

Each golden case under ``tests/golden/shielding/<case>/`` is the real NHG professional summary (the golden
dossier of ``ps-hl7v3/nictiz-real-instance``) with one kind of item shielded, and a text that only the
shielded item holds (the *marker*). The case holds the dossier (``canonical.json``, reviewed) and its
professional summary on the message's date (``summary.json``, reviewed). For every case:

- every dialect (Medicom, MicroHIS, OmniHIS, FHIR) writes the shielding and reads it back unchanged, and
  the marker is in what it writes of the whole dossier (so the checks below can fail);
- the summary holds nothing shielded nor linked to a shielded episode, and says so (``SUM-010``);
- the marker is in none of: the summary's canonical JSON, what each dialect writes of the summary, the
  summary's FHIR document, and the FHIR document made of the whole dossier (which leaves shielded data
  out whatever it is given).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from adapters.base import get_format
from mappings import model as m
from mappings.fhir.common import dumps
from mappings.fhir.document import summary_document
from mappings.problems import ProblemSink, Severity
from mappings.summary import build_summary, left_out
from tests.golden_util import GOLDEN, canonical_pretty, check_or_write

AREA = GOLDEN / "shielding"
BASE = GOLDEN / "ps-hl7v3" / "nictiz-real-instance" / "canonical.json"
AS_OF = dt.date(2017, 6, 21)
DIALECTS = ("medicom", "microhis", "omnihis", "fhir")
_replace = msgspec.structs.replace


def _episode_532_with_its_ct(d: m.Dossier) -> tuple[m.Dossier, str]:
    """Episode 532 (HNP) shielded, and the CT of the lumbar spine (Tabel 45 2283) tied to it by the HIS."""
    eps = tuple(_replace(e, shielded=True) if e.id == "532" else e for e in d.episodes)
    meas = tuple(_replace(x, episode_id="532") if x.code == "2283" else x for x in d.measurements)
    return _replace(d, episodes=eps, measurements=meas), "Duidelijke uitstulping"


def _contact(d: m.Dossier) -> tuple[m.Dossier, str]:
    first = d.contacts[0]  # 5837, 2017-06-11: inside the journal window
    return _replace(d, contacts=(_replace(first, shielded=True), *d.contacts[1:])), first.deelcontacten[
        0
    ].lines[0].text


def _prescription(d: m.Dossier) -> tuple[m.Dossier, str]:
    med = m.Medication(
        id="rx-geheim",
        product_name="GEHEIM-medicatie sertraline 50mg tablet",
        start=dt.date(2017, 5, 1),
        status="active",
        shielded=True,
        source_root="2.16.528.1.1007.3.3.2222.6",
        source_ext="999",
    )
    return _replace(d, medications=(*d.medications, med)), "GEHEIM-medicatie"


def _measurement(d: m.Dossier) -> tuple[m.Dossier, str]:
    meas = m.Measurement(
        id="meas-geheim",
        code="3208",  # later than the glucose of 2017-04-02: the latest, were it not shielded
        effective=dt.datetime(2017, 6, 1, 9, 0),
        value_text="GEHEIM-meting 9,9",
        shielded=True,
    )
    return _replace(d, measurements=(*d.measurements, meas)), "GEHEIM-meting"


def _intolerance(d: m.Dossier) -> tuple[m.Dossier, str]:
    item = m.Intolerance(id="int-geheim", text="GEHEIM-intolerantie", code="35", shielded=True)
    return _replace(d, intolerances=(*d.intolerances, item)), "GEHEIM-intolerantie"


def _contraindication(d: m.Dossier) -> tuple[m.Dossier, str]:
    item = m.ContraIndication(id="ci-geheim", text="GEHEIM-contra-indicatie", code="219", shielded=True)
    return _replace(d, contraindications=(*d.contraindications, item)), "GEHEIM-contra-indicatie"


def _attention_note(d: m.Dossier) -> tuple[m.Dossier, str]:
    item = m.AttentionNote(id="att-geheim", text="GEHEIM-attentie", date=dt.date(2017, 1, 1), shielded=True)
    return _replace(d, attention_notes=(*d.attention_notes, item)), "GEHEIM-attentie"


def _letter(d: m.Dossier) -> tuple[m.Dossier, str]:
    item = m.Correspondence(
        id="brief-geheim",
        date=dt.datetime(2017, 6, 1, 10, 0),
        direction="in",
        text="GEHEIM-brief van de psychiater",
        shielded=True,
    )
    return _replace(d, correspondence=(*d.correspondence, item)), "GEHEIM-brief"


def _note_of_a_shielded_episode(d: m.Dossier) -> tuple[m.Dossier, str]:
    """An attention note and an intolerance tied to a shielded episode go with it."""
    eps = tuple(_replace(e, shielded=True) if e.id == "530" else e for e in d.episodes)
    note = m.AttentionNote(id="att-530", text="GEHEIM-episode-notitie", episode_id="530")
    item = m.Intolerance(id="int-530", text="GEHEIM-episode-intolerantie", episode_id="530")
    return (
        _replace(
            d, episodes=eps, attention_notes=(*d.attention_notes, note), intolerances=(*d.intolerances, item)
        ),
        "GEHEIM-episode-",
    )


CASES: dict[str, Callable[[m.Dossier], tuple[m.Dossier, str]]] = {
    "episode-shielded-with-its-ct-result": _episode_532_with_its_ct,
    "contact-shielded": _contact,
    "prescription-shielded": _prescription,
    "measurement-shielded-older-one-stays": _measurement,
    "intolerance-shielded": _intolerance,
    "contra-indication-shielded": _contraindication,
    "attention-note-shielded": _attention_note,
    "letter-shielded": _letter,
    "note-and-intolerance-of-a-shielded-episode": _note_of_a_shielded_episode,
}
MARKERS = {name: make(m.from_json(BASE.read_bytes()))[1] for name, make in CASES.items()}


def case(name: str) -> m.Dossier:
    """The case's dossier: written from the base when regenerating, else the reviewed golden file."""
    path = AREA / name / "canonical.json"
    built, _ = CASES[name](m.from_json(BASE.read_bytes()))
    path.parent.mkdir(parents=True, exist_ok=True)
    check_or_write(path, canonical_pretty(built))
    return m.from_json(path.read_bytes())


def _writes(fmt: str, d: m.Dossier) -> bytes:
    return get_format(fmt).write(d)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fmt", DIALECTS)
def test_every_dialect_keeps_the_shielding(name: str, fmt: str):
    d = case(name)
    data = _writes(fmt, d)
    assert MARKERS[name].encode("utf-8") in data or MARKERS[name].encode("cp1252") in data  # the control
    assert get_format(fmt).read(data, source=f"{name}.{fmt}", sink=ProblemSink()) == d
    assert left_out(d)  # something is shielded


@pytest.mark.parametrize("name", sorted(CASES))
def test_nothing_shielded_comes_out_of_the_summary(name: str):
    d = case(name)
    sink = ProblemSink()
    s = build_summary(d, as_of=AS_OF, sink=sink, source=name)
    check_or_write(AREA / name / "summary.json", canonical_pretty(s))
    assert m.from_json((AREA / name / "summary.json").read_bytes()) == s
    # it says so
    info = [p for p in sink.problems if p.code == "SUM-010"]
    assert len(info) == 1 and info[0].severity is Severity.INFORMATION
    # nothing shielded, nothing tied to a shielded episode
    shielded = {e.id for e in d.episodes if e.shielded}
    items = [*s.episodes, *s.contacts, *s.medications, *s.measurements, *s.intolerances]
    items += [*s.contraindications, *s.attention_notes, *s.correspondence]
    assert not any(x.shielded for x in items)
    assert not any(getattr(x, "episode_id", None) in shielded for x in items)
    assert not any(dc.episode_id in shielded for c in s.contacts for dc in c.deelcontacten)
    marker = MARKERS[name].encode("utf-8")
    assert marker not in m.to_json(s)
    for fmt in DIALECTS:
        out = _writes(fmt, s)
        assert marker not in out and MARKERS[name].encode("cp1252") not in out, fmt
    doc = dumps(summary_document(s, as_of=AS_OF, source=d))
    assert marker not in doc
    assert marker not in dumps(summary_document(d, as_of=AS_OF))  # the whole dossier given: still left out
    assert b"afgeschermd" in doc  # a section note says what was left out


def test_the_ct_of_a_shielded_episode_does_not_appear():
    """The issue's own example: with episode 532 shielded, its CT result (Tabel 45 2283) must not appear."""
    d = case("episode-shielded-with-its-ct-result")
    s = build_summary(d, as_of=AS_OF, sink=ProblemSink(), source="x")
    assert "2283" not in {x.code for x in s.measurements}
    assert "532" not in {e.id for e in s.episodes}
    assert not any(dc.episode_id == "532" for c in s.contacts for dc in c.deelcontacten)
    unshielded = m.from_json(BASE.read_bytes())
    assert "2283" in {x.code for x in build_summary(unshielded, as_of=AS_OF).measurements}  # the control


def test_a_shielded_latest_measurement_leaves_the_older_one():
    d = case("measurement-shielded-older-one-stays")
    s = build_summary(d, as_of=AS_OF, sink=ProblemSink(), source="x")
    glucose = [x for x in s.measurements if x.code == "3208"]
    assert [(x.id, x.value_quantity) for x in glucose] == [("5333", Decimal("5.4"))]


def test_hl7v3_confidentiality_codes_read_as_shielding():
    """``confidentialityCode`` R or V on any item reads as shielded; N as not (HL7 v3 Confidentiality)."""
    src = Path(__file__).parent / "golden" / "ps-hl7v3" / "nictiz-real-instance" / "input.xml"
    data = src.read_bytes()
    conf = b'<confidentialityCode code="R" codeSystem="2.16.840.1.113883.5.25"/>'
    normal = b'<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>'
    marked = (
        data.replace(  # the CT observation, restricted
            b'<id extension="5334" root="2.16.840.1.113883.2.4.6.6.90000258.4.7"/>',
            b'<id extension="5334" root="2.16.840.1.113883.2.4.6.6.90000258.4.7"/>' + conf,
        )
        .replace(  # episode 528, restricted
            b'<id extension="528" root="2.16.840.1.113883.2.4.6.6.90000258.4.6"/>',
            b'<id extension="528" root="2.16.840.1.113883.2.4.6.6.90000258.4.6"/>' + conf,
            1,
        )
        .replace(  # a prescription, very restricted
            b'<id extension="102" root="2.16.528.1.1007.3.3.2222.6"/>',
            b'<id extension="102" root="2.16.528.1.1007.3.3.2222.6"/>' + conf.replace(b'"R"', b'"V"'),
        )
        .replace(  # glucose, normal
            b'<id extension="5333" root="2.16.840.1.113883.2.4.6.6.90000258.4.7"/>',
            b'<id extension="5333" root="2.16.840.1.113883.2.4.6.6.90000258.4.7"/>' + normal,
        )
    )
    assert marked.count(b"confidentialityCode") == 4
    fmt = get_format("ps-hl7v3")
    sink = ProblemSink()
    d = fmt.read(marked, source="marked.xml", sink=sink)
    assert not any("confidentialityCode" in p.location for p in sink.problems)  # all four were read
    assert {x.id for x in d.measurements if x.shielded} == {"5334"}
    assert {e.id for e in d.episodes if e.shielded} == {"528"}
    assert {x.id for x in d.medications if x.shielded} == {"102"}
    s = build_summary(d, as_of=AS_OF, sink=ProblemSink(), source="marked.xml")
    assert "2283" not in {x.code for x in s.measurements} and "528" not in {e.id for e in s.episodes}

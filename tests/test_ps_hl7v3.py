"""The HL7v3 professional summary reader (QUPC_IN990002NL), on the real Nictiz instance and hand-made cases.

Golden cases live in ``tests/golden/ps-hl7v3/<case>/``: ``input.xml``, the ``canonical.json`` it reads to and
``warnings.txt`` (every problem, one rendered line each: the ``PS-090`` lines are the pinned trace of the
patient's content nothing read, the ``PS-091`` lines that of the message envelope); tests/test_golden.py
reads them.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.ps_hl7v3 import FORMAT
from mappings import model as m
from mappings.problems import InputError, ProblemSink, Severity
from tests.conftest import REAL_PS
from tests.golden_util import GOLDEN, cases

CASE = GOLDEN / "ps-hl7v3" / "nictiz-real-instance"
REAL = REAL_PS
V3 = "{urn:hl7-org:v3}"
TRACE = ("PS-090", "PS-091")  # unread content, unread envelope


@pytest.fixture(scope="module")
def read_real():
    sink = ProblemSink()
    return FORMAT.read(REAL.read_bytes(), source="input.xml", sink=sink), sink


def test_golden_copy_is_the_real_instance():
    assert (CASE / "input.xml").read_bytes() == REAL.read_bytes()


# -- golden cases -----------------------------------------------------------------------------------------


# The golden read of every case: tests/test_golden.py (one test over every format's cases).


def test_there_are_hand_made_cases_besides_the_real_instance():
    names = {p.name for p in cases("ps-hl7v3")}
    assert "nictiz-real-instance" in names and len(names) >= 5


# -- the real instance: complete and right ----------------------------------------------------------------


def test_real_ps_reads_completely(read_real):
    d, _ = read_real
    assert len(d.episodes) == 6
    assert len(d.contacts) == 13
    lines = [ln for c in d.contacts for dc in c.deelcontacten for ln in dc.lines]
    assert len(lines) == 42
    # counted in the XML: grep -c 'code="S" codeSystem="2.16.840.1.113883.2.4.4.32.2"' and so on
    assert {t: sum(ln.type == t for ln in lines) for t in "SOEP"} == {"S": 11, "O": 9, "E": 12, "P": 10}
    assert len(d.medications) == 2
    assert len(d.measurements) == 7  # every Tabel 45 observation, the one without a value included
    assert len(d.contraindications) == 2 and len(d.intolerances) == 1 and len(d.attention_notes) == 1
    assert [p.id for p in d.professionals] == ["prof-000002222"] and [o.id for o in d.organizations] == [
        "org-01073652"
    ]


def test_real_ps_spot_values(read_real):
    d, _ = read_real
    assert (
        d.patient.bsn == "555555914" and d.patient.name.family == "Direnç" and d.patient.name.initials == "A."
    )
    assert d.patient.birth_date == dt.date(1950, 5, 20) and d.patient.gender == "male"
    assert d.patient.address.postal_code == "1256 DC" and d.patient.telecom[0].value == "+31190531770"
    assert d.gp.agb == "00098765" and d.gp.uzi == "900014719" and d.gp.role == "01.015"
    assert d.practice.ura == "90000388" and d.practice.name == "Tést Zorginstelling 09"
    ep = d.episode("525")
    assert (ep.icpc, ep.attention, ep.start, ep.title) == (
        "K78",
        True,
        dt.date(2016, 5, 17),
        "Hartkloppingen -paroxysmaal boezemfibrilleren",
    )
    assert [e.id for e in d.episodes if e.attention] == ["525", "531"]
    first = d.contacts[0]
    assert (first.id, first.contact_type, first.start, first.end) == (
        "5837",
        "03",
        dt.datetime(2017, 6, 11, 11, 0),
        dt.datetime(2017, 6, 11, 11, 2),
    )
    assert first.author_id == "huisarts"
    assert first.deelcontacten[0].episode_id == "532" and first.deelcontacten[0].icpc == "L86.01"
    assert first.deelcontacten[0].lines[0] == m.SoepLine(
        type="S",
        text="Voelt zich beter, maar het is nog erg stijf",
        source_root="2.16.840.1.113883.2.4.6.6.90000258.4.2.1",  # the journal line's own id (issue 20)
        source_ext="5837",
    )
    # the HIS's own ids, OID root + extension, on every item (issue 20)
    assert (first.source_root, first.source_ext) == ("2.16.840.1.113883.2.4.6.6.90000258.4.1", "5837")
    assert (ep.source_root, ep.source_ext) == ("2.16.840.1.113883.2.4.6.6.90000258.4.6", "525")
    rx = next(x for x in d.medications if x.id == "101")
    assert (rx.source_root, rx.source_ext) == ("2.16.528.1.1007.3.3.2222.6", "101")
    # PIVL_TS period 0.5 d: twice a day, beside the text "2 maal per dag 1 tablet"
    assert (rx.timing_frequency, rx.timing_period, rx.timing_unit) == (2, Decimal(1), "d")
    # CK's effectiveTime is 20140430: a day, not a moment
    ck_day = next(x for x in d.measurements if x.code == "193")
    assert ck_day.date_only and ck_day.effective == dt.datetime(2014, 4, 30)
    assert not next(x for x in d.measurements if x.id == "5330").date_only  # 20170226000000 has a time
    assert all(x.source_root for x in (*d.measurements, *d.intolerances, *d.contraindications))
    # the JournalEntry ids 5838 (.4.2.x) link to episode 529 (Keelpijn) through that episode's actReferences
    assert next(c for c in d.contacts if c.id == "5838").deelcontacten[0].episode_id == "529"
    assert (
        next(c for c in d.contacts if c.id == "5844").deelcontacten[0].episode_id is None
    )  # no actReference
    temp = next(x for x in d.measurements if x.id == "5330")
    assert (temp.code, temp.value_quantity, temp.unit, temp.effective) == (
        "1915",
        Decimal("37.3"),
        "Cel",
        dt.datetime(2017, 2, 26),
    )
    culture = next(x for x in d.measurements if x.code == "1334")
    assert (culture.value_quantity, culture.value_text) == (None, None)  # nullFlavor="UNK": no value
    ck = next(x for x in d.measurements if x.code == "193")
    assert (ck.reference_low, ck.reference_high, ck.interpretation) == (Decimal(60), Decimal(120), "L")
    assert next(x for x in d.measurements if x.code == "2283").value_text == "Duidelijke uitstulping. L0"
    pen = d.intolerances[0]
    assert (pen.code, pen.start, pen.status) == ("35", dt.date(2016, 11, 30), "active")
    assert pen.text == "Forse reactie op fenoxymethylpenicilline kal GF dispers 250 MG"
    assert [(c.code, c.text) for c in d.contraindications] == [("219", "VERKEERSDEELNAME"), ("1347", "ASTMA")]
    assert d.attention_notes[0] == m.AttentionNote(
        id="att1", text="Patient onderschat eigen ziek zijn vaak.", date=dt.date(2017, 6, 18)
    )
    doxy = d.medications[0]
    assert (doxy.id, doxy.product_system, doxy.product_code, doxy.quantity, doxy.quantity_unit) == (
        "101",
        "GPK",
        "22179",
        Decimal(28),
        "Stuk",
    )
    assert (doxy.start, doxy.end, doxy.prescribed_on, doxy.dosage_text) == (
        dt.date(2004, 10, 9),
        dt.date(2004, 10, 23),
        dt.date(2004, 10, 9),
        "2 maal per dag 1 tablet",
    )
    locum = d.professional(doxy.prescriber_id)
    assert (
        locum.name.family == "Jansma"
        and locum.name.title == "Dr."
        and locum.organization_id == "org-01073652"
    )
    assert d.contacts[-1].author_id == locum.id  # the last encounter is the locum's, at another practice


def test_real_ps_trace_names_only_what_the_dossier_lacks(read_real):
    _, sink = read_real
    trace = [p.location.split(" ", 1)[1] for p in sink.problems if p.code in TRACE]
    envelope = {p.location.split(" ", 1)[1] for p in sink.problems if p.code == "PS-091"}
    wrapper = {
        "/QUPC_IN990002NL/id",
        "/QUPC_IN990002NL/sender",
        "/QUPC_IN990002NL/ControlActProcess/queryAck",
    }
    assert wrapper <= envelope
    # what stays a warning is about the patient: birthplace, care periods, dispense status (the frequency is
    # read since issue 20: the schedule as Timing)
    content = [t for t in trace if t not in envelope]
    assert len(content) == 8 and content[0].endswith("/Patient/Person/birthplace")
    assert all(not t.endswith(("/id", "/templateId")) for t in content)
    assert not any(
        t.endswith(("/JournalEntry/value", "/episodeOfCondition/text", "/Person/name")) for t in trace
    )
    assert not any(
        p.code == "CODE-001" for p in sink.problems
    )  # every code of the instance is in the shipped tables


# -- bad input: a located problem, never another exception -------------------------------------------------


def _mutate(old: bytes, new: bytes) -> bytes:
    data = REAL.read_bytes()
    assert old in data
    return data.replace(old, new, 1)


MINIMAL = (GOLDEN / "ps-hl7v3" / "minimal-summary" / "input.xml").read_bytes()


def _minimal(old: bytes, new: bytes) -> bytes:
    assert old in MINIMAL
    return MINIMAL.replace(old, new, 1)


BAD = [
    (
        "invalid-bsn",
        _mutate(
            b'<id extension="555555914" root="2.16.840.1.113883.2.4.6.3"/>',
            b'<id extension="555555915" root="2.16.840.1.113883.2.4.6.3"/>',
        ),
        "PS-012",
        "/subject/Patient/id/@extension",
    ),
    (
        "short-birth-time",
        _mutate(b'<birthTime value="19500520"/>', b'<birthTime value="1950052"/>'),
        "PS-010",
        "/Person/birthTime/@value",
    ),
    (
        "impossible-time",
        _mutate(b'<low value="201706111100"/>', b'<low value="201713111100"/>'),
        "PS-010",
        "/component1[1]/encounter/effectiveTime/low/@value",
    ),
    (
        "not-qupc",
        _mutate(b"<QUPC_IN990002NL ", b"<QUPC_IN990001NL ").replace(
            b"</QUPC_IN990002NL>", b"</QUPC_IN990001NL>"
        ),
        "PS-001",
        "/QUPC_IN990001NL",
    ),
    (
        "wrong-interaction",
        _mutate(b'extension="QUPC_IN990002NL"', b'extension="QUPC_IN990001NL"'),
        "PS-002",
        "/interactionId/@extension",
    ),
    (
        "no-provision",
        _minimal(b"<PrimaryCareProvision>", b"<PrimaryCareProvisionX>").replace(
            b"</PrimaryCareProvision>", b"</PrimaryCareProvisionX>"
        ),
        "PS-003",
        "/QUPC_IN990002NL",
    ),
    (
        "missing-patient",
        _minimal(b"<Patient>", b"<Persoon>").replace(b"</Patient>", b"</Persoon>"),
        "PS-004",
        "/PrimaryCareProvision",
    ),
    (
        "no-author",
        _minimal(b"<AssignedEntity>", b"<AssignedX>").replace(b"</AssignedEntity>", b"</AssignedX>"),
        "PS-006",
        "/PrimaryCareProvision",
    ),
    (
        "no-practice",
        _minimal(b"<Organization>", b"<Org>").replace(b"</Organization>", b"</Org>"),
        "PS-007",
        "/author/AssignedEntity",
    ),
    (
        "bad-telecom",
        _mutate(b'value="tel:+31190531770"', b'value="+31190531770"'),
        "PS-011",
        "/Patient/telecom/@value",
    ),
    ("no-birth-date", _mutate(b'<birthTime value="19500520"/>', b""), "PS-013", "/Patient/Person"),
    (
        "bad-agb",
        _mutate(
            b'<id extension="00098765" root="2.16.840.1.113883.2.4.6.1"/>\n                        <id '
            b'extension="900014719"',
            b'<id extension="0009876" root="2.16.840.1.113883.2.4.6.1"/>\n'
            b'                        <id extension="900014719"',
        ),
        "PS-020",
        "/author/AssignedEntity",
    ),
    (
        "bad-icpc-shape",
        _mutate(b'<value code="K78"', b'<value code="K7"'),
        "PS-020",
        "/component7[1]/episodeOfCondition",
    ),
    (
        "alert-to-unknown-episode",
        _mutate(
            b'<id extension="531" root="2.16.840.1.113883.2.4.6.6.90000258.4.6"/>\n'
            b'                                <code code="CONC"',
            b'<id extension="999" root="2.16.840.1.113883.2.4.6.6.90000258.4.6"/>\n'
            b'                                <code code="CONC"',
        ),
        "PS-030",
        "/sourceOf/act/id",
    ),
    (
        "bad-journal-type",
        _mutate(
            b'<code code="S" codeSystem="2.16.840.1.113883.2.4.4.32.2"',
            b'<code code="X" codeSystem="2.16.840.1.113883.2.4.4.32.2"',
        ),
        "PS-040",
        "/component1[1]/encounter/component[1]/JournalEntry/code",
    ),
    (
        "encounter-without-time",
        _mutate(
            b'<low value="201706111100"/>\n                            <high value="201706111102"/>', b""
        ),
        "PS-041",
        "/component1[1]/encounter",
    ),
    (
        "prescription-without-product",
        _mutate(b'<code code="66311"', b'<codeX code="66311"'),
        "PS-050",
        "/component[6]/Prescription",
    ),
    ("bad-number", _mutate(b'value="37.3"', b'value="NaN"'), "PS-060", "/observation/value/@value"),
    (
        "measurement-without-time",
        _mutate(b'<effectiveTime value="20140430"/>', b""),
        "PS-061",
        "/component2[9]/observation",
    ),
    (
        "doctype-xxe",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        "XML-002",
        "",
    ),
    (
        "doctype-in-real-ps",
        REAL.read_bytes().replace(b"<QUPC_IN990002NL ", b"<!DOCTYPE QUPC_IN990002NL>\n<QUPC_IN990002NL ", 1),
        "XML-002",
        "",
    ),
    ("truncated", REAL.read_bytes()[:5000], "XML-003", ""),
    ("empty", b"", "XML-003", ""),
]


@pytest.mark.parametrize("data,code,where", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_located(data, code, where):
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml")
    hit = [p for p in info.value.problems if p.code == code]
    assert hit, info.value.problems
    assert hit[0].severity is Severity.ERROR
    assert hit[0].location.startswith("bad.xml:") and where in hit[0].location, hit[0].location


def test_bad_input_with_the_urn_oid_form_is_located_the_same():
    data = _mutate(
        b'<id extension="555555914" root="2.16.840.1.113883.2.4.6.3"/>',
        b'<id extension="123" root="urn:oid:2.16.840.1.113883.2.4.6.3"/>',
    )
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml")
    assert [p.code for p in info.value.problems if p.severity is Severity.ERROR] == ["PS-012"]


def test_strict_stops_at_first_error():
    data = _mutate(b'<birthTime value="19500520"/>', b'<birthTime value="x"/>')
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml", sink=ProblemSink(strict=True))
    assert len(info.value.problems) == 1 and info.value.problems[0].code == "PS-010"


def test_lenient_collects_every_error():
    data = _mutate(b'<birthTime value="19500520"/>', b'<birthTime value="x"/>').replace(
        b'value="37.3"', b'value="abc"', 1
    )
    with pytest.raises(InputError) as info:
        FORMAT.read(data, source="bad.xml")
    assert {"PS-010", "PS-060"} <= {p.code for p in info.value.problems}


def test_write_is_refused_with_a_problem(read_real):
    with pytest.raises(InputError) as info:
        FORMAT.write(read_real[0])
    assert info.value.problems[0].code == "PS-100"


# -- hostile variations of the real instance: a dossier or an InputError, nothing else ----------------------

_TREE = etree.fromstring(REAL.read_bytes())
_COUNT = sum(1 for _ in _TREE.iter())
# text XML can carry (no control characters, no lone surrogates): the junk must reach the reader
_JUNK = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, _COUNT - 1), st.sampled_from(["drop", "attr", "text", "dup"]), _JUNK),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_real_ps_reads_or_fails_cleanly(mutations):
    root = etree.fromstring(REAL.read_bytes())
    for index, kind, junk in mutations:
        nodes = list(root.iter())
        el = nodes[index % len(nodes)]
        parent = el.getparent()
        if kind == "drop" and parent is not None:
            parent.remove(el)
        elif kind == "attr" and el.attrib:
            el.set(sorted(el.attrib)[0], junk)
        elif kind == "text":
            el.text = junk
        elif kind == "dup" and parent is not None:
            parent.insert(parent.index(el), copy.deepcopy(el))
    data = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    try:
        d = FORMAT.read(data, source="fuzz.xml")
    except InputError as exc:
        assert exc.problems and all(p.code and p.location.startswith("fuzz.xml") for p in exc.problems)
        return
    assert m.from_json(m.to_json(d)) == d  # whatever was read is a valid dossier


@pytest.mark.parametrize("tag", ["Patient", "encounter", "episodeOfCondition", "observation", "Prescription"])
def test_unknown_child_elements_are_traced_not_dropped(tag):
    root = etree.fromstring(REAL.read_bytes())
    target = next(root.iter(V3 + tag))
    etree.SubElement(target, V3 + "extraData").text = "x"
    sink = ProblemSink()
    FORMAT.read(etree.tostring(root), source="x.xml", sink=sink)
    assert [p for p in sink.problems if p.code == "PS-090" and p.location.endswith("/extraData")]


# -- small cases built on the minimal summary ---------------------------------------------------------------


def _with(body: str, *, name: str | None = None) -> bytes:
    """The minimal summary with ``body`` added to PrimaryCareProvision (and another patient name)."""
    data = MINIMAL.replace(
        b"      </PrimaryCareProvision>", body.encode() + b"\n      </PrimaryCareProvision>"
    )
    if name is not None:
        data = data.replace(
            b'<name><given qualifier="IN">J.</given><family qualifier="BR">Jansen</family></name>',
            name.encode(),
        )
    return data


def _read(data: bytes) -> tuple[m.Dossier, list]:
    sink = ProblemSink()
    d = FORMAT.read(data, source="t.xml", sink=sink)
    return d, [(p.code, p.location.split(" ", 1)[1]) for p in sink.problems]


@pytest.mark.parametrize(
    "xml,expected",
    [
        (
            '<name><given qualifier="IN">J.</given><prefix qualifier="VV">de </prefix>'
            '<family qualifier="SP">Vries</family><delimiter>-</delimiter>'
            '<family qualifier="BR">Jansen</family></name>',
            m.PersonName(
                initials="J.", partner_prefix="de", partner_family="Vries", family="Jansen", usage="NL3"
            ),
        ),
        (
            '<name><given qualifier="IN">J.</given><given qualifier="IN">P.</given><given>Jan Pieter</given>'
            '<given qualifier="CL">Jan</given><family>Jansen</family></name>',
            m.PersonName(initials="J.P.", given="Jan Pieter", family="Jansen"),
        ),
        (
            '<name><prefix qualifier="VV">van </prefix><family>Dijk</family></name>',
            m.PersonName(prefix="van", family="Dijk"),
        ),
        ("<name>  Jansen  </name>", m.PersonName(family="Jansen")),
    ],
)
def test_dutch_name_parts(xml, expected):
    d, _ = _read(_with("", name=xml))
    assert d.patient.name == expected


def test_call_name_and_second_family_name_are_traced():
    name = (
        '<name><given qualifier="CL">Jan</given><family qualifier="BR">Jansen</family>'
        '<family qualifier="BR">Pietersen</family></name>'
    )
    d, problems = _read(_with("", name=name))
    assert d.patient.name == m.PersonName(family="Jansen")
    assert [w for c, w in problems if c == "PS-090"] == [
        "/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/subject/Patient/Person/name/given",
        "/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/subject/Patient/Person/name/family[2]",
    ]


EPISODE = """
        <component7><episodeOfCondition>
          <id extension="E1" root="1.2.3.999.4.6"/><text>Astma</text>
          <effectiveTime><low value="20200101"/></effectiveTime>
          <component2><episodOfCare>
            <component><actReference><id extension="J1" root="1.2.3.999.4.2"/></actReference></component>
          </episodOfCare></component2>
          <reason><ObservationDx><value code="{code}" codeSystem="{system}"/></ObservationDx></reason>
        </episodeOfCondition></component7>"""
ALERT = """
        <component2><observation>
          <code code="74018-3" codeSystem="2.16.840.1.113883.6.1"/>
          <sourceOf><act><id extension="E1"{root}/></act></sourceOf>
        </observation></component2>"""


def test_alert_without_root_matches_the_one_episode_with_that_extension():
    d, _ = _read(
        _with(EPISODE.format(code="R96", system="2.16.840.1.113883.2.4.4.31.1") + ALERT.format(root=""))
    )
    assert d.episodes[0].attention is True


def test_alert_with_another_root_does_not_match():
    body = EPISODE.format(code="R96", system="2.16.840.1.113883.2.4.4.31.1") + ALERT.format(
        root=' root="9.9"'
    )
    with pytest.raises(InputError) as info:
        FORMAT.read(_with(body), source="t.xml")
    assert [p.code for p in info.value.problems if p.severity is Severity.ERROR] == ["PS-030"]


def test_diagnosis_in_another_code_system_is_warned_and_not_kept():
    d, problems = _read(_with(EPISODE.format(code="J45", system="2.16.840.1.113883.6.3")))
    assert d.episodes[0].icpc is None and d.episodes[0].title == "Astma"
    assert (
        "PS-031",
        "/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/component7/episodeOfCondition"
        "/reason/ObservationDx/value/@codeSystem",
    ) in problems


def _encounter(components: str) -> str:
    return f"""
        <component1><encounter>
          <id extension="C1" root="1.2.3.999.4.1"/>
          <effectiveTime value="202001011000"/>
          {components}
        </encounter></component1>"""


def test_deelcontact_lines_linked_to_two_episodes_keep_the_first():
    episodes = EPISODE.format(code="R96", system="2.16.840.1.113883.2.4.4.31.1") + EPISODE.replace(
        'extension="E1"', 'extension="E2"'
    ).replace('extension="J1"', 'extension="J2"').format(code="K86", system="2.16.840.1.113883.2.4.4.31.1")
    lines = "".join(
        f'<component><sequenceNumber value="1"/><JournalEntry><id extension="{j}" root="1.2.3.999.4.2"/>'
        f'<code code="{t}"/><value>{t} regel</value></JournalEntry></component>'
        for j, t in (("J1", "S"), ("J2", "P"))
    )
    d, problems = _read(_with(episodes + _encounter(lines)))
    assert d.contacts[0].deelcontacten[0].episode_id == "E1"
    assert [c for c, _ in problems] == ["PS-032"]
    # each line keeps its own id (issue 20), also the one whose episode link is not kept
    assert all(line.source_ext for line in d.contacts[0].deelcontacten[0].lines)


def test_product_outside_the_g_standaard_keeps_only_its_name():
    rx = (
        '<component><sequenceNumber value="1"/><Prescription><id extension="R1" root="1.2.3.999.4.5"/>'
        "<directTarget><prescribedMedication><MedicationKind>"
        '<code code="X1" codeSystem="1.2.3.999.9" displayName="magistrale bereiding"/>'
        "</MedicationKind></prescribedMedication></directTarget></Prescription></component>"
    )
    d, problems = _read(_with(_encounter(rx)))
    assert (
        d.medications[0].product_name,
        d.medications[0].product_system,
        d.medications[0].product_code,
    ) == ("magistrale bereiding", None, None)
    assert [c for c, _ in problems] == ["PS-051"]


def test_organisation_without_a_name_is_named_unknown_with_a_warning():
    data = MINIMAL.replace(b"<name>Huisartsenpraktijk De Linde</name>", b"")
    d, problems = _read(data)
    assert d.practice.name == "(naam onbekend)" and [c for c, _ in problems] == ["PS-014"]


@pytest.mark.parametrize(
    "xml,gender",
    [('code="M"', "male"), ('code="F"', "female"), ('code="UN"', "other"), ('nullFlavor="UNK"', "unknown")],
)
def test_gender(xml, gender):
    d, _ = _read(MINIMAL.replace(b'code="F" codeSystem="2.16.840.1.113883.5.1"', xml.encode()))
    assert d.patient.gender == gender


def _prescription(status: str) -> str:
    return _encounter(
        '<component><sequenceNumber value="1"/><Prescription><id extension="R1" root="1.2.3.999.4.5"/>'
        f'<statusCode code="{status}"/><directTarget><prescribedMedication><MedicationKind>'
        '<code code="22179" codeSystem="2.16.840.1.113883.2.4.4.1" displayName="doxycycline 100mg tablet"/>'
        "</MedicationKind></prescribedMedication></directTarget></Prescription></component>"
    )


@pytest.mark.parametrize(
    "status,expected",
    [
        ("active", "active"),
        ("completed", "completed"),
        ("aborted", "stopped"),
        ("suspended", "stopped"),
        ("cancelled", "stopped"),
    ],
)
def test_prescription_status(status, expected):
    d, problems = _read(_with(_prescription(status)))
    assert d.medications[0].status == expected and problems == []


def test_nullified_acts_are_not_read_but_traced():
    episode = EPISODE.format(code="R96", system="2.16.840.1.113883.2.4.4.31.1").replace(
        "<text>Astma</text>", '<text>Astma</text><statusCode code="nullified"/>'
    )
    d, problems = _read(
        _with(episode + ALERT.format(root=' root="1.2.3.999.4.6"') + _prescription("nullified"))
    )
    assert d.episodes == () and d.medications == () and len(d.contacts) == 1
    pcp = "/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision"
    assert [w for c, w in problems if c == "PS-090"] == [
        f"{pcp}/component7/episodeOfCondition",
        f"{pcp}/component2/observation",  # the Alert about the withdrawn episode: no error, not read
        f"{pcp}/component1/encounter/component/Prescription",
    ]

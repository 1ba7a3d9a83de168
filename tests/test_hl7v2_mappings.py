"""HL7 v2 message mappings (docs/hl7v2.md): canonical -> v2 -> canonical for generated model objects,
the Dutch conventions on concrete values, and bad content reported with segment and field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import model as m
from mappings.hl7v2 import ack, datatypes, mdm, messages, oru, parse, parse_bytes, ref
from mappings.hl7v2.canonical import AdtMessage, ConsultParty, ConsultRequest, Hd, MessageHeader, RefMessage
from mappings.problems import InputError, Problem, ProblemSink, Severity
from tests.strategies import _measurement, patients, postbox_items, text

NOW = dt.datetime(2024, 3, 1, 12, 0, 0)


def _header(mtype: str, event: str, structure: str, charset: str = "UNICODE UTF-8") -> MessageHeader:
    return MessageHeader(
        message_type=mtype,
        trigger_event=event,
        message_structure=structure,
        control_id="C1",
        sending_application=Hd(namespace="HIS"),
        sending_facility=Hd(namespace="Praktijk"),
        receiving_application=Hd(namespace="ZIS"),
        receiving_facility=Hd(namespace="12345678"),
        timestamp=NOW,
        charset=charset,
    )


def _name_after_v2(n: m.PersonName | None) -> m.PersonName | None:
    """The documented loss: the name usage is carried by FN.1's order, so it exists only with a partner
    name."""
    if n is None:
        return None
    usage = None
    if n.partner_family:
        display = datatypes.name_display(n)
        own = " ".join(x for x in (n.prefix, n.family) if x)
        partner = " ".join(x for x in (n.partner_prefix, n.partner_family) if x)
        usage = {own: "NL1", partner: "NL2", f"{partner}-{own}": "NL3", f"{own}-{partner}": "NL4"}.get(
            display
        )
    return msgspec.structs.replace(n, usage=usage)


def _telecom_after_v2(ts: tuple[m.Telecom, ...]) -> tuple[m.Telecom, ...]:
    """Work numbers travel in PID-14 after the rest (PID-13); a mobile e-mail or fax has no XTN code
    (it comes back as home)."""

    def back(x: m.Telecom) -> m.Telecom:
        return msgspec.structs.replace(x, use="home") if x.use == "mobile" and x.system != "phone" else x

    return tuple(back(x) for x in ts if x.use != "work") + tuple(x for x in ts if x.use == "work")


def _patient_after_v2(p: m.Patient) -> m.Patient:
    a = p.address
    if a is not None and not any((a.street, a.house_number, a.postal_code, a.city, a.country)):
        a = None
    return msgspec.structs.replace(
        p,
        name=_name_after_v2(p.name),
        telecom=_telecom_after_v2(p.telecom),
        address=a,
        deregistered_date=None,
    )


def _wire(msg) -> bytes:
    """Through bytes, with \\n terminators (as many senders write them) to exercise the tokenizer."""
    return msg.to_bytes().replace(b"\r", b"\n")


@settings(max_examples=300, deadline=None)
@given(patients, st.sampled_from(["A04", "A08", "A28", "A31"]), st.sampled_from(["UNICODE UTF-8", "8859/15"]))
def test_adt_round_trip(patient, event, charset):
    a = AdtMessage(
        header=_header("ADT", event, messages.adt.EVENTS[event], charset), patient=patient, event_time=NOW
    )
    try:
        data = _wire(messages.write(a))
    except InputError as exc:  # a character outside ISO 8859-15 (ĳ, ş, Ł): refused on writing, never mangled
        assert charset == "8859/15" and exc.problems[0].code == "HL7-030"
        return
    back = messages.read(parse_bytes(data))
    assert back == msgspec.structs.replace(a, patient=_patient_after_v2(patient))


@settings(max_examples=300, deadline=None)
@given(
    patients,
    st.lists(st.integers(0, 10**6), max_size=6, unique=True).flatmap(
        lambda ids: st.tuples(*[_measurement(f"meas{i}") for i in ids])
    ),
)
def test_oru_round_trip(patient, measurements):
    o = oru.from_measurements(
        patient, measurements, sender=Hd(namespace="Praktijk"), control_id="C9", now=NOW
    )
    back = messages.read(parse_bytes(_wire(messages.write(o))))
    assert back == msgspec.structs.replace(o, patient=_patient_after_v2(patient))
    assert back.measurements == tuple(map(oru.lab_result, measurements))


@settings(max_examples=300, deadline=None)
@given(postbox_items())
def test_mdm_round_trip(item):
    d = mdm.from_postbox(item, control_id="C7", now=NOW)
    back = messages.read(parse_bytes(_wire(messages.write(d))))
    c = msgspec.structs.replace(item.correspondence, direction="in")
    expected = msgspec.structs.replace(
        item,
        correspondence=c,
        patient=msgspec.structs.replace(item.patient, name=_name_after_v2(item.patient.name)),
    )
    assert back.item == expected


_party = st.builds(
    ConsultParty,
    role=st.just("RT"),
    specialism=st.sampled_from(["Cardiologie", "Interne geneeskunde"]),
    organization=st.sampled_from(["Martini Ziekenhuis", "UMCG"]),
)


@settings(max_examples=200, deadline=None)
@given(patients, text, text, _party)
def test_ref_and_rri_round_trip(patient, question, answer, recipient):
    gp = ConsultParty(
        role="RP",
        professional=m.HealthProfessional(
            id="agb-01234567", agb="01234567", name=m.PersonName(family="Jansen", initials="A.")
        ),
    )
    r = RefMessage(
        header=_header("REF", "I12", "REF_I12"),
        consult=ConsultRequest(
            id="EC-1",
            patient=patient,
            requester=gp,
            recipient=recipient,
            question=question,
            priority="R",
            reason_code="K78",
            reason_system="ICPC1NL",
            reason_text="Hypertensie",
            effective=NOW,
        ),
    )
    back = messages.read(parse_bytes(_wire(messages.write(r))))
    assert back == msgspec.structs.replace(
        r, consult=msgspec.structs.replace(r.consult, patient=_patient_after_v2(patient))
    )
    reply = ref.reply_to(back, answer=answer, responder=recipient, control_id="R1", now=NOW)
    again = messages.read(parse_bytes(_wire(messages.write(reply))))
    assert again == reply and again.reply.in_reply_to == "C1" and again.reply.referral_id == "EC-1"


# --------------------------------------------------------------------------- Dutch conventions, concretely

ADT = (
    "MSH|^~\\&|ZIS|Martini|HISGW|12345678|20240301120000||ADT^A04^ADT_A01|M1|P|2.5|||||NLD|UNICODE UTF-8\r"
    "EVN|A04|20240301115900\r"
    "PID|1||123456782^^^NLMINBIZA^NNNLD~7654321^^^ZIS^PI||"
    "van den Berg-de Vries&van den&Berg&de&Vries^Jan Pieter^J.P."
    "^^Dr.^^L||19800101|F|||Dorpsstraat 12a&Dorpsstraat&12a^^Groningen^^9712 AB^NL^H||050-1234567^PRN^PH~"
    "06 12345678^PRN^CP~^NET^Internet^jan@example.nl|050-7654321^WPN^PH\r"
    "PV1|1|O\r"
)


def test_bsn_name_parts_and_partner_name_read_as_the_dutch_conventions_say():
    a = messages.read(parse(ADT))
    p = a.patient
    assert p.bsn == "123456782" and a.identifiers[0].value == "7654321" and a.identifiers[0].type == "PI"
    assert (p.name.prefix, p.name.family, p.name.partner_prefix, p.name.partner_family, p.name.usage) == (
        "van den",
        "Berg",
        "de",
        "Vries",
        "NL4",
    )
    assert (p.name.given, p.name.initials, p.name.title) == ("Jan Pieter", "J.P.", "Dr.")
    assert (p.address.street, p.address.house_number, p.address.postal_code) == (
        "Dorpsstraat",
        "12a",
        "9712 AB",
    )
    assert [(t.system, t.use) for t in p.telecom] == [
        ("phone", "home"),
        ("phone", "mobile"),
        ("email", None),
        ("phone", "work"),
    ]
    assert p.gender == "female" and p.birth_date == dt.date(1980, 1, 1)


@pytest.mark.parametrize(
    ("display", "usage"),
    [
        ("van den Berg", "NL1"),
        ("de Vries", "NL2"),
        ("de Vries-van den Berg", "NL3"),
        ("van den Berg-de Vries", "NL4"),
    ],
)
def test_name_usage_is_the_order_of_the_displayed_family_name(display, usage):
    a = messages.read(parse(ADT.replace("van den Berg-de Vries&", display + "&")))
    assert a.patient.name.usage == usage
    assert datatypes.name_display(a.patient.name) == display


def test_bsn_failing_the_eleven_test_is_an_error_naming_pid_3():
    with pytest.raises(InputError) as exc:
        messages.read(parse(ADT.replace("123456782^", "123456789^")))
    assert [(p.code, p.location) for p in exc.value.problems if p.severity.value == "error"] == [
        ("HL7-021", "PID-3.1")
    ]


def test_lenient_reading_collects_every_error_with_its_field():
    bad = (
        ADT.replace("123456782^", "123456789^")
        .replace("|19800101|", "|19801301|")
        .replace("ADT^A04", "ADT^A99")
    )
    with pytest.raises(InputError) as exc:
        messages.read(parse(bad))
    assert [(p.code, p.location) for p in exc.value.problems] == [("HL7-014", "MSH-9.2")]
    sink = ProblemSink()
    with pytest.raises(InputError):
        messages.read(parse(bad.replace("ADT^A99", "ADT^A08")), sink)
    assert [(p.code, p.location) for p in sink.problems if p.severity.value == "error"] == [
        ("HL7-021", "PID-3.1"),
        ("HL7-011", "PID-7"),
    ]


def test_strict_sink_stops_at_the_first_error():
    sink = ProblemSink(strict=True)
    with pytest.raises(InputError) as exc:
        messages.read(parse(ADT.replace("123456782^", "123456789^").replace("|19800101|", "|1980|")), sink)
    assert len(exc.value.problems) == 1 and exc.value.problems[0].code == "HL7-021"


def test_unread_fields_and_segments_are_reported_not_dropped_silently():
    sink = ProblemSink()
    messages.read(
        parse(ADT.replace("PV1|1|O\r", "PV1|1|O\rNK1|1|Berg^Piet\rZPI|x\r").replace("|F|||", "|F||W|")), sink
    )
    assert [(p.code, p.location) for p in sink.problems] == [
        ("HL7-054", "NK1"),
        ("HL7-054", "ZPI"),
        ("HL7-060", "PID"),
    ]


ORU = (
    "MSH|^~\\&|LAB|Certe|HISGW|12345678|20240301120000||ORU^R01^ORU_R01|L1|P|2.5.1\r"
    "PID|1||123456782^^^NLMINBIZA^NNNLD||Berg^Jan||19800101|M\r"
    "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\r"
    "OBX|1|NM|382^Glucose nuchter^NHG45||5.4|mmol/L^^UCUM|3.5-6.1|N|||F\r"
    "OBX|2|SN|1743^^NHG45||<^0.5|mg/L|<=5||||F|||20240301090000\r"
    "OBX|3|ST|1000^x^LN||positief||||||F\r"
    "OBX|4|TX|2000^^L^388^Opmerking^NHG45||regel 1~regel 2||||||C\r"
    "OBX|5|NM|390^^NHG45||12,5||||||F\r"
)


def test_oru_values_units_ranges_flags_any_code_system_and_status():
    sink = ProblemSink()
    with pytest.raises(InputError):
        messages.read(parse(ORU), sink)
    assert [(p.code, p.location) for p in sink.problems if p.code != "CODE-001"] == [("HL7-011", "OBX[5]-5")]
    o = messages.read(parse(ORU.replace("12,5", "12.5")), ProblemSink())
    first, second, third, fourth, fifth = o.measurements
    assert (
        first.code,
        first.value_quantity,
        first.unit,
        first.reference_low,
        first.reference_high,
        first.interpretation,
        first.effective,
    ) == ("382", Decimal("5.4"), "mmol/L", Decimal("3.5"), Decimal("6.1"), "N", dt.datetime(2024, 3, 1, 8, 0))
    assert (second.value_quantity, second.comparator, second.reference_high, second.effective) == (
        Decimal("0.5"),
        "<",
        Decimal("5"),
        dt.datetime(2024, 3, 1, 9, 0),
    )
    assert (third.code, third.system, third.text, third.value_text) == (
        "1000",
        "http://loinc.org",
        "x",
        "positief",
    )
    # the Tabel 45 coding is the code; the lab's own coding is kept beside it; C is a correction
    assert (fourth.code, fourth.system, fourth.value_text, fourth.status) == (
        "388",
        None,
        "regel 1\nregel 2",
        "corrected",
    )
    assert [(c.code, c.system) for c in fourth.codings] == [("2000", "urn:his-gateway:hl7v2:coding-system:L")]
    assert fifth.id == "L1-1-5" and fifth.value_quantity == Decimal("12.5")


def test_timestamp_with_offset_is_converted_to_amsterdam_wall_clock():
    o = messages.read(parse(ORU.replace("20240301080000", "20240301070000+0000").replace("12,5", "1")))
    assert o.orders[0].observed == dt.datetime(2024, 3, 1, 8, 0)


def test_unsupported_message_type_version_and_missing_segments():
    for change, code, loc in (
        (("ADT^A04", "QRY^A19"), "HL7-012", "MSH-9.1"),
        (("|2.5|", "|3.0|"), "HL7-013", "MSH-12"),
        (("PID|1||", "NK1|1||"), "HL7-015", "PID"),
        (("|M1|", "||"), "HL7-010", "MSH-10"),
    ):
        with pytest.raises(InputError) as exc:
            messages.read(parse(ADT.replace(*change)))
        errors = [(p.code, p.location) for p in exc.value.problems if p.severity is Severity.ERROR]
        assert errors == [(code, loc)]


_ITEM = m.PostboxItem(
    id="pb1",
    kind="consult-answer",
    created=NOW,
    practice_agb="12345678",
    patient=m.PatientMatch(bsn="123456782", birth_date=dt.date(1980, 1, 1), sender_reference="Z1"),
    correspondence=m.Correspondence(
        id="brief1",
        date=NOW,
        direction="in",
        text="Geachte collega,\nAdvies: ...",
        kind="1",
        sender_name="Dr. A. de Vries",
        sender_discipline="cardiologie",
    ),
    filing=m.AutoFiling(
        episode_id="ep1",
        journal_entry=m.JournalEntry(
            date=NOW,
            episode_id="ep1",
            icpc="K78",
            lines=(
                m.SoepLine(type="E", text="AF", icpc="K78"),
                m.SoepLine(type="P", text="advies cardioloog"),
            ),
        ),
    ),
)


def test_mdm_without_filing_waits_for_manual_filing_and_refuses_unfinished_documents():
    item = msgspec.structs.replace(_ITEM, filing=None, manual_reason="episode unknown")
    d = mdm.from_postbox(item, control_id="X", now=NOW)
    text = str(messages.write(d))
    assert messages.read(parse(text)).item.manual_reason == "episode unknown"
    stripped = "".join(s + "\r" for s in text.split("\r") if s and "MANUAL-REASON" not in s)
    assert messages.read(parse(stripped)).item.manual_reason == mdm.NO_FILING
    with pytest.raises(InputError) as exc:
        messages.read(parse(text.replace("|AU|", "|IP|")))
    assert exc.value.problems[0].code == "HL7-058" and exc.value.problems[0].location == "TXA-17"


def test_ack_in_original_mode_names_segment_and_field_in_err():
    sink = ProblemSink()
    with pytest.raises(InputError):
        messages.read(parse(ADT.replace("123456782^", "123456789^")), sink)
    msg = ack.build_ack(parse(ADT).msh, "AE", sink.problems, control_id="A1", now=NOW)
    back = messages.read(parse(str(msg)))
    assert (back.code, back.control_id, back.header.message_type, back.header.trigger_event) == (
        "AE",
        "M1",
        "ACK",
        "A04",
    )
    assert [(e.code, e.location, e.hl7_code, e.severity) for e in back.errors] == [
        ("HL7-021", "PID-3.1", "102", "error")
    ]
    assert msg.segment("ERR").get(2, 1) == "PID" and msg.segment("ERR").get(2, 3) == "3"
    assert (back.header.receiving_application.namespace, back.header.sending_facility.namespace) == (
        "ZIS",
        "12345678",
    )


def test_ack_for_v23_uses_err_1():
    problem = Problem(Severity.ERROR, "HL7-010", "PID-7", "PID-7 date of birth is required")
    msg = ack.build_ack(parse(ADT.replace("|2.5|", "|2.3|")).msh, "AE", [problem], control_id="A1", now=NOW)
    err = msg.segment("ERR")
    assert (err.get(1, 1), err.get(1, 3), err.get(1, 4, 1)) == ("PID", "7", "101")

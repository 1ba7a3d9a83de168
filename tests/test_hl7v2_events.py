"""The HL7 v2 events of issue 13 (ADT A01-A13/A28/A31/A40, ORU^R30, MDM T01-T11, ORM^O01, OML^O21,
SIU^S12-S15) and the tolerance for how senders really send them: accepted by the MLLP listener over a real
loopback socket (AA), converted by ``hisgw convert`` from an MLLP-framed file in an FHS without BHS, what
each event means in FHIR, and the refusals that name what is missing. The round trips of every case are
in ``tests/test_hl7v2_golden.py``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.mllp import MessageStore, MllpClient
from gateway.mllp.handler import decide
from mappings.hl7v2 import fhir, messages
from mappings.hl7v2.canonical import AdtMessage, MdmMessage, OrderMessage, SiuMessage
from mappings.hl7v2.er7 import parse
from mappings.problems import InputError, ProblemSink, Severity
from tests.golden_util import GOLDEN
from tests.test_mllp import listening, msa

AREA = GOLDEN / "hl7v2"
NEW_TYPES = [
    *(f"adt-a{n:02d}" for n in (1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13, 40)),
    "oru-r30",
    *(f"mdm-t{n:02d}" for n in (1, 3, 4, 5, 6, 7, 8, 9, 10, 11)),
    "orm-o01",
    "oml-o21",
    *(f"siu-s{n}" for n in range(12, 16)),
]
CASES = sorted(p for t in NEW_TYPES for p in (AREA / t).iterdir() if p.is_dir())


def _case(folder: str, name: str) -> bytes:
    return (AREA / folder / name / "message.hl7").read_bytes()


def _bundle(folder: str, name: str) -> dict:
    return json.loads((AREA / folder / name / "fhir.json").read_bytes())


def _resources(bundle: dict, rtype: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def _errors(text: str) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as exc:
        messages.read(parse(text), accepted=messages.INBOUND)
    return [(p.code, p.location) for p in exc.value.problems if p.severity is Severity.ERROR]


def test_every_new_event_has_six_golden_cases_and_is_accepted_inbound():
    for t in NEW_TYPES:
        assert len([p for p in (AREA / t).iterdir() if p.is_dir()]) >= 6, t
        mtype, event = t.split("-")
        assert f"{mtype.upper()}^{event.upper()}" in messages.INBOUND


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_listener_decides_aa_for_every_case_and_keeps_its_warnings(case: Path):
    d = decide((case / "message.hl7").read_bytes())
    assert d.code == "AA" and d.record is not None
    expected = [w for w in (case / "warnings.txt").read_text().split("\n") if w]
    assert [p.render_line() for p in d.problems] == expected


def test_one_of_each_type_over_a_real_loopback_connection(tmp_path: Path):
    firsts = [sorted(p for p in (AREA / t).iterdir() if p.is_dir())[0] for t in NEW_TYPES]
    data = [(c / "message.hl7").read_bytes() for c in firsts]
    store = MessageStore(f"sqlite:///{tmp_path / 'mllp.db'}")

    async def run() -> list[bytes]:
        async with listening(store) as (_, host, port), await MllpClient.connect(host, port) as c:
            return await c.send_many(data, window=8)

    try:
        acks = asyncio.run(run())
        assert [msa(a)[0] for a in acks] == ["AA"] * len(data)
        assert [msa(a)[1] for a in acks] == [parse(d.decode("latin-1")).msh.get(10) for d in data]
        assert store.count() == len(data)
    finally:
        store.close()


def test_cli_converts_an_mllp_framed_file_in_an_fhs_without_bhs(tmp_path: Path):
    framed = b"".join(b"\x0b" + (c / "message.hl7").read_bytes() + b"\x1c\r" for c in CASES)
    src = tmp_path / "captured.hl7"
    src.write_bytes(b"FHS|^~\\&|ZIS|Martini\r" + framed + b"FTS|%d\r" % len(CASES))
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "convert", str(src), "--from", "hl7v2", "--to", "fhir"],
        capture_output=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    lines = out.stdout.splitlines()
    assert [json.loads(x) for x in lines] == [json.loads((c / "fhir.json").read_bytes()) for c in CASES]


# --------------------------------------------------------------------------- what each event means in FHIR


@pytest.mark.parametrize(
    ("folder", "status"),
    [
        ("adt-a01", "in-progress"),
        ("adt-a02", "in-progress"),
        ("adt-a03", "finished"),
        ("adt-a05", "planned"),
        ("adt-a10", "arrived"),
        ("adt-a11", "cancelled"),
        ("adt-a13", "in-progress"),
    ],
)
def test_the_adt_event_sets_the_encounter_status(folder: str, status: str):
    case = sorted(p for p in (AREA / folder).iterdir() if p.is_dir())[0]
    obj = messages.read_bytes((case / "message.hl7").read_bytes())
    (enc,) = _resources(fhir.to_fhir(obj), "Encounter")
    assert enc["status"] == status


def test_a_transfer_names_the_new_and_the_prior_location():
    b = _bundle("adt-a02", "transfer-new-location-and-prior-location")
    (enc,) = _resources(b, "Encounter")
    places = {x["id"]: x["name"] for x in _resources(b, "Location")}
    got = [
        (x["status"], places[x["location"]["reference"].removeprefix("urn:uuid:")]) for x in enc["location"]
    ]
    assert got == [("active", "IC 3 2 Martini"), ("completed", "CAR 201 1 Martini")]


def test_a40_merge_keeps_the_prior_record_linked_both_ways():
    obj = messages.read_bytes(_case("adt-a40", "two-prior-identifiers-account-and-visit-number"))
    assert isinstance(obj, AdtMessage) and obj.merged is not None
    assert [i.value for i in obj.merged.identifiers] == ["4712", "4713"]
    survivor, prior = _resources(fhir.to_fhir(obj), "Patient")
    assert prior["active"] is False and [i["value"] for i in prior["identifier"]] == ["4712", "4713"]
    assert survivor["link"] == [{"other": {"reference": f"urn:uuid:{prior['id']}"}, "type": "replaces"}]
    assert prior["link"] == [{"other": {"reference": f"urn:uuid:{survivor['id']}"}, "type": "replaced-by"}]


def test_mdm_notices_carry_no_content_and_keep_status_parent_and_availability():
    obj = messages.read_bytes(_case("mdm-t09", "replacement-notification-old-document-obsolete"))
    assert isinstance(obj, MdmMessage)
    assert (obj.parent_document, obj.completion_status, obj.availability) == ("fb-1", None, "OB")
    assert obj.item.correspondence.text == ""
    assert [s.fields[0] for s in messages.write(obj).segments] == ["MSH", "EVN", "PID", "PV1", "TXA"]
    status = messages.read_bytes(_case("mdm-t03", "status-change-to-legally-authenticated"))
    assert isinstance(status, MdmMessage) and status.completion_status == "LA"


def test_orders_become_service_requests_with_their_status_from_orc():
    b = _bundle("orm-o01", "cancel-order-control-ca-revokes-the-request")
    (sr,) = _resources(b, "ServiceRequest")
    assert (sr["status"], sr["intent"]) == ("revoked", "order")
    assert [(i["type"]["coding"][0]["code"], i["value"]) for i in sr["identifier"]] == [
        ("PLAC", "ORD-2"),
        ("FILL", "F-2"),
    ]
    lab = _bundle("oml-o21", "lab-order-glucose-loinc-with-timing-in-tq1")
    (sr,) = _resources(lab, "ServiceRequest")
    assert sr["code"]["coding"][0]["system"] == "http://loinc.org" and sr["priority"] == "routine"
    assert sr["occurrenceDateTime"] == "2024-03-02T08:00:00+01:00"
    two = messages.read_bytes(_case("orm-o01", "two-orders-in-one-group"))
    assert isinstance(two, OrderMessage) and [o.placer_number for o in two.orders] == ["ORD-5A", "ORD-5B"]


def test_a_video_consult_is_an_appointment_and_s15_cancels_it():
    b = _bundle("siu-s12", "video-consult-booked-with-the-gp")
    (appt,) = _resources(b, "Appointment")
    assert appt["status"] == "booked" and appt["serviceType"][0]["coding"][0]["code"] == "VIDEO"
    assert appt["start"] == "2024-03-05T09:15:00+01:00" and appt["minutesDuration"] == 15
    assert [p["actor"]["reference"] for p in appt["participant"]] == [
        "urn:uuid:" + _resources(b, "Patient")[0]["id"],
        "urn:uuid:" + _resources(b, "Practitioner")[0]["id"],
    ]
    (cancelled,) = _resources(_bundle("siu-s15", "cancelled-without-filler-status"), "Appointment")
    assert cancelled["status"] == "cancelled"
    (pending,) = _resources(_bundle("siu-s12", "notes-for-the-patient-and-pending-status"), "Appointment")
    assert pending["status"] == "pending" and pending["comment"].count("\n") == 1
    blocked = messages.read_bytes(_case("siu-s12", "no-patient-a-blocked-slot"))
    assert isinstance(blocked, SiuMessage) and blocked.patient is None


# --------------------------------------------------------------------------- versions and refusals

MSH = "MSH|^~\\&|ZIS|Martini|HISGW|01234567|20240301120000||{type}|C1|P|{version}\r"
PID = "PID|1||123456782^^^NLMINBIZA^NNNLD||Berg^Jan^J.^^^^L||19800101|M\r"


@pytest.mark.parametrize("version", ["2.1", "2.2", "2.3.1", "2.8.2"])
def test_versions_2_1_to_2_8_are_read_where_the_structure_allows(version: str):
    text = MSH.format(type="ADT^A01", version=version) + "EVN|A01|20240301115900\r" + PID + "PV1|1|I|CAR\r"
    obj = messages.read(parse(text), accepted=messages.INBOUND)
    assert isinstance(obj, AdtMessage) and obj.visit is not None and obj.header.version == version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MSH.format(type="ADT^A40^ADT_A39", version="2.5") + "EVN|A40|20240301\r" + PID,
            [("HL7-015", "MRG")],
        ),
        (
            MSH.format(type="ADT^A40^ADT_A39", version="2.5") + PID + "MRG|1^^^ZIS^PI\r" + PID,
            [("HL7-017", "PID[2]")],
        ),
        (MSH.format(type="ADT^A40", version="2.5") + PID + "MRG|\r", [("HL7-010", "MRG-1")]),
        (MSH.format(type="ADT^A14", version="2.5") + PID, [("HL7-014", "MSH-9.2")]),
        (MSH.format(type="ADT^A01", version="3.0") + PID, [("HL7-013", "MSH-12")]),
        (MSH.format(type="ORM^O01", version="2.4") + "ORC|NW|1\r", [("HL7-015", "PID")]),
        (MSH.format(type="OML^O21", version="2.5") + PID, [("HL7-015", "ORC")]),
        (MSH.format(type="ORM^O01", version="2.4") + PID + "ORC||1\r", [("HL7-010", "ORC-1")]),
        (MSH.format(type="SIU^S12", version="2.5") + PID, [("HL7-015", "SCH")]),
        (MSH.format(type="SIU^S12", version="2.5") + "SCH|||||||x\r", [("HL7-010", "SCH-2")]),
        (
            MSH.format(type="SIU^S14", version="2.5") + "SCH|A1\rRGS|1\rAIP|1|A\r",
            [("HL7-010", "AIP-3")],
        ),
        (MSH.format(type="SIU^S16", version="2.5") + "SCH|A1\r", [("HL7-014", "MSH-9.2")]),
        (
            MSH.format(type="ADT^A40", version="2.5") + PID + "MRG|1^^^ZIS^PI|2^^^ZIS^AN\r",
            [("HL7-053", "MRG-2")],
        ),
        (MSH.format(type="ORM^O01", version="2.4") + PID + "ORC|NW|1||||||P-0\r", [("HL7-053", "ORC-8")]),
        (MSH.format(type="SIU^S12", version="2.5") + "SCH|A1|||G-1\r", [("HL7-053", "SCH-4")]),
    ],
)
def test_refusals_name_what_is_missing(text: str, expected: list[tuple[str, str]]):
    assert _errors(text) == expected


def test_fields_not_mapped_by_design_are_listed_once_per_segment_as_information():
    text = (
        MSH.format(type="SIU^S12", version="2.5")
        + "SCH|A1||||||||||^^^20240305091500|Jansen^Anna|^WPN^PH^^^050^1234567\r"
        + PID
        + "PV1|1|O\rPV2|||R07^Pijn^ICPC1NL|||||||||Bezoek\rRGS|1|A\rAIS|1|A|VIDEO^Video^HISGW||15|min\r"
    )
    sink = ProblemSink()
    obj = messages.read(parse(text), sink, accepted=messages.INBOUND)
    assert isinstance(obj, SiuMessage) and obj.visit is not None and obj.visit.admit_reason == "R07"
    assert [(p.code, p.location, p.message) for p in sink.problems] == [
        ("HL7-060", "RGS", "not mapped by design: RGS-2"),
        ("HL7-060", "AIS", "not mapped by design: AIS-5, AIS-6"),
        ("HL7-060", "SCH", "not mapped by design: SCH-12, SCH-13"),
        ("HL7-060", "PV2", "not mapped by design: PV2-12"),
    ]


def test_an_insurer_without_a_uzovi_code_is_kept_and_no_longer_refuses_the_adt():
    obj = messages.read_bytes(_case("adt-a01", "foreign-insurer-without-uzovi-kept-as-another-insurer"))
    assert isinstance(obj, AdtMessage) and obj.patient.insurance is None and obj.other_insurance is not None
    assert (obj.other_insurance.insurer_id, obj.other_insurance.policy_number) == (
        "DE-104940005",
        "A123456789",
    )
    (cov,) = _resources(fhir.to_fhir(obj), "Coverage")
    assert cov["payor"] == [
        {"type": "Organization", "identifier": {"value": "DE-104940005"}, "display": "AOK Nordost"}
    ]
    # the IG's ADT_A01 test message (IN1-3 empty): whatever else it is refused for, not for its IN1
    ig = Path(__file__).parent / "corpus" / "hl7v2" / "v2-to-fhir-ig" / "adt-a01-adt-a01-test-conversions.hl7"
    sink = ProblemSink()
    with pytest.raises(InputError):
        messages.read(parse(ig.read_bytes().decode("utf-8")), sink)
    in1 = [p for p in sink.problems if p.location.startswith("IN1")]
    assert "HL7-065" in [p.code for p in in1] and all(p.severity is not Severity.ERROR for p in in1)

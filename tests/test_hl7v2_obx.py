"""OBX in full (issue 13): any coding system, every value type, every status, ids by position.

Acceptance 2 is :func:`test_generated_reports_one_observation_per_obx_unique_ids_and_a_status_each`:
generated ORU^R01 messages with random value types, code systems, statuses and repeated set ids
(OBX-1 and OBR-1) give exactly one Observation per OBX, unique ids, and for every OBX-11 the status of
HL7 table 0085; the Bundle reads back to the same canonical message (v2 -> FHIR -> v2 holds).
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import model as m
from mappings import units
from mappings.fhir.common import dumps
from mappings.hl7v2 import fast, fhir, messages, vocab
from mappings.hl7v2.er7 import parse, parse_bytes
from mappings.problems import ProblemSink

HEAD = (
    "MSH|^~\\&|LABSYS|Certe|HISGW|01234567|20240301120000+0100||ORU^R01^ORU_R01|GEN-1|P|2.5.1\r"
    "PID|1||123456782^^^NLMINBIZA^NNNLD||Berg^Jan^J.^^^^L||19800101|M\r"
)
STATUS = {"F": "final", "C": "corrected", "P": "preliminary", "X": "cancelled", "D": "entered-in-error",
          "R": "preliminary", "S": "preliminary", "I": "registered", "W": "entered-in-error", "U": "final",
          "": "final"}  # fmt: skip
CODES = st.sampled_from(
    [
        ("3208^glucose^NHG45", None),
        ("2345-7^Glucose [Mass/volume] in Serum^LN", "http://loinc.org"),
        ("271649006^Systolic blood pressure^SCT", "http://snomed.info/sct"),
        ("GLU^Glucose^99CERTE", "urn:his-gateway:hl7v2:coding-system:99CERTE"),
        ("K^Kalium", "urn:his-gateway:hl7v2:local:LABSYS/Certe"),
        ("GLU^Glucose^L^2345-7^Glucose^LN", "urn:his-gateway:hl7v2:coding-system:L"),
    ]
)
VALUES = st.sampled_from(
    [
        ("NM", "5.4", lambda o: o["valueQuantity"]["value"] == 5.4),
        ("SN", "<^0.5", lambda o: o["valueQuantity"]["comparator"] == "<"),
        ("SN", "^2^-^5", lambda o: o["valueRange"]["high"]["value"] == 5),
        ("SN", "^1^:^128", lambda o: o["valueRatio"]["denominator"]["value"] == 128),
        ("ST", "positief", lambda o: o["valueString"] == "positief"),
        ("TX", "regel 1~regel 2", lambda o: o["valueString"] == "regel 1\nregel 2"),
        ("FT", "a\\.br\\b", lambda o: o["valueString"] == "a\nb"),
        (
            "CWE",
            "10828004^Positive^SCT",
            lambda o: o["valueCodeableConcept"]["coding"][0]["code"] == "10828004",
        ),
        ("CE", "POS^positief^L", lambda o: o["valueCodeableConcept"]["coding"][0]["display"] == "positief"),
        ("DT", "20240301", lambda o: o["valueDateTime"] == "2024-03-01"),
        ("DTM", "202403", lambda o: o["valueDateTime"] == "2024-03"),
        ("TM", "1020", lambda o: o["valueTime"] == "10:20:00"),
        ("ED", "^AP^PDF^Base64^SGVsbG8=", lambda o: "SGVsbG8=" in json.dumps(o["extension"])),
        (
            "RP",
            "https://lab.example/r/1^LAB^IMAGE^JPEG",
            lambda o: "lab.example" in json.dumps(o["extension"]),
        ),
        ("NM", "", lambda o: not any(k.startswith("value") for k in o)),
    ]
)
OBX = st.tuples(
    st.sampled_from(["1", "2", "1", ""]),  # OBX-1: repeated set ids
    CODES,
    VALUES,
    st.sampled_from(["", "mmol/L", "mg/dL^^UCUM", "mmHg", "x10E9/L"]),
    st.sampled_from(["", "3.5-6.1", "<5", "negatief"]),
    st.sampled_from(["", "H", "LL", "POS", "<"]),
    st.sampled_from(sorted(STATUS)),
    st.sampled_from(["", "20240301", "20240301093000", "20240301093000+0000"]),
    st.booleans(),  # a note after it
)


def _message(orders: list[tuple[str, list]]) -> str:
    out = HEAD
    for obr_id, obxs in orders:
        out += f"OBR|{obr_id}|P1|F1|LAB^Lab^L|||20240301080000\r"
        for set_id, (code, _), (vtype, value, _), unit, rng, flag, status, time, note in obxs:
            out += f"OBX|{set_id}|{vtype}|{code}||{value}|{unit}|{rng}|{flag}|||{status}|||{time}\r"
            if note:
                out += "NTE|1|L|opmerking van het lab\r"
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["1", "1", "2"]), st.lists(OBX, min_size=1, max_size=6)),
        min_size=1,
        max_size=3,
    )
)
def test_generated_reports_one_observation_per_obx_unique_ids_and_a_status_each(orders):
    text = _message(orders)
    bundle = json.loads(fast.oru_bytes(text.encode()))
    resources = [e["resource"] for e in bundle["entry"]]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    sent = [x for _, obxs in orders for x in obxs]
    assert len(observations) == len(sent)
    assert len({o["id"] for o in observations}) == len(observations)
    assert len({o["identifier"][0]["value"] for o in observations}) == len(observations)
    reports = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    results = [ref["reference"] for r in reports for ref in r.get("result", [])]
    assert results == ["urn:uuid:" + o["id"] for o in observations]  # in message order, each once
    for o, (_, (_, system), (_, _, check), unit, _, flag, status, _, note) in zip(
        observations, sent, strict=True
    ):
        assert o["status"] == STATUS[status]
        assert o["code"]["coding"][0]["system"] == (system or vocab.TABEL45_URI)
        assert check(o)
        assert ("note" in o) is note
        if flag:
            assert o["interpretation"][0]["coding"][0]["code"] == flag
        q = o.get("valueQuantity")
        if q and unit:
            assert (q.get("system") == "http://unitsofmeasure.org") is units.is_ucum(unit.split("^")[0])
    # v2 -> FHIR -> canonical -> v2 -> canonical: nothing lost either way
    canonical = messages.read(parse(text))
    assert fast.oru_bytes(text.encode()) == dumps(fhir.to_fhir(canonical))  # one mapping, both routes
    back = fhir.from_fhir(bundle)
    assert [x for x in back.measurements] == [x for x in canonical.measurements], text
    assert back == canonical
    assert messages.read(messages.write(canonical)) == canonical


def test_the_interpretation_table_and_the_model_agree():
    assert set(units.interpretations()) == set(typing.get_args(m.Interpretation))


def test_date_only_time_stays_a_date_and_unzoned_values_keep_their_day():
    text = HEAD + "OBR|1|P1|F1|LAB^Lab^L|||20240301\rOBX|1|NM|2345-7^Glucose^LN||5|mmol/L\r"
    bundle = json.loads(fast.oru_bytes(text.encode()))
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert obs["effectiveDateTime"] == "2024-03-01"
    report = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert report["effectiveDateTime"].startswith("2024-03-01")


def test_two_obx_with_one_set_id_and_two_obr_1_stay_apart():
    text = (
        HEAD
        + "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\rOBX|1|NM|2345-7^^LN||5\rOBX|1|NM|2345-7^^LN||6\r"
        + "OBR|1|P2|F2|LAB^Lab^L|||20240301080000\rOBX|1|NM|2345-7^^LN||7\r"
    )
    o = messages.read(parse(text))
    assert [x.id for x in o.measurements] == ["GEN-1-1-1", "GEN-1-1-2", "GEN-1-2-1"]
    assert [x.value_quantity for x in o.measurements] == [Decimal(5), Decimal(6), Decimal(7)]


def test_a_result_that_cannot_be_kept_whole_refuses_the_message():
    for line, code in (
        ("OBX|1|XYZ|2345-7^^LN||5", "HL7-061"),
        ("OBX|1|NM|2345-7^^LN||5||||||Q", "HL7-062"),
        ("OBX|1|NM|2345-7^^LN||5|||ZZ", "HL7-063"),
        ("OBX|1|NM|2345-7^^LN||5||||||F" + "|" * 23 + "x", "HL7-053"),
    ):
        sink = ProblemSink()
        text = HEAD + "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\r" + line + "\r"
        try:
            messages.read(parse_bytes(text.encode()), sink)
        except Exception:
            pass
        assert code in {p.code for p in sink.problems if p.severity.value == "error"}, (line, sink.problems)


def test_fields_not_mapped_by_design_are_listed_as_information():
    text = HEAD + "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\rOBX|1|NM|2345-7^^LN||5||||||F||||||MTH1\r"
    sink = ProblemSink()
    messages.read(parse(text), sink)
    assert [(p.severity.value, p.code, p.message) for p in sink.problems] == [
        ("information", "HL7-060", "not mapped by design: OBX-17")
    ]


def test_observation_time_of_a_date_keeps_the_precision_through_v2():
    text = HEAD + "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\rOBX|1|NM|2345-7^^LN||5||||||F|||20240229\r"
    x = messages.read(parse(text)).measurements[0]
    assert (x.effective, x.precision) == (dt.datetime(2024, 2, 29), "day")
    again = messages.read(messages.write(messages.read(parse(text)))).measurements[0]
    assert (again.effective, again.precision) == (x.effective, x.precision)


def test_an_unzoned_time_takes_the_offset_of_msh_7_else_amsterdam():
    body = "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\rOBX|1|NM|2345-7^^LN||5||||||F|||20240301093000\r"
    zoned = HEAD.replace("20240301120000+0100", "20240301120000-0500") + body
    plain = HEAD.replace("20240301120000+0100", "20240301120000") + body
    for route in (
        lambda t: json.loads(fast.oru_bytes(t.encode())),
        lambda t: fhir.to_fhir(messages.read(parse(t))),
    ):
        got = {}
        for name, text in (("zoned", zoned), ("plain", plain), ("zoned again", zoned)):
            bundle = route(text)
            obs = next(
                e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
            )
            got[name] = obs["effectiveDateTime"]
        # 09:30 at -05:00 is 15:30 in Amsterdam (+01:00 on 1 March); without an offset it is Amsterdam time
        assert got == {
            "zoned": "2024-03-01T15:30:00+01:00",
            "plain": "2024-03-01T09:30:00+01:00",
            "zoned again": "2024-03-01T15:30:00+01:00",
        }


def test_one_path_the_listener_and_the_command_line_map_by_the_lean_path(monkeypatch, tmp_path):
    from gateway.mllp import handler
    from mappings.hl7v2.format import FHIR_MESSAGES, FORMAT

    lean = []
    original = fast._lean_obx

    def counted(*args):
        res = original(*args)
        lean.append(res is not None)
        return res

    monkeypatch.setattr(fast, "_lean_obx", counted)
    text = (
        HEAD
        + "OBR|1|P1|F1|LAB^Lab^L|||20240301080000\r"
        + "OBX|1|NM|2345-7^^LN||5|mmol/L|||||F\rOBX|2|CWE|2345-7^^LN||POS^pos^L||||||P\r"
    ).encode()
    decision = handler.decide(text)
    assert decision.code == "AA" and decision.record is not None and decision.record.bsns == ("123456782",)
    assert lean and all(lean)
    lean.clear()
    reader, writer = FORMAT.message_pairs[("hl7v2", "fhir")]
    out = tmp_path / "out.ndjson"
    with (tmp_path / "in.hl7").open("wb") as fh:
        fh.write(text)
    with (tmp_path / "in.hl7").open("rb") as src, out.open("wb") as dst:
        assert writer is FHIR_MESSAGES and writer.write_many(reader.iter_read(src), dst) == 1
    assert lean and all(lean)
    assert out.read_bytes() == dumps(fhir.to_fhir(messages.read(parse_bytes(text)))) + b"\n"

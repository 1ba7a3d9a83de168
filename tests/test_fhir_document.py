"""The real NHG professional summary as a FHIR R4 document Bundle, compared with Nictiz's own STU3 conversion.

Input: the HL7v3 ``QUPC_IN990002NL`` instance Nictiz publishes (``tests/data/external/
nictiz-huisartswaarneming``), read by ``adapters.ps_hl7v3``. The document is made twice: of the whole
message (what Nictiz converted) and of the summary :func:`mappings.summary.build_summary` selects on the
message's date, 2017-06-21. Both must be valid R4 (fhir.resources R4B and the inbound validator), hold the
resources the dossier has, and read back to the same dossier.

Nictiz's STU3 Bundle (``QUPC_IN990002NL_01.fhir-stu3.xml``, parsed with the project's one XML parser) is
the second opinion: same BSN, same ICPC codes, same measurement values and dates, same journal texts, same
prescriptions. What differs is listed in ``docs/fhir-mapping.md`` §6 and pinned here in
:data:`EXPECTED_DIFFERENCES`: a new difference, or one that went away, fails the test.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal

import msgspec
import orjson
import pytest
from lxml import etree

from adapters.ps_hl7v3 import FORMAT as PS
from adapters.xmlsafe import parse_xml
from mappings import model as m
from mappings.fhir import bundle, codes
from mappings.fhir.common import dumps
from mappings.fhir.document import summary_document
from mappings.fhir.r4b import validate_with_models
from mappings.fhir.validator import validate
from mappings.problems import ProblemSink
from mappings.summary import build_summary, status_as_of, without_shielded
from tests.conftest import EXTERNAL
from tests.golden_util import GOLDEN, canonical_pretty, check_or_write

HL7V3 = EXTERNAL / "QUPC_IN990002NL_01.hl7v3.xml"
NICTIZ = EXTERNAL / "QUPC_IN990002NL_01.fhir-stu3.xml"
AS_OF = dt.date(2017, 6, 21)
GOLDEN_CASE = GOLDEN / "fhir" / "summary-document-real-ps"
F = "{http://hl7.org/fhir}"
DECODE = msgspec.json.Decoder(float_hook=Decimal).decode


@pytest.fixture(scope="module")
def dossier() -> m.Dossier:
    return PS.read(HL7V3.read_bytes(), source=HL7V3.name, sink=ProblemSink())


@pytest.fixture(scope="module")
def summary(dossier: m.Dossier) -> m.Dossier:
    return build_summary(dossier, as_of=AS_OF, sink=ProblemSink(), source=HL7V3.name)


def counts(doc: dict) -> Counter:
    """Resources per type; Observations split into SOEP lines and measurements, Flags by profile."""
    out: Counter = Counter()
    for e in doc["entry"][1:]:
        r = e["resource"]
        kind = r["resourceType"]
        if kind == "Observation":
            kind += " SOEP line" if codes.P_SOAP_LINE in r["meta"]["profile"] else " measurement"
        elif kind in ("Flag", "Composition"):
            kind += " " + r["meta"]["profile"][0].rsplit("/", 1)[1]
        out[kind] += 1
    return out


def check_document(doc: dict, d: m.Dossier) -> None:
    raw = dumps(doc)
    assert validate(raw) == []
    validate_with_models(orjson.loads(raw))
    # the document gives every prescription its status on the reference date, and holds nothing shielded
    assert bundle.from_fhir(DECODE(raw), ProblemSink(strict=True)) == status_as_of(without_shielded(d), AS_OF)
    comp = doc["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition" and comp["type"]["coding"][0]["code"] == "67781-5"
    referenced = {ref["reference"] for s in comp["section"] for ref in s.get("entry", [])}
    assert referenced == {e["fullUrl"] for e in doc["entry"][1:]}
    for s in comp["section"]:
        assert "".join(parse_xml(s["text"]["div"].encode("utf-8"), "narrative").getroot().itertext()).strip()


def test_the_whole_message_as_a_document(dossier: m.Dossier):
    doc = summary_document(dossier, as_of=AS_OF)
    check_document(doc, dossier)
    assert counts(doc) == Counter(
        {
            "Patient": 1,
            "Organization": 2,
            "Practitioner": 2,
            "PractitionerRole": 2,
            "EpisodeOfCare": 6,
            "Condition": 6,
            "Flag nl-core-Alert": 3,  # 2 episodes with attention + 1 note
            "Encounter": 13,
            "Composition nl-core-SOAPReport": 13,
            "Observation SOEP line": 42,
            "MedicationRequest": 2,
            "Observation measurement": 7,
            "Flag nl-core-MedicationContraIndication": 2,
            "AllergyIntolerance": 1,
        }
    )


def test_the_selected_summary_as_a_document(summary: m.Dossier):
    doc = summary_document(summary, as_of=AS_OF)
    check_document(doc, summary)
    # the 4-month journal window (2017-02-21 < start <= 2017-06-21) leaves out contacts 5847 and 101, the
    # 2004 prescriptions are not current, and of the two temperature measurements (1915) the latest stays
    assert counts(doc) == Counter(
        {
            "Patient": 1,
            "Organization": 1,
            "Practitioner": 1,
            "PractitionerRole": 1,
            "EpisodeOfCare": 6,
            "Condition": 6,
            "Flag nl-core-Alert": 3,
            "Encounter": 11,
            "Composition nl-core-SOAPReport": 11,
            "Observation SOEP line": 37,
            "Observation measurement": 6,
            "Flag nl-core-MedicationContraIndication": 2,
            "AllergyIntolerance": 1,
        }
    )
    sections = [s["title"] for s in doc["entry"][0]["resource"]["section"]]
    assert sections == [
        "Patiënt en huisarts",
        "Episodes",
        "Journaal",
        "Medicatie",
        "Metingen en uitslagen",
        "Contra-indicaties",
        "Intoleranties en allergieën",
        "Attentiepunten",
    ]


def test_golden_summary_document(summary: m.Dossier):
    """The golden case: the selected summary and its document, both reviewed."""
    check_or_write(GOLDEN_CASE / "canonical.json", canonical_pretty(summary))
    d = m.from_json((GOLDEN_CASE / "canonical.json").read_bytes())
    check_or_write(GOLDEN_CASE / "fhir.json", dumps(summary_document(d, as_of=AS_OF), pretty=True) + b"\n")
    assert bundle.from_fhir(DECODE((GOLDEN_CASE / "fhir.json").read_bytes())) == d


# --------------------------------------------------------------------------- against Nictiz's STU3 conversion


def _v(el: etree._Element | None, path: str) -> str | None:
    x = el.find(path.replace("f:", F)) if el is not None else None
    return None if x is None else x.get("value")


def _words(text: str) -> str:
    return " ".join(text.split())


def _local(value: str) -> str:
    """The local id at the end of a Nictiz ``urn:oid:<root>.<id>`` fullUrl."""
    return value.rsplit(".", 1)[1]


def nictiz_facts() -> dict:
    """What Nictiz's STU3 conversion says, in the shape :func:`gateway_facts` gives ours."""
    root = parse_xml(NICTIZ.read_bytes(), NICTIZ.name).getroot()
    resources = {}
    facts: dict = {
        "types": Counter(),
        "bsn": set(),
        "episodes": {},
        "attention": set(),
        "encounters": {},
        "journal": {},
        "measurements": set(),
        "ranges": {},
        "medication": {},
        "intolerances": set(),
        "contraindications": set(),
        "notes": set(),
        "source_ids": set(),
        "flag_status": set(),
        "timing": {},
        "categories": {},
    }
    for entry in root.iterfind(F + "entry"):
        res = entry.find(F + "resource")[0]
        resources[_v(entry, "f:fullUrl")] = res
        facts["types"][etree.QName(res).localname] += 1
        kind = etree.QName(res).localname
        if kind in ("EpisodeOfCare", "MedicationRequest", "Observation", "AllergyIntolerance"):
            label = "intolerance or contra-indication" if kind == "AllergyIntolerance" else kind
            for ident in res.iterfind(F + "identifier"):
                facts["source_ids"].add((label, _v(ident, "f:system"), _v(ident, "f:value")))
    for el in root.iter(F + "identifier"):
        if _v(el, "f:system") == codes.BSN:
            facts["bsn"].add(_v(el, "f:value"))
    for url, res in resources.items():
        kind = etree.QName(res).localname
        if kind == "EpisodeOfCare":
            cond = resources[_v(res, "f:diagnosis/f:condition/f:reference")]
            facts["episodes"][_v(res, "f:identifier/f:value")] = _v(cond, "f:code/f:coding/f:code")
        elif kind == "Flag":
            target = _v(res, "f:extension/f:valueReference/f:reference")
            facts["attention"].add(_local(target))
            facts["flag_status"].add(_v(res, "f:status"))
        elif kind == "Encounter":
            icpc = {
                _v(resources[_v(x, "f:condition/f:reference")], "f:code/f:coding/f:code")
                for x in res.iterfind(F + "diagnosis")
            }
            start = _v(res, "f:period/f:start")
            facts["encounters"][_local(url)] = (
                start[:19],
                start[19:],
                _v(res, "f:type/f:coding/f:code"),
                frozenset(icpc),
            )
        elif kind == "Composition":
            lines = [
                (_v(s, "f:code/f:coding/f:code"), _words("".join(s.find(F + "text")[1].itertext())))
                for s in res.iterfind(F + "section")
            ]
            facts["journal"][_local(_v(res, "f:encounter/f:reference"))] = lines
        elif kind == "Observation":
            value = _v(res, "f:valueQuantity/f:value")
            facts["measurements"].add(
                (
                    _v(res, "f:code/f:coding/f:code"),
                    Decimal(value) if value else None,
                    (_v(res, "f:effectiveDateTime") or "")[:10],
                )
            )
            facts["categories"][_v(res, "f:code/f:coding/f:code")] = _v(res, "f:category/f:coding/f:code")
            when = _v(res, "f:effectiveDateTime") or ""
            if len(when) == 10:  # a date without a time
                facts.setdefault("dates", set()).add((_v(res, "f:code/f:coding/f:code"), when))
            rng = res.find(F + "referenceRange")
            if rng is not None:
                facts["ranges"][_v(res, "f:code/f:coding/f:code")] = (
                    Decimal(_v(rng, "f:low/f:value")),
                    Decimal(_v(rng, "f:high/f:value")),
                )
        elif kind == "MedicationRequest":
            med = resources[_v(res, "f:medicationReference/f:reference")]
            facts["medication"][_v(med, "f:code/f:coding/f:code")] = (
                _v(res, "f:status"),
                _v(res, "f:dosageInstruction/f:text"),
                (_v(res, "f:dosageInstruction/f:timing/f:repeat/f:boundsPeriod/f:start") or "")[:10],
                _v(res, "f:dispenseRequest/f:quantity/f:value"),
            )
            rep = "f:dosageInstruction/f:timing/f:repeat/"
            if _v(res, rep + "f:periodUnit"):
                facts["timing"][_v(med, "f:code/f:coding/f:code")] = (
                    int(_v(res, rep + "f:frequency") or 1),
                    Decimal(_v(res, rep + "f:period") or "1"),
                    _v(res, rep + "f:periodUnit"),
                )
        elif kind == "AllergyIntolerance":
            pair = (_v(res, "f:code/f:coding/f:system"), _v(res, "f:code/f:coding/f:code"))
            facts["intolerances" if pair[0] == codes.THESAURUS122 else "contraindications"].add(pair[1])
        elif kind == "Patient":
            facts["patient"] = {
                "birthDate": _v(res, "f:birthDate"),
                "gender": _v(res, "f:gender"),
                "telecom": len(res.findall(F + "telecom")),
            }
        elif kind == "Organization":
            facts["practice"] = _v(res, "f:name")
    return facts


def gateway_facts(doc: dict) -> dict:
    """The same facts from the gateway's document Bundle."""
    by_url = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    facts: dict = {
        "types": Counter(),
        "bsn": set(),
        "episodes": {},
        "attention": set(),
        "encounters": {},
        "journal": {},
        "measurements": set(),
        "ranges": {},
        "medication": {},
        "intolerances": set(),
        "contraindications": set(),
        "notes": set(),
        "source_ids": set(),
        "flag_status": set(),
        "timing": {},
        "categories": {},
        "dates": set(),
        "identified": Counter(),
    }

    def local(res: dict) -> str:
        return next(i["value"] for i in res["identifier"] if i["system"].startswith(codes.LOCAL_ID))

    for e in doc["entry"][1:]:
        res = e["resource"]
        kind = res["resourceType"]
        facts["types"][kind] += 1
        oids = [i for i in res.get("identifier", []) if i["system"].startswith("urn:oid:")]
        if oids:
            facts["identified"][kind] += 1
        label = kind
        if kind == "Flag" and codes.P_CONTRA_INDICATION in res["meta"]["profile"]:
            label = "intolerance or contra-indication"
        elif kind == "AllergyIntolerance":
            label = "intolerance or contra-indication"
        elif kind == "Observation" and codes.P_SOAP_LINE in res["meta"]["profile"]:
            label = "SOEP line"
        for i in oids:
            facts["source_ids"].add((label, i["system"], i["value"]))
        if kind == "Patient":
            facts["bsn"] = {i["value"] for i in res["identifier"] if i["system"] == codes.BSN}
            facts["patient"] = {
                "birthDate": res.get("birthDate"),
                "gender": res.get("gender"),
                "telecom": len(res.get("telecom", [])),
            }
            facts["practice"] = by_url[res["managingOrganization"]["reference"]]["name"]
        elif kind == "EpisodeOfCare":
            cond = by_url[res["diagnosis"][0]["condition"]["reference"]]
            facts["episodes"][local(res)] = cond["code"]["coding"][0]["code"]
        elif kind == "Flag" and any(x["url"] == codes.EXT_FLAG_DETAIL for x in res.get("extension", [])):
            facts["attention"].add(local(by_url[res["extension"][0]["valueReference"]["reference"]]))
            facts["flag_status"].add(res["status"])
        elif kind == "Flag" and codes.P_ALERT in res["meta"]["profile"]:
            facts["notes"].add(res["code"]["text"])
        elif kind == "Flag":
            facts["contraindications"].add(res["code"]["coding"][0]["code"])
        elif kind == "Encounter":
            reports = [
                r
                for r in by_url.values()
                if r["resourceType"] == "Composition"
                and r.get("encounter", {}).get("reference") == e["fullUrl"]
            ]
            icpc = {
                ev["code"][0]["coding"][0]["code"]
                for r in reports
                for ev in r.get("event", [])
                if "code" in ev
            }
            start = res["period"]["start"]
            facts["encounters"][local(res)] = (
                start[:19],
                start[19:],
                res["type"][0]["coding"][0]["code"],
                frozenset(icpc),
            )
            facts["journal"][local(res)] = [
                (obs["code"]["coding"][0]["code"], _words(obs.get("valueString", "")))
                for r in reports
                for s in r.get("section", [])
                for obs in [by_url[s["entry"][0]["reference"]]]
            ]
        elif kind == "Observation" and codes.P_SOAP_LINE not in res["meta"]["profile"]:
            value = res.get("valueQuantity", {}).get("value")
            code = res["code"]["coding"][0]["code"]
            facts["measurements"].add((code, value, res["effectiveDateTime"][:10]))
            facts["categories"][code] = res["category"][0]["coding"][0]["code"]
            if len(res["effectiveDateTime"]) == 10:
                facts["dates"].add((code, res["effectiveDateTime"]))
            if "referenceRange" in res:
                facts["ranges"][code] = (
                    res["referenceRange"][0]["low"]["value"],
                    res["referenceRange"][0]["high"]["value"],
                )
        elif kind == "MedicationRequest":
            med = res["medicationCodeableConcept"]["coding"][0]["code"]
            q = res.get("dispenseRequest", {}).get("quantity", {}).get("value")
            facts["medication"][med] = (
                res["status"],
                res["dosageInstruction"][0]["text"],
                res["extension"][0]["valuePeriod"]["start"],
                None if q is None else str(q),
            )
            repeat = res["dosageInstruction"][0].get("timing", {}).get("repeat")
            if repeat:
                facts["timing"][med] = (repeat["frequency"], repeat["period"], repeat["periodUnit"])
        elif kind == "AllergyIntolerance":
            facts["intolerances"].add(res["code"]["coding"][0]["code"])
    return facts


EXPECTED_DIFFERENCES = {
    # journal: Nictiz converted only the E and P lines of each deelcontact
    "journal line only in the gateway's document: 20 S and O lines (Nictiz keeps E and P only)",
    # time zone: Nictiz writes +01:00 all year; the gateway the Amsterdam offset of the moment
    "encounter start offset: Nictiz +01:00, gateway +02:00 (summer time) for 8 encounters",
    # contra-indications are nl-core-MedicationContraIndication Flags, not AllergyIntolerances
    "contra-indications 1347, 219: Nictiz AllergyIntolerance (thesaurus 40), gateway Flag",
    # the free-text attention note (pertinentAnnotationObsEvent) is missing in Nictiz's conversion
    "attention note only in the gateway's document: 'Patient onderschat eigen ziek zijn vaak.'",
    # Nictiz's range for creatinine repeats the low value as the high one; the HL7v3 says 60-120
    "reference range of 193: Nictiz 60-60, gateway 60-120",
    # the dispensed quantity (28 Stuk) is not in Nictiz's MedicationRequest
    "prescription 22179 quantity: Nictiz none, gateway 28",
    # Nictiz's Patient has no birth date or gender, and two telecoms of the GP's organisation
    "patient birthDate: Nictiz none, gateway 1950-05-20",
    "patient gender: Nictiz none, gateway male",
    "patient telecom: Nictiz 3, gateway 1",
    # the practice: Nictiz names it after the sending device's organisation (URA 90000388, '04'); the
    # gateway after the author's organisation, which has the same URA ('09')
    "practice name: Nictiz 'Tést Zorginstelling 04', gateway 'Tést Zorginstelling 09'",
    # issue 20: the HIS's ids also on what Nictiz identifies by fullUrl only (encounters) or not at all
    # (the SOEP lines, which Nictiz has as Composition sections)
    "source identifiers only in the gateway's document: 13 Encounter, 42 SOEP line",
    # issue 20: the flag is why a closed episode is in the summary: active; Nictiz follows the episode
    "attention flag status: Nictiz inactive, gateway active",
    # issue 20: the category from the Tabel 45 table; Nictiz's Observations have none
    "measurement category only in the gateway's document: 1334 laboratory, 1913 vital-signs, "
    "1915 vital-signs, 193 laboratory, 2283 imaging, 3208 laboratory",
    # resource counts that follow from the modelling (docs/fhir-mapping.md §6)
    "Condition count: Nictiz 18, gateway 6 (a deelcontact's ICPC is Composition.event.code, not a Condition)",
    "Medication count: Nictiz 2, gateway 0 (the product is MedicationRequest.medicationCodeableConcept)",
    "Observation count: Nictiz 7, gateway 49 (42 SOEP lines are Observations)",
    "Flag count: Nictiz 2, gateway 5 (contra-indications and the attention note are Flags too)",
    "AllergyIntolerance count: Nictiz 3, gateway 1",
    "Organization count: Nictiz 1, gateway 2 (the locum's organisation, Gezondheidscentrum Amby)",
    "Composition count: Nictiz 13, gateway 14 (the document's own Composition)",
}


def differences(nictiz: dict, ours: dict) -> set[str]:
    """The differences between the two conversions, as sentences; everything else must agree."""
    out: set[str] = set()
    assert ours["bsn"] == nictiz["bsn"] == {"555555914"}
    assert ours["episodes"] == nictiz["episodes"]  # episode id -> ICPC
    assert ours["attention"] == nictiz["attention"] == {"525", "531"}
    assert ours["encounters"].keys() == nictiz["encounters"].keys()
    summer = 0
    for eid, (start, offset, kind, icpc) in nictiz["encounters"].items():
        o_start, o_offset, o_kind, o_icpc = ours["encounters"][eid]
        assert (o_start, o_kind, o_icpc) == (start, kind, icpc), eid  # wall-clock time, Tabel 14, ICPC
        if o_offset != offset:
            assert (offset, o_offset) == ("+01:00", "+02:00")
            summer += 1
    if summer:
        out.add(
            f"encounter start offset: Nictiz +01:00, gateway +02:00 (summer time) for {summer} encounters"
        )
    only_ours = 0
    for eid, lines in nictiz["journal"].items():
        mine = ours["journal"][eid]
        assert all(line in mine for line in lines), eid  # every Nictiz line, same type and text
        extra = [x for x in mine if x not in lines]
        assert {t for t, _ in extra} <= {"S", "O"}, eid
        only_ours += len(extra)
    if only_ours:
        out.add(
            f"journal line only in the gateway's document: {only_ours} S and O lines "
            "(Nictiz keeps E and P only)"
        )
    assert ours["measurements"] == nictiz["measurements"]  # code, value, date
    # issue 20: a date-only measurement stays a date (CK 2014-04-30), as in Nictiz's conversion
    assert ours["dates"] == nictiz.get("dates", set()) == {("193", "2014-04-30")}
    # issue 20: the dosage schedule as Timing (every 0.5 d = twice a day), as in Nictiz's conversion
    assert ours["timing"] == nictiz["timing"] and ours["timing"]["22179"] == (2, Decimal(1), "d")
    # issue 20: the HIS's own identifiers (OID root + extension) as Nictiz writes them, and more
    assert nictiz["source_ids"] <= ours["source_ids"], sorted(nictiz["source_ids"] - ours["source_ids"])
    extra = Counter(label for label, _, _ in ours["source_ids"] - nictiz["source_ids"])
    if extra:
        out.add(
            "source identifiers only in the gateway's document: "
            + ", ".join(f"{n} {label}" for label, n in sorted(extra.items()))
        )
    if ours["flag_status"] != nictiz["flag_status"]:
        out.add(
            f"attention flag status: Nictiz {', '.join(sorted(nictiz['flag_status']))}, "
            f"gateway {', '.join(sorted(ours['flag_status']))}"
        )
    cats = {v for v in nictiz["categories"].values() if v}
    if ours["categories"] and not cats:
        out.add(
            "measurement category only in the gateway's document: "
            + ", ".join(f"{k} {v}" for k, v in sorted(ours["categories"].items()))
        )
    for code in sorted(nictiz["ranges"].keys() | ours["ranges"].keys()):
        n, o = nictiz["ranges"].get(code), ours["ranges"].get(code)
        if n != o:
            out.add(f"reference range of {code}: Nictiz {n[0]}-{n[1]}, gateway {o[0]}-{o[1]}")
    assert ours["medication"].keys() == nictiz["medication"].keys()
    for code, (status, text, start, quantity) in sorted(nictiz["medication"].items()):
        o_status, o_text, o_start, o_quantity = ours["medication"][code]
        assert (o_text, o_start) == (text, start)
        if o_status != status:
            out.add(f"prescription {code} status: Nictiz {status}, gateway {o_status}")
        if o_quantity != quantity:
            out.add(
                f"prescription {code} quantity: Nictiz {quantity or 'none'}, gateway {o_quantity or 'none'}"
            )
    assert ours["intolerances"] == nictiz["intolerances"] == {"35"}
    assert ours["contraindications"] == nictiz["contraindications"]
    out.add(
        f"contra-indications {', '.join(sorted(ours['contraindications']))}: Nictiz AllergyIntolerance "
        "(thesaurus 40), gateway Flag"
    )
    for note in sorted(ours["notes"] - nictiz["notes"]):
        out.add(f"attention note only in the gateway's document: {note!r}")
    for key in ("birthDate", "gender", "telecom"):
        n, o = nictiz["patient"][key], ours["patient"][key]
        if n != o:
            out.add(f"patient {key}: Nictiz {n if n is not None else 'none'}, gateway {o}")
    if nictiz["practice"] != ours["practice"]:
        out.add(f"practice name: Nictiz {nictiz['practice']!r}, gateway {ours['practice']!r}")
    notes = {
        "Condition": "a deelcontact's ICPC is Composition.event.code, not a Condition",
        "Medication": "the product is MedicationRequest.medicationCodeableConcept",
        "Observation": "42 SOEP lines are Observations",
        "Flag": "contra-indications and the attention note are Flags too",
        "Organization": "the locum's organisation, Gezondheidscentrum Amby",
        "Composition": "the document's own Composition",
    }
    types = ours["types"] + Counter({"Composition": 1})
    for kind in sorted(nictiz["types"].keys() | types.keys()):
        if nictiz["types"][kind] != types[kind]:
            why = f" ({notes[kind]})" if kind in notes else ""
            out.add(f"{kind} count: Nictiz {nictiz['types'][kind]}, gateway {types[kind]}{why}")
    return out


def test_against_nictiz_stu3_conversion(dossier: m.Dossier):
    ours = gateway_facts(summary_document(dossier, as_of=AS_OF))
    found = differences(nictiz_facts(), ours)
    assert found == EXPECTED_DIFFERENCES, {
        "new": sorted(found - EXPECTED_DIFFERENCES),
        "gone": sorted(EXPECTED_DIFFERENCES - found),
    }


def test_nictiz_reference_is_what_we_think_it_is():
    """Guards the comparison itself: the STU3 file parses with the hardened parser and is a collection of
    the professional summary's resources (so an empty or wrong file cannot make the comparison pass)."""
    facts = nictiz_facts()
    assert facts["types"]["Encounter"] == 13 and facts["types"]["EpisodeOfCare"] == 6
    assert sum(len(v) for v in facts["journal"].values()) == 22
    assert re.fullmatch(r"[0-9]{9}", next(iter(facts["bsn"])))


def test_acceptance_3_on_the_real_summary(dossier: m.Dossier):
    """Issue 20, acceptance 3: both prescriptions completed (ended 2004, summary date 2017-06-21), the
    attention flags active, the CK date 2014-04-30, temperatures under vital signs, the HIS's identifiers
    with their OID roots, and the schedule of twice a day as Timing."""
    doc = summary_document(dossier, as_of=AS_OF)
    res = [e["resource"] for e in doc["entry"][1:]]
    meds = [r for r in res if r["resourceType"] == "MedicationRequest"]
    assert [r["status"] for r in meds] == ["completed", "completed"]
    flags = [r for r in res if r["resourceType"] == "Flag" and "extension" in r]
    assert len(flags) == 2 and {r["status"] for r in flags} == {"active"}
    obs = {
        r["code"]["coding"][0]["code"]: r
        for r in res
        if r["resourceType"] == "Observation" and codes.P_SOAP_LINE not in r["meta"]["profile"]
    }
    assert obs["193"]["effectiveDateTime"] == "2014-04-30"
    for code in ("1913", "1915"):
        assert obs[code]["category"][0]["coding"][0]["code"] == "vital-signs"
        assert codes.P_LAB_RESULT not in obs[code]["meta"]["profile"]
    assert obs["2283"]["category"][0]["coding"][0]["code"] == "imaging"
    assert obs["193"]["category"][0]["coding"][0]["code"] == "laboratory"
    root = "urn:oid:2.16.840.1.113883.2.4.6.6.90000258.4."
    eoc = next(r for r in res if r["resourceType"] == "EpisodeOfCare")
    assert eoc["identifier"][0] == {"use": "official", "system": root + "6", "value": "525"}
    assert eoc["identifier"][1]["system"] == codes.LOCAL_ID + "episode"  # ours only beside it
    for r in res:
        if r["resourceType"] in ("EpisodeOfCare", "Encounter", "MedicationRequest", "AllergyIntolerance"):
            assert r["identifier"][0]["system"].startswith("urn:oid:"), r["resourceType"]
    doxy = next(r for r in meds if r["medicationCodeableConcept"]["coding"][0]["code"] == "22179")
    assert doxy["dosageInstruction"][0]["text"] == "2 maal per dag 1 tablet"
    assert doxy["dosageInstruction"][0]["timing"] == {
        "repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}
    }
    # the selected summary: the 2004 prescriptions are no current medication, yet "nil known" would lie
    summary = build_summary(dossier, as_of=AS_OF, sink=ProblemSink(), source=HL7V3.name)
    section = next(
        s
        for s in summary_document(summary, as_of=AS_OF, source=dossier)["entry"][0]["resource"]["section"]
        if s["title"] == "Medicatie"
    )
    assert "emptyReason" not in section and "eerdere voorschriften" in section["text"]["div"]
    bare = next(
        s
        for s in summary_document(summary, as_of=AS_OF)["entry"][0]["resource"]["section"]
        if s["title"] == "Medicatie"
    )
    assert bare["emptyReason"]["coding"][0]["code"] == "nilknown"  # nothing known of older prescriptions

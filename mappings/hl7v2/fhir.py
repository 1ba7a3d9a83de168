"""HL7 v2 messages <-> FHIR R4: one ``message`` Bundle per v2 message, after the HL7 V2-to-FHIR IG.

Each canonical message struct (:mod:`mappings.hl7v2.canonical`) maps to one Bundle of type ``message``
whose first entry is the MessageHeader, as FHIR messaging wants (messaging.html) and as the IG's message
maps do. The clinical content goes through the gateway's own FHIR mappings (:mod:`mappings.fhir`), so an
HL7 v2 result and a HIS result are the same Observation::

    MSH[MessageHeader]   MSH-7 -> Bundle.timestamp, MSH-10 -> Bundle.identifier, MSH-9.2 -> eventCoding
    PID[Patient]         mappings.fhir.patient (BSN, name, address, telecom); other PID-3 -> identifier
                         (CX.4 -> assigner.display, CX.5 -> type, v2-0203); IN1[Coverage]
    PV1[Encounter]       PV1-2 -> class (v2-0004), PV1-7 -> participant ATND, PV1-19 -> identifier VN,
                         PV1-44 -> period.start
    OBR[DiagnosticReport]  OBR-2/-3 -> identifier PLAC/FILL, OBR-4 -> code, OBR-7 -> effectiveDateTime,
                         OBR-25 -> status, its OBX -> result (in order)
    OBX[Observation]     mappings.fhir.observation (nl-core-LaboratoryTestResult, NHG Tabel 45)
    XCN[Practitioner]    mappings.fhir.practitioner (AGB, UZI, BIG)
    TXA+OBX (MDM)        the postbox Communication of mappings.fhir.communication (the form the FHIR API
                         delivers postbox items in, so a letter is one resource whichever way it came)
    RF1+PRD+NTE (REF)    ServiceRequest: RF1-6 -> identifier, RF1-2 -> priority, RF1-7/-8 ->
                         occurrencePeriod, RF1-10 -> reasonCode, PRD(RP) -> requester, PRD(RT) ->
                         performer (PractitionerRole), NTE -> note
    RRI (reply)          Communication basedOn the ServiceRequest (by identifier), the answer as payload;
                         MSA-2 -> MessageHeader.response.identifier
    MSA+ERR (ACK)        MessageHeader.response (AA/CA ok, AE/CE transient-error, AR/CR fatal-error)
                         with an OperationOutcome, one issue per ERR
    PV1-3/-6, MRG        Encounter.location -> Location; the prior record of an A40 merge as a Patient
                         linked replaces / replaced-by; Encounter.status from the ADT event
    ORC, ORM/OML, SIU    ServiceRequest, Specimen, Appointment: the section "orders and appointments"

What HL7 v2 carries and FHIR has no element for (the MSH fields besides time and control id, EVN-2, the
v2 result status OBR-25, OBR-16 ordering providers, the RF1 codes as sent, the PRD role and address, MSA-1
as sent) travels in extensions ``urn:his-gateway:fhir:extension:hl7v2-*`` whose sub-extensions are named
by the v2 field (``MSH-12``). FHIR elements derived from those fields (``status``, ``priority``,
``response.code``) are written for FHIR consumers; the way back reads the v2 field. So v2 -> FHIR -> v2
gives the same message (``tests/test_hl7v2_golden.py``); ids are deterministic (the same message gives the
same bytes). Problems reading a Bundle back: ``HL7-070`` (not an HL7 v2 message Bundle), ``HL7-071`` (a
resource the message needs is missing), and the ``FHIR-0xx`` of the mappings used.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote as _quote

from mappings import model as m
from mappings.fhir import communication, observation, patient, practitioner
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    fdatetime,
    pdatetime,
)
from mappings.fhir.datatypes import address, canonical_address, contact_point, telecoms
from mappings.hl7v2 import canonical as c
from mappings.hl7v2.adt import ENCOUNTER_STATUS
from mappings.problems import InputError, ProblemSink

V2 = "http://terminology.hl7.org/CodeSystem/"
EXT = "urn:his-gateway:fhir:extension:hl7v2-"
EXT_HEADER = EXT + "header"  # MSH fields, EVN-2, MSA-1/-3
EXT_ORDER = EXT + "order"  # OBR-25 as sent, OBR-16 ordering providers
EXT_REFERRAL = EXT + "referral"  # RF1-1..5 as sent
EXT_PARTY = EXT + "party"  # PRD-1, PRD-3
EXT_LOCATION = EXT + "location"  # PL components as sent
EXT_MERGE = EXT + "merge"  # MRG-3, MRG-5
EXT_DOCUMENT = EXT + "document"  # TXA-13, TXA-17, TXA-19 as sent
EXT_VISIT = EXT + "visit"  # PV2-8, PV2-9
EXT_INSURANCE = EXT + "insurance"  # an IN1 without a UZOVI code (its Coverage carries this extension)
IDS = "urn:his-gateway:hl7v2:"
CODING_SYSTEM = IDS + "coding-system:"  # + the v2 coding system name (CWE.3) as sent
PROBLEM_CODE = "urn:his-gateway:problem-code"
_V2_0203 = V2 + "v2-0203"
_PARTICIPATION = V2 + "v3-ParticipationType"

_RESULT_STATUS = {
    "F": "final",
    "P": "preliminary",
    "C": "corrected",
    "X": "cancelled",
    "I": "registered",
    "O": "registered",
    "S": "partial",
    "A": "partial",
    "R": "partial",
}
_REFERRAL_STATUS = {"P": "active", "A": "active", "R": "revoked", "E": "completed"}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine"}
_ACK_CODE = {
    "AA": "ok",
    "CA": "ok",
    "AE": "transient-error",
    "CE": "transient-error",
    "AR": "fatal-error",
    "CR": "fatal-error",
}
_SEVERITY = {"E": "error", "W": "warning", "I": "information"}
_SEVERITY_BACK = {v: k for k, v in _SEVERITY.items()}


# --------------------------------------------------------------------------- small helpers


@lru_cache(maxsize=1024)
def quote(text: str, safe: str = "") -> str:
    """``urllib.parse.quote`` for names that repeat in every message of a sender (MSH-3, OBR-4 systems):
    1.5 us each time uncached."""
    return _quote(text, safe=safe)


def _v2ext(url: str, parts: list[tuple[str, Any]]) -> dict:
    """A complex extension, one sub-extension per v2 field that has a value (str, datetime, Address)."""
    sub: list[dict[str, Any]] = []
    for name, value in parts:
        if value is None or value == "":
            continue
        if type(value) is str:  # the usual case first (20 header fields a message)
            sub.append({"url": name, "valueString": value})
        elif isinstance(value, dt.datetime):
            sub.append({"url": name, "valueDateTime": fdatetime(value)})
        elif isinstance(value, m.Address):
            sub.append({"url": name, "valueAddress": address(value)})
        elif isinstance(value, dict):
            sub.append({"url": name, "valueReference": value})
        else:
            sub.append({"url": name, "valueString": value})
    return {"url": url, "extension": sub}


def _read_ext(res: dict, url: str) -> dict[str, list[Any]]:
    """The sub-extensions of the complex extension ``url``: name -> values (in order)."""
    out: dict[str, list[Any]] = {}
    for ext in as_list(res.get("extension")):
        ext = as_dict(ext)
        if ext.get("url") != url:
            continue
        for sub in as_list(ext.get("extension")):
            sub = as_dict(sub)
            value = next((v for k, v in sub.items() if k.startswith("value")), None)
            out.setdefault(str(sub.get("url")), []).append(value)
    return out


def _one(parts: dict[str, list[Any]], name: str) -> Any:
    values = parts.get(name)
    return values[0] if values else None


def _type(code: str) -> dict:
    return {"coding": [{"system": _V2_0203, "code": code}]}


def _field(name: str) -> dict:
    """An identifier type naming the v2 field it came from (for fields table 0203 has no code for)."""
    return {"coding": [{"system": IDS + "field", "code": name}]}


def _cc(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def _code_of(cc: Any) -> str | None:
    for cd in as_list(as_dict(cc).get("coding")):
        return as_str(as_dict(cd).get("code"))
    return None


class _Writer:
    """One message's Bundle being built: deterministic ids (scope = the message), entries in order."""

    def __init__(self, header: c.MessageHeader) -> None:
        self.ctx = WriteContext("hl7v2|" + header.control_id)
        self.entries: list[dict] = []
        self._prof: dict[str, dict] = {}

    def add(self, res: dict) -> dict:
        self.entries.append({"fullUrl": "urn:uuid:" + res["id"], "resource": res})
        return {"reference": "urn:uuid:" + res["id"]}

    def practitioner(self, p: m.HealthProfessional) -> dict:
        """The Practitioner of an XCN (written once per distinct professional)."""
        res = practitioner.to_fhir(p, self.ctx)[0]
        key, n = p.id, 1
        while key in self._prof and self._prof[key] != res:
            n += 1
            key = f"{p.id}#{n}"
            res = {**res, "id": self.ctx.id("Practitioner", key)}
        if key not in self._prof:
            self._prof[key] = res
            self.add(res)
        return {"reference": "urn:uuid:" + res["id"]}

    def patient(self, p: m.Patient, identifiers: tuple[c.Identifier, ...]) -> dict:
        res = patient.to_fhir(p, self.ctx)
        if identifiers:
            res["identifier"] = res.get("identifier", []) + [_identifier(i) for i in identifiers]
        ref = self.add(res)
        self.ctx.patient = ref
        if p.insurance is not None:
            self.add(patient.coverage_to_fhir(p.insurance, self.ctx))
        return ref

    def location(self, loc: c.Location, key: str) -> dict:
        """A PL as a Location: ``name`` the parts joined, the parts as sent in ``hl7v2-location``."""
        parts = [
            ("PL.1", loc.point_of_care),
            ("PL.2", loc.room),
            ("PL.3", loc.bed),
            ("PL.4", loc.facility),
            ("PL.9", loc.description),
        ]
        res: dict = {"resourceType": "Location", "id": self.ctx.id("Location", key)}
        res["extension"] = [_v2ext(EXT_LOCATION, parts)]
        res["name"] = loc.description or " ".join(v for _, v in parts[:4] if v)
        res["mode"] = "instance"
        return self.add(res)

    def visit(self, v: c.Visit, event: str = "") -> dict:
        status = ENCOUNTER_STATUS.get(event, "unknown")
        enc: dict = {"resourceType": "Encounter", "id": self.ctx.id("Encounter", "pv1"), "status": status}
        expected = _v2ext(EXT_VISIT, [("PV2-8", v.expected_admit), ("PV2-9", v.expected_discharge)])
        if expected["extension"]:
            enc["extension"] = [expected]
        # PV1-19 visit number; PV1-5 pre-admit number and PV1-50 alternate visit id (no table 0203 code)
        idents = [
            {"type": _type("VN"), "value": v.visit_number}
            if code == "VN"
            else {"type": _field(code), "value": value}
            for code, value in (
                ("VN", v.visit_number),
                ("PV1-5", v.preadmit_number),
                ("PV1-50", v.alternate_visit_id),
            )
            if value is not None
        ]
        if idents:
            enc["identifier"] = idents
        enc["class"] = {"system": V2 + "v2-0004", "code": v.patient_class}  # PV1-2
        if v.admission_type is not None:
            enc["type"] = [_cc(V2 + "v2-0007", v.admission_type)]  # PV1-4
        if v.hospital_service is not None:
            enc["serviceType"] = _cc(V2 + "v2-0069", v.hospital_service)  # PV1-10
        if self.ctx.patient is not None:
            enc["subject"] = self.ctx.patient
        participants = [
            {
                "type": [{"coding": [{"system": _PARTICIPATION, "code": code}]}],
                "individual": self.practitioner(p),
            }
            for code, people in (
                ("ATND", v.attending),  # PV1-7
                ("REF", v.referring),  # PV1-8
                ("CON", v.consulting),  # PV1-9
                ("ADM", v.admitting),  # PV1-17
            )
            for p in people
        ]
        if participants:
            enc["participant"] = participants
        period = {}
        if v.admitted is not None:
            period["start"] = fdatetime(v.admitted)  # PV1-44
        if v.discharged is not None:
            period["end"] = fdatetime(v.discharged)  # PV1-45
        if period:
            enc["period"] = period
        hosp = {}
        if v.admit_source is not None:
            hosp["admitSource"] = _cc(V2 + "v2-0023", v.admit_source)  # PV1-14
        if v.discharge_disposition is not None:
            hosp["dischargeDisposition"] = _cc(V2 + "v2-0112", v.discharge_disposition)  # PV1-36
        if hosp:
            enc["hospitalization"] = hosp
        locations = []
        if v.location is not None:
            locations.append({"location": self.location(v.location, "pv1-3"), "status": "active"})  # PV1-3
        if v.prior_location is not None:
            prior = self.location(v.prior_location, "pv1-6")
            locations.append({"location": prior, "status": "completed"})  # PV1-6
        if locations:
            enc["location"] = locations
        if v.admit_reason is not None or v.admit_reason_text is not None:  # PV2-3
            reason: dict = {}
            if v.admit_reason is not None:
                reason = {"code": v.admit_reason}
                if v.admit_reason_system is not None:
                    reason = {"system": CODING_SYSTEM + quote(v.admit_reason_system, safe=""), **reason}
                if v.admit_reason_text is not None:
                    reason["display"] = v.admit_reason_text
                enc["reasonCode"] = [{"coding": [reason]}]
            else:
                enc["reasonCode"] = [{"text": v.admit_reason_text}]
        return self.add(enc)

    def bundle(
        self,
        h: c.MessageHeader,
        extra: list[tuple[str, Any]],
        focus: list[dict],
        response: dict | None = None,
    ) -> dict:
        hdr = [("MSH-9.1", h.message_type), ("MSH-9.2", h.trigger_event), ("MSH-9.3", h.message_structure)]
        for names, hd in zip(
            _HD_NAMES,
            (h.sending_application, h.sending_facility, h.receiving_application, h.receiving_facility),
            strict=True,
        ):
            if hd is not None:
                hdr += zip(names, (hd.namespace, hd.universal_id, hd.universal_id_type), strict=True)
        hdr += [
            ("MSH-11", h.processing_id),
            ("MSH-12", h.version),
            ("MSH-15", h.accept_ack_type),
            ("MSH-16", h.application_ack_type),
            ("MSH-17", h.country),
            ("MSH-18", h.charset),
        ]
        app = h.sending_application.namespace if h.sending_application else None
        mh: dict = {
            "resourceType": "MessageHeader",
            "id": self.ctx.id("MessageHeader", "msh"),
            "extension": [_v2ext(EXT_HEADER, hdr + extra)],
            "eventCoding": (
                {"system": V2 + "v2-0003", "code": h.trigger_event}  # MSH-9.2
                if h.trigger_event
                else {"system": V2 + "v2-0076", "code": h.message_type}  # MSH-9.1
            ),
            "source": {"endpoint": IDS + "application:" + quote(app or "unknown", safe="")},  # MSH-3
        }
        if app:
            mh["source"]["name"] = app
        if response is not None:
            mh["response"] = response
        if focus:
            mh["focus"] = focus
        out: dict = {
            "resourceType": "Bundle",
            "id": self.ctx.id("Bundle", "message"),
            "identifier": {"system": IDS + "message-control-id", "value": h.control_id},  # MSH-10
            "type": "message",
        }
        if h.timestamp is not None:
            out["timestamp"] = fdatetime(h.timestamp)  # MSH-7
        out["entry"] = [{"fullUrl": "urn:uuid:" + mh["id"], "resource": mh}, *self.entries]
        return out


_HD_NAMES = tuple((f"MSH-{n}.1", f"MSH-{n}.2", f"MSH-{n}.3") for n in (3, 4, 5, 6))


def _identifier(i: c.Identifier) -> dict:
    """CX -> Identifier: CX.1 value, CX.4 assigner, CX.5 type (the BSN goes the nl-core way)."""
    out: dict = {"value": i.value}
    if i.type is not None:
        out["type"] = _type(i.type)
    if i.authority is not None:
        out["assigner"] = {"display": i.authority}
    return out


# --------------------------------------------------------------------------- canonical -> FHIR


def _adt(x: c.AdtMessage) -> dict:
    w = _Writer(x.header)
    focus = [w.patient(x.patient, x.identifiers)]
    if x.merged is not None:  # MRG: the prior record kept, linked both ways (nothing deleted)
        survivor = next(e["resource"] for e in w.entries if e["fullUrl"] == focus[0]["reference"])
        prior: dict = {"resourceType": "Patient", "id": w.ctx.id("Patient", "mrg")}
        ext = _v2ext(EXT_MERGE, [("MRG-3", x.merged.account_number), ("MRG-5", x.merged.visit_number)])
        if ext["extension"]:
            prior["extension"] = [ext]
        prior["identifier"] = [_identifier(i) for i in x.merged.identifiers]  # MRG-1
        prior["active"] = False
        prior["link"] = [{"other": focus[0], "type": "replaced-by"}]
        survivor["link"] = [{"other": w.add(prior), "type": "replaces"}]
        focus.append({"reference": "urn:uuid:" + prior["id"]})
    if x.other_insurance is not None:  # IN1 without a UZOVI code
        o = x.other_insurance
        cov: dict = {"resourceType": "Coverage", "id": w.ctx.id("Coverage", "in1-other")}
        cov["extension"] = [_v2ext(EXT_INSURANCE, [("IN1-3.4", o.insurer_authority)])]
        cov["status"] = "active"
        if o.policy_number is not None:
            cov["subscriberId"] = o.policy_number  # IN1-36
        cov["beneficiary"] = focus[0]
        payor: dict = {"type": "Organization"}
        if o.insurer_id is not None:
            payor["identifier"] = {"value": o.insurer_id}  # IN1-3
        if o.insurer_name is not None:
            payor["display"] = o.insurer_name  # IN1-4
        cov["payor"] = [payor]
        w.add(cov)
    if x.visit is not None:
        w.visit(x.visit, x.header.trigger_event)
    return w.bundle(x.header, [("EVN-2", x.event_time)], focus)


def _order(w: _Writer, i: int, o: c.LabOrder, lean: tuple[Any, Any] | None = None) -> dict:
    """The DiagnosticReport of an OBR and its Observations. ``lean``: the Observations already written by
    :mod:`mappings.hl7v2.fast` as JSON: their Bundle entries (one fragment holding them all, separated by
    commas) and the DiagnosticReport's ``result`` list."""
    obs: Any = None
    if lean is not None:
        w.entries.append(lean[0])
        obs = lean[1]
    else:
        obs = []
        for x in o.measurements:  # OBX
            obs.append(w.add(observation.to_fhir(x, w.ctx)))
    ordering = [w.practitioner(p) for p in o.ordering]  # OBR-16
    dr: dict = {"resourceType": "DiagnosticReport", "id": w.ctx.id("DiagnosticReport", str(i))}
    ext = _v2ext(
        EXT_ORDER,
        [("OBR-25", o.result_status), *(("OBR-16", r) for r in ordering), *(("NTE", n) for n in o.notes)],
    )
    if ext["extension"]:
        dr["extension"] = [ext]
    ids = []
    if o.placer_number is not None:
        ids.append({"type": _type("PLAC"), "value": o.placer_number})  # OBR-2
    if o.filler_number is not None:
        ids.append({"type": _type("FILL"), "value": o.filler_number})  # OBR-3
    if ids:
        dr["identifier"] = ids
    dr["status"] = _RESULT_STATUS.get(o.result_status or "", "unknown")  # OBR-25
    cd: dict = {"code": o.service_code}  # OBR-4
    if o.service_system is not None:
        cd = {"system": CODING_SYSTEM + quote(o.service_system, safe=""), **cd}
    if o.service_text is not None:
        cd["display"] = o.service_text
    dr["code"] = {"coding": [cd]}
    if w.ctx.patient is not None:
        dr["subject"] = w.ctx.patient
    if o.common is not None:  # ORC[ServiceRequest]: the order this report is based on
        dr["basedOn"] = [common_request(w, f"orc-{i}", o.common, dr["code"])]
    if o.observed is not None:
        dr["effectiveDateTime"] = fdatetime(o.observed)  # OBR-7
    if obs:
        dr["result"] = obs
    return w.add(dr)


def _oru(x: c.OruMessage) -> dict:
    return oru_bundle(_Writer(x.header), x)


def oru_bundle(w: _Writer, x: c.OruMessage, lean: list[tuple[Any, Any] | None] | None = None) -> dict:
    """The Bundle of an ORU^R01; ``lean`` per order when its Observations are written already (the lean
    path, see :func:`_order`)."""
    w.patient(x.patient, x.identifiers)
    if x.visit is not None:
        w.visit(x.visit)
    focus = [_order(w, i, o, lean[i - 1] if lean else None) for i, o in enumerate(x.orders, 1)]
    return w.bundle(x.header, [("PID-NTE", n) for n in x.patient_notes], focus)


def _mdm(x: c.MdmMessage) -> dict:
    w = _Writer(x.header)
    res = communication.postbox_to_fhir(x.item)  # TXA + OBX
    if x.identifiers:
        for cont in res["contained"]:
            if cont.get("resourceType") == "Patient":
                cont["identifier"] = cont.get("identifier", []) + [_identifier(i) for i in x.identifiers]
    doc = _v2ext(
        EXT_DOCUMENT,
        [("TXA-13", x.parent_document), ("TXA-17", x.completion_status), ("TXA-19", x.availability)],
    )
    if doc["extension"]:
        res["extension"] = [*res.get("extension", []), doc]
    focus = [w.add(res)]
    if x.visit is not None:
        w.visit(x.visit)
    return w.bundle(x.header, [], focus)


def _party(w: _Writer, p: c.ConsultParty, key: str) -> dict:
    role: dict = {"resourceType": "PractitionerRole", "id": w.ctx.id("PractitionerRole", key)}
    role["extension"] = [_v2ext(EXT_PARTY, [("PRD-1", p.role), ("PRD-3", p.address)])]
    if p.professional is not None:
        role["practitioner"] = w.practitioner(p.professional)  # PRD-2, PRD-7
    if p.organization is not None:
        role["organization"] = {"display": p.organization}  # PRD-4.4
    if p.specialism is not None:
        role["specialty"] = [{"text": p.specialism}]  # PRD-4.1
    if p.telecom:
        role["telecom"] = [contact_point(t) for t in p.telecom]  # PRD-5
    return w.add(role)


def _ref(x: c.RefMessage) -> dict:
    w = _Writer(x.header)
    q = x.consult
    w.patient(q.patient, q.identifiers)
    requester = _party(w, q.requester, "requester")
    recipient = _party(w, q.recipient, "recipient")
    sr: dict = {"resourceType": "ServiceRequest", "id": w.ctx.id("ServiceRequest", "rf1")}
    sr["extension"] = [
        _v2ext(
            EXT_REFERRAL,
            [
                ("RF1-1", q.status),
                ("RF1-2", q.priority),
                ("RF1-3", q.type),
                ("RF1-4", q.disposition),
                ("RF1-5", q.category),
            ],
        )
    ]
    sr["identifier"] = [{"system": IDS + "referral", "value": q.id}]  # RF1-6
    sr["status"] = _REFERRAL_STATUS.get(q.status, "unknown")  # RF1-1
    sr["intent"] = "order"
    if q.priority in _PRIORITY:
        sr["priority"] = _PRIORITY[q.priority]  # RF1-2
    sr["subject"] = w.ctx.patient
    period = {}
    if q.effective is not None:
        period["start"] = fdatetime(q.effective)  # RF1-7
    if q.expires is not None:
        period["end"] = fdatetime(q.expires)  # RF1-8
    if period:
        sr["occurrencePeriod"] = period
    sr["requester"] = requester  # PRD(RP)
    sr["performer"] = [recipient]  # PRD(RT)
    if q.reason_code is not None or q.reason_text is not None:  # RF1-10
        reason: dict = {}
        if q.reason_code is not None:
            cd: dict = {"code": q.reason_code}
            if q.reason_system is not None:
                cd = {"system": CODING_SYSTEM + quote(q.reason_system, safe=""), **cd}
            if q.reason_text is not None:
                cd["display"] = q.reason_text
            reason["coding"] = [cd]
        else:
            reason["text"] = q.reason_text
        sr["reasonCode"] = [reason]
    sr["note"] = [{"text": q.question}]  # NTE-3
    return w.bundle(x.header, [], [w.add(sr)])


def _rri(x: c.RriMessage) -> dict:
    w = _Writer(x.header)
    r = x.reply
    w.patient(r.patient, r.identifiers)
    responder = _party(w, r.responder, "responder")
    requester = _party(w, r.requester, "requester") if r.requester is not None else None
    referral = {"system": IDS + "referral", "value": r.referral_id}  # RF1-6
    com: dict = {"resourceType": "Communication", "id": w.ctx.id("Communication", "answer")}
    com["extension"] = [_v2ext(EXT_REFERRAL, [("RF1-1", r.status)])]
    com["identifier"] = [referral]
    com["basedOn"] = [{"type": "ServiceRequest", "identifier": referral}]
    com["status"] = "completed"
    com["subject"] = w.ctx.patient
    if r.answered is not None:
        com["sent"] = fdatetime(r.answered)  # RF1-7
    if requester is not None:
        com["recipient"] = [requester]
    com["sender"] = responder
    com["payload"] = [{"contentString": r.answer}]  # NTE-3
    response = {"identifier": r.in_reply_to, "code": "ok"}  # MSA-2
    return w.bundle(x.header, [], [w.add(com)], response)


def _ack(x: c.AckMessage) -> dict:
    w = _Writer(x.header)
    response: dict = {"identifier": x.control_id, "code": _ACK_CODE.get(x.code, "fatal-error")}  # MSA-2, -1
    if x.errors:
        issues = []
        for e in x.errors:  # ERR
            details = [
                {"system": PROBLEM_CODE, "code": e.code},
                {"system": V2 + "v2-0357", "code": e.hl7_code},
            ]
            issues.append(
                {
                    "severity": e.severity
                    if e.severity in _SEVERITY_BACK
                    else _SEVERITY.get(e.severity, "error"),
                    "code": "processing",
                    "details": {"coding": details, "text": e.message},
                    "location": [e.location],
                }
            )
        oo = {"resourceType": "OperationOutcome", "id": w.ctx.id("OperationOutcome", "err"), "issue": issues}
        response["details"] = w.add(oo)
    return w.bundle(x.header, [("MSA-1", x.code), ("MSA-3", x.text)], [], response)


_TO_FHIR: dict[type, Callable[[Any], dict]] = {
    c.AdtMessage: _adt,
    c.OruMessage: _oru,
    c.MdmMessage: _mdm,
    c.RefMessage: _ref,
    c.RriMessage: _rri,
    c.AckMessage: _ack,
}


def to_fhir(obj: c.Hl7Canonical) -> dict:
    """The FHIR R4 message Bundle of a canonical HL7 v2 message (deterministic)."""
    return _TO_FHIR[type(obj)](obj)


# --------------------------------------------------------------------------- FHIR -> canonical


class _Reader:
    def __init__(self, bundle: dict, sink: ProblemSink, source: str | None) -> None:
        self.entries = [e for e in as_list(bundle.get("entry")) if isinstance(e, dict)]
        self.ctx = ReadContext(sink, self.entries, source=source)
        self._prof: dict[int, m.HealthProfessional | None] = {}

    def of(self, rtype: str) -> list[int]:
        return [
            i for i, e in enumerate(self.entries) if as_dict(e.get("resource")).get("resourceType") == rtype
        ]

    def need(self, rtype: str, what: str) -> int | None:
        found = self.of(rtype)
        if not found:
            self.ctx.error("HL7-071", "Bundle.entry", f"no {rtype}: the message needs {what}")
            return None
        return found[0]

    def dt(self, value: Any, where: str) -> dt.datetime | None:
        return pdatetime(value, where, self.ctx)

    def practitioner(self, ref: Any, where: str) -> m.HealthProfessional | None:
        i = self.ctx.resolve(ref, where, ("Practitioner",))
        if i is None:
            return None
        if i not in self._prof:
            self._prof[i] = practitioner.from_fhir(self.ctx.resource(i), self.ctx, self.ctx.at(i))
        return self._prof[i]

    def patient(self) -> tuple[m.Patient | None, tuple[c.Identifier, ...]]:
        i = self.need("Patient", "the patient (PID)")
        if i is None:
            return None, ()
        res = self.ctx.resource(i)
        ids = tuple(_read_identifier(x) for x in as_list(res.get("identifier")) if "system" not in as_dict(x))
        own = {**res, "identifier": [x for x in as_list(res.get("identifier")) if "system" in as_dict(x)]}
        insurance = None
        for k in self.of("Coverage"):
            if any(
                as_dict(e).get("url") == EXT_INSURANCE for e in as_list(self.ctx.resource(k).get("extension"))
            ):
                continue  # another insurer (IN1 without a UZOVI code): the message reads it
            insurance = patient.coverage_from_fhir(self.ctx.resource(k), self.ctx, self.ctx.at(k))
        return patient.from_fhir(own, self.ctx, self.ctx.at(i), insurance), ids

    def visit(self) -> c.Visit | None:
        found = self.of("Encounter")
        if not found:
            return None
        i = found[0]
        enc, at = self.ctx.resource(i), self.ctx.at(i)
        numbers: dict[str, str | None] = {}
        for ident in as_list(enc.get("identifier")):
            kind = _code_of(as_dict(ident).get("type")) or "VN"
            numbers[kind] = as_str(as_dict(ident).get("value"))
        people: dict[str, list[m.HealthProfessional]] = {"ATND": [], "REF": [], "CON": [], "ADM": []}
        for k, part in enumerate(as_list(enc.get("participant"))):
            p = self.practitioner(as_dict(part).get("individual"), f"{at}.participant[{k}].individual")
            role = _code_of((as_list(as_dict(part).get("type")) or [None])[0]) or "ATND"
            if p is not None:
                people.get(role, people["ATND"]).append(p)
        locations: dict[str, c.Location | None] = {}
        for el in as_list(enc.get("location")):
            el = as_dict(el)
            locations.setdefault(as_str(el.get("status")) or "active", self.location(el.get("location")))
        hosp = as_dict(enc.get("hospitalization"))
        pv2 = _read_ext(enc, EXT_VISIT)
        reason = as_dict((as_list(enc.get("reasonCode")) or [{}])[0])
        rcd = as_dict((as_list(reason.get("coding")) or [{}])[0])
        rsys = as_str(rcd.get("system"))
        return c.Visit(
            patient_class=as_str(as_dict(enc.get("class")).get("code")) or "",
            visit_number=numbers.get("VN"),
            preadmit_number=numbers.get("PV1-5"),
            alternate_visit_id=numbers.get("PV1-50"),
            attending=tuple(people["ATND"]),
            referring=tuple(people["REF"]),
            consulting=tuple(people["CON"]),
            admitting=tuple(people["ADM"]),
            admitted=self.dt(as_dict(enc.get("period")).get("start"), f"{at}.period.start"),
            location=locations.get("active"),
            admission_type=_code_of((as_list(enc.get("type")) or [None])[0]),
            prior_location=locations.get("completed"),
            hospital_service=_code_of(enc.get("serviceType")),
            admit_source=_code_of(hosp.get("admitSource")),
            discharge_disposition=_code_of(hosp.get("dischargeDisposition")),
            discharged=self.dt(as_dict(enc.get("period")).get("end"), f"{at}.period.end"),
            admit_reason=as_str(rcd.get("code")),
            admit_reason_text=as_str(rcd.get("display")) if rcd else as_str(reason.get("text")),
            admit_reason_system=_unquote_system(rsys) if rsys is not None else None,
            expected_admit=self.dt(_one(pv2, "PV2-8"), f"{at}.extension"),
            expected_discharge=self.dt(_one(pv2, "PV2-9"), f"{at}.extension"),
        )

    def location(self, ref: Any) -> c.Location | None:
        """A Location made by :meth:`_Writer.location` (its PL parts), or one named only."""
        i = self.ctx.resolve(ref, "Encounter.location", ("Location",))
        if i is None:
            return None
        res = self.ctx.resource(i)
        parts = _read_ext(res, EXT_LOCATION)
        if not parts:
            return c.Location(point_of_care=as_str(res.get("name")))
        return c.Location(
            point_of_care=_one(parts, "PL.1"),
            room=_one(parts, "PL.2"),
            bed=_one(parts, "PL.3"),
            facility=_one(parts, "PL.4"),
            description=_one(parts, "PL.9"),
        )

    def header(self, bundle: dict) -> tuple[c.MessageHeader, dict[str, list[Any]]] | None:
        mh = as_dict(as_dict(self.entries[0] if self.entries else {}).get("resource"))
        parts = _read_ext(mh, EXT_HEADER)
        if bundle.get("type") != "message" or mh.get("resourceType") != "MessageHeader" or not parts:
            self.ctx.error(
                "HL7-070",
                "Bundle",
                "not an HL7 v2 message Bundle (type message, the first entry a "
                f"MessageHeader with extension {EXT_HEADER})",
            )
            return None
        hds = []
        for n in (3, 4, 5, 6):
            got = [_one(parts, f"MSH-{n}.{k}") for k in (1, 2, 3)]
            hds.append(
                c.Hd(namespace=got[0], universal_id=got[1], universal_id_type=got[2]) if any(got) else None
            )
        try:
            h = c.MessageHeader(
                message_type=_one(parts, "MSH-9.1") or "",
                trigger_event=_one(parts, "MSH-9.2") or "",
                control_id=as_str(as_dict(bundle.get("identifier")).get("value")) or "",
                message_structure=_one(parts, "MSH-9.3"),
                sending_application=hds[0],
                sending_facility=hds[1],
                receiving_application=hds[2],
                receiving_facility=hds[3],
                timestamp=self.dt(bundle.get("timestamp"), "Bundle.timestamp"),
                processing_id=_one(parts, "MSH-11") or "P",
                version=_one(parts, "MSH-12") or "2.5",
                accept_ack_type=_one(parts, "MSH-15"),
                application_ack_type=_one(parts, "MSH-16"),
                country=_one(parts, "MSH-17"),
                charset=_one(parts, "MSH-18") or "",
            )
        except (ValueError, TypeError) as exc:
            self.ctx.error("HL7-070", "Bundle.entry[0].resource", f"not a valid message header: {exc}")
            return None
        return h, parts

    def order(self, i: int) -> c.LabOrder | None:
        dr, at = self.ctx.resource(i), self.ctx.at(i)
        parts = _read_ext(dr, EXT_ORDER)
        measurements = []
        for k, ref in enumerate(as_list(dr.get("result"))):
            j = self.ctx.resolve(ref, f"{at}.result[{k}]", ("Observation",))
            if j is not None:
                x = observation.lab_from_fhir(self.ctx.resource(j), self.ctx, self.ctx.at(j), f"obx-{i}-{k}")
                if x is not None:
                    measurements.append(x)
        ordering = [self.practitioner(r, f"{at}.extension") for r in parts.get("OBR-16", [])]
        placer = filler = None
        for ident in as_list(dr.get("identifier")):
            kind = _code_of(as_dict(ident).get("type"))
            if kind == "PLAC":
                placer = as_str(as_dict(ident).get("value"))
            elif kind == "FILL":
                filler = as_str(as_dict(ident).get("value"))
        cd = as_dict((as_list(as_dict(dr.get("code")).get("coding")) or [{}])[0])
        system = as_str(cd.get("system"))
        if system is not None:
            system = _unquote_system(system)
        code = as_str(cd.get("code"))
        if code is None:
            self.ctx.error("HL7-071", f"{at}.code", "the order (OBR-4) has no code")
            return None
        return c.LabOrder(
            service_code=code,
            service_text=as_str(cd.get("display")),
            service_system=system,
            placer_number=placer,
            filler_number=filler,
            observed=self.dt(dr.get("effectiveDateTime"), f"{at}.effectiveDateTime"),
            ordering=tuple(p for p in ordering if p is not None),
            result_status=_one(parts, "OBR-25"),
            measurements=tuple(measurements),
            notes=tuple(parts.get("NTE", [])),
            common=self.common(dr, at),
        )

    def common(self, dr: dict, at: str) -> c.OrderCommon | None:
        """The ORC of a DiagnosticReport: the ServiceRequest it is based on (``basedOn``)."""
        refs = as_list(dr.get("basedOn"))
        if not refs:
            return None
        j = self.ctx.resolve(refs[0], f"{at}.basedOn[0]", ("ServiceRequest",))
        return read_common(self, j) if j is not None else None

    def party(self, ref: Any, where: str) -> c.ConsultParty | None:
        i = self.ctx.resolve(ref, where, ("PractitionerRole",))
        if i is None:
            self.ctx.error("HL7-071", where, "the consult party (PRD) is missing")
            return None
        role, at = self.ctx.resource(i), self.ctx.at(i)
        parts = _read_ext(role, EXT_PARTY)
        addr = _one(parts, "PRD-3")
        prof = (
            self.practitioner(role["practitioner"], f"{at}.practitioner") if "practitioner" in role else None
        )
        spec = as_list(role.get("specialty"))
        return c.ConsultParty(
            role=_one(parts, "PRD-1") or "",
            professional=prof,
            specialism=as_str(as_dict(spec[0]).get("text")) if spec else None,
            organization=as_str(as_dict(role.get("organization")).get("display")),
            address=canonical_address(addr, f"{at}.extension", self.ctx) if addr is not None else None,
            telecom=telecoms(role.get("telecom"), f"{at}.telecom", self.ctx),
        )


def _unquote_system(system: str) -> str:
    from urllib.parse import unquote

    return unquote(system[len(CODING_SYSTEM) :]) if system.startswith(CODING_SYSTEM) else system


def _read_identifier(x: Any) -> c.Identifier:
    x = as_dict(x)
    return c.Identifier(
        value=as_str(x.get("value")) or "",
        authority=as_str(as_dict(x.get("assigner")).get("display")),
        type=_code_of(x.get("type")),
    )


def from_fhir(bundle: Any, sink: ProblemSink | None = None, *, source: str | None = None) -> c.Hl7Canonical:
    """The canonical message of a message Bundle made by :func:`to_fhir` (or alike). Raises
    :class:`InputError` with every problem (warnings stay in ``sink``)."""
    sink = sink if sink is not None else ProblemSink()
    start = len(sink.problems)
    r = _Reader(as_dict(bundle), sink, source)
    got = r.header(as_dict(bundle))
    result = None
    if got is not None:
        h, parts = got
        try:
            result = _READ.get(h.message_type, _unsupported)(r, h, parts)
        except (ValueError, TypeError) as exc:  # a canonical rule broken by what the Bundle says
            r.ctx.error("HL7-071", "Bundle", f"not a valid {h.message_type} message: {exc}")
    if result is None or sink.has_errors:
        raise InputError(sink.problems[start:])
    return result


def _unsupported(r: _Reader, h: c.MessageHeader, parts: dict) -> None:
    r.ctx.error(
        "HL7-070", "Bundle.entry[0].resource.extension", f"message type {h.message_type!r} not supported"
    )


def _read_adt(r: _Reader, h: c.MessageHeader, parts: dict) -> c.AdtMessage | None:
    p, ids = r.patient()
    visit = r.visit()
    merged = None
    for i in r.of("Patient")[1:]:  # the prior record of a merge (MRG)
        prior = r.ctx.resource(i)
        if any(as_dict(x).get("type") == "replaced-by" for x in as_list(prior.get("link"))):
            mrg = _read_ext(prior, EXT_MERGE)
            merged = c.PriorPatient(
                identifiers=tuple(_read_identifier(x) for x in as_list(prior.get("identifier"))),
                account_number=_one(mrg, "MRG-3"),
                visit_number=_one(mrg, "MRG-5"),
            )
    other = None
    for k in r.of("Coverage"):
        cov = r.ctx.resource(k)
        parts_in1 = _read_ext(cov, EXT_INSURANCE)
        if not any(as_dict(e).get("url") == EXT_INSURANCE for e in as_list(cov.get("extension"))):
            continue
        payor = as_dict((as_list(cov.get("payor")) or [{}])[0])
        other = c.OtherInsurance(
            insurer_id=as_str(as_dict(payor.get("identifier")).get("value")),
            insurer_authority=_one(parts_in1, "IN1-3.4"),
            insurer_name=as_str(payor.get("display")),
            policy_number=as_str(cov.get("subscriberId")),
        )
    if p is None:
        return None
    return c.AdtMessage(
        header=h,
        patient=p,
        event_time=r.dt(_one(parts, "EVN-2"), "Bundle.entry[0].resource"),
        identifiers=ids,
        visit=visit,
        merged=merged,
        other_insurance=other,
    )


def _read_oru(r: _Reader, h: c.MessageHeader, parts: dict) -> c.OruMessage | None:
    p, ids = r.patient()
    visit = r.visit()
    orders = [r.order(i) for i in r.of("DiagnosticReport")]
    if p is None or any(o is None for o in orders):
        return None
    return c.OruMessage(
        header=h,
        patient=p,
        orders=tuple(o for o in orders if o is not None),
        identifiers=ids,
        visit=visit,
        patient_notes=tuple(parts.get("PID-NTE", [])),
    )


def _read_mdm(r: _Reader, h: c.MessageHeader, parts: dict) -> c.MdmMessage | None:
    i = r.need("Communication", "the document (TXA and its OBX)")
    if i is None:
        return None
    res = dict(r.ctx.resource(i))
    ids: tuple[c.Identifier, ...] = ()
    contained = []
    for cont in as_list(res.get("contained")):
        if as_dict(cont).get("resourceType") == "Patient":
            idents = as_list(cont.get("identifier"))
            ids = tuple(_read_identifier(x) for x in idents if "system" not in as_dict(x))
            cont = {**cont, "identifier": [x for x in idents if "system" in as_dict(x)]}
            if not cont["identifier"]:
                del cont["identifier"]
        contained.append(cont)
    res["contained"] = contained
    doc = _read_ext(res, EXT_DOCUMENT)
    if doc:
        res["extension"] = [e for e in as_list(res.get("extension")) if as_dict(e).get("url") != EXT_DOCUMENT]
    item = communication.postbox_from_fhir(res, r.ctx.sink, r.ctx.at(i), r.ctx.source)
    visit = r.visit()
    if item is None:
        return None
    return c.MdmMessage(
        header=h,
        item=item,
        identifiers=ids,
        visit=visit,
        parent_document=_one(doc, "TXA-13"),
        completion_status=_one(doc, "TXA-17"),
        availability=_one(doc, "TXA-19"),
    )


def _read_ref(r: _Reader, h: c.MessageHeader, parts: dict) -> c.RefMessage | None:
    p, ids = r.patient()
    i = r.need("ServiceRequest", "the consult request (RF1)")
    if i is None or p is None:
        return None
    sr, at = r.ctx.resource(i), r.ctx.at(i)
    rf1 = _read_ext(sr, EXT_REFERRAL)
    requester = r.party(sr.get("requester"), f"{at}.requester")
    recipient = r.party((as_list(sr.get("performer")) or [None])[0], f"{at}.performer[0]")
    period = as_dict(sr.get("occurrencePeriod"))
    reason = as_dict((as_list(sr.get("reasonCode")) or [{}])[0])
    cd = as_dict((as_list(reason.get("coding")) or [{}])[0])
    system = as_str(cd.get("system"))
    ident = as_dict((as_list(sr.get("identifier")) or [{}])[0])
    notes = [as_str(as_dict(n).get("text")) or "" for n in as_list(sr.get("note"))]
    if requester is None or recipient is None:
        return None
    consult = c.ConsultRequest(
        id=as_str(ident.get("value")) or "",
        patient=p,
        requester=requester,
        recipient=recipient,
        question="\n".join(notes),
        status=_one(rf1, "RF1-1") or "P",
        priority=_one(rf1, "RF1-2"),
        type=_one(rf1, "RF1-3"),
        disposition=_one(rf1, "RF1-4"),
        category=_one(rf1, "RF1-5"),
        effective=r.dt(period.get("start"), f"{at}.occurrencePeriod.start"),
        expires=r.dt(period.get("end"), f"{at}.occurrencePeriod.end"),
        reason_code=as_str(cd.get("code")),
        reason_text=as_str(cd.get("display")) if cd else as_str(reason.get("text")),
        reason_system=_unquote_system(system) if system is not None else None,
        identifiers=ids,
    )
    return c.RefMessage(header=h, consult=consult)


def _read_rri(r: _Reader, h: c.MessageHeader, parts: dict) -> c.RriMessage | None:
    p, ids = r.patient()
    i = r.need("Communication", "the consult answer")
    if i is None or p is None:
        return None
    com, at = r.ctx.resource(i), r.ctx.at(i)
    rf1 = _read_ext(com, EXT_REFERRAL)
    responder = r.party(com.get("sender"), f"{at}.sender")
    recipients = as_list(com.get("recipient"))
    requester = r.party(recipients[0], f"{at}.recipient[0]") if recipients else None
    mh = as_dict(r.entries[0].get("resource"))
    payload = as_dict((as_list(com.get("payload")) or [{}])[0])
    ident = as_dict((as_list(com.get("identifier")) or [{}])[0])
    if responder is None:
        return None
    reply = c.ConsultReply(
        referral_id=as_str(ident.get("value")) or "",
        in_reply_to=as_str(as_dict(mh.get("response")).get("identifier")) or "",
        patient=p,
        responder=responder,
        answer=as_str(payload.get("contentString")) or "",
        requester=requester,
        status=_one(rf1, "RF1-1") or "A",
        answered=r.dt(com.get("sent"), f"{at}.sent"),
        identifiers=ids,
    )
    return c.RriMessage(header=h, reply=reply)


def _read_ack(r: _Reader, h: c.MessageHeader, parts: dict) -> c.AckMessage | None:
    mh = as_dict(r.entries[0].get("resource"))
    response = as_dict(mh.get("response"))
    errors = []
    for i in r.of("OperationOutcome"):
        for issue in as_list(r.ctx.resource(i).get("issue")):
            issue = as_dict(issue)
            details = as_dict(issue.get("details"))
            codes = {
                as_str(as_dict(cd).get("system")): as_str(as_dict(cd).get("code"))
                for cd in as_list(details.get("coding"))
            }
            errors.append(
                c.AckError(
                    severity=sev if (sev := as_str(issue.get("severity"))) in _SEVERITY_BACK else "error",
                    code=codes.get(PROBLEM_CODE) or "",
                    location=(as_list(issue.get("location")) or [""])[0],
                    message=as_str(details.get("text")) or "",
                    hl7_code=codes.get(V2 + "v2-0357") or "207",
                )
            )
    return c.AckMessage(
        header=h,
        code=_one(parts, "MSA-1") or "",
        control_id=as_str(response.get("identifier")) or "",
        text=_one(parts, "MSA-3"),
        errors=tuple(errors),
    )


_READ: dict[str, Callable[[_Reader, c.MessageHeader, dict], c.Hl7Canonical | None]] = {
    "ADT": _read_adt,
    "ORU": _read_oru,
    "MDM": _read_mdm,
    "REF": _read_ref,
    "RRI": _read_rri,
    "ACK": _read_ack,
}

# --------------------------------------------------------------------------- orders and appointments
#
# ORM^O01/OML^O21 and SIU^S12-S15 <-> FHIR R4 message Bundles (after the HL7 V2-to-FHIR IG).
#
# Built on :mod:`mappings.hl7v2.fhir` (the MessageHeader, Patient, Encounter and Practitioner entries)::
#
#     ORC+OBR[ServiceRequest]  ORC-2/-3 -> identifier PLAC/FILL, ORC-4 -> requisition, ORC-5 (else ORC-1) ->
#                              status (``tables/order-status.csv``), OBR-4 -> code, OBR-5/TQ1-9 -> priority,
#                              OBR-6/TQ1-7 -> occurrenceDateTime, ORC-9 -> authoredOn, ORC-12 -> requester,
#                              OBR-31 -> reasonCode, NTE -> note, OBX -> supportingInfo (Observations)
#     SPM[Specimen]            SPM-2 -> identifier (placer, its namespace as assigner) / accessionIdentifier
#                              (filler), SPM-4 -> type, SPM-17.1 -> collection.collectedDateTime
#     SCH[Appointment]         SCH-1/-2 -> identifier PLAC/FILL, the event (S15 cancelled) or SCH-25 ->
#                              status (``tables/appointment-status.csv``), SCH-7 -> reasonCode, SCH-8 ->
#                              appointmentType, SCH-11/TQ1 -> start/end, SCH-9 -> minutesDuration,
#                              NTE -> comment
#     AIS                      serviceType (e.g. a video consult)
#     AIP/AIL/AIG              participant: Practitioner, Location, a named resource (with the patient's)
#
# What FHIR has no element for travels in extensions named by the v2 field: ``hl7v2-order`` (ORC-1, ORC-5 as
# sent, ORC-12 every orderer, OBR-15), ``hl7v2-appointment`` (SCH-6, SCH-9/-10 as sent, SCH-25 as sent, TQ1
# used) and ``hl7v2-resource`` on each service and participant (segment, AIx-2, duration and units, filler
# status). v2 coding systems: ``LN`` is LOINC, ``SCT`` SNOMED CT, any other name
# ``urn:his-gateway:hl7v2:coding-system:<name>``.

EXT_APPOINTMENT = EXT + "appointment"
EXT_RESOURCE = EXT + "resource"
SYSTEMS = {"LN": "http://loinc.org", "SCT": "http://snomed.info/sct"}
"""v2 coding system names (table 0396) with a FHIR URI; any other keeps its name in a URN."""
_SYSTEMS_BACK = {v: k for k, v in SYSTEMS.items()}
_KIND_ORDER = ("AIS", "AIG", "AIL", "AIP")


def _table(name: str, key: str) -> dict[str, str]:
    with (Path(__file__).parent / "tables" / name).open(encoding="utf-8", newline="") as fh:
        return {
            row[key] if key != "field+code" else row["field"] + row["code"]: row["fhir"]
            for row in csv.DictReader(fh)
        }


ORDER_STATUS = _table("order-status.csv", "field+code")
APPOINTMENT_STATUS = _table("appointment-status.csv", "sch25")


# --------------------------------------------------------------------------- coded values


def system_uri(name: str) -> str:
    return SYSTEMS.get(name) or CODING_SYSTEM + quote(name, safe="")


def system_name(uri: str) -> str:
    return _SYSTEMS_BACK.get(uri) or _unquote_system(uri)


def codeable(x: c.Coded) -> dict:
    """CWE -> CodeableConcept: one coding (system, code, display), or only ``text`` without a code."""
    if x.code is None and x.system is None:
        return {"text": x.text}
    cd: dict = {}
    if x.system is not None:
        cd["system"] = system_uri(x.system)
    if x.code is not None:
        cd["code"] = x.code
    if x.text is not None:
        cd["display"] = x.text
    return {"coding": [cd]}


def coded(cc: Any) -> c.Coded | None:
    cc = as_dict(cc)
    codings = as_list(cc.get("coding"))
    if not codings:
        text = as_str(cc.get("text"))
        return c.Coded(text=text) if text is not None else None
    cd = as_dict(codings[0])
    system = as_str(cd.get("system"))
    return c.Coded(
        code=as_str(cd.get("code")),
        text=as_str(cd.get("display")),
        system=system_name(system) if system is not None else None,
    )


def _coded_ext(name: str, x: c.Coded | None) -> list[dict]:
    return [{"url": name, "valueCodeableConcept": codeable(x)}] if x is not None else []


# --------------------------------------------------------------------------- ORM / OML


def _order_status(o: c.Order) -> str:
    if o.status is not None:
        return ORDER_STATUS.get("ORC-5" + o.status, "unknown")
    return ORDER_STATUS.get("ORC-1" + o.control, "unknown")


def _specimen(w: _Writer, key: str, sp: c.Specimen) -> dict:
    res: dict = {"resourceType": "Specimen", "id": w.ctx.id("Specimen", key)}
    if sp.placer_id is not None:
        ident: dict = {"type": _type("PLAC"), "value": sp.placer_id}  # SPM-2.1
        if sp.placer_namespace is not None:
            ident["assigner"] = {"display": sp.placer_namespace}
        res["identifier"] = [ident]
    if sp.filler_id is not None:
        res["accessionIdentifier"] = {"type": _type("FILL"), "value": sp.filler_id}  # SPM-2.2
    if sp.type is not None:
        res["type"] = codeable(sp.type)  # SPM-4
    res["subject"] = w.ctx.patient
    if sp.available in ("Y", "N"):
        res["status"] = "available" if sp.available == "Y" else "unavailable"  # SPM-20
    ext: list[dict[str, Any]] = [{"url": "SPM-20", "valueString": sp.available}] if sp.available else []
    if sp.reject_reason is not None:
        ext.append({"url": "SPM-21", "valueCodeableConcept": codeable(sp.reject_reason)})
    if ext:
        res["extension"] = [{"url": EXT + "specimen", "extension": ext}]
    if sp.received is not None:
        res["receivedTime"] = fdatetime(sp.received)  # SPM-18
    if sp.collected is not None:
        res["collection"] = {"collectedDateTime": fdatetime(sp.collected)}  # SPM-17.1
    return w.add(res)


def _read_specimen(r: _Reader, ref: Any, where: str) -> c.Specimen | None:
    i = r.ctx.resolve(ref, where, ("Specimen",))
    if i is None:
        return None
    res, at = r.ctx.resource(i), r.ctx.at(i)
    spm = _read_ext(res, EXT + "specimen")
    ident = as_dict((as_list(res.get("identifier")) or [{}])[0])
    return c.Specimen(
        placer_id=as_str(ident.get("value")),
        placer_namespace=as_str(as_dict(ident.get("assigner")).get("display")),
        filler_id=as_str(as_dict(res.get("accessionIdentifier")).get("value")),
        type=coded(res.get("type")) if "type" in res else None,
        collected=r.dt(as_dict(res.get("collection")).get("collectedDateTime"), f"{at}.collection"),
        received=r.dt(res.get("receivedTime"), f"{at}.receivedTime"),
        available=_one(spm, "SPM-20"),
        reject_reason=coded(_one(spm, "SPM-21")) if "SPM-21" in spm else None,
    )


def _service_request(w: _Writer, i: int, o: c.Order, encounter: dict | None) -> dict:
    obs = [w.add(observation.to_fhir(x, w.ctx)) for x in o.observations]  # OBX
    specimens = [_specimen(w, f"{i}-{k}", sp) for k, sp in enumerate(o.specimens, 1)]  # SPM
    ordering = [w.practitioner(p) for p in o.ordering]  # ORC-12 / OBR-16
    sr: dict = {"resourceType": "ServiceRequest", "id": w.ctx.id("ServiceRequest", str(i))}
    ext = _v2ext(
        EXT_ORDER,
        [
            ("ORC-1", o.control),
            ("ORC-5", o.status),
            *(("ORC-12", r) for r in ordering),
            ("OBR-15", o.specimen_source),
        ],
    )
    sr["extension"] = [ext]
    ids = []
    if o.placer_number is not None:
        ids.append({"type": _type("PLAC"), "value": o.placer_number})  # ORC-2
    if o.filler_number is not None:
        ids.append({"type": _type("FILL"), "value": o.filler_number})  # ORC-3
    if ids:
        sr["identifier"] = ids
    if o.group_number is not None:
        sr["requisition"] = {"type": _type("PGN"), "value": o.group_number}  # ORC-4
    sr["status"] = _order_status(o)  # ORC-5, else ORC-1
    sr["intent"] = "order"
    if o.priority is not None and o.priority in _PRIORITY:
        sr["priority"] = _PRIORITY[o.priority]  # OBR-5 / TQ1-9
    if o.service is not None:
        sr["code"] = codeable(o.service)  # OBR-4
    sr["subject"] = w.ctx.patient
    if encounter is not None:
        sr["encounter"] = encounter
    if o.requested is not None:
        sr["occurrenceDateTime"] = fdatetime(o.requested)  # OBR-6 / TQ1-7
    if o.transaction_time is not None:
        sr["authoredOn"] = fdatetime(o.transaction_time)  # ORC-9
    if ordering:
        sr["requester"] = ordering[0]  # ORC-12
    if o.reason is not None:
        sr["reasonCode"] = [codeable(o.reason)]  # OBR-31
    if specimens:
        sr["specimen"] = specimens
    if obs:
        sr["supportingInfo"] = obs
    if o.notes is not None:
        sr["note"] = [{"text": o.notes}]  # NTE
    if o.priority is not None and o.priority not in _PRIORITY:
        ext["extension"].append({"url": "TQ1-9", "valueString": o.priority})
    return w.add(sr)


def _orders(x: c.OrderMessage) -> dict:
    w = _Writer(x.header)
    w.patient(x.patient, x.identifiers)
    encounter = w.visit(x.visit) if x.visit is not None else None
    focus = [_service_request(w, i, o, encounter) for i, o in enumerate(x.orders, 1)]
    return w.bundle(x.header, [("NTE", x.notes)], focus)


def common_request(w: _Writer, key: str, o: c.OrderCommon, code: dict) -> dict:
    """The ServiceRequest of the ORC in front of a result's OBR (``DiagnosticReport.basedOn``)."""
    ordering = [w.practitioner(p) for p in o.ordering]  # ORC-12
    sr: dict = {"resourceType": "ServiceRequest", "id": w.ctx.id("ServiceRequest", key)}
    sr["extension"] = [
        _v2ext(EXT_ORDER, [("ORC-1", o.control), ("ORC-5", o.status), *(("ORC-12", r) for r in ordering)])
    ]
    ids = []
    if o.placer_number is not None:
        ids.append({"type": _type("PLAC"), "value": o.placer_number})  # ORC-2
    if o.filler_number is not None:
        ids.append({"type": _type("FILL"), "value": o.filler_number})  # ORC-3
    if ids:
        sr["identifier"] = ids
    if o.group_number is not None:
        sr["requisition"] = {"type": _type("PGN"), "value": o.group_number}  # ORC-4
    sr["status"] = ORDER_STATUS.get("ORC-5" + o.status, "unknown") if o.status else _control_status(o.control)
    sr["intent"] = "order"
    sr["code"] = code  # OBR-4
    sr["subject"] = w.ctx.patient
    if o.transaction_time is not None:
        sr["authoredOn"] = fdatetime(o.transaction_time)  # ORC-9
    if ordering:
        sr["requester"] = ordering[0]  # ORC-12
    return w.add(sr)


def _control_status(control: str) -> str:
    return ORDER_STATUS.get("ORC-1" + control, "unknown")


def read_common(r: _Reader, i: int) -> c.OrderCommon | None:
    sr, at = r.ctx.resource(i), r.ctx.at(i)
    parts = _read_ext(sr, EXT_ORDER)
    control = _one(parts, "ORC-1")
    if control is None:
        r.ctx.error("HL7-071", f"{at}.extension", "the order has no order control (ORC-1)")
        return None
    ordering = [r.practitioner(ref, f"{at}.extension") for ref in parts.get("ORC-12", [])]
    placer = filler = None
    for ident in as_list(sr.get("identifier")):
        kind = _code_of(as_dict(ident).get("type"))
        if kind == "PLAC":
            placer = as_str(as_dict(ident).get("value"))
        elif kind == "FILL":
            filler = as_str(as_dict(ident).get("value"))
    return c.OrderCommon(
        control=control,
        placer_number=placer,
        filler_number=filler,
        group_number=as_str(as_dict(sr.get("requisition")).get("value")),
        status=_one(parts, "ORC-5"),
        transaction_time=r.dt(sr.get("authoredOn"), f"{at}.authoredOn"),
        ordering=tuple(p for p in ordering if p is not None),
    )


def _read_order(r: _Reader, i: int) -> c.Order | None:
    sr, at = r.ctx.resource(i), r.ctx.at(i)
    parts = _read_ext(sr, EXT_ORDER)
    observations = []
    for k, ref in enumerate(as_list(sr.get("supportingInfo"))):
        j = r.ctx.resolve(ref, f"{at}.supportingInfo[{k}]", ("Observation",))
        if j is not None:
            x = observation.lab_from_fhir(r.ctx.resource(j), r.ctx, r.ctx.at(j), f"obx-{i}-{k}")
            if x is not None:
                observations.append(x)
    ordering = [r.practitioner(ref, f"{at}.extension") for ref in parts.get("ORC-12", [])]
    specimens = [
        _read_specimen(r, ref, f"{at}.specimen[{k}]") for k, ref in enumerate(as_list(sr.get("specimen")))
    ]
    placer = filler = None
    for ident in as_list(sr.get("identifier")):
        kind = _code_of(as_dict(ident).get("type"))
        if kind == "PLAC":
            placer = as_str(as_dict(ident).get("value"))
        elif kind == "FILL":
            filler = as_str(as_dict(ident).get("value"))
    priority = {v: k for k, v in _PRIORITY.items()}.get(as_str(sr.get("priority")) or "")
    notes = [as_str(as_dict(n).get("text")) or "" for n in as_list(sr.get("note"))]
    control = _one(parts, "ORC-1")
    if control is None:
        r.ctx.error("HL7-071", f"{at}.extension", "the order has no order control (ORC-1)")
        return None
    return c.Order(
        control=control,
        service=coded(sr.get("code")) if "code" in sr else None,
        placer_number=placer,
        filler_number=filler,
        group_number=as_str(as_dict(sr.get("requisition")).get("value")),
        status=_one(parts, "ORC-5"),
        transaction_time=r.dt(sr.get("authoredOn"), f"{at}.authoredOn"),
        ordering=tuple(p for p in ordering if p is not None),
        priority=priority or _one(parts, "TQ1-9"),
        requested=r.dt(sr.get("occurrenceDateTime"), f"{at}.occurrenceDateTime"),
        reason=coded((as_list(sr.get("reasonCode")) or [None])[0]) if sr.get("reasonCode") else None,
        specimen_source=_one(parts, "OBR-15"),
        notes="\n".join(notes) if notes else None,
        observations=tuple(observations),
        specimens=tuple(s for s in specimens if s is not None),
    )


def _read_orders(r: _Reader, h: c.MessageHeader, parts: dict) -> c.OrderMessage | None:
    p, ids = r.patient()
    visit = r.visit()
    orders = [_read_order(r, i) for i in r.of("ServiceRequest")]
    if p is None or any(o is None for o in orders):
        return None
    if not orders:
        r.ctx.error("HL7-071", "Bundle.entry", "no ServiceRequest: an order message needs its orders (ORC)")
        return None
    return c.OrderMessage(
        header=h,
        patient=p,
        orders=tuple(o for o in orders if o is not None),
        identifiers=ids,
        visit=visit,
        notes=_one(parts, "NTE"),
    )


# --------------------------------------------------------------------------- SIU


def _resource_ext(res: c.Resource) -> dict:
    return _v2ext(
        EXT_RESOURCE,
        [
            ("segment", res.kind),
            ("AIx-2", res.action),
            ("duration", res.duration),
            ("duration-units", res.duration_units),
            ("filler-status", res.status),
            ("start", res.start if res.kind == "AIS" else None),  # participants: period.start
        ],
    )


def _appointment_status(x: c.SiuMessage) -> str:
    if x.header.trigger_event == "S15":
        return "cancelled"
    a = x.appointment
    return APPOINTMENT_STATUS.get(a.filler_status or "", "booked")


def _appointment(x: c.SiuMessage) -> dict:
    w = _Writer(x.header)
    a = x.appointment
    patient = w.patient(x.patient, x.identifiers) if x.patient is not None else None
    if x.visit is not None:
        w.visit(x.visit)
    appt: dict = {"resourceType": "Appointment", "id": w.ctx.id("Appointment", "sch")}
    ext: list[dict] = [
        *_coded_ext("SCH-6", a.event_reason),
        *_v2ext(
            "",
            [("SCH-9", a.duration), ("SCH-10", a.duration_units), ("SCH-25", a.filler_status)],
        )["extension"],
    ]
    if a.timing_in_tq1:
        ext.append({"url": "TQ1", "valueBoolean": True})
    if ext:
        appt["extension"] = [{"url": EXT_APPOINTMENT, "extension": ext}]
    ids = []
    if a.placer_id is not None:
        ids.append({"type": _type("PLAC"), "value": a.placer_id})  # SCH-1
    if a.filler_id is not None:
        ids.append({"type": _type("FILL"), "value": a.filler_id})  # SCH-2
    appt["identifier"] = ids
    orders = [("PLAC", a.placer_order), ("FILL", a.filler_order)]
    based = [{"type": "ServiceRequest", "identifier": {"type": _type(k), "value": v}} for k, v in orders if v]
    if based:
        appt["basedOn"] = based  # SCH-26, SCH-27
    appt["status"] = _appointment_status(x)  # the event, SCH-25
    if appt["status"] == "cancelled" and a.event_reason is not None:
        appt["cancelationReason"] = codeable(a.event_reason)  # SCH-6
    services = []
    for res in a.resources:
        if res.kind == "AIS" and res.code is not None:
            services.append({**codeable(res.code), "extension": [_resource_ext(res)]})  # AIS-3
    if services:
        appt["serviceType"] = services
    if a.type is not None:
        appt["appointmentType"] = codeable(a.type)  # SCH-8
    if a.reason is not None:
        appt["reasonCode"] = [codeable(a.reason)]  # SCH-7
    if a.start is not None:
        appt["start"] = fdatetime(a.start)  # SCH-11.4 / TQ1-7
    if a.end is not None:
        appt["end"] = fdatetime(a.end)  # SCH-11.5 / TQ1-8
    if a.duration is not None and a.duration.isdigit() and (a.duration_units or "min").lower() == "min":
        appt["minutesDuration"] = int(a.duration)  # SCH-9
    if a.notes is not None:
        appt["comment"] = a.notes  # NTE
    participants: list[dict] = []
    if patient is not None:
        participants.append({"actor": patient, "status": "accepted"})
    for k, res in enumerate(a.resources):
        if res.kind == "AIS":
            continue
        part: dict = {"extension": [_resource_ext(res)]}
        if res.role is not None:
            part["type"] = [codeable(res.role)]  # AIx-4
        if res.kind == "AIP" and res.professional is not None:
            part["actor"] = w.practitioner(res.professional)  # AIP-3
        elif res.kind == "AIL" and res.location is not None:
            part["actor"] = w.location(res.location, f"ail-{k}")  # AIL-3
        elif res.code is not None:
            ident: dict = {"value": res.code.code} if res.code.code else {}
            if res.code.system is not None:
                ident["system"] = system_uri(res.code.system)
            part["actor"] = {"identifier": ident} if ident else {}
            if res.code.text is not None:
                part["actor"]["display"] = res.code.text  # AIG-3
        part["status"] = "accepted"
        if res.start is not None:
            part["period"] = {"start": fdatetime(res.start)}  # AIx start
        participants.append(part)
    appt["participant"] = participants
    return w.bundle(x.header, [], [w.add(appt)])


def _read_resource(r: _Reader, el: dict, where: str) -> c.Resource | None:
    parts = _read_ext(el, EXT_RESOURCE)
    kind = _one(parts, "segment")
    if kind not in _KIND_ORDER:
        return None
    fields: dict = {
        "kind": kind,
        "action": _one(parts, "AIx-2"),
        "duration": _one(parts, "duration"),
        "duration_units": _one(parts, "duration-units"),
        "status": _one(parts, "filler-status"),
    }
    if kind == "AIS":
        fields["code"] = coded({k: v for k, v in el.items() if k != "extension"})
        fields["start"] = r.dt(_one(parts, "start"), f"{where}.extension")
        return c.Resource(**fields)
    types = as_list(el.get("type"))
    fields["role"] = coded(types[0]) if types else None
    fields["start"] = r.dt(as_dict(el.get("period")).get("start"), f"{where}.period.start")
    actor = as_dict(el.get("actor"))
    if kind == "AIP":
        fields["professional"] = r.practitioner(actor, f"{where}.actor")
    elif kind == "AIL":
        fields["location"] = r.location(actor)
    else:
        ident = as_dict(actor.get("identifier"))
        system = as_str(ident.get("system"))
        fields["code"] = c.Coded(
            code=as_str(ident.get("value")),
            text=as_str(actor.get("display")),
            system=system_name(system) if system is not None else None,
        )
    return c.Resource(**fields)


def _read_appointment(r: _Reader, h: c.MessageHeader, parts: dict) -> c.SiuMessage | None:
    i = r.need("Appointment", "the appointment (SCH)")
    if i is None:
        return None
    appt, at = r.ctx.resource(i), r.ctx.at(i)
    sch = _read_ext(appt, EXT_APPOINTMENT)
    p, ids = r.patient() if r.of("Patient") else (None, ())
    placer = filler = None
    for ident in as_list(appt.get("identifier")):
        kind = _code_of(as_dict(ident).get("type"))
        if kind == "PLAC":
            placer = as_str(as_dict(ident).get("value"))
        elif kind == "FILL":
            filler = as_str(as_dict(ident).get("value"))
    orders: dict[str | None, str | None] = {}
    for ref in as_list(appt.get("basedOn")):
        ident = as_dict(as_dict(ref).get("identifier"))
        orders[_code_of(ident.get("type"))] = as_str(ident.get("value"))
    resources = []
    for k, el in enumerate(as_list(appt.get("serviceType"))):
        got = _read_resource(r, as_dict(el), f"{at}.serviceType[{k}]")
        if got is not None:
            resources.append(got)
    for k, el in enumerate(as_list(appt.get("participant"))):
        got = _read_resource(r, as_dict(el), f"{at}.participant[{k}]")
        if got is not None:
            resources.append(got)
    resources.sort(key=lambda x: _KIND_ORDER.index(x.kind))
    reasons = as_list(appt.get("reasonCode"))
    appointment = c.Appointment(
        placer_id=placer,
        filler_id=filler,
        event_reason=coded(_one(sch, "SCH-6")) if "SCH-6" in sch else None,
        reason=coded(reasons[0]) if reasons else None,
        type=coded(appt.get("appointmentType")) if "appointmentType" in appt else None,
        duration=_one(sch, "SCH-9"),
        duration_units=_one(sch, "SCH-10"),
        start=r.dt(appt.get("start"), f"{at}.start"),
        end=r.dt(appt.get("end"), f"{at}.end"),
        timing_in_tq1=bool(_one(sch, "TQ1")),
        filler_status=_one(sch, "SCH-25"),
        placer_order=orders.get("PLAC"),
        filler_order=orders.get("FILL"),
        notes=as_str(appt.get("comment")),
        resources=tuple(resources),
    )
    return c.SiuMessage(header=h, appointment=appointment, patient=p, identifiers=ids, visit=r.visit())


_TO_FHIR.update({c.OrderMessage: _orders, c.SiuMessage: _appointment})
_READ.update({"ORM": _read_orders, "OML": _read_orders, "SIU": _read_appointment})


__all__ = ["to_fhir", "from_fhir", "EXT_HEADER"]

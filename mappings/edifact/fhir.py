"""MEDVRI and MEDLAB as HL7 v2 messages and FHIR R4 message Bundles (``docs/dialects/edifact.md`` §6).

The Edifact messages project onto the HL7 v2 messages the gateway already maps to FHIR, so that one
lab result means the same Observation whichever way it came (acceptance: MEDLAB <-> ORU^R01 <-> FHIR give
the same values, units, ranges and flags):

- MEDLAB -> ORU^R01 (:func:`to_oru`): ZKH -> MSH-3 (sending application), UNB-2/UNB-3 -> MSH-4/MSH-6,
  UNB-4 -> MSH-7, UNH-1 -> MSH-10; each DET/IDE report -> an OBR (IDE-2 -> OBR-3 filler number, DET ->
  OBR-7, ART -> OBR-16, IDE-1 J/N -> OBR-25 F/P), each BEP -> an OBX (:mod:`mappings.hl7v2.obx`).
- MEDVRI -> MDM^T02 (:func:`to_mdm`): the postbox item as it is.
- FHIR: the v2 message's Bundle (:func:`mappings.hl7v2.fhir.to_fhir`) plus what only Edifact carries:
  the envelope, the department, the message text and the sex of a MEDVRI patient as the extension
  ``urn:his-gateway:fhir:extension:edifact`` on the MessageHeader; a result's lab test name as
  ``Observation.code.text``, its OPB lines as ``Observation.note`` (one per line), a corrected result
  (BEP-4) as status ``corrected``. Read back, a Bundle gives the same Edifact bytes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from mappings import model as m
from mappings.edifact import envelope as envl
from mappings.edifact.canonical import (
    EdifactMessage,
    Envelope,
    LabReport,
    LabResult,
    MedlabMessage,
    MedvriMessage,
)
from mappings.hl7v2 import canonical as c
from mappings.problems import InputError, ProblemSink

EXT_EDIFACT = "urn:his-gateway:fhir:extension:edifact"
SERVICE = "MEDLAB"
"""OBR-4 of every order projected from a MEDLAB report (coding system ``HISGW``)."""
_ENVELOPE_KEYS = (
    "syntax",
    "syntax_version",
    "sender",
    "recipient",
    "prepared_date",
    "prepared_time",
    "reference",
    "sender_qualifier",
    "recipient_qualifier",
    "application",
    "test",
    "una",
    "newline",
)


def _header(x: EdifactMessage, mtype: str, event: str, structure: str, app: str | None) -> c.MessageHeader:
    env = x.envelope
    return c.MessageHeader(
        message_type=mtype,
        trigger_event=event,
        message_structure=structure,
        control_id=x.reference,  # UNH-1
        sending_application=c.Hd(namespace=app) if app else None,
        sending_facility=c.Hd(namespace=env.sender) if env.sender else None,  # UNB-2
        receiving_facility=c.Hd(namespace=env.recipient) if env.recipient else None,  # UNB-3
        timestamp=envl.prepared(env),  # UNB-4
        country="NLD",
        charset="UNICODE UTF-8",
    )


def _as_lab_result(x: m.Measurement) -> m.LabResult:
    """A MEDLAB result as the v2 lab result it is (every lab-only field at its default)."""
    return m.LabResult(**{f: getattr(x, f) for f in m.Measurement.__struct_fields__})


def _as_measurement(x: m.Measurement) -> m.Measurement:
    """What MEDLAB carries of a v2 lab result: the Measurement fields (code, value, unit, range, flag)."""
    return m.Measurement(**{f: getattr(x, f) for f in m.Measurement.__struct_fields__})


def to_oru(x: MedlabMessage) -> c.OruMessage:
    """The ORU^R01 of a MEDLAB (lab test names, comments and the text stay behind: v2 has OBX-3.2 and
    NTE for them, which the gateway's ORU mapping does not carry)."""
    orders = tuple(
        c.LabOrder(
            service_code=SERVICE,
            service_system="HISGW",
            filler_number=rep.lab_number,  # IDE-2
            observed=rep.observed,  # DET
            ordering=(x.requester,) if x.requester is not None else (),  # ART
            result_status="F" if rep.complete else "P",  # IDE-1
            measurements=tuple(_as_lab_result(r.measurement) for r in rep.results),  # BEP
        )
        for rep in x.reports
    )
    return c.OruMessage(
        header=_header(x, "ORU", "R01", "ORU_R01", x.laboratory), patient=x.patient, orders=orders
    )


def from_oru(o: c.OruMessage, env: Envelope | None = None) -> MedlabMessage:
    """A MEDLAB for the results of an ORU^R01 (one report per OBR)."""
    h = o.header
    if env is None:
        now = h.timestamp or dt.datetime.now().replace(microsecond=0)
        env = envl.new(
            sender=(h.sending_facility.namespace if h.sending_facility else None) or "HISGW",
            recipient=(h.receiving_facility.namespace if h.receiving_facility else None) or "",
            reference=h.control_id[:14],
            now=now,
        )
    lab = (h.sending_application.namespace if h.sending_application else None) or (
        h.sending_facility.namespace if h.sending_facility else None
    )
    requester = next((p for order in o.orders for p in order.ordering), None)
    reports: list[LabReport] = []
    for order in o.orders:  # one report per OBR, split where OBX-14 gives a result a time of its own
        groups: list[list[m.Measurement]] = []
        for x in order.measurements:
            if groups and groups[-1][0].effective == x.effective:
                groups[-1].append(x)
            else:
                groups.append([x])
        for group in groups or [[]]:
            reports.append(
                LabReport(
                    observed=group[0].effective if group else order.observed,
                    lab_number=order.filler_number,
                    complete=(order.result_status or "F") != "P",
                    results=tuple(LabResult(measurement=_as_measurement(x)) for x in group),
                )
            )
    return MedlabMessage(
        envelope=env,
        reference=h.control_id[:14],
        laboratory=lab or "onbekend laboratorium",
        patient=o.patient,
        requester=requester,
        reports=tuple(reports),
    )


def to_mdm(x: MedvriMessage) -> c.MdmMessage:
    return c.MdmMessage(header=_header(x, "MDM", "T02", "MDM_T02", None), item=x.item)


def from_mdm(d: c.MdmMessage, env: Envelope | None = None) -> MedvriMessage:
    h = d.header
    if env is None:
        env = envl.new(
            sender=(h.sending_facility.namespace if h.sending_facility else None) or "HISGW",
            recipient=d.item.practice_agb,
            reference=h.control_id[:14],
            now=h.timestamp or d.item.created,
        )
    return MedvriMessage(envelope=env, reference=h.control_id[:14], item=d.item)


# --------------------------------------------------------------------------- FHIR


def _ext(x: EdifactMessage) -> dict:
    parts: list[tuple[str, str]] = [(k, getattr(x.envelope, k)) for k in _ENVELOPE_KEYS]
    parts = [(k, v) for k, v in parts if v is not None]
    if isinstance(x, MedlabMessage):
        if x.department is not None:
            parts.append(("department", x.department))
        if x.text is not None:
            parts.append(("text", x.text))
        if x.requester is not None and x.requester.role is not None:
            parts.append(("requester_role", x.requester.role))
    elif x.gender is not None:
        parts.append(("gender", x.gender))
    return {"url": EXT_EDIFACT, "extension": [{"url": k, "valueString": v} for k, v in parts]}


def to_fhir(x: EdifactMessage) -> dict:
    """The FHIR message Bundle of a MEDVRI or MEDLAB (see the module docstring)."""
    from mappings.hl7v2 import fhir

    if isinstance(x, MedvriMessage):
        bundle = fhir.to_fhir(to_mdm(x))
    else:
        bundle = fhir.to_fhir(to_oru(x))
        extras = iter(r for rep in x.reports for r in rep.results)
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res.get("resourceType") != "Observation":
                continue
            r = next(extras)
            if r.name is not None:
                res["code"]["text"] = r.name  # BEP-2
            if r.changed:
                res["status"] = "corrected"  # BEP-4
            if r.comments:
                res["note"] = [{"text": line} for line in r.comments]  # OPB
    mh = bundle["entry"][0]["resource"]
    mh["extension"] = [*mh.get("extension", []), _ext(x)]
    return bundle


def _read_ext(bundle: dict) -> dict[str, str]:
    entries = bundle.get("entry") or []
    mh = entries[0].get("resource", {}) if entries and isinstance(entries[0], dict) else {}
    for ext in mh.get("extension", []) if isinstance(mh, dict) else []:
        if isinstance(ext, dict) and ext.get("url") == EXT_EDIFACT:
            return {
                str(e.get("url")): str(e.get("valueString"))
                for e in ext.get("extension", [])
                if isinstance(e, dict) and isinstance(e.get("valueString"), str)
            }
    return {}


def from_fhir(bundle: Any, sink: ProblemSink | None = None, *, source: str | None = None) -> EdifactMessage:
    """A MEDVRI (from an MDM^T02 Bundle) or MEDLAB (from an ORU^R01 Bundle); the Edifact extension, when
    present, restores the envelope and the rest."""
    from mappings.hl7v2 import fhir

    sink = sink if sink is not None else ProblemSink()
    obj = fhir.from_fhir(bundle, sink, source=source)
    extra = _read_ext(bundle) if isinstance(bundle, dict) else {}
    env = None
    if "sender" in extra and "reference" in extra:
        env = Envelope(**{k: extra[k] for k in _ENVELOPE_KEYS if k in extra})
    if isinstance(obj, c.MdmMessage):
        x: EdifactMessage = from_mdm(obj, env)
        gender = extra.get("gender")
        if gender in ("male", "female", "other", "unknown"):
            x = msgspec.structs.replace(x, gender=gender)
    elif isinstance(obj, c.OruMessage):
        lab = from_oru(obj, env)
        requester = lab.requester
        if requester is not None and "requester_role" in extra:
            requester = msgspec.structs.replace(requester, role=extra["requester_role"])
        lab = msgspec.structs.replace(
            lab,
            department=extra.get("department"),
            text=extra.get("text"),
            requester=requester,
            reports=_extras(bundle, lab),
        )
        x = lab
    else:
        where = f"{source} Bundle" if source else "Bundle"
        sink.error(
            "EDI-031", where, f"a {type(obj).__name__[:3].upper()} message is neither MEDVRI nor MEDLAB"
        )
        raise InputError(sink.problems)
    if env is not None and obj.header.control_id != x.reference:
        x = msgspec.structs.replace(x, reference=obj.header.control_id)
    return x


def _extras(bundle: dict, lab: MedlabMessage) -> tuple[LabReport, ...]:
    """Test names, comments and corrections read back from the Observations, in Bundle order."""
    obs = [
        e["resource"]
        for e in bundle.get("entry", [])
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "Observation"
    ]
    by_id: dict[str, dict] = {}
    for o in obs:
        for ident in o.get("identifier", []):
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                by_id[ident["value"]] = o
    reports = []
    for rep in lab.reports:
        results = []
        for r in rep.results:
            o = by_id.get(r.measurement.id, {})
            code: dict = o["code"] if isinstance(o.get("code"), dict) else {}
            name = code.get("text") if isinstance(code.get("text"), str) else None
            notes = tuple(
                n["text"] for n in o.get("note", []) if isinstance(n, dict) and isinstance(n.get("text"), str)
            )
            results.append(
                msgspec.structs.replace(r, name=name, comments=notes, changed=o.get("status") == "corrected")
            )
        reports.append(msgspec.structs.replace(rep, results=tuple(results)))
    return tuple(reports)


def patient_of(x: EdifactMessage) -> m.Patient | m.PatientMatch:
    return x.patient if isinstance(x, MedlabMessage) else x.item.patient

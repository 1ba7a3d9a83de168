"""ORM^O01/OML^O21 and SIU^S12-S15 <-> FHIR R4 message Bundles (after the HL7 V2-to-FHIR IG).

Built on :mod:`mappings.hl7v2.fhir` (the MessageHeader, Patient, Encounter and Practitioner entries)::

    ORC+OBR[ServiceRequest]  ORC-2/-3 -> identifier PLAC/FILL, ORC-4 -> requisition, ORC-5 (else ORC-1) ->
                             status (``tables/order-status.csv``), OBR-4 -> code, OBR-5/TQ1-9 -> priority,
                             OBR-6/TQ1-7 -> occurrenceDateTime, ORC-9 -> authoredOn, ORC-12 -> requester,
                             OBR-31 -> reasonCode, NTE -> note, OBX -> supportingInfo (Observations)
    SCH[Appointment]         SCH-1/-2 -> identifier PLAC/FILL, the event (S15 cancelled) or SCH-25 ->
                             status (``tables/appointment-status.csv``), SCH-7 -> reasonCode, SCH-8 ->
                             appointmentType, SCH-11/TQ1 -> start/end, SCH-9 -> minutesDuration,
                             NTE -> comment
    AIS                      serviceType (e.g. a video consult)
    AIP/AIL/AIG              participant: Practitioner, Location, a named resource (with the patient's)

What FHIR has no element for travels in extensions named by the v2 field: ``hl7v2-order`` (ORC-1, ORC-5 as
sent, ORC-12 every orderer, OBR-15), ``hl7v2-appointment`` (SCH-6, SCH-9/-10 as sent, SCH-25 as sent, TQ1
used) and ``hl7v2-resource`` on each service and participant (segment, AIx-2, duration and units, filler
status). v2 coding systems: ``LN`` is LOINC, ``SCT`` SNOMED CT, any other name
``urn:his-gateway:hl7v2:coding-system:<name>``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mappings.fhir import observation
from mappings.fhir.common import as_dict, as_list, as_str, fdatetime
from mappings.hl7v2 import canonical as c
from mappings.hl7v2.fhir import (
    CODING_SYSTEM,
    EXT,
    V2,
    _code_of,
    _one,
    _read_ext,
    _Reader,
    _type,
    _unquote_system,
    _v2ext,
    _Writer,
    quote,
)

EXT_ORDER = EXT + "order"
EXT_APPOINTMENT = EXT + "appointment"
EXT_RESOURCE = EXT + "resource"
SYSTEMS = {"LN": "http://loinc.org", "SCT": "http://snomed.info/sct"}
"""v2 coding system names (table 0396) with a FHIR URI; any other keeps its name in a URN."""
_SYSTEMS_BACK = {v: k for k, v in SYSTEMS.items()}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine"}
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


def _service_request(w: _Writer, i: int, o: c.Order, encounter: dict | None) -> dict:
    obs = [w.add(observation.to_fhir(x, w.ctx)) for x in o.observations]  # OBX
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
        notes=as_str(appt.get("comment")),
        resources=tuple(resources),
    )
    return c.SiuMessage(header=h, appointment=appointment, patient=p, identifiers=ids, visit=r.visit())


TO_FHIR: dict[type, Callable[[Any], dict]] = {c.OrderMessage: _orders, c.SiuMessage: _appointment}
READ: dict[str, Callable[[_Reader, c.MessageHeader, dict], Any]] = {
    "ORM": _read_orders,
    "OML": _read_orders,
    "SIU": _read_appointment,
}

__all__ = ["TO_FHIR", "READ", "V2"]

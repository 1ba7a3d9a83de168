"""Deelcontact -> Composition[nl-core-SOAPReport] with SOEP lines as Observation[nl-core-SOAPReport.SOAPLine].

One Composition per deelcontact (the part of a contact about one problem), as Nictiz's conversion of the
professional summary has one report per deelcontact; one section per SOEP line, in order, each referring
to the line's Observation.

=====================  ====================================================================================
canonical Deelcontact  FHIR Composition (nl-core-SOAPReport)
=====================  ====================================================================================
(contact)              encounter (the Encounter), date (contact start), author (contact author, else the
                       practice: Composition.author is required), meta.security R when the contact is shielded
episode_id             event[0].detail[0] (Reference to the EpisodeOfCare)
icpc                   event[0].code[0].coding (ICPC-1-NL)
lines                  section[n].entry[0] -> Observation, one section per line
(fixed)                status final, type SNOMED 11591000146107 "patiëntcontactverslag",
                       title "Deelcontact ..."
=====================  ====================================================================================

=====================  ====================================================================================
canonical SoepLine     FHIR Observation (nl-core-SOAPReport.SOAPLine)
=====================  ====================================================================================
type                   code: journaalregeltypen S/O/E/P (http://fhir.nl/fhir/NamingSystem/journaalregeltypen)
                       plus the SNOMED SOAPLineName code nl-core binds (255362007, 260224007, 129265001,
                       129271007); the section repeats it
text                   valueString (absent when the text is empty: FHIR strings are never empty)
icpc                   extension ext-SOAPReport.SOAPLineCode (valueCodeableConcept, ICPC-1-NL)
=====================  ====================================================================================
"""

from __future__ import annotations

from typing import Any

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    code_in,
    coding,
    ext_value,
    fdatetime,
    icpc_code,
    meta,
    source_of,
)

_NO_CONTEXT = WriteContext()
REPORT_TYPE = {"coding": [coding(c.SNOMED, "11591000146107", "patiëntcontactverslag")]}
LINE_CODE = {
    k: {"coding": [coding(c.JOURNAAL, k, c.SOEP_DISPLAY[k]), coding(c.SNOMED, *c.SOEP_SNOMED[k])]}
    for k in "SOEP"
}
"""The ``code`` of a SOEP line's Observation and of its section, per type."""


def report_key(contact_id: str, index: int) -> str:
    return f"{contact_id}/{index}"


def line_key(contact_id: str, index: int, line: int) -> str:
    return f"soep/{contact_id}/{index}/{line}"


def line_to_fhir(
    s: m.SoepLine, ctx: WriteContext, key: str, encounter: dict | None = None, shielded: bool = False
) -> dict:
    """The nl-core-SOAPReport.SOAPLine Observation of one SOEP line."""
    obs: dict = {
        "resourceType": "Observation",
        "id": ctx.id("Observation", key),
        "meta": meta(c.P_SOAP_LINE, shielded),
    }
    if s.source_root is not None:
        obs["identifier"] = [
            {"use": "official", "system": "urn:oid:" + s.source_root, "value": s.source_ext}
        ]  # source_root, source_ext: the journal line's id in the HIS
    if s.icpc is not None:
        obs["extension"] = [
            {
                "url": c.EXT_SOAP_LINE_CODE,
                "valueCodeableConcept": {  # icpc
                    "coding": [coding(c.ICPC, s.icpc, c.display("icpc", s.icpc))]
                },
            }
        ]
    obs["status"] = "final"
    obs["code"] = LINE_CODE[s.type]  # type
    if ctx.patient is not None:
        obs["subject"] = ctx.patient
    if encounter is not None:
        obs["encounter"] = encounter
    if s.text:
        obs["valueString"] = s.text  # text
    return obs


def to_fhir(
    dc: m.Deelcontact, ctx: WriteContext = _NO_CONTEXT, *, contact: m.Contact, index: int = 0
) -> list[dict]:
    """The SOAPReport Composition of the ``index``-th deelcontact of ``contact``, then its lines."""
    cid = contact.id
    shielded = contact.shielded
    encounter = ctx.ref("Encounter", cid)
    comp: dict = {
        "resourceType": "Composition",
        "id": ctx.id("Composition", report_key(cid, index)),
        "meta": meta(c.P_SOAP_REPORT, shielded),
        "status": "final",
        "type": REPORT_TYPE,
    }
    if ctx.patient is not None:
        comp["subject"] = ctx.patient
    comp["encounter"] = encounter  # the contact
    comp["date"] = fdatetime(contact.start)  # Contact.start
    if contact.author_id is not None:
        comp["author"] = [ctx.ref("Practitioner", contact.author_id)]  # Contact.author_id
    else:
        comp["author"] = [ctx.practice or {"display": "onbekend"}]  # required; the practice speaks for it
    comp["title"] = f"Deelcontact {dc.icpc}" if dc.icpc else "Deelcontact"
    if dc.icpc is not None or dc.episode_id is not None:
        event: dict = {}
        if dc.icpc is not None:
            event["code"] = [{"coding": [coding(c.ICPC, dc.icpc, c.display("icpc", dc.icpc))]}]  # icpc
        if dc.episode_id is not None:
            event["detail"] = [ctx.ref("EpisodeOfCare", dc.episode_id)]  # episode_id
        comp["event"] = [event]
    out = [comp]
    sections = []
    for j, line in enumerate(dc.lines):  # lines
        obs = line_to_fhir(line, ctx, line_key(cid, index, j), encounter, shielded)
        out.append(obs)
        sections.append(
            {
                "title": line.type,
                "code": LINE_CODE[line.type],
                "entry": [{"reference": "urn:uuid:" + obs["id"]}],
            }
        )
    if sections:
        comp["section"] = sections
    return out


def line_from_fhir(
    obs: dict, ctx: ReadContext | None = None, where: str = "Observation"
) -> m.SoepLine | None:
    """The canonical SOEP line of a SOAPLine Observation."""
    ctx = ctx or ReadContext()
    kind: Any = code_in(obs.get("code"), (c.JOURNAAL,))
    if kind is None:
        snomed = code_in(obs.get("code"), (c.SNOMED,))
        kind = c.SOEP_FROM_SNOMED.get(snomed or "")
    if kind not in ("S", "O", "E", "P"):
        ctx.error("FHIR-020", f"{where}.code", "a SOEP line needs a journaalregeltype S, O, E or P")
        return None
    icpc = icpc_code(ext_value(obs, c.EXT_SOAP_LINE_CODE, "valueCodeableConcept"), f"{where}.extension", ctx)
    text = obs.get("valueString", "")
    if not isinstance(text, str):
        ctx.error("FHIR-021", f"{where}.valueString", "the line's text is a string")
        return None
    return m.SoepLine(type=kind, text=text, icpc=icpc, **source_of(obs))


def is_line(obs: dict) -> bool:
    """An Observation that is a SOEP line (journaalregeltype or SOAPLineName code)."""
    code = obs.get("code")
    return (
        code_in(code, (c.JOURNAAL,)) is not None or (code_in(code, (c.SNOMED,)) or "") in c.SOEP_FROM_SNOMED
    )


def from_fhir(comp: dict, ctx: ReadContext | None = None, where: str = "Composition") -> m.Deelcontact | None:
    """The canonical deelcontact of a SOAPReport Composition and the Observations its sections refer to."""
    ctx = ctx or ReadContext()
    events = as_list(comp.get("event"))
    episode_id = icpc = None
    if events:
        event = as_dict(events[0])
        for k, cc in enumerate(as_list(event.get("code"))):
            icpc = icpc or icpc_code(cc, f"{where}.event[0].code[{k}]", ctx)
        details = as_list(event.get("detail"))
        if details:
            episode_id = ctx.local(details[0], f"{where}.event[0].detail[0]", ("EpisodeOfCare",))
    lines = []
    for k, section in enumerate(as_list(comp.get("section"))):
        entries = as_list(as_dict(section).get("entry"))
        if not entries:
            ctx.warning("FHIR-025", f"{where}.section[{k}]", "a section without an entry is not read")
            continue
        for n, ref in enumerate(entries):
            i = ctx.resolve(ref, f"{where}.section[{k}].entry[{n}]", ("Observation",))
            if i is None:
                continue
            line = line_from_fhir(ctx.resource(i), ctx, ctx.at(i))
            if line is not None:
                lines.append(line)
            ctx.used.add(i)
    try:
        return m.Deelcontact(episode_id=episode_id, icpc=icpc, lines=tuple(lines))
    except ValueError as exc:  # pragma: no cover - every part was checked above
        ctx.error("FHIR-030", where, f"not a valid deelcontact: {exc}")
        return None

"""Episode -> EpisodeOfCare[nl-core-EpisodeOfCare] + Condition[nl-core-Problem] (+ an attention Flag).

=================  ==========================================================================================
canonical          FHIR
=================  ==========================================================================================
id                 EpisodeOfCare.identifier (system urn:his-gateway:id:episode)
source_root/ext    EpisodeOfCare.identifier (system urn:oid:<root>, value the extension), first
title              EpisodeOfCare extension ext-EpisodeOfCare.EpisodeOfCareName (valueString); also
                   Condition.code.text
icpc               Condition.code.coding (http://hl7.org/fhir/sid/icpc-1-nl), the Condition being
                   EpisodeOfCare.diagnosis[0].condition
start, end         EpisodeOfCare.period; also Condition.onsetDateTime / abatementDateTime
(end)              EpisodeOfCare.status (active / finished); Condition.clinicalStatus (active / inactive)
attention          a Flag (nl-core-Alert) "Attentiewaarde" about the episode: extension flag-detail
                   (valueReference to the EpisodeOfCare), as Nictiz's conversion of the professional summary
                   does; its status is active, also for a closed episode: the flag is why the episode is
                   still shown (a receiver that shows active flags only would hide it otherwise)
shielded           meta.security v3 Confidentiality R (restricted), on all three resources
=================  ==========================================================================================

Every episode gets its Condition, with or without an ICPC: the problem the episode is about is the
Condition's to say (nl-core-EpisodeOfCare diagnosis.condition), and a reader expecting one per episode
finds it. The Condition's category is SNOMED 282291009 "Diagnosis" (as Nictiz's conversion).
"""

from __future__ import annotations

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    coding,
    ext_value,
    fdate,
    icpc_code,
    identifiers,
    is_shielded,
    meta,
    pdate,
    source_of,
)

KIND = "episode"
_NO_CONTEXT = WriteContext()
_DIAGNOSIS = [{"coding": [coding(c.SNOMED, "282291009", "Diagnosis")]}]
_ACTIVE = {"coding": [coding(c.CONDITION_CLINICAL, "active", "Active")]}
_INACTIVE = {"coding": [coding(c.CONDITION_CLINICAL, "inactive", "Inactive")]}
_ALERT_CATEGORY = [{"coding": [coding(c.LOINC, "74018-3", "Alert")]}]


def flag_key(episode_id: str) -> str:
    """The key of an episode's attention Flag (local ids hold no ``/``, so it never meets another key)."""
    return "episode/" + episode_id


def to_fhir(e: m.Episode, ctx: WriteContext = _NO_CONTEXT) -> list[dict]:
    """EpisodeOfCare, its Condition and, with the attention flag, a Flag."""
    period: dict = {}
    if e.start is not None:
        period["start"] = fdate(e.start)  # start
    if e.end is not None:
        period["end"] = fdate(e.end)  # end
    eoc: dict = {
        "resourceType": "EpisodeOfCare",
        "id": ctx.id("EpisodeOfCare", e.id),
        "meta": meta(c.P_EPISODE, e.shielded),
    }
    if e.title:
        eoc["extension"] = [{"url": c.EXT_EPISODE_NAME, "valueString": e.title}]  # title
    eoc["identifier"] = identifiers(KIND, e)  # source_root/ext, id
    eoc["status"] = "active" if e.end is None else "finished"  # end
    eoc["diagnosis"] = [{"condition": ctx.ref("Condition", e.id)}]  # icpc (via the Condition)
    if ctx.patient is not None:
        eoc["patient"] = ctx.patient
    if ctx.practice is not None:
        eoc["managingOrganization"] = ctx.practice
    if period:
        eoc["period"] = period
    cond: dict = {
        "resourceType": "Condition",
        "id": ctx.id("Condition", e.id),
        "meta": meta(c.P_PROBLEM, e.shielded),
        "clinicalStatus": _ACTIVE if e.end is None else _INACTIVE,
        "category": _DIAGNOSIS,
    }
    code: dict = {}
    if e.icpc is not None:
        code["coding"] = [coding(c.ICPC, e.icpc, c.display("icpc", e.icpc))]  # icpc
    if e.title:
        code["text"] = e.title  # title
    if code:
        cond["code"] = code
    if ctx.patient is not None:
        cond["subject"] = ctx.patient
    if e.start is not None:
        cond["onsetDateTime"] = period["start"]  # start
    if e.end is not None:
        cond["abatementDateTime"] = period["end"]  # end
    if not e.attention:
        return [eoc, cond]
    flag: dict = {
        "resourceType": "Flag",
        "id": ctx.id("Flag", flag_key(e.id)),
        "meta": meta(c.P_ALERT, e.shielded),
        "extension": [
            {"url": c.EXT_FLAG_DETAIL, "valueReference": ctx.ref("EpisodeOfCare", e.id)}
        ],  # attention
        "status": "active",  # the attention flag itself is active: it is why a closed episode is shown
        "category": _ALERT_CATEGORY,
        "code": {"text": "Attentiewaarde: " + (e.title or e.icpc or e.id)},
    }
    if ctx.patient is not None:
        flag["subject"] = ctx.patient
    return [eoc, cond, flag]


def attention_target(res: dict) -> dict | None:
    """The Reference of a Flag that carries an episode's attention flag (its flag-detail extension)."""
    ref = ext_value(res, c.EXT_FLAG_DETAIL, "valueReference")
    return ref if isinstance(ref, dict) else None


def from_fhir(
    res: dict,
    ctx: ReadContext | None = None,
    where: str = "EpisodeOfCare",
    condition: tuple[int, dict] | None = None,
    attention: bool = False,
    fallback_id: str = "ep",
) -> m.Episode | None:
    """The canonical episode of an EpisodeOfCare, its Condition (entry index, resource) and attention."""
    ctx = ctx or ReadContext()
    eid = ctx.local_id(res, KIND, where, fallback_id)
    period = as_dict(res.get("period"))
    start = pdate(period.get("start"), f"{where}.period.start", ctx)
    end = pdate(period.get("end"), f"{where}.period.end", ctx)
    title = as_str(ext_value(res, c.EXT_EPISODE_NAME, "valueString"))
    icpc = None
    shielded = is_shielded(res)
    if condition is not None:
        i, cond = condition
        code = as_dict(cond.get("code"))
        icpc = icpc_code(code, f"{ctx.at(i)}.code", ctx)
        if title is None:
            title = as_str(code.get("text")) or None
        if icpc is None and as_list(code.get("coding")):
            ctx.warning(
                "FHIR-023",
                f"{ctx.at(i)}.code",
                "the problem has no ICPC-1-NL code; its other codes are not kept",
            )
        if start is None:
            start = pdate(cond.get("onsetDateTime"), f"{ctx.at(i)}.onsetDateTime", ctx)
        if end is None:
            end = pdate(cond.get("abatementDateTime"), f"{ctx.at(i)}.abatementDateTime", ctx)
        shielded = shielded or is_shielded(cond)
        ctx.used.add(i)
    elif res.get("status") == "finished" and end is None:
        ctx.warning("FHIR-024", f"{where}.status", "a finished episode without an end date reads as active")
    try:
        return m.Episode(
            id=eid,
            title=title or "",
            icpc=icpc,
            start=start,
            end=end,
            attention=attention,
            shielded=shielded,
            **source_of(res),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid episode: {exc}")
        return None

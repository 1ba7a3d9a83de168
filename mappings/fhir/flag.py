"""Flags: contra-indications [nl-core-MedicationContraIndication] and attention notes [nl-core-Alert].

==================  =========================================================================================
canonical           FHIR Flag (nl-core-MedicationContraIndication)
==================  =========================================================================================
ContraIndication    identifier (system urn:his-gateway:id:contraindication)
.id
.text               code.text
.code               code.coding (G-Standaard thesaurus 40, urn:oid:2.16.840.1.113883.2.4.4.1.902.40)
.start, .end        period.start / period.end; status active while there is no end, else inactive
(fixed)             category SNOMED 140401000146105 "contra-indicatie met betrekking op medicatiebewaking"
==================  =========================================================================================

==================  =========================================================================================
canonical           FHIR Flag (nl-core-Alert)
==================  =========================================================================================
AttentionNote.id    identifier (system urn:his-gateway:id:attention-note)
.text               code.text
.date               period.start
(fixed)             status active; category LOINC 74018-3 "Alert"
==================  =========================================================================================

A Flag's ``code`` is required: a contra-indication with neither text nor code (the model allows it) is
written with a data-absent-reason extension in place of the code.
An episode's attention flag is a Flag as well, written and read by :mod:`mappings.fhir.episode`.
"""

from __future__ import annotations

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_str,
    code_in,
    code_value,
    coding,
    episode_context,
    episode_of,
    fdate,
    has_profile,
    identifiers,
    is_shielded,
    meta,
    pdate,
    source_of,
    table_code,
)

CI_KIND = "contraindication"
NOTE_KIND = "attention-note"
_NO_CONTEXT = WriteContext()
CI_SNOMED = "140401000146105"
_CI_CATEGORY = [
    {"coding": [coding(c.SNOMED, CI_SNOMED, "contra-indicatie met betrekking op medicatiebewaking")]}
]
_ALERT_CATEGORY = [{"coding": [coding(c.LOINC, "74018-3", "Alert")]}]
_ABSENT = {"extension": [{"url": c.EXT_DATA_ABSENT, "valueCode": "unknown"}]}


def ci_key(ci_id: str) -> str:
    return "ci/" + ci_id


def note_key(note_id: str) -> str:
    return "note/" + note_id


def contraindication_to_fhir(x: m.ContraIndication, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The nl-core-MedicationContraIndication Flag of a contra-indication."""
    res: dict = {
        "resourceType": "Flag",
        "id": ctx.id("Flag", ci_key(x.id)),
        "meta": meta(c.P_CONTRA_INDICATION, x.shielded),  # shielded
        "identifier": identifiers(CI_KIND, x),  # source_root/ext, id
        "status": "active" if x.end is None else "inactive",
        "category": _CI_CATEGORY,
    }
    code: dict = {}
    if x.code is not None:
        code["coding"] = [code_value(c.THESAURUS40, x.code, c.display("thesaurus40", x.code))]  # code
    if x.text:
        code["text"] = x.text  # text
    res["code"] = code or _ABSENT
    if ctx.patient is not None:
        res["subject"] = ctx.patient
    if x.episode_id is not None:
        res["extension"] = [episode_context(ctx, x.episode_id)]  # episode_id
    period = {}
    if x.start is not None:
        period["start"] = fdate(x.start)  # start
    if x.end is not None:
        period["end"] = fdate(x.end)  # end
    if period:
        res["period"] = period
    return res


def note_to_fhir(x: m.AttentionNote, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The nl-core-Alert Flag of an attention note."""
    res: dict = {
        "resourceType": "Flag",
        "id": ctx.id("Flag", note_key(x.id)),
        "meta": meta(c.P_ALERT, x.shielded),  # shielded
        "identifier": identifiers(NOTE_KIND, x),  # source_root/ext, id
        "status": "active",
        "category": _ALERT_CATEGORY,
        "code": {"text": x.text},
    }  # text
    if ctx.patient is not None:
        res["subject"] = ctx.patient
    if x.date is not None:
        res["period"] = {"start": fdate(x.date)}  # date
    if x.episode_id is not None:
        res["extension"] = [episode_context(ctx, x.episode_id)]  # episode_id
    return res


def is_contraindication(res: dict) -> bool:
    """A contra-indication Flag: by its profile, its category or a thesaurus 40 code."""
    return (
        has_profile(res, c.P_CONTRA_INDICATION)
        or code_in(res.get("category"), (c.SNOMED,)) == CI_SNOMED
        or code_in(res.get("code"), (c.THESAURUS40,)) is not None
    )


def contraindication_from_fhir(
    res: dict, ctx: ReadContext | None = None, where: str = "Flag", fallback_id: str = "ci"
) -> m.ContraIndication | None:
    """The canonical contra-indication of a Flag."""
    ctx = ctx or ReadContext()
    cid = ctx.local_id(res, CI_KIND, where, fallback_id)
    code = as_dict(res.get("code"))
    period = as_dict(res.get("period"))
    try:
        return m.ContraIndication(
            id=cid,
            text=as_str(code.get("text")) or "",
            code=table_code(code, c.THESAURUS40, f"{where}.code", ctx),
            start=pdate(period.get("start"), f"{where}.period.start", ctx),
            end=pdate(period.get("end"), f"{where}.period.end", ctx),
            episode_id=episode_of(res, ctx, where),
            shielded=is_shielded(res),
            **source_of(res),
        )
    except ValueError as exc:  # pragma: no cover - every part was checked above
        ctx.error("FHIR-030", where, f"not a valid contra-indication: {exc}")
        return None


def note_from_fhir(
    res: dict, ctx: ReadContext | None = None, where: str = "Flag", fallback_id: str = "att"
) -> m.AttentionNote | None:
    """The canonical attention note of a Flag."""
    ctx = ctx or ReadContext()
    nid = ctx.local_id(res, NOTE_KIND, where, fallback_id)
    text = as_str(as_dict(res.get("code")).get("text"))
    if not text or not text.strip():
        ctx.error("FHIR-020", f"{where}.code.text", "an attention note needs its text")
        return None
    return m.AttentionNote(
        id=nid,
        text=text,
        date=pdate(as_dict(res.get("period")).get("start"), f"{where}.period.start", ctx),
        episode_id=episode_of(res, ctx, where),
        shielded=is_shielded(res),
        **source_of(res),
    )

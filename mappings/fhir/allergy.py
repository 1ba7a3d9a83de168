"""Intolerance -> AllergyIntolerance[nl-core-AllergyIntolerance], coded by G-Standaard thesaurus 122.

==================  =========================================================================================
canonical           FHIR AllergyIntolerance
==================  =========================================================================================
id                  identifier (system urn:his-gateway:id:intolerance)
text                code.text
code                code.coding (G-Standaard thesaurus 122 "ongewenste medicatiegroepen",
                    urn:oid:2.16.840.1.113883.2.4.4.1.902.122)
start               onsetDateTime (a date)
status              clinicalStatus (allergyintolerance-clinical active / inactive)
episode_id          extension ext-Context-EpisodeOfCare (valueReference)
shielded            meta.security v3 Confidentiality R
source_root/ext     identifier (system urn:oid:<root>, value the extension), first
(fixed)             category medication: thesaurus 122 names medication groups
==================  =========================================================================================
"""

from __future__ import annotations

from typing import Any

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
    identifiers,
    is_shielded,
    meta,
    pdate,
    source_of,
    table_code,
)

KIND = "intolerance"
_NO_CONTEXT = WriteContext()
_STATUS = {s: {"coding": [coding(c.ALLERGY_CLINICAL, s, s.capitalize())]} for s in ("active", "inactive")}


def to_fhir(x: m.Intolerance, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The nl-core-AllergyIntolerance of an intolerance."""
    res: dict = {
        "resourceType": "AllergyIntolerance",
        "id": ctx.id("AllergyIntolerance", x.id),
        "meta": meta(c.P_ALLERGY, x.shielded),  # shielded
        "identifier": identifiers(KIND, x),  # source_root/ext, id
        "clinicalStatus": _STATUS[x.status],
        "category": ["medication"],
    }  # status
    code: dict = {}
    if x.code is not None:
        code["coding"] = [code_value(c.THESAURUS122, x.code, c.display("thesaurus122", x.code))]  # code
    if x.text:
        code["text"] = x.text  # text
    if code:
        res["code"] = code
    if ctx.patient is not None:
        res["patient"] = ctx.patient
    if x.start is not None:
        res["onsetDateTime"] = fdate(x.start)  # start
    if x.episode_id is not None:
        res["extension"] = [episode_context(ctx, x.episode_id)]  # episode_id
    return res


def from_fhir(
    res: dict, ctx: ReadContext | None = None, where: str = "AllergyIntolerance", fallback_id: str = "int"
) -> m.Intolerance | None:
    """The canonical intolerance of an AllergyIntolerance."""
    ctx = ctx or ReadContext()
    iid = ctx.local_id(res, KIND, where, fallback_id)
    code = as_dict(res.get("code"))
    status: Any = code_in(res.get("clinicalStatus"), (c.ALLERGY_CLINICAL,))
    if status == "resolved":
        status = "inactive"
    if status not in ("active", "inactive"):
        ctx.warning("FHIR-023", f"{where}.clinicalStatus", f"clinical status {status!r} read as active")
        status = "active"
    onset = None
    if "onsetDateTime" in res:
        onset = pdate(res["onsetDateTime"], f"{where}.onsetDateTime", ctx)
    thesaurus = table_code(code, c.THESAURUS122, f"{where}.code", ctx)
    if thesaurus is None and code.get("coding"):
        ctx.warning(
            "FHIR-023", f"{where}.code", "an intolerance code outside G-Standaard thesaurus 122 is not kept"
        )
    try:
        return m.Intolerance(
            id=iid,
            text=as_str(code.get("text")) or "",
            code=thesaurus,
            start=onset,
            status=status,
            episode_id=episode_of(res, ctx, where),
            shielded=is_shielded(res),
            **source_of(res),
        )
    except ValueError as exc:  # pragma: no cover - every part was checked above
        ctx.error("FHIR-030", where, f"not a valid intolerance: {exc}")
        return None

"""Contact -> Encounter[nl-core-Encounter] (DOMAIN.md §4, §6); its deelcontacten in :mod:`mappings.fhir.soep`.

=================  ==========================================================================================
canonical Contact  FHIR Encounter (nl-core-Encounter)
=================  ==========================================================================================
id                 identifier (system urn:his-gateway:id:contact)
start, end         period.start / period.end (dateTime with the Amsterdam offset)
contact_type       type[0].coding (NHG Tabel 14 contactwijze)
author_id          participant[0].individual (Practitioner), type v3 ParticipationType PPRF
video              extension urn:his-gateway:fhir:extension:video-consult with sub-extensions application
                   (valueString), connectionQuality (valueCode good / moderate / poor), patientDevice
                   (valueString), identityVerified (valueBoolean, always written)
shielded           meta.security v3 Confidentiality R
deelcontacten      one nl-core-SOAPReport Composition each, ``encounter`` pointing here, in order
(fixed)            status finished (the journal records contacts that took place); class v3 ActCode AMB,
                   VR (virtual) for a video consult; episodeOfCare: the episodes of the deelcontacten
=================  ==========================================================================================

The class is not derived from the Tabel 14 code: the shipped table subset has no confirmed meaning for
most codes (``mappings/codes/README.md``), and the class is not read back.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir import soep
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    code_value,
    coding,
    ext_string,
    extension,
    fdatetime,
    identifiers,
    is_shielded,
    meta,
    pdatetime,
    source_of,
    string_of,
    table_code,
)

KIND = "contact"
_NO_CONTEXT = WriteContext()
_AMB = coding(c.V3_ACT_CODE, "AMB", "ambulatory")
_VR = coding(c.V3_ACT_CODE, "VR", "virtual")
_PPRF = [{"coding": [coding(c.V3_PARTICIPATION, "PPRF", "primary performer")]}]
_QUALITIES = ("good", "moderate", "poor")


def _video(v: m.VideoDetails) -> dict:
    parts: list[dict] = []
    if v.application is not None:
        parts.append(ext_string("application", v.application))  # application
    if v.connection_quality is not None:
        parts.append({"url": "connectionQuality", "valueCode": v.connection_quality})  # connection_quality
    if v.patient_device is not None:
        parts.append(ext_string("patientDevice", v.patient_device))  # patient_device
    parts.append({"url": "identityVerified", "valueBoolean": v.identity_verified})  # identity_verified
    return {"url": c.EXT_VIDEO, "extension": parts}


def to_fhir(k: m.Contact, ctx: WriteContext = _NO_CONTEXT) -> list[dict]:
    """The Encounter of a contact, followed by each deelcontact's Composition and SOEP Observations."""
    enc: dict = {
        "resourceType": "Encounter",
        "id": ctx.id("Encounter", k.id),
        "meta": meta(c.P_ENCOUNTER, k.shielded),
    }
    if k.video is not None:
        enc["extension"] = [_video(k.video)]  # video
    enc["identifier"] = identifiers(KIND, k)  # source_root/ext, id
    enc["status"] = "finished"
    enc["class"] = _VR if k.video is not None else _AMB
    if k.contact_type is not None:
        enc["type"] = [
            {"coding": [code_value(c.TABEL14, k.contact_type, c.display("tabel14", k.contact_type))]}
        ]  # contact_type
    if ctx.patient is not None:
        enc["subject"] = ctx.patient
    episodes = list(dict.fromkeys(dc.episode_id for dc in k.deelcontacten if dc.episode_id is not None))
    if episodes:
        enc["episodeOfCare"] = [ctx.ref("EpisodeOfCare", e) for e in episodes]
    if k.author_id is not None:
        enc["participant"] = [
            {"type": _PPRF, "individual": ctx.ref("Practitioner", k.author_id)}
        ]  # author_id
    period = {"start": fdatetime(k.start)}  # start
    if k.end is not None:
        period["end"] = fdatetime(k.end)  # end
    enc["period"] = period
    out = [enc]
    for n, dc in enumerate(k.deelcontacten):  # deelcontacten
        out += soep.to_fhir(dc, ctx, contact=k, index=n)
    return out


def _read_video(ext: dict, where: str, ctx: ReadContext) -> m.VideoDetails | None:
    values: dict = {}
    for n, part in enumerate(as_list(ext.get("extension"))):
        part = as_dict(part)
        url = part.get("url")
        if url == "application":
            values["application"] = string_of(part)
        elif url == "patientDevice":
            values["patient_device"] = string_of(part)
        elif url == "connectionQuality":
            q = part.get("valueCode")
            if q in _QUALITIES:
                values["connection_quality"] = q
            else:
                ctx.warning(
                    "FHIR-024",
                    f"{where}.extension[{n}]",
                    f"connection quality {q!r} is not good, moderate or poor; not kept",
                )
        elif url == "identityVerified":
            values["identity_verified"] = part.get("valueBoolean") is True
        else:
            ctx.warning("FHIR-024", f"{where}.extension[{n}]", f"video consult detail {url!r} not kept")
    return m.VideoDetails(**values)


def from_fhir(
    enc: dict,
    ctx: ReadContext | None = None,
    where: str = "Encounter",
    reports: Sequence[tuple[int, dict]] = (),
    fallback_id: str = "c",
) -> m.Contact | None:
    """The canonical contact of an Encounter and its SOAPReport Compositions (entry index, resource)."""
    ctx = ctx or ReadContext()
    cid = ctx.local_id(enc, KIND, where, fallback_id)
    period = as_dict(enc.get("period"))
    if "start" not in period:  # reported; the rest is still read, so that every problem is found
        ctx.error("FHIR-020", f"{where}.period.start", "a contact needs its start")
    start = pdatetime(period.get("start"), f"{where}.period.start", ctx)
    end = pdatetime(period.get("end"), f"{where}.period.end", ctx)
    contact_type = None
    for n, t in enumerate(as_list(enc.get("type"))):
        contact_type = table_code(t, c.TABEL14, f"{where}.type[{n}]", ctx)
        if contact_type is not None:
            break
        ctx.warning("FHIR-023", f"{where}.type[{n}]", "contact type without an NHG Tabel 14 code not kept")
    author = None
    for n, p in enumerate(as_list(enc.get("participant"))):
        ind = as_dict(p).get("individual")
        if ind is not None:
            author = ctx.local(
                ind, f"{where}.participant[{n}].individual", ("Practitioner", "PractitionerRole")
            )
            if author is not None:
                break
    video_ext = extension(enc, c.EXT_VIDEO)
    video = _read_video(video_ext, f"{where}.extension", ctx) if video_ext is not None else None
    deelcontacten = []
    for i, comp in reports:
        dc = soep.from_fhir(comp, ctx, ctx.at(i))
        if dc is not None:
            deelcontacten.append(dc)
        ctx.used.add(i)
    if start is None:
        return None
    try:
        return m.Contact(
            id=cid,
            start=start,
            end=end,
            contact_type=contact_type,
            author_id=author,
            deelcontacten=tuple(deelcontacten),
            video=video,
            shielded=is_shielded(enc),
            **source_of(enc),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid contact: {exc}")
        return None

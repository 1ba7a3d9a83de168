"""Correspondence -> Communication[hg-CorrespondenceItem]; a postbox item as one too (DOMAIN.md §3, §6).

hg-CorrespondenceItem is a *draft* primary-care profile (DOMAIN.md §9); its canonical URL is assumed to
follow the nl-core base. The letter's text is carried unchanged (an incoming letter is never altered).

==================  =========================================================================================
canonical           FHIR Communication
==================  =========================================================================================
id                  identifier (system urn:his-gateway:id:correspondence)
date, direction     received (direction in) or sent (direction out): which of the two is present says the
                    direction
text                payload[0].contentString
kind                category[0].coding (NHG Tabel 69 soort correspondentie)
subject             topic.text
sender_name         sender.display (a logical reference: the HIS knows the sender by name only)
sender_discipline   extension urn:his-gateway:fhir:extension:sender-discipline (valueString)
addressee_name      recipient[0].display
episode_id          about[0] (Reference to the EpisodeOfCare)
sender_reference    identifier (system urn:his-gateway:id:sender-reference): the sender's kenmerk
(fixed)             status completed; subject the Patient
==================  =========================================================================================

A **postbox item** (feedback, a consult answer, a letter, a result delivered to the practice) is one
Communication holding its correspondence as above, plus:

==================  =========================================================================================
PostboxItem         FHIR Communication
==================  =========================================================================================
id                  identifier (system urn:his-gateway:id:postbox-item)
kind                category[1].coding (system urn:his-gateway:postbox-item-kind)
created             extension urn:his-gateway:fhir:extension:postbox-created (valueDateTime)
practice_agb        recipient (logical reference: type Organization, AGB identifier)
patient             contained Patient ``#patient`` (the Communication's subject): BSN, birthDate, name and the
                    sender's patient reference (identifier urn:his-gateway:id:sender-patient-reference)
sender_organization extension urn:his-gateway:fhir:extension:sender-organization (valueString)
filing              payload[1].contentReference -> contained Composition ``#filing`` (nl-core-SOAPReport,
                    status preliminary: a concept entry the GP reviews) with its SOEP lines as contained
                    Observations ``#line<n>``; its episode a logical reference (event.detail identifier
                    urn:his-gateway:id:episode); the journal entry's date is Composition.date, its contact
                    type a contained Encounter ``#contact`` (NHG Tabel 14)
manual_reason       extension urn:his-gateway:fhir:extension:manual-filing-reason (valueString)
==================  =========================================================================================
"""

from __future__ import annotations

from typing import Any

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir import soep
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    code_in,
    code_value,
    coding,
    ext_string,
    ext_text,
    ext_value,
    fdatetime,
    identifiers,
    is_shielded,
    local_identifier,
    meta,
    pdate,
    pdatetime,
    put,
    source_of,
    table_code,
    take,
)
from mappings.fhir.datatypes import human_names, person_name

KIND = "correspondence"
ITEM_KIND = "postbox-item"
_NO_CONTEXT = WriteContext()
_KINDS = ("feedback", "consult-answer", "letter", "result")


def to_fhir(k: m.Correspondence, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The hg-CorrespondenceItem Communication of a letter or message in the record."""
    res: dict = {
        "resourceType": "Communication",
        "id": ctx.id("Communication", k.id),
        "meta": meta(c.P_CORRESPONDENCE, k.shielded),  # shielded
    }
    if k.sender_discipline is not None:
        res["extension"] = [ext_string(c.EXT_SENDER_DISCIPLINE, k.sender_discipline)]  # sender_discipline
    ids = identifiers(KIND, k)  # source_root/ext, id
    if k.sender_reference is not None:
        ref: dict = {"system": c.SENDER_REFERENCE}
        put(ref, "value", k.sender_reference)  # sender_reference
        ids.append(ref)
    res["identifier"] = ids
    res["status"] = "completed"
    if k.kind is not None:
        res["category"] = [{"coding": [code_value(c.TABEL69, k.kind, c.display("tabel69", k.kind))]}]  # kind
    if ctx.patient is not None:
        res["subject"] = ctx.patient
    if k.subject is not None:
        res["topic"] = {}
        put(res["topic"], "text", k.subject)  # subject
    if k.episode_id is not None:
        res["about"] = [ctx.ref("EpisodeOfCare", k.episode_id)]  # episode_id
    res["sent" if k.direction == "out" else "received"] = fdatetime(k.date)  # date, direction
    if k.addressee_name is not None:
        res["recipient"] = [{}]
        put(res["recipient"][0], "display", k.addressee_name)  # addressee_name
    if k.sender_name is not None:
        res["sender"] = {}
        put(res["sender"], "display", k.sender_name)  # sender_name
    if k.text:
        res["payload"] = [{"contentString": k.text}]  # text
    return res


def from_fhir(
    res: dict,
    ctx: ReadContext | None = None,
    where: str = "Communication",
    fallback_id: str = "corr",
    episode_id: str | None = None,
) -> m.Correspondence | None:
    """The canonical correspondence of a Communication (``episode_id`` overrides ``about``)."""
    ctx = ctx or ReadContext()
    kid = ctx.local_id(res, KIND, where, fallback_id)
    direction: Any
    if "received" in res:
        direction, date = "in", pdatetime(res["received"], f"{where}.received", ctx)
    elif "sent" in res:
        direction, date = "out", pdatetime(res["sent"], f"{where}.sent", ctx)
    else:
        ctx.error(
            "FHIR-020", f"{where}.received", "a letter needs the time it was received (in) or sent (out)"
        )
        return None
    kind = None
    for n, cc in enumerate(as_list(res.get("category"))):
        kind = kind if kind is not None else table_code(cc, c.TABEL69, f"{where}.category[{n}]", ctx)
    reference = None
    for ident in as_list(res.get("identifier")):
        ident = as_dict(ident)
        if ident.get("system") == c.SENDER_REFERENCE:
            reference = take(ident, "value")
    text = ""
    for n, payload in enumerate(as_list(res.get("payload"))):
        payload = as_dict(payload)
        if "contentString" in payload:
            text = as_str(payload["contentString"]) or ""
            break
        if "contentAttachment" in payload:
            ctx.warning(
                "FHIR-024",
                f"{where}.payload[{n}]",
                "an attachment is not part of the letter's text; not kept (see DocumentReference)",
            )
    recipients = [r for r in as_list(res.get("recipient")) if isinstance(r, dict) and "identifier" not in r]
    about = as_list(res.get("about"))
    if episode_id is None and about:
        episode_id = ctx.local(about[0], f"{where}.about[0]", ("EpisodeOfCare",))
    if date is None:
        return None
    try:
        return m.Correspondence(
            id=kid,
            date=date,
            direction=direction,
            text=text,
            kind=kind,
            subject=take(res.get("topic"), "text"),
            sender_name=take(res.get("sender"), "display"),
            sender_discipline=ext_text(res, c.EXT_SENDER_DISCIPLINE),
            addressee_name=take(recipients[0], "display") if recipients else None,
            episode_id=episode_id,
            sender_reference=reference,
            shielded=is_shielded(res),
            **source_of(res),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid letter: {exc}")
        return None


# --------------------------------------------------------------------------- postbox items

_PATIENT = {"reference": "#patient"}


def _match_patient(p: m.PatientMatch) -> dict:
    pat: dict = {"resourceType": "Patient", "id": "patient", "meta": meta(c.P_PATIENT)}
    ids = []
    if p.bsn is not None:
        ids.append({"use": "official", "system": c.BSN, "value": p.bsn})  # patient.bsn
    if p.sender_reference is not None:
        ref: dict = {"system": c.SENDER_PATIENT_REFERENCE}
        put(ref, "value", p.sender_reference)  # patient.sender_reference
        ids.append(ref)
    if ids:
        pat["identifier"] = ids
    if p.name is not None:
        pat["name"] = human_names(p.name)  # patient.name
    if p.birth_date is not None:
        pat["birthDate"] = p.birth_date.isoformat()  # patient.birth_date
    return pat


def _filing(f: m.AutoFiling, item: m.PostboxItem) -> list[dict]:
    j = f.journal_entry
    comp: dict = {
        "resourceType": "Composition",
        "id": "filing",
        "meta": meta(c.P_SOAP_REPORT),
        "status": "preliminary",
        "type": soep.REPORT_TYPE,
        "subject": _PATIENT,
    }
    out = [comp]
    if j.contact_type is not None:
        comp["encounter"] = {"reference": "#contact"}
        out.append(
            {
                "resourceType": "Encounter",
                "id": "contact",
                "meta": meta(c.P_ENCOUNTER),
                "status": "finished",
                "class": {"system": c.V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
                "type": [
                    {"coding": [coding(c.TABEL14, j.contact_type, c.display("tabel14", j.contact_type))]}
                ],
                "subject": _PATIENT,
                "period": {"start": fdatetime(j.date)},
            }
        )  # journal_entry.contact_type
    comp["date"] = fdatetime(j.date)  # journal_entry.date
    comp["author"] = [{"display": item.sender_organization or item.correspondence.sender_name or "afzender"}]
    comp["title"] = f"Deelcontact {j.icpc}" if j.icpc else "Deelcontact"
    event: dict = {}
    if j.icpc is not None:
        event["code"] = [
            {"coding": [coding(c.ICPC, j.icpc, c.display("icpc", j.icpc))]}
        ]  # journal_entry.icpc
    event["detail"] = [
        {"type": "EpisodeOfCare", "identifier": local_identifier("episode", f.episode_id)}
    ]  # episode_id
    comp["event"] = [event]
    sections = []
    for n, line in enumerate(j.lines):  # journal_entry.lines
        obs = soep.line_to_fhir(line, _NO_CONTEXT, "", None)
        obs["id"] = f"line{n}"
        obs["subject"] = _PATIENT
        out.append(obs)
        sections.append(
            {"title": line.type, "code": soep.LINE_CODE[line.type], "entry": [{"reference": f"#line{n}"}]}
        )
    if sections:
        comp["section"] = sections
    return out


def postbox_to_fhir(item: m.PostboxItem) -> dict:
    """The Communication that delivers a postbox item (its patient and filing contained in it)."""
    ctx = WriteContext("postbox|" + item.id)
    ctx.patient = _PATIENT
    res = to_fhir(item.correspondence, ctx)  # correspondence
    res["id"] = ctx.id("Communication", "#postbox")
    ext = list(res.get("extension", ()))
    ext.append({"url": c.EXT_POSTBOX_CREATED, "valueDateTime": fdatetime(item.created)})  # created
    if item.sender_organization is not None:
        ext.append(ext_string(c.EXT_SENDER_ORGANIZATION, item.sender_organization))  # sender_organization
    if item.manual_reason is not None:
        ext.append(ext_string(c.EXT_MANUAL_REASON, item.manual_reason))  # manual_reason
    contained = [_match_patient(item.patient)]  # patient
    if item.filing is not None:
        contained += _filing(item.filing, item)  # filing
    out: dict = {
        "resourceType": "Communication",
        "id": res.pop("id"),
        "meta": res.pop("meta"),
        "contained": contained,
        "extension": ext,
    }
    res.pop("extension", None)
    out.update(res)
    out["identifier"] = [local_identifier(ITEM_KIND, item.id)] + out["identifier"]  # id
    out["category"] = out.get("category", []) + [{"coding": [coding(c.POSTBOX_KIND, item.kind)]}]  # kind
    out["recipient"] = out.get("recipient", []) + [
        {
            "type": "Organization",
            "identifier": {  # practice_agb
                "system": c.AGB,
                "value": item.practice_agb,
            },
        }
    ]
    if item.correspondence.episode_id is not None:  # correspondence.episode_id: the episode lives in the HIS
        out["about"] = [
            {
                "type": "EpisodeOfCare",
                "identifier": local_identifier("episode", item.correspondence.episode_id),
            }
        ]
    if item.filing is not None:
        out["payload"] = out.get("payload", []) + [{"contentReference": {"reference": "#filing"}}]
    return out


def postbox_from_fhir(
    res: dict, sink=None, where: str = "Communication", source: str | None = None
) -> m.PostboxItem | None:
    """The canonical postbox item of a Communication made by :func:`postbox_to_fhir` (or alike)."""
    contained = [x for x in as_list(res.get("contained")) if isinstance(x, dict)]
    ctx = ReadContext(
        sink,
        [{"fullUrl": "#" + str(x.get("id")), "resource": x} for x in contained],
        prefix=where,
        source=source,
        entry_path=where + ".contained[{}]",
    )
    item_id = None
    for ident in as_list(res.get("identifier")):
        ident = as_dict(ident)
        if ident.get("system") == c.LOCAL_ID + ITEM_KIND:
            item_id = as_str(ident.get("value"))
    kind: Any = None
    for cc in as_list(res.get("category")):
        kind = kind or code_in(cc, (c.POSTBOX_KIND,))
    agb = None
    for r in as_list(res.get("recipient")):
        ident = as_dict(as_dict(r).get("identifier"))
        if c.system_uri(ident.get("system")) == c.AGB:
            agb = as_str(ident.get("value"))
    if item_id is None or kind not in _KINDS or agb is None:
        ctx.error(
            "FHIR-020",
            where,
            "a postbox item needs its id (identifier urn:his-gateway:id:postbox-item), "
            "its kind (category urn:his-gateway:postbox-item-kind) and the practice's AGB (recipient)",
        )
        return None
    created = pdatetime(ext_value(res, c.EXT_POSTBOX_CREATED, "valueDateTime"), f"{where}.extension", ctx)
    patient = next((i for i, x in enumerate(contained) if x.get("resourceType") == "Patient"), None)
    match = _read_match(contained[patient], ctx.at(patient), ctx) if patient is not None else m.PatientMatch()
    filing = None
    comp = next((i for i, x in enumerate(contained) if x.get("resourceType") == "Composition"), None)
    if comp is not None:
        filing = _read_filing(comp, ctx)
    about = as_list(res.get("about"))
    episode_id = as_str(as_dict(as_dict(about[0]).get("identifier")).get("value")) if about else None
    letter = from_fhir({k: v for k, v in res.items() if k != "about"}, ctx, where, episode_id=episode_id)
    if letter is None or created is None or match is None:
        return None
    try:
        return m.PostboxItem(
            id=item_id,
            kind=kind,
            created=created,
            practice_agb=agb,
            patient=match,
            correspondence=letter,
            sender_organization=ext_text(res, c.EXT_SENDER_ORGANIZATION),
            filing=filing,
            manual_reason=ext_text(res, c.EXT_MANUAL_REASON),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid postbox item: {exc}")
        return None


def _read_match(pat: dict, where: str, ctx: ReadContext) -> m.PatientMatch | None:
    bsn = reference = None
    for ident in as_list(pat.get("identifier")):
        ident = as_dict(ident)
        system = c.system_uri(ident.get("system"))
        if system == c.BSN:
            bsn = as_str(ident.get("value"))
        elif system == c.SENDER_PATIENT_REFERENCE:
            reference = take(ident, "value")
    try:
        return m.PatientMatch(
            bsn=bsn,
            birth_date=pdate(pat.get("birthDate"), f"{where}.birthDate", ctx),
            name=person_name(pat.get("name"), f"{where}.name", ctx),
            sender_reference=reference,
        )
    except ValueError as exc:
        ctx.error("FHIR-031", f"{where}.identifier", f"not a valid patient match: {exc}")
        return None


def _read_filing(i: int, ctx: ReadContext) -> m.AutoFiling | None:
    comp = ctx.resource(i)
    where = ctx.at(i)
    dc = soep.from_fhir(comp, ctx, where)
    date = pdatetime(comp.get("date"), f"{where}.date", ctx)
    details = as_list(as_dict((as_list(comp.get("event")) or [{}])[0]).get("detail"))
    ident = as_dict(as_dict(details[0]).get("identifier")) if details else {}
    episode_id = as_str(ident.get("value"))
    contact_type = None
    enc = (
        ctx.resolve(comp.get("encounter"), f"{where}.encounter", ("Encounter",))
        if "encounter" in comp
        else None
    )
    if enc is not None:
        contact_type = code_in((as_list(ctx.resource(enc).get("type")) or [None])[0], (c.TABEL14,))
    if dc is None or date is None or episode_id is None:
        if episode_id is None:
            ctx.error("FHIR-020", f"{where}.event[0].detail[0].identifier", "a filing needs its episode")
        return None
    try:
        return m.AutoFiling(
            episode_id=episode_id,
            journal_entry=m.JournalEntry(
                date=date, episode_id=episode_id, icpc=dc.icpc, lines=dc.lines, contact_type=contact_type
            ),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid filing: {exc}")
        return None

"""The professional summary as a FHIR R4 document Bundle, and attachments as DocumentReference + Binary.

**Summary document** (DOMAIN.md §5; documents.html, bundle.html#document). Nictiz publishes no R4 profile
for the professional summary (its FHIR form is the STU3 conversion of the HL7v3 message; DOMAIN.md §5), so
the document is plain R4 built on the nl-core resources of :mod:`mappings.fhir.bundle`:

- ``Bundle.type`` document, ``identifier`` a name-based ``urn:uuid`` (bdl-9), ``timestamp`` the start of
  the reference day in Amsterdam (bdl-10; a fixed value keeps the output byte-stable);
- the first entry a Composition: type LOINC 67781-5 "Summarization of episode note" (the code Nictiz's
  STU3 conversion uses), status final, subject the Patient, date the reference date, author the GP (the
  practice when the dossier names no GP), custodian the practice, a narrative header;
- one section per part of the summary, in this order: patient and GP (the administrative resources),
  episodes, journal, medication, measurements, contra-indications, intolerances, attention notes, and
  correspondence when there is any (the summary takes the letters of the journal window). Each section
  has a code (system ``urn:his-gateway:summary-section``, plus LOINC where a document-section code fits),
  a title, a readable XHTML narrative (:mod:`mappings.fhir.narrative`) and an entry for every resource of
  its part; an empty section has the narrative "Geen ..." and emptyReason nilknown (cmp-2);
- every other entry of the Bundle is referenced from a section, so the document holds nothing that is
  not part of it.

The summary selection itself is :func:`mappings.summary.build_summary`; :func:`summary_document` maps the
already selected dossier as it is. Reading a summary document back gives that dossier
(:func:`mappings.fhir.bundle.from_fhir` skips the header Composition).

**Attachments** (hg-Document, draft): an :class:`Attachment` (a file attached to a consult or a letter)
is a DocumentReference whose content points at a Binary holding the bytes (``Binary.data``, base64) by
its ``urn:uuid``; size and SHA-1 hash in the Attachment, the episode in ``context.related``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import BinaryIO

import msgspec

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir import narrative as h
from mappings.fhir.bundle import PARTS, context, entry, parts
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    coding,
    dumps,
    fdate,
    fdatetime,
    fmidnight,
    local_identifier,
    meta,
    pdatetime,
)
from mappings.fhir.datatypes import name_text
from mappings.fhir.practitioner import display as professional_display
from mappings.record import left_out, status_as_of, without_shielded

DOCUMENT_TYPE = {
    "coding": [coding(c.LOINC, "67781-5", "Summarization of episode note")],
    "text": "Professionele samenvatting",
}
TITLE = "Professionele samenvatting huisarts"
_NILKNOWN = {"coding": [coding(c.LIST_EMPTY_REASON, "nilknown", "Nil Known")]}
_WITHHELD = {"coding": [coding(c.LIST_EMPTY_REASON, "withheld", "Information Withheld")]}

SECTIONS: dict[str, tuple[str, tuple[str, str] | None, str]] = {
    # part: (title, LOINC code and display or None, what an empty section says)
    "administrative": ("Patiënt en huisarts", None, ""),
    "episodes": ("Episodes", ("11450-4", "Problem list - Reported"), "Geen episodes."),
    "journal": ("Journaal", None, "Geen journaalregels."),
    "medication": ("Medicatie", ("10160-0", "History of Medication use Narrative"), "Geen medicatie."),
    "measurements": (
        "Metingen en uitslagen",
        ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
        "Geen metingen.",
    ),
    "contraindications": ("Contra-indicaties", None, "Geen contra-indicaties."),
    "intolerances": (
        "Intoleranties en allergieën",
        ("48765-2", "Allergies and adverse reactions Document"),
        "Geen intoleranties of allergieën bekend.",
    ),
    "attention": ("Attentiepunten", None, "Geen attentiepunten."),
    "correspondence": ("Correspondentie", None, "Geen correspondentie."),
}
_SOEP_NAMES = c.SOEP_DISPLAY
_QUALITY = {"good": "goed", "moderate": "matig", "poor": "slecht"}
_INTERPRETATION = {
    "L": "laag",
    "H": "hoog",
    "N": "normaal",
    "A": "afwijkend",
    "LL": "kritiek laag",
    "HH": "kritiek hoog",
}
_STATUS = {"active": "actief", "stopped": "gestopt", "completed": "afgerond", "inactive": "niet actief"}


def _section_code(part: str) -> dict:
    loinc = SECTIONS[part][1]
    codings = [coding(c.SUMMARY_SECTION, part)]
    if loinc is not None:
        codings.append(coding(c.LOINC, *loinc))
    return {"coding": codings}


# --------------------------------------------------------------------------- narratives


def _code_text(table: str, code: str | None) -> str:
    if code is None:
        return ""
    name = c.display(table, code)
    return h.esc(f"{code} {name}" if name else code)


def _administrative(d: m.Dossier) -> str:
    p = d.patient
    rows = [
        ("Patiënt", h.esc(name_text(p.name))),
        ("BSN", h.esc(p.bsn or "onbekend")),
        ("Geboortedatum", h.day(p.birth_date)),
        ("Geslacht", {"male": "man", "female": "vrouw", "other": "anders"}.get(p.gender, "onbekend")),
    ]
    if p.deceased_date is not None:
        rows.append(("Overleden", h.day(p.deceased_date)))
    if p.address is not None:
        a = p.address
        rows.append(
            (
                "Adres",
                h.esc(
                    ", ".join(
                        x
                        for x in (
                            " ".join(y for y in (a.street, a.house_number) if y),
                            " ".join(y for y in (a.postal_code, a.city) if y),
                        )
                        if x
                    )
                ),
            )
        )
    for t in p.telecom:
        rows.append(
            (
                "Telefoon" if t.system == "phone" else "E-mail" if t.system == "email" else "Fax",
                h.esc(t.value),
            )
        )
    if p.insurance is not None:
        i = p.insurance
        rows.append(
            (
                "Verzekering",
                h.esc(
                    " ".join(
                        x
                        for x in (
                            i.insurer_name,
                            f"(UZOVI {i.uzovi})",
                            i.policy_number and f"polis {i.policy_number}",
                        )
                        if x
                    )
                ),
            )
        )
    if d.gp is not None:
        rows.append(
            ("Huisarts", h.esc(professional_display(d.gp) + (f" (AGB {d.gp.agb})" if d.gp.agb else "")))
        )
    pr = d.practice
    rows.append(
        (
            "Praktijk",
            h.esc(pr.name + (f" (AGB {pr.agb})" if pr.agb else "") + (f" (URA {pr.ura})" if pr.ura else "")),
        )
    )
    for t in pr.telecom:
        rows.append(("Praktijk telefoon" if t.system == "phone" else "Praktijk e-mail", h.esc(t.value)))
    return (
        "<table><tbody>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</tbody></table>"
    )


def _episodes(d: m.Dossier) -> str:
    return h.table(
        ("ICPC", "Episode", "Begin", "Einde", "Attentiewaarde"),
        [
            (
                _code_text("icpc", e.icpc),
                h.esc(e.title),
                h.day(e.start),
                h.day(e.end),
                "ja" if e.attention else "",
            )
            for e in d.episodes
        ],
    )


def _journal(d: m.Dossier) -> str:
    titles = {e.id: e for e in d.episodes}
    rows = []
    for k in sorted(d.contacts, key=lambda x: x.start, reverse=True):
        author = d.professional(k.author_id) if k.author_id else None
        kind = _code_text("tabel14", k.contact_type)
        if k.video is not None:
            v = k.video
            kind += " (video" + "".join(
                f", {x}"
                for x in (
                    h.esc(v.application),
                    _QUALITY.get(v.connection_quality or "", ""),
                    h.esc(v.patient_device),
                )
                if x
            )
            kind += ", identiteit gecontroleerd)" if v.identity_verified else ")"
        head = (h.moment(k.start), kind, h.esc(professional_display(author)) if author else "")
        first = True
        for dc in k.deelcontacten:
            ep = titles.get(dc.episode_id or "")
            title = ep.title if ep else c.display("icpc", dc.icpc)
            episode = " ".join(x for x in (h.esc(dc.icpc), h.esc(title)) if x)
            lines = dc.lines or (m.SoepLine(type="E", text=""),)
            for line in lines:
                icpc = f" [{h.esc(line.icpc)}]" if line.icpc else ""
                rows.append(
                    (
                        *(head if first else ("", "", "")),
                        episode,
                        f"<b>{line.type}</b>",
                        h.esc(line.text) + icpc,
                    )
                )
                first = False
        if first:
            rows.append((*head, "", "", ""))
    return h.table(("Datum", "Contact", "Door", "Episode", "SOEP", "Tekst"), rows)


def _medication(d: m.Dossier) -> str:
    return h.table(
        ("Middel", "Code", "ATC", "Gebruik", "Start", "Einde", "Status"),
        [
            (
                h.esc(x.product_name),
                h.esc(f"{x.product_system} {x.product_code}") if x.product_code else "",
                _code_text("atc", x.atc),
                h.esc(
                    " ".join(
                        y
                        for y in (x.dosage_text, f"(tabel 25: {x.dosage_code})" if x.dosage_code else None)
                        if y
                    )
                ),
                h.day(x.start),
                h.day(x.end),
                _STATUS[x.status],
            )
            for x in d.medications
        ],
    )


def _value(x: m.Measurement) -> str:
    if x.value_quantity is not None:
        return h.esc(" ".join(y for y in (str(x.value_quantity), x.unit) if y))
    return h.esc(x.value_text)


def _measurements(d: m.Dossier) -> str:
    def ref(x: m.Measurement) -> str:
        if x.reference_low is None and x.reference_high is None:
            return ""
        return h.esc(
            f"{x.reference_low if x.reference_low is not None else ''} - "
            f"{x.reference_high if x.reference_high is not None else ''}"
        )

    return h.table(
        ("Bepaling", "Waarde", "Referentie", "Interpretatie", "Datum"),
        [
            (
                _code_text("tabel45", x.code),
                _value(x),
                ref(x),
                _INTERPRETATION.get(x.interpretation or "", ""),
                h.moment(x.effective),
            )
            for x in d.measurements
        ],
    )


def _contraindications(d: m.Dossier) -> str:
    return h.table(
        ("Contra-indicatie", "Code (thesaurus 40)", "Start", "Einde"),
        [
            (h.esc(x.text), _code_text("thesaurus40", x.code), h.day(x.start), h.day(x.end))
            for x in d.contraindications
        ],
    )


def _intolerances(d: m.Dossier) -> str:
    return h.table(
        ("Intolerantie", "Code (thesaurus 122)", "Start", "Status"),
        [
            (h.esc(x.text), _code_text("thesaurus122", x.code), h.day(x.start), _STATUS[x.status])
            for x in d.intolerances
        ],
    )


def _attention(d: m.Dossier) -> str:
    return h.table(("Datum", "Attentiepunt"), [(h.day(x.date), h.esc(x.text)) for x in d.attention_notes])


def _correspondence(d: m.Dossier) -> str:
    return h.table(
        ("Datum", "Richting", "Afzender", "Onderwerp", "Tekst"),
        [
            (
                h.moment(x.date),
                "in" if x.direction == "in" else "uit",
                h.esc(
                    " ".join(
                        y for y in (x.sender_name, x.sender_discipline and f"({x.sender_discipline})") if y
                    )
                ),
                h.esc(x.subject),
                h.esc(x.text),
            )
            for x in d.correspondence
        ],
    )


_NARRATIVE = {
    "administrative": _administrative,
    "episodes": _episodes,
    "journal": _journal,
    "medication": _medication,
    "measurements": _measurements,
    "contraindications": _contraindications,
    "intolerances": _intolerances,
    "attention": _attention,
    "correspondence": _correspondence,
}
_COUNT = {
    "episodes": "episodes",
    "journal": "contacts",
    "medication": "medications",
    "measurements": "measurements",
    "contraindications": "contraindications",
    "intolerances": "intolerances",
    "attention": "attention_notes",
    "correspondence": "correspondence",
}


# --------------------------------------------------------------------------- the document


def summary_document(d: m.Dossier, *, as_of: dt.date, source: m.Dossier | None = None) -> dict:
    """The professional summary ``d`` (already selected: :mod:`mappings.summary`) as a document Bundle.

    ``source`` is the dossier the summary was selected from (``d`` itself when not given). Whatever ``d``
    holds, shielded data is left out (:func:`~mappings.summary.without_shielded`) and prescriptions carry
    their status as on ``as_of``; a section says in its narrative how many shielded items it leaves out
    (an empty one then has emptyReason ``withheld``), and the medication section says "nil known" only
    when the source holds no prescription at all."""
    held = left_out(source if source is not None else d)
    earlier = bool((source if source is not None else d).medications)
    d = status_as_of(without_shielded(d), as_of)
    ctx = context(d)
    by_part = parts(d, ctx)
    sections = []
    for part in PARTS:
        if part == "correspondence" and not d.correspondence and not held.get(part):
            continue  # no letters, none held back: no section
        title, _, empty = SECTIONS[part]
        section: dict = {"title": title, "code": _section_code(part)}
        resources = by_part[part]
        note = ""
        if held.get(part):
            n = held[part]
            note = f"<p>{n} afgeschermd{'e' if n > 1 else ''} item{'s' if n > 1 else ''} niet opgenomen.</p>"
        if part != "administrative" and not getattr(d, _COUNT[part]):
            if part == "medication" and earlier and not held.get(part):
                section["text"] = h.div(
                    "<p>Geen actuele medicatie; eerdere voorschriften niet opgenomen.</p>"
                )
            else:
                section["text"] = h.div(f"<p>{empty}</p>{note}")
                section["emptyReason"] = _WITHHELD if note else _NILKNOWN
        else:
            section["text"] = h.div(_NARRATIVE[part](d) + note)
            section["entry"] = [{"reference": "urn:uuid:" + r["id"]} for r in resources]
        sections.append(section)
    author = ctx.ref("Practitioner", d.gp.id) if d.gp is not None else ctx.practice
    header = (
        f"<p><b>{TITLE}</b> van {h.esc(name_text(d.patient.name))}, geboren {h.day(d.patient.birth_date)}"
        f"{', BSN ' + h.esc(d.patient.bsn) if d.patient.bsn else ''}; peildatum {h.day(as_of)}.</p>"
    )
    key = f"#summary/{as_of.isoformat()}"
    comp = {
        "resourceType": "Composition",
        "id": ctx.id("Composition", key),
        "text": h.div(header),
        "identifier": {"system": c.RFC3986, "value": ctx.url("Composition", key + "/identifier")},
        "status": "final",
        "type": DOCUMENT_TYPE,
        "subject": ctx.patient,
        "date": fdate(as_of),
        "author": [author],
        "title": TITLE,
        "custodian": ctx.practice,
        "section": sections,
    }
    return {
        "resourceType": "Bundle",
        "id": ctx.id("Bundle", key),
        "identifier": {"system": c.RFC3986, "value": ctx.url("Bundle", key + "/identifier")},
        "type": "document",
        "timestamp": fmidnight(as_of),
        "entry": [entry(comp)] + [entry(r) for part in PARTS for r in by_part[part]],
    }


def write_summary_documents(
    summaries: Iterable[m.Dossier | tuple[m.Dossier, m.Dossier]], out: BinaryIO, *, as_of: dt.date
) -> int:
    """Write each summary's document Bundle as one line of JSON (NDJSON when there are many); return how many.

    One summary gives one line that is a JSON document by itself. Streaming: one dossier at a time. An item
    may be a pair (summary, the dossier it was selected from): see :func:`summary_document`.
    """
    n = 0
    for item in summaries:
        d, source = item if isinstance(item, tuple) else (item, None)
        out.write(dumps(summary_document(d, as_of=as_of, source=source)) + b"\n")
        n += 1
    return n


# --------------------------------------------------------------------------- attachments


class Attachment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A file attached to a consult, a letter or the record (not part of the canonical dossier)."""

    id: str
    title: str
    content_type: str
    data: bytes
    date: dt.datetime | None = None
    episode_id: str | None = None


def attachment_to_fhir(a: Attachment, ctx: WriteContext | None = None) -> list[dict]:
    """The DocumentReference (hg-Document) of an attachment and the Binary with its bytes."""
    ctx = ctx or WriteContext()
    binary: dict = {
        "resourceType": "Binary",
        "id": ctx.id("Binary", a.id),
        "contentType": a.content_type,
    }  # content_type
    if a.data:
        binary["data"] = base64.b64encode(a.data).decode("ascii")  # data (no element for no bytes: never "")
    if ctx.patient is not None:
        binary["securityContext"] = ctx.patient
    doc: dict = {
        "resourceType": "DocumentReference",
        "id": ctx.id("DocumentReference", a.id),
        "meta": meta(c.P_DOCUMENT),
        "identifier": [local_identifier("attachment", a.id)],
        "status": "current",
    }  # id
    if ctx.patient is not None:
        doc["subject"] = ctx.patient
    if a.date is not None:
        doc["date"] = fdatetime(a.date)  # date
    att = {
        "contentType": a.content_type,
        "url": ctx.url("Binary", a.id),
        "size": len(a.data),
        "hash": base64.b64encode(hashlib.sha1(a.data).digest()).decode("ascii"),
    }
    if a.title:
        att["title"] = a.title  # title
    doc["content"] = [{"attachment": att}]
    if a.episode_id is not None:
        doc["context"] = {"related": [ctx.ref("EpisodeOfCare", a.episode_id)]}  # episode_id
    return [doc, binary]


def attachment_from_fhir(
    doc: dict, ctx: ReadContext | None = None, where: str = "DocumentReference"
) -> Attachment | None:
    """The attachment of a DocumentReference whose content is a Binary of the same Bundle (or inline data)."""
    ctx = ctx or ReadContext()
    contents = as_list(doc.get("content"))
    att = as_dict(as_dict(contents[0]).get("attachment")) if contents else {}
    data = None
    if isinstance(att.get("data"), str):
        raw = att["data"]
    elif isinstance(att.get("url"), str):
        i = ctx.resolve({"reference": att["url"]}, f"{where}.content[0].attachment.url", ("Binary",))
        raw = as_str(ctx.resource(i).get("data")) if i is not None else None
        if i is not None:
            ctx.used.add(i)
            if raw is None and att.get("size") == 0:
                raw = ""  # an empty file: the Binary has no data element
    else:
        raw = None
    if raw is not None:
        try:
            data = base64.b64decode(raw, validate=True)
        except ValueError:
            ctx.error(
                "FHIR-021", f"{where}.content[0].attachment", "the attachment's data is not valid base64"
            )
            return None
    if data is None:
        ctx.error(
            "FHIR-020", f"{where}.content[0].attachment", "an attachment needs its data (inline or a Binary)"
        )
        return None
    expected = att.get("hash")
    if (
        isinstance(expected, str)
        and base64.b64encode(hashlib.sha1(data).digest()).decode("ascii") != expected
    ):
        ctx.error(
            "FHIR-034", f"{where}.content[0].attachment.hash", "the data does not match the attachment's hash"
        )
        return None
    related = as_list(as_dict(doc.get("context")).get("related"))
    return Attachment(
        id=ctx.local_id(doc, "attachment", where, "doc"),
        title=as_str(att.get("title")) or "",
        content_type=as_str(att.get("contentType")) or "application/octet-stream",
        data=data,
        date=pdatetime(doc.get("date"), f"{where}.date", ctx),
        episode_id=ctx.local(related[0], f"{where}.context.related[0]", ("EpisodeOfCare",))
        if related
        else None,
    )

"""Attaching medical data to a consult: a HIS export in, the professional summary out (DOMAIN.md §2, §5).

One call takes the HIS export in any installed dialect (``medicom``, ``microhis``, ``omnihis``, ...,
``ps-hl7v3`` for the HL7v3 professional summary itself; :mod:`formats`), reads it in
memory, builds the professional summary by the NHG rules (:func:`mappings.summary.build_summary`),
narrowed to the episodes the GP chose, and attaches it to the consult as a FHIR document Bundle
(:func:`mappings.fhir.document.summary_document`) inside a DocumentReference. The export itself is never
stored or logged: only the summary document is.

Parameters: ``export`` (base64Binary), ``format`` (code), ``episode`` (string, repeatable), ``asOf`` (date;
default: today in Amsterdam), or ``patient`` (``Patient/<id>``) to send without medical data. Problems in
the export answer 422 with every problem (``CON-022`` first, then the dialect's own codes).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from gateway.api import interactions as ix
from gateway.consult import resources as fr
from gateway.consult.params import Params
from gateway.fhir.outcome import FhirError
from mappings import model as m
from mappings.problems import InputError, ProblemSink, Severity

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"


def _export_error(message: str, problems=()) -> FhirError:
    return FhirError(
        422,
        "processing",
        "CON-022",
        message,
        "Parameters.export",
        issues=[p.to_operation_outcome_issue() for p in problems],
    )


def read_export(params: Params) -> m.Dossier:
    """The dossier of the ``export`` parameter, read in memory (never stored)."""
    import formats

    data = params.binary("export")
    fmt = params.get("format", required=True)
    accepted = {f.name: f for f in formats.dossier_formats()}
    if fmt not in accepted:
        raise FhirError(
            400,
            "invalid",
            "CON-002",
            f"format {fmt!r} is not a dossier format; choose one of: " + ", ".join(accepted),
            "Parameters.format",
        )
    sink = ProblemSink()
    try:
        dossier = accepted[fmt].codec().read(data or b"", source="export", sink=sink)
    except InputError as exc:
        raise _export_error(f"the {fmt} export is not valid", [*sink.problems, *exc.problems]) from None
    errors = [p for p in sink.problems if p.severity is Severity.ERROR]
    if errors:
        raise _export_error(f"the {fmt} export is not valid", errors)
    return dossier


def _check_practice(ctx: ix.Ctx, dossier: m.Dossier) -> None:
    """The export must come from the calling practice (its AGB or URA)."""
    org = ctx.principal.organization
    ours = {x for x in (org.agb, org.ura) if x}
    theirs = {x for x in (dossier.practice.agb, dossier.practice.ura) if x}
    if theirs and not (ours & theirs):
        raise FhirError(
            403,
            "forbidden",
            "CON-023",
            "the export is of another practice (its AGB/URA differ from the caller's)",
            "Parameters.export",
        )


def patient_from_params(
    conn: Connection, ctx: ix.Ctx, env, params: Params
) -> tuple[str, dict, m.Dossier | None]:
    """The consult's patient: ``patient`` (a stored Patient of the practice) or the export's patient
    (found by BSN within the practice, or created)."""
    given = params.reference("patient", "Patient")
    if params.get("export") is None:
        if given is None:
            raise FhirError(
                400,
                "required",
                "CON-002",
                "$send-consult: give 'export' (with 'format') or 'patient'",
                "Parameters.patient",
            )
        s = ctx.store.read(conn, ctx.orgs, "Patient", given[1])
        import orjson

        return given[1], orjson.loads(s.body or b"{}"), None
    dossier = read_export(params)
    _check_practice(ctx, dossier)
    if not dossier.patient.bsn:
        raise _export_error("the export's patient has no BSN: a consult needs the patient identified")
    from gateway.fhir.patient import patient_fhir

    res = patient_fhir(dossier.patient, "Organization/x")
    org = ctx.principal.organization
    res["managingOrganization"] = {"identifier": dict(org.identifier), "display": org.name}
    result = ix.create(conn, ctx, "Patient", res, f"identifier={BSN_SYSTEM}|{dossier.patient.bsn}")
    assert result.resource is not None
    import orjson

    return result.resource.rid, orjson.loads(result.resource.body or b"{}"), dossier


def attach_summary(
    conn: Connection,
    ctx: ix.Ctx,
    env,
    params: Params,
    dossier: m.Dossier,
    patient_id: str,
    author: dict,
    now: dt.datetime,
) -> str:
    """Build the professional summary (narrowed to ``episode`` parameters) and store it as a
    DocumentReference holding the document Bundle; return its id."""
    from mappings.fhir.document import summary_document
    from mappings.summary import build_summary

    raw_as_of = params.get("asOf")
    try:
        as_of = dt.date.fromisoformat(raw_as_of) if raw_as_of else now.astimezone(env.config.timezone).date()
    except ValueError:
        raise FhirError(
            400, "invalid", "CON-002", "asOf is not a date YYYY-MM-DD", "Parameters.asOf"
        ) from None
    episodes = params.all("episode")
    sink = ProblemSink()
    try:
        summary = build_summary(
            dossier, as_of=as_of, episode_ids=episodes or None, sink=sink, source="export"
        )
    except InputError as exc:
        raise _export_error("the chosen episodes are not in the export", exc.problems) from None
    bundle = summary_document(summary, as_of=as_of, source=dossier)
    doc = fr.summary_reference(patient=patient_id, bundle=bundle, author=author, now=now, episodes=episodes)
    result = ix.create(conn, ctx, "DocumentReference", doc)
    assert result.resource is not None
    return result.resource.rid

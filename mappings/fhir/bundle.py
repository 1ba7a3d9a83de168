"""Dossier <-> a FHIR R4 Bundle of type ``collection`` holding every resource of the dossier (DOMAIN.md §9).

Entries, in this order (each ``fullUrl`` is ``urn:uuid:<id>``, the id a name-based UUID of the dossier
and the record, so the same dossier always gives the same bytes; references use those fullUrls):

Patient, Coverage, the practice Organization, the other Organizations, the GP's Practitioner (and
PractitionerRole), the other professionals', then per episode EpisodeOfCare, Condition (and the attention
Flag), per contact the Encounter followed per deelcontact by its SOAPReport Composition and SOEP line
Observations, MedicationRequests, measurement Observations, AllergyIntolerances, contra-indication Flags,
attention-note Flags and Communications. The mapping of each is in its module's docstring
(:mod:`~mappings.fhir.patient`, :mod:`~mappings.fhir.organization`, :mod:`~mappings.fhir.practitioner`,
:mod:`~mappings.fhir.episode`, :mod:`~mappings.fhir.encounter`, :mod:`~mappings.fhir.soep`,
:mod:`~mappings.fhir.medication`, :mod:`~mappings.fhir.observation`, :mod:`~mappings.fhir.allergy`,
:mod:`~mappings.fhir.flag`, :mod:`~mappings.fhir.communication`). The practice is the Patient's
``managingOrganization``, the GP its ``generalPractitioner``; the order of every list is the entry order.

Reading (:func:`from_fhir`) accepts the same Bundle, the summary document Bundle of
:mod:`mappings.fhir.document` (its first Composition is the document's header and is not part of the
dossier) and Bundles of other senders: a record without our local-id identifier takes its resource id,
or a positional id (``c3``). Every entry that nothing reads is reported (``FHIR-012``), so nothing is
dropped silently.

Round trip: ``from_fhir(to_fhir(d)) == d`` for every dossier. **Lossy fields: none.** Every canonical field
has an R4 element, an nl-core extension or one of the gateway's own extensions (``docs/fhir-mapping.md``
§3), and the two cases FHIR has no direct form for are carried exactly too:

- an optional text that is the empty string (``""``, not ``None``; a HIS may keep the two apart): FHIR
  strings are never empty, so it is written as the element's primitive extension with only the
  gateway's empty-text mark (json.html#primitive), see :func:`mappings.fhir.common.put`;
- a wall-clock time in the spring-forward gap (02:30 on the last Sunday of March does not exist in
  Amsterdam): written with the offset before the change and read back as written, see
  :func:`mappings.fhir.common.pdatetime`.
"""

from __future__ import annotations

from typing import Any

from mappings import model as m
from mappings.fhir import (
    allergy,
    communication,
    encounter,
    episode,
    flag,
    medication,
    observation,
    organization,
)
from mappings.fhir import codes as c
from mappings.fhir import patient as patient_map
from mappings.fhir import practitioner as practitioner_map
from mappings.fhir.common import ReadContext, WriteContext, as_dict, as_list, code_in, has_profile
from mappings.problems import InputError, ProblemSink

PARTS = (
    "administrative",
    "episodes",
    "journal",
    "medication",
    "measurements",
    "contraindications",
    "intolerances",
    "attention",
    "correspondence",
)
"""The parts of a dossier, in entry order (the summary document has a section for each but the first)."""


def context(d: m.Dossier) -> WriteContext:
    """The write context of a dossier: its id scope (practice and patient) and the two references."""
    p = d.patient
    scope = "|".join(
        (
            d.practice.agb or "",
            d.practice.ura or "",
            d.practice.id,
            p.bsn or "",
            p.birth_date.isoformat(),
            p.name.family or "",
            p.name.given or "",
            p.name.initials or "",
        )
    )
    ctx = WriteContext(scope)
    ctx.patient = ctx.ref("Patient", patient_map.KEY)
    ctx.practice = ctx.ref("Organization", d.practice.id)
    return ctx


def parts(d: m.Dossier, ctx: WriteContext | None = None) -> dict[str, list[dict]]:
    """Every resource of the dossier, by part (:data:`PARTS`), in entry order."""
    ctx = ctx or context(d)
    admin: list[dict] = [
        patient_map.to_fhir(d.patient, ctx, ctx.ref("Practitioner", d.gp.id) if d.gp else None)
    ]
    if d.patient.insurance is not None:
        admin.append(patient_map.coverage_to_fhir(d.patient.insurance, ctx))
    admin.append(organization.to_fhir(d.practice, ctx))
    admin += [organization.to_fhir(o, ctx) for o in d.organizations]
    for p in ((d.gp,) if d.gp else ()) + d.professionals:
        admin += practitioner_map.to_fhir(p, ctx)
    episodes: list[dict] = []
    for e in d.episodes:
        episodes += episode.to_fhir(e, ctx)
    journal: list[dict] = []
    for k in d.contacts:
        journal += encounter.to_fhir(k, ctx)
    return {
        "administrative": admin,
        "episodes": episodes,
        "journal": journal,
        "medication": [medication.to_fhir(x, ctx) for x in d.medications],
        "measurements": [observation.to_fhir(x, ctx) for x in d.measurements],
        "contraindications": [flag.contraindication_to_fhir(x, ctx) for x in d.contraindications],
        "intolerances": [allergy.to_fhir(x, ctx) for x in d.intolerances],
        "attention": [flag.note_to_fhir(x, ctx) for x in d.attention_notes],
        "correspondence": [communication.to_fhir(x, ctx) for x in d.correspondence],
    }


def entry(res: dict) -> dict:
    """A Bundle entry: ``fullUrl`` ``urn:uuid:<id>`` and the resource."""
    return {"fullUrl": "urn:uuid:" + res["id"], "resource": res}


def to_fhir(d: m.Dossier) -> dict:
    """The ``collection`` Bundle of a dossier."""
    ctx = context(d)
    by_part = parts(d, ctx)
    return {
        "resourceType": "Bundle",
        "id": ctx.id("Bundle", "#collection"),
        "type": "collection",
        "entry": [entry(r) for part in PARTS for r in by_part[part]],
    }


# --------------------------------------------------------------------------- reading

_SOAP_REPORT_TYPE = "11591000146107"


def _is_soap_report(res: dict) -> bool:
    return (
        has_profile(res, c.P_SOAP_REPORT)
        or code_in(res.get("type"), (c.SNOMED,)) == _SOAP_REPORT_TYPE
        or ("encounter" in res and code_in(res.get("type"), (c.LOINC,)) is None)
    )


class _Reader:
    """One Bundle read into one dossier (see :func:`from_fhir`)."""

    def __init__(self, bundle: dict, sink: ProblemSink, source: str | None, prefix: str) -> None:
        self.bundle = bundle
        entries = as_list(bundle.get("entry"))
        self.ctx = ReadContext(sink, entries, prefix=prefix, source=source)
        self.by_type: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            res = as_dict(as_dict(e).get("resource"))
            rtype = res.get("resourceType")
            if not isinstance(rtype, str):
                self.ctx.error(
                    "FHIR-005", f"{prefix}.entry[{i}]", "an entry without a resource (resourceType)"
                )
                continue
            self.by_type.setdefault(rtype, []).append(i)

    def of(self, rtype: str) -> list[int]:
        return self.by_type.get(rtype, [])

    def read(self) -> m.Dossier | None:
        ctx = self.ctx
        res = ctx.resource
        patients = self.of("Patient")
        if len(patients) != 1:
            ctx.error(
                "FHIR-010",
                f"{ctx.prefix}.entry",
                f"a dossier Bundle holds exactly one Patient; this one has {len(patients)}",
            )
            return None
        pi = patients[0]
        pat = res(pi)
        ctx.used.add(pi)
        # the practice and the other organisations
        practice_i = (
            ctx.resolve(
                pat.get("managingOrganization"), f"{ctx.at(pi)}.managingOrganization", ("Organization",)
            )
            if "managingOrganization" in pat
            else None
        )
        orgs = self.of("Organization")
        if practice_i is None:
            if len(orgs) == 1 and "managingOrganization" not in pat:
                practice_i = orgs[0]
                ctx.warning(
                    "FHIR-016",
                    f"{ctx.at(pi)}.managingOrganization",
                    "no managingOrganization: the Bundle's one Organization is read as the practice",
                )
            else:
                ctx.error(
                    "FHIR-011",
                    f"{ctx.at(pi)}.managingOrganization",
                    "the practice is the Patient's managingOrganization, an Organization of the Bundle",
                )
                return None
        practice = organization.from_fhir(res(practice_i), ctx, ctx.at(practice_i), "praktijk")
        others: list[m.Organization] = []
        for n, i in enumerate(x for x in orgs if x != practice_i):
            o = organization.from_fhir(res(i), ctx, ctx.at(i), f"org{n}")
            if o is not None:
                ctx.ids[i] = o.id
                others.append(o)
        if practice is not None:
            ctx.ids[practice_i] = practice.id
        ctx.used.update(orgs)
        # professionals: the GP is the Patient's generalPractitioner
        roles: dict[int, tuple[int, dict]] = {}
        for i in self.of("PractitionerRole"):
            j = ctx.resolve(res(i).get("practitioner"), f"{ctx.at(i)}.practitioner", ("Practitioner",))
            if j is not None and j not in roles:
                roles[j] = (i, res(i))
        gp_i = None
        gps = as_list(pat.get("generalPractitioner"))
        if gps:
            gp_i = ctx.resolve(
                gps[0], f"{ctx.at(pi)}.generalPractitioner[0]", ("Practitioner", "PractitionerRole")
            )
            if gp_i is not None and res(gp_i).get("resourceType") == "PractitionerRole":
                gp_i = ctx.resolve(
                    res(gp_i).get("practitioner"), f"{ctx.at(gp_i)}.practitioner", ("Practitioner",)
                )
        gp = None
        professionals: list[m.HealthProfessional] = []
        for n, i in enumerate(self.of("Practitioner")):
            p = practitioner_map.from_fhir(res(i), ctx, ctx.at(i), roles.get(i), f"prof{n}")
            ctx.used.add(i)
            if p is None:
                continue
            ctx.ids[i] = p.id
            if i in roles:
                ctx.ids[roles[i][0]] = p.id
            if i == gp_i:
                gp = p
            else:
                professionals.append(p)
        # episodes (their Conditions and attention Flags)
        attention: set[int] = set()
        for i in self.of("Flag"):
            target = episode.attention_target(res(i))
            if target is not None:
                j = ctx.resolve(target, f"{ctx.at(i)}.extension", ("EpisodeOfCare",))
                if j is not None:
                    attention.add(j)
                ctx.used.add(i)
        episodes = []
        for n, i in enumerate(self.of("EpisodeOfCare")):
            eoc = res(i)
            diagnoses = as_list(eoc.get("diagnosis"))
            cond = None
            if diagnoses:
                j = ctx.resolve(
                    as_dict(diagnoses[0]).get("condition"),
                    f"{ctx.at(i)}.diagnosis[0].condition",
                    ("Condition",),
                )
                cond = (j, res(j)) if j is not None else None
            e = episode.from_fhir(eoc, ctx, ctx.at(i), cond, i in attention, f"ep{n}")
            ctx.used.add(i)
            if e is not None:
                ctx.ids[i] = e.id
                episodes.append(e)
        # contacts with their SOAPReports
        reports: dict[int, list[tuple[int, dict]]] = {}
        for i in self.of("Composition"):
            comp = res(i)
            if not _is_soap_report(comp):
                ctx.used.add(i)  # the header of a document Bundle (mappings.fhir.document)
                continue
            j = ctx.resolve(comp.get("encounter"), f"{ctx.at(i)}.encounter", ("Encounter",))
            if j is None:
                if "encounter" not in comp:
                    ctx.error(
                        "FHIR-020",
                        f"{ctx.at(i)}.encounter",
                        "a SOAP report belongs to an Encounter (the contact)",
                    )
                continue
            reports.setdefault(j, []).append((i, comp))
        contacts = []
        for n, i in enumerate(self.of("Encounter")):
            k = encounter.from_fhir(res(i), ctx, ctx.at(i), reports.get(i, []), f"c{n}")
            ctx.used.add(i)
            if k is not None:
                contacts.append(k)
        meds = self._each("MedicationRequest", medication.from_fhir, "med")
        measurements = []
        for n, i in enumerate(self.of("Observation")):
            if observation.is_measurement(res(i)):
                x = observation.from_fhir(res(i), ctx, ctx.at(i), f"meas{n}")
                ctx.used.add(i)
                if x is not None:
                    measurements.append(x)
        intolerances = self._each("AllergyIntolerance", allergy.from_fhir, "int")
        flags = [i for i in self.of("Flag") if episode.attention_target(res(i)) is None]
        cis = [i for i in flags if flag.is_contraindication(res(i))]
        notes = [i for i in flags if i not in cis]
        contraindications = self._each(cis, flag.contraindication_from_fhir, "ci")
        attention_notes = self._each(notes, flag.note_from_fhir, "att")
        letters = self._each("Communication", communication.from_fhir, "corr")
        insurance = None
        for i in self.of("Coverage"):
            cov = res(i)
            ref = ctx.resolve(cov.get("beneficiary"), f"{ctx.at(i)}.beneficiary", ("Patient",))
            if ref == pi and insurance is None:
                insurance = patient_map.coverage_from_fhir(cov, ctx, ctx.at(i))
                ctx.used.add(i)
        the_patient = patient_map.from_fhir(pat, ctx, ctx.at(pi), insurance)
        for i, ent in enumerate(ctx.entries):
            if i not in ctx.used:
                rtype = as_dict(as_dict(ent).get("resource")).get("resourceType")
                ctx.warning("FHIR-012", ctx.at(i), f"{rtype} not read: nothing of the dossier maps to it")
        if practice is None or the_patient is None:
            return None
        try:
            return m.Dossier(
                practice=practice,
                patient=the_patient,
                gp=gp,
                professionals=tuple(professionals),
                organizations=tuple(others),
                episodes=tuple(episodes),
                contacts=tuple(contacts),
                medications=tuple(meds),
                measurements=tuple(measurements),
                intolerances=tuple(intolerances),
                contraindications=tuple(contraindications),
                attention_notes=tuple(attention_notes),
                correspondence=tuple(letters),
            )
        except ValueError as exc:
            ctx.error("FHIR-033", ctx.prefix, f"the records do not make a valid dossier: {exc}")
            return None

    def _each(self, which: str | list[int], read: Any, fallback: str) -> list:
        out = []
        for n, i in enumerate(self.of(which) if isinstance(which, str) else which):
            x = read(self.ctx.resource(i), self.ctx, self.ctx.at(i), fallback_id=f"{fallback}{n}")
            self.ctx.used.add(i)
            if x is not None:
                self.ctx.ids[i] = x.id
                out.append(x)
        return out


def from_fhir(
    bundle: dict, sink: ProblemSink | None = None, *, source: str | None = None, prefix: str = "Bundle"
) -> m.Dossier:
    """The dossier of a Bundle (collection or document); raises :class:`InputError` with every problem found
    (the first one in strict mode). ``source`` (a file name, ``file:line``) starts every location."""
    sink = sink if sink is not None else ProblemSink()
    start = len(sink.problems)
    ctx_loc = f"{source} {prefix}" if source else prefix
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        rtype = bundle.get("resourceType") if isinstance(bundle, dict) else None
        sink.error("FHIR-002", f"{ctx_loc}.resourceType", f"a dossier is a FHIR Bundle, not {rtype!r}")
        raise InputError(sink.problems[start:])
    btype = bundle.get("type")
    if btype not in ("collection", "document"):
        sink.warning("FHIR-004", f"{ctx_loc}.type", f"a Bundle of type {btype!r} read as a collection")
    dossier = _Reader(bundle, sink, source, prefix).read()
    errors = [p for p in sink.problems[start:] if p.severity.value == "error"]
    if dossier is None or errors:
        raise InputError(sink.problems[start:] if errors else [*sink.problems[start:], *_no_dossier(ctx_loc)])
    return dossier


def _no_dossier(where: str) -> list:
    from mappings.problems import Problem, Severity

    return [Problem(Severity.ERROR, "FHIR-033", where, "no dossier could be read from the Bundle")]

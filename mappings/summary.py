"""The NHG professional summary (professionele samenvatting) selected from a canonical dossier.

Rules of the NHG guideline on GP / out-of-hours exchange (Richtlijn Gegevensuitwisseling huisarts en
centrale huisartsenpost, v5, 2016) as DOMAIN.md §5 states them; everything is judged *as on* the reference
date ``as_of`` (data dated after it is not yet there):

1. episodes: every episode active on ``as_of`` (no end, or an end after ``as_of``), plus closed episodes
   with the attention flag (attentiewaarde); an episode that starts after ``as_of`` is left out;
2. journal: the contacts of the last 4 months, ``as_of - 4 months < start <= as_of`` (calendar months; the
   31st becomes the last day of a shorter month), with their deelcontacten and SOEP lines; a deelcontact
   linked to an episode that is not in the summary stays, its link cleared (its ICPC and lines say what it
   was about); a contact left without deelcontacten is dropped;
3. medication: current medication (started on or before ``as_of`` and ending on or after it; without an
   end date the status decides: ``active`` is current) plus medication stopped recently, its end date in
   ``(as_of - stopped_window_months, as_of)`` (default 3 months; the window is *uncertain* in DOMAIN.md,
   hence a parameter); stopped medication without an end date is left out, its stop cannot be dated;
4. measurements: the latest measurement per NHG Tabel 45 code taken on or before ``as_of`` (no age limit:
   the window is uncertain in DOMAIN.md, and the latest value is what the guideline asks for);
5. contra-indications not ended before ``as_of``; intolerances (active and inactive: a past reaction is
   still safety information); attention notes; each only when dated on or before ``as_of``;
6. correspondence is part of the journal: the letters dated in the journal window, by the same episode
   rules as deelcontacten;
7. shielded (afgeschermd) items of every kind are left out (episodes, contacts, medication, measurements,
   intolerances, contra-indications, attention notes, correspondence), and so is everything linked to a
   shielded episode (deelcontacten, medication, measurements, intolerances, contra-indications, notes,
   correspondence): with episode 532 shielded, its CT result goes too. The summary says so:
   :func:`left_out` counts what shielding held back per part, and :func:`build_summary` reports it as
   ``SUM-010`` (information) on the sink; the FHIR document puts it in the section's narrative;
8. medication status is derived as on ``as_of`` (nl-core / mp9 MedicationAgreement): a prescription whose
   end date lies before ``as_of`` is ``completed`` unless the HIS said ``stopped`` (broken off early);
   one that ends on or after ``as_of`` keeps the HIS's status (:func:`medication_status`).

The GP can narrow the summary to chosen episodes (``episode_ids``): only those episodes are kept (closed
ones too: the GP chose them), with the deelcontacten, medication and correspondence linked to them; an
unlinked deelcontact or prescription is left out then. Measurements, intolerances, contra-indications and
attention notes are kept in full because they concern the patient as a whole (a specialist needs to know
about a penicillin allergy whatever the question). An unknown episode id is an error (``SUM-001``), and so
is a chosen episode that is shielded (``SUM-002``); every bad id is reported before the error is raised.
``episode_ids=None`` means no narrowing; an empty list chooses no episode.

The result is again a valid :class:`~mappings.model.Dossier`: no reference points at something left out
(links to dropped episodes are cleared as above), and only the professionals and organisations still
referred to are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from mappings import model as m
from mappings.problems import InputError, ProblemSink
from mappings.record import PARTS_WITH_SHIELDING, left_out, medication_status, status_as_of, without_shielded

__all__ = [
    "PARTS_WITH_SHIELDING",
    "build_summary",
    "left_out",
    "medication_status",
    "months_before",
    "status_as_of",
    "without_shielded",
]

JOURNAL_MONTHS = 4
"""The journal window of the professional summary: SOEP lines of the last 4 months (NHG guideline)."""
STOPPED_WINDOW_MONTHS = 3
"""Default window for recently stopped medication (uncertain in DOMAIN.md: a parameter, not a rule)."""

_replace = msgspec.structs.replace


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clipped to the end of a shorter month."""
    y, mo = divmod(day.year * 12 + day.month - 1 - months, 12)
    mo += 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(y, mo, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _chosen(d: m.Dossier, episode_ids: Iterable[str], sink: ProblemSink, source: str) -> list[m.Episode]:
    by_id = {e.id: e for e in d.episodes}
    bad = False
    for eid in episode_ids:
        if eid not in by_id:
            sink.error("SUM-001", f"{source} --episode {eid}", f"episode {eid!r} is not in the dossier")
            bad = True
        elif by_id[eid].shielded:
            sink.error("SUM-002", f"{source} --episode {eid}", f"episode {eid!r} is shielded (afgeschermd)")
            bad = True
    if bad:
        raise InputError(sink.problems)
    wanted = set(episode_ids)
    return [e for e in d.episodes if e.id in wanted]  # dossier order, each once


def _dated_by(day: dt.date | None, as_of: dt.date) -> bool:
    return day is None or day <= as_of


def build_summary(
    d: m.Dossier,
    *,
    as_of: dt.date,
    episode_ids: Iterable[str] | None = None,
    stopped_window_months: int = STOPPED_WINDOW_MONTHS,
    sink: ProblemSink | None = None,
    source: str = "<input>",
) -> m.Dossier:
    """Select the professional summary of ``d`` as on ``as_of`` (the rules are in the module docstring).

    Raises :class:`~mappings.problems.InputError` (``SUM-001``/``SUM-002``) for a bad episode choice.
    """
    sink = sink if sink is not None else ProblemSink()
    narrowed = episode_ids is not None
    if narrowed:
        episodes = _chosen(d, list(episode_ids or ()), sink, source)
    else:
        episodes = [
            e
            for e in d.episodes
            if not e.shielded
            and _dated_by(e.start, as_of)
            and (e.end is None or e.end > as_of or e.attention)
        ]
    held = left_out(d)
    if held:
        sink.info(
            "SUM-010",
            source,
            "shielded (afgeschermd) data left out of the summary: "
            + ", ".join(f"{n} {part}" for part, n in held.items()),
        )
    kept = {e.id for e in episodes}
    shielded = {e.id for e in d.episodes if e.shielded}

    def link(eid: str | None, item_shielded: bool = False) -> tuple[bool, str | None]:
        """Whether an item linked to ``eid`` stays, and the link it keeps."""
        if item_shielded or eid in shielded or (narrowed and eid not in kept):
            return False, None
        return True, eid if eid in kept else None

    journal_from = months_before(as_of, JOURNAL_MONTHS)
    contacts = []
    for c in d.contacts:
        if c.shielded or not (journal_from < c.start.date() <= as_of):
            continue
        parts = []
        for dc in c.deelcontacten:
            stays, eid = link(dc.episode_id)
            if stays:
                parts.append(dc if eid == dc.episode_id else _replace(dc, episode_id=eid))
        if parts:
            contacts.append(_replace(c, deelcontacten=tuple(parts)))

    stopped_from = months_before(as_of, stopped_window_months)
    meds = []
    for med in d.medications:
        if not _dated_by(med.start, as_of):
            continue  # not started yet
        if med.end is None:
            if med.status != "active":
                continue  # stopped on a date nobody recorded
        elif med.end < as_of and med.end <= stopped_from:
            continue  # stopped before the window (which, like the journal's, excludes its first day)
        stays, eid = link(med.episode_id, med.shielded)
        if stays:
            status = medication_status(med, as_of)
            if eid != med.episode_id or status != med.status:
                med = _replace(med, episode_id=eid, status=status)
            meds.append(med)

    def whole(items: Iterable) -> list:
        """Items about the patient as a whole: kept unless shielded (or linked to a shielded episode);
        a link to an episode outside the summary is cleared."""
        out = []
        for x in items:
            if x.shielded or x.episode_id in shielded:
                continue
            if x.episode_id is not None and x.episode_id not in kept:
                x = _replace(x, episode_id=None)
            out.append(x)
        return out

    latest: dict[str, m.Measurement] = {}
    candidates = whole(d.measurements)
    for meas in candidates:
        if meas.effective.date() <= as_of:
            prev = latest.get(meas.code)
            if prev is None or meas.effective > prev.effective:
                latest[meas.code] = meas
    measurements = [x for x in candidates if latest.get(x.code) is x]

    cis = [
        c
        for c in whole(d.contraindications)
        if _dated_by(c.start, as_of) and (c.end is None or c.end >= as_of)
    ]
    intolerances = [i for i in whole(d.intolerances) if _dated_by(i.start, as_of)]
    notes = [a for a in whole(d.attention_notes) if _dated_by(a.date, as_of)]
    corr = []
    for k in d.correspondence:
        stays, eid = link(k.episode_id, k.shielded)
        if stays and journal_from < k.date.date() <= as_of:
            corr.append(k if eid == k.episode_id else _replace(k, episode_id=eid))

    used_pros = {c.author_id for c in contacts} | {x.prescriber_id for x in meds}
    pros = [p for p in d.professionals if p.id in used_pros]
    used_orgs = {p.organization_id for p in pros} | ({d.gp.organization_id} if d.gp else set())
    orgs = [o for o in d.organizations if o.id in used_orgs]
    return _replace(
        d,
        episodes=tuple(episodes),
        contacts=tuple(contacts),
        medications=tuple(meds),
        measurements=tuple(measurements),
        contraindications=tuple(cis),
        intolerances=tuple(intolerances),
        attention_notes=tuple(notes),
        correspondence=tuple(corr),
        professionals=tuple(pros),
        organizations=tuple(orgs),
    )

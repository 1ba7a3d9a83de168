"""The NHG professional summary (professionele samenvatting) selected from a canonical dossier.

Rules from the NHG guideline on GP / out-of-hours exchange (v5, 2016), as DOMAIN.md §5 states them:

1. episodes: every active episode, plus closed episodes with the attention flag (attentiewaarde);
2. journal: the contacts of the last 4 months before the reference date, i.e. ``as_of - 4 months <
   start <= as_of`` (calendar months; 31 -> last day of a shorter month), with all their deelcontacten (a link
   to an episode that is not in the summary is cleared; the deelcontact keeps its ICPC);
3. medication: current medication (no end, or end on or after ``as_of``) plus medication stopped within
   ``stopped_window_months`` (default 3; the window is *uncertain* in DOMAIN.md, hence a parameter);
4. measurements: the latest measurement per NHG Tabel 45 code, taken on or before ``as_of``;
5. contra-indications not ended before ``as_of``; every intolerance; every attention note;
6. shielded (afgeschermd) episodes and contacts are left out, and so are the deelcontacten linked to a
   shielded episode.

The GP can narrow the summary to chosen episodes (``episode_ids``): only those episodes are kept, with
the deelcontacten, medication and correspondence linked to them; measurements, intolerances,
contra-indications and attention notes are kept in full because they concern the patient as a whole
(a specialist needs to know about a penicillin allergy whatever the question). An unknown episode id is an
error (``SUM-001``); a chosen episode that is shielded is refused too (``SUM-002``).

The result is again a valid :class:`~mappings.model.Dossier`: references to episodes that were left out
are cleared (a medication keeps its place, without the episode link), contacts without any deelcontact
left are dropped, and only the professionals and organisations still referred to are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from mappings import model as m
from mappings.problems import InputError, ProblemSink

JOURNAL_MONTHS = 4


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


def build_summary(d: m.Dossier, *, as_of: dt.date, episode_ids: Iterable[str] | None = None,
                  stopped_window_months: int = 3, sink: ProblemSink | None = None,
                  source: str = "<input>") -> m.Dossier:
    """Select the professional summary of ``d`` on ``as_of`` (see the module docstring for the rules)."""
    sink = sink if sink is not None else ProblemSink()
    chosen = list(episode_ids) if episode_ids else None
    by_id = {e.id: e for e in d.episodes}
    if chosen is not None:
        bad = False
        for eid in chosen:
            if eid not in by_id:
                sink.error("SUM-001", f"{source} --episode {eid}", f"episode {eid!r} is not in the dossier")
                bad = True
            elif by_id[eid].shielded:
                sink.error("SUM-002", f"{source} --episode {eid}", f"episode {eid!r} is shielded (afgeschermd)")
                bad = True
        if bad:
            raise InputError(sink.problems)
        episodes = [by_id[eid] for eid in dict.fromkeys(chosen)]
        episodes.sort(key=lambda e: d.episodes.index(e))
    else:
        episodes = [e for e in d.episodes if not e.shielded and (e.active or e.attention)]
    kept = {e.id for e in episodes}
    shielded = {e.id for e in d.episodes if e.shielded}

    journal_from = months_before(as_of, JOURNAL_MONTHS)
    contacts = []
    for c in d.contacts:
        if c.shielded or not (journal_from < c.start.date() <= as_of):
            continue
        parts = []
        for dc in c.deelcontacten:
            if dc.episode_id in shielded or (chosen is not None and dc.episode_id not in kept):
                continue
            if dc.episode_id is not None and dc.episode_id not in kept:
                dc = msgspec.structs.replace(dc, episode_id=None)  # its episode is not in the summary
            parts.append(dc)
        if parts:
            contacts.append(msgspec.structs.replace(c, deelcontacten=tuple(parts)))

    stopped_from = months_before(as_of, stopped_window_months)
    meds = []
    for med in d.medications:
        current = med.end is None or med.end >= as_of
        recently_stopped = med.end is not None and stopped_from <= med.end < as_of
        started = med.start is None or med.start <= as_of
        if not started or not (current or recently_stopped):
            continue
        if chosen is not None and med.episode_id not in kept:
            continue
        if med.episode_id in shielded:
            continue
        meds.append(med if med.episode_id is None or med.episode_id in kept
                    else msgspec.structs.replace(med, episode_id=None))

    latest: dict[str, m.Measurement] = {}
    for meas in d.measurements:
        if meas.effective.date() > as_of:
            continue
        prev = latest.get(meas.code)
        if prev is None or meas.effective > prev.effective:
            latest[meas.code] = meas
    measurements = [x for x in d.measurements if latest.get(x.code) is x]

    cis = [ci for ci in d.contraindications if ci.end is None or ci.end >= as_of]
    corr = [k if k.episode_id is None or k.episode_id in kept else msgspec.structs.replace(k, episode_id=None)
            for k in d.correspondence
            if (chosen is None and k.episode_id not in shielded) or (chosen is not None and k.episode_id in kept)]

    used_pros = {c.author_id for c in contacts} | {x.prescriber_id for x in meds}
    pros = [p for p in d.professionals if p.id in used_pros]
    used_orgs = {p.organization_id for p in pros} | ({d.gp.organization_id} if d.gp else set())
    orgs = [o for o in d.organizations if o.id in used_orgs]
    return msgspec.structs.replace(
        d, episodes=tuple(episodes), contacts=tuple(contacts), medications=tuple(meds),
        measurements=tuple(measurements), contraindications=tuple(cis), correspondence=tuple(corr),
        professionals=tuple(pros), organizations=tuple(orgs))

"""The record as the GP wrote it: what every export of it keeps (issue 20; DOMAIN.md §5, §6).

Two rules hold whatever path a dossier takes out of the gateway (the professional summary of
:mod:`mappings.summary`, its FHIR document, a dialect file of it):

- **Shielding** (afgeschermd): a shielded item of any kind, and every item linked to a shielded episode,
  is left out (:func:`without_shielded`), and what was left out is counted per summary part
  (:func:`left_out`) so that the output can say so;
- **medication status as of a date** (nl-core / mp9 MedicationAgreement: active, completed, stopped): a
  prescription past its end date that the HIS still calls ``active`` is ``completed`` on that date; one
  the HIS calls ``stopped`` (broken off early) stays stopped (:func:`medication_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from mappings import model as m

_replace = msgspec.structs.replace


def medication_status(med: m.Medication, as_of: dt.date) -> m.MedicationStatus:
    """The status of a prescription as on ``as_of``: past its end date an ``active`` one is ``completed``."""
    if med.end is not None and med.end < as_of and med.status == "active":
        return "completed"
    return med.status


PARTS_WITH_SHIELDING = (
    ("episodes", "episodes"),
    ("journal", "contacts"),
    ("medication", "medications"),
    ("measurements", "measurements"),
    ("contraindications", "contraindications"),
    ("intolerances", "intolerances"),
    ("attention", "attention_notes"),
    ("correspondence", "correspondence"),
)
"""Summary part (the FHIR document's section) and the dossier field it comes from."""


def _held_back(d: m.Dossier, x: object) -> bool:
    """Shielded itself, or linked to a shielded episode (a contact: all its deelcontacten are)."""
    if getattr(x, "shielded", False):
        return True
    shielded = {e.id for e in d.episodes if e.shielded}
    if isinstance(x, m.Contact):
        return bool(x.deelcontacten) and all(dc.episode_id in shielded for dc in x.deelcontacten)
    return getattr(x, "episode_id", None) in shielded


def left_out(d: m.Dossier) -> dict[str, int]:
    """Per summary part, how many items of ``d`` shielding holds back (parts with none are absent)."""
    out: dict[str, int] = {}
    for part, field in PARTS_WITH_SHIELDING:
        n = sum(1 for x in getattr(d, field) if _held_back(d, x))
        if n:
            out[part] = n
    return out


def without_shielded(d: m.Dossier) -> m.Dossier:
    """``d`` with every shielded item left out, and every item linked to a shielded episode (a contact
    keeps its other deelcontacten; one left with none goes). What every export of a summary applies last,
    so that nothing shielded leaves the gateway whatever path a dossier took."""
    if not left_out(d):
        return d
    shielded = {e.id for e in d.episodes if e.shielded}

    def keep(items: Iterable) -> tuple:
        return tuple(x for x in items if not x.shielded and getattr(x, "episode_id", None) not in shielded)

    contacts = []
    for c in d.contacts:
        if c.shielded:
            continue
        parts = tuple(dc for dc in c.deelcontacten if dc.episode_id not in shielded)
        if parts or not c.deelcontacten:
            contacts.append(c if len(parts) == len(c.deelcontacten) else _replace(c, deelcontacten=parts))
    return _replace(
        d,
        episodes=keep(d.episodes),
        contacts=tuple(contacts),
        medications=keep(d.medications),
        measurements=keep(d.measurements),
        intolerances=keep(d.intolerances),
        contraindications=keep(d.contraindications),
        attention_notes=keep(d.attention_notes),
        correspondence=keep(d.correspondence),
    )


def status_as_of(d: m.Dossier, as_of: dt.date) -> m.Dossier:
    """``d`` with every prescription's status as on ``as_of`` (:func:`medication_status`)."""
    meds = tuple(
        x if medication_status(x, as_of) == x.status else _replace(x, status=medication_status(x, as_of))
        for x in d.medications
    )
    return d if meds == d.medications else _replace(d, medications=meds)

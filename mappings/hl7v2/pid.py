"""PID[Patient] (HL7 v2.5 §3.4.2; V2-to-FHIR IG "PID[Patient]") with the Dutch conventions.

PID-3 identifiers: the BSN as ``<bsn>^^^NLMINBIZA^NNNLD`` (11-test checked, ``HL7-021``); any other
identifier is kept as an :class:`~mappings.hl7v2.canonical.Identifier`. PID-5 the name (first
repetition; XPN with own and partner name parts, see :mod:`mappings.hl7v2.datatypes`), PID-7 birth date,
PID-8 administrative sex (M F O U A N), PID-11 address, PID-13 home and PID-14 business telecom,
PID-29/PID-30 death date and indicator; PID-2, PID-4, PID-18, PID-19, PID-20 further identifiers (written
back in PID-3). A valued field neither read nor in :data:`LISTED` refuses the message (``HL7-053``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mappings import model as m
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import Identifier
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 7, 8, 11, 13, 14, 18, 19, 20, 29, 30})
LISTED = frozenset(
    {6, 9, 10, 12, 15, 16, 17, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39}
)
"""Not mapped by design, listed as information (``HL7-060``): mother's maiden name, alias, race, county,
language, marital status, religion, mother's identifier, ethnic group, birth place, multiple birth and birth
order, citizenship, veteran status, nationality, identity (un)reliability, last update, species ... (v2.5
§3.4.2); a Dutch GP record keeps none of these for a patient."""
OTHER_IDS = ((2, None), (4, None), (18, "AN"), (19, "SS"), (20, "DL"))
"""PID-2 patient id and PID-4 alternate id (CX), PID-18 account number (CX), PID-19 social security number
(ST) and PID-20 driver's licence (DLN): kept as identifiers of that type (table 0203)."""
GENDER = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
GENDER_BACK = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}


def _date(seg: Segment, n: int, sink: ProblemSink) -> dt.date | None:
    raw = seg.get(n)
    return t.parse_date(raw, seg.loc(n), sink) if raw else None


def read_parts(seg: Segment, sink: ProblemSink) -> dict[str, Any]:
    """Every PID value the gateway keeps, as keyword arguments (``None`` where absent)."""
    bsn = None
    identifiers: list[Identifier] = []
    for i, comps in enumerate(seg.all_components(3), 1):
        value = t.comp(comps, 1)
        if not value:
            continue
        if t.is_bsn_cx(comps):
            if not m.bsn_is_valid(value):
                sink.error("HL7-021", seg.loc(3, i, 1), f"BSN {value!r} is not 9 digits passing the 11-test")
            elif bsn is not None and bsn != value:
                sink.error("HL7-022", seg.loc(3, i, 1), f"a second, different BSN {value!r}")
            else:
                bsn = value
        else:
            identifiers.append(
                Identifier(value=value, authority=t.opt(t.comp(comps, 4)), type=t.opt(t.comp(comps, 5)))
            )
    for n, kind in OTHER_IDS:
        for comps in seg.all_components(n) if seg.raw(n) else ():
            value = t.comp(comps, 1)
            if value:
                authority = t.comp(comps, 2) if n == 20 else t.comp(comps, 4)  # DLN.2 the issuing state
                typ = kind or t.comp(comps, 5) or None
                identifiers.append(Identifier(value=value, authority=t.opt(authority), type=typ))
    names = seg.all_components(5)
    name = t.read_name(names[0], 1, seg.loc(5), sink) if names else None
    if len(names) > 1:
        sink.warning("HL7-053", seg.loc(5, 2), "only the first patient name is kept")
    sex = seg.get(8)
    gender = GENDER_BACK.get(sex, "unknown")
    if sex and sex not in GENDER_BACK:
        sink.warning(
            "HL7-052", seg.loc(8), f"administrative sex {sex!r} is not M, F, O, U, A or N; read as unknown"
        )
    addresses = seg.all_components(11)
    address = t.read_xad(addresses[0], seg.loc(11), sink) if addresses else None
    if len(addresses) > 1:
        sink.warning("HL7-053", seg.loc(11, 2), "only the first address is kept")
    telecom = [
        x for i, c in enumerate(seg.all_components(13), 1) if (x := t.read_xtn(c, seg.loc(13, i), sink))
    ]
    telecom += [
        x
        for i, c in enumerate(seg.all_components(14), 1)
        if (x := t.read_xtn(c, seg.loc(14, i), sink, default_use="work"))
    ]
    deceased = _date(seg, 29, sink)
    warn_unread(seg, READ, sink, LISTED)
    return {
        "bsn": bsn,
        "name": name,
        "birth_date": _date(seg, 7, sink),
        "gender": gender,
        "address": address,
        "telecom": tuple(telecom),
        "deceased_date": deceased,
        "identifiers": tuple(identifiers),
    }


def from_segment(
    seg: Segment, sink: ProblemSink, insurance: m.Insurance | None = None
) -> tuple[m.Patient | None, tuple[Identifier, ...]]:
    """The patient (``None`` with errors in ``sink`` when PID-5 or PID-7 is missing) and other identifiers."""
    p = read_parts(seg, sink)
    identifiers = p.pop("identifiers")
    if p["name"] is None:
        sink.error(
            "HL7-010",
            seg.loc(5),
            "PID-5 patient name is required (a family name, partner name, given name or initials)",
        )
    if p["birth_date"] is None and not seg.get(7):
        sink.error("HL7-010", seg.loc(7), "PID-7 date of birth is required")
    if p["name"] is None or p["birth_date"] is None:
        return None, identifiers
    try:
        return m.Patient(insurance=insurance, **p), identifiers
    except ValueError as exc:
        sink.error("HL7-020", seg.loc(), str(exc))
        return None, identifiers


def to_segment(
    p: m.Patient | m.PatientMatch,
    identifiers: tuple[Identifier, ...] = (),
    sender_reference: str | None = None,
) -> tuple[str, list[FieldValue]]:
    """PID for a patient, or for the patient of a postbox item (name, BSN, birth date only)."""
    ids: list = [t.bsn_cx(p.bsn)] if p.bsn else []
    ids += [(i.value, None, None, i.authority, i.type) for i in identifiers]
    if sender_reference:
        ids.append((sender_reference, None, None, None, "PI"))
    full = p if isinstance(p, m.Patient) else None
    telecom = full.telecom if full else ()
    home = [t.write_xtn(x) for x in telecom if x.use != "work"]
    work = [t.write_xtn(x) for x in telecom if x.use == "work"]
    fields: list[FieldValue] = [
        "1",  # PID-1
        None,  # PID-2
        ids,  # PID-3
        None,  # PID-4
        t.write_name(p.name) if p.name else None,  # PID-5
        None,  # PID-6
        t.fmt_date(p.birth_date),  # PID-7
        GENDER[full.gender] if full else None,  # PID-8
        None,
        None,  # PID-9, PID-10
        t.write_xad(full.address) if full and full.address else None,  # PID-11
        None,  # PID-12
        home,  # PID-13
        work,  # PID-14
    ]
    if full and full.deceased_date:
        fields += [None] * 14 + [t.fmt_date(full.deceased_date), "Y"]  # PID-29, PID-30
    return "PID", fields

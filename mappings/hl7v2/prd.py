"""PRD provider data (HL7 v2.5 §11.6.3) -> :class:`ConsultParty` of a REF^I12 or RRI^I12.

PRD-1 role (``RP`` referring provider, ``RT`` referred-to provider), PRD-2 the professional's name
(XPN, Dutch name parts), PRD-3 address, PRD-4 location: PL.1 point of care = the specialism (vakgroep),
PL.4 facility = the hospital or practice; PRD-5 telecom; PRD-7 identifiers (PLN ``<id>^AGB``,
``^UZI``, ``^BIG``). A consult may go to a vakgroep with no named professional.
"""

from __future__ import annotations

from mappings import model as m
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import ConsultParty
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 7})
ID_TYPES = {"AGB": "agb", "UZI": "uzi", "BIG": "big"}


def from_segment(seg: Segment, sink: ProblemSink) -> ConsultParty | None:
    warn_unread(seg, READ, sink)
    role = seg.get(1)
    if not role:
        sink.error("HL7-010", seg.loc(1), "PRD-1 provider role is required")
        return None
    names = seg.all_components(2)
    name = t.read_name(names[0], 1, seg.loc(2), sink) if names else None
    ids: dict[str, str] = {}
    for i, comps in enumerate(seg.all_components(7), 1):
        value, typ = t.comp(comps, 1), t.comp(comps, 2)
        if typ in ID_TYPES and value:
            ids[ID_TYPES[typ]] = value
        elif value:
            sink.warning(
                "HL7-051", seg.loc(7, i), f"identifier type {typ!r} is not AGB, UZI or BIG; not kept"
            )
    professional = None
    if name or ids:
        pid = next((f"{k}-{v}" for k, v in ids.items()), f"PRD-{seg.occurrence}")
        try:
            professional = m.HealthProfessional(id=pid, name=name, **ids)  # type: ignore[arg-type]
        except ValueError as exc:
            sink.error("HL7-020", seg.loc(7), str(exc))
    addresses = seg.all_components(3)
    return ConsultParty(
        role=role,
        professional=professional,
        specialism=t.opt(seg.get(4, 1)),
        organization=t.opt(seg.get(4, 4)),
        address=t.read_xad(addresses[0], seg.loc(3), sink) if addresses else None,
        telecom=tuple(
            x for i, c in enumerate(seg.all_components(5), 1) if (x := t.read_xtn(c, seg.loc(5, i), sink))
        ),
    )


def to_segment(p: ConsultParty) -> tuple[str, list[FieldValue]]:
    pro = p.professional
    ids = [(v, k.upper()) for k in ("agb", "uzi", "big") if pro and (v := getattr(pro, k))]
    location = (p.specialism, None, None, p.organization) if p.specialism or p.organization else None
    return "PRD", [
        p.role,
        t.write_name(pro.name) if pro and pro.name else None,
        t.write_xad(p.address) if p.address else None,
        location,
        [t.write_xtn(x) for x in p.telecom],
        None,
        ids,
    ]

"""The parties: GGA and GGO (MEDVRI), ZKH, ART and AFD (MEDLAB), ``docs/dialects/edifact.md`` §4.

**GGA is the sender, GGO the addressee.** Confirmed from the public PHP implementation
``mmerlijn/msg-edifact`` (``src/segments/GGA.php`` fills ``$msg->sender`` from GGA, ``src/segments/GGO.php``
fills ``$msg->receiver`` from GGO; its MEDVRI writer puts GGA right after UNH and GGO last, before UNT):
GGA = *gegevens afzender*, GGO = *gegevens ontvanger*. Read there, not copied.

::

    GGA+<sender organisation>+<discipline / department>+<writer's name>+<address>+<phone>'
    GGO+<addressee name>+++<address>+<phone>'
    ZKH+<laboratory name>+<address>+<phone>'
    ART+<kind: H huisarts>+<AGB>+<name>+<address>+<phone>'
    AFD+<department>'

Addresses and phone numbers of the parties are not kept (``EDI-014``): a postbox item knows its sender
by name only (DOMAIN.md §6).
"""

from __future__ import annotations

from mappings import model as m
from mappings.edifact.common import safe_id, warn_unread
from mappings.edifact.syntax import Segment, Writer
from mappings.problems import ProblemSink

GP_ROLE = "01.015"
"""UZI role code of a huisarts: ART-1 ``H``."""


def gga_from_segment(seg: Segment, sink: ProblemSink) -> tuple[str | None, str | None, str | None]:
    """GGA -> (sender organisation, discipline, writer's name)."""
    warn_unread(seg, {1, 2, 3}, sink, "a postbox item knows its sender by name")
    return seg.get(1) or None, seg.get(2) or None, seg.get(3) or None


def gga_to_segment(w: Writer, organization: str | None, discipline: str | None, name: str | None) -> str:
    return w.segment("GGA", organization, discipline, name)


def ggo_from_segment(seg: Segment, sink: ProblemSink) -> str | None:
    """GGO -> the addressee's name."""
    warn_unread(seg, {1}, sink, "the practice is known by its AGB (UNB-3)")
    return seg.get(1) or None


def ggo_to_segment(w: Writer, name: str | None) -> str:
    return w.segment("GGO", name)


def zkh_from_segment(seg: Segment, sink: ProblemSink) -> str:
    warn_unread(seg, {1}, sink)
    return seg.get(1)


def zkh_to_segment(w: Writer, laboratory: str) -> str:
    return w.segment("ZKH", laboratory)


def art_from_segment(seg: Segment, sink: ProblemSink) -> m.HealthProfessional | None:
    """ART -> the requester (id from the AGB, else ``requester``)."""
    warn_unread(seg, {1, 2, 3}, sink)
    kind, agb, name = seg.get(1), seg.get(2), seg.get(3)
    if kind not in ("", "H"):
        sink.warning("EDI-014", seg.loc(1), f"requester kind {kind!r} is not kept (only H, huisarts)")
    if agb and not (len(agb) == 8 and agb.isdigit() and agb.isascii()):
        sink.error("EDI-022", seg.loc(2), f"AGB {agb!r} is not 8 digits")
        return None
    if not agb and not name:
        return None
    return m.HealthProfessional(
        id=safe_id(f"agb-{agb}" if agb else "requester"),
        name=m.PersonName(family=name) if name else None,
        agb=agb or None,
        role=GP_ROLE if kind == "H" else None,
    )


def art_to_segment(w: Writer, p: m.HealthProfessional) -> str:
    name = None
    if p.name is not None:
        n = p.name
        name = " ".join(x for x in (n.initials, n.prefix, n.family or n.partner_family) if x) or n.given
    return w.segment("ART", "H" if p.role == GP_ROLE else None, p.agb, name)


def afd_from_segment(seg: Segment, sink: ProblemSink) -> str | None:
    warn_unread(seg, {1}, sink)
    return seg.get(1) or None


def afd_to_segment(w: Writer, department: str) -> str:
    return w.segment("AFD", department)

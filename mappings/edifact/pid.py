"""PID (patient identification) and PAD (patient address), ``docs/dialects/edifact.md`` §4.

PID::

    PID+<birth date Y:M:D>+<sex>+<name>+<sender's patient reference>+BSN<bsn>'
    name = 1 family in use : 2 its voorvoegsels : 3 own family name : 4 own voorvoegsels : 5 - : 6 initials

When component 3 holds a name the patient uses a partner's name: components 1-2 are the partner's name
and 3-4 the own name (read by ``mmerlijn/msg-edifact`` ``src/segments/PID.php`` the same way for
women); otherwise 1-2 are the own name. Sex: ``M`` male, ``V`` female (vrouw), ``O`` unknown
(onbekend), ``X`` other.

PAD::

    PAD+<street>:<house number>::<city>:<postal code>+<phone>'
"""

from __future__ import annotations

import datetime as dt

from mappings import model as m
from mappings.edifact.common import read_date, warn_unread, warn_unread_components
from mappings.edifact.syntax import Segment, Writer
from mappings.problems import ProblemSink

SEX_IN = {"M": "male", "V": "female", "O": "unknown", "X": "other"}
SEX_OUT = {v: k for k, v in SEX_IN.items()}


def read_name(seg: Segment, e: int, sink: ProblemSink) -> m.PersonName | None:
    c = [seg.get(e, k) for k in range(1, 7)]
    warn_unread_components(seg, e, {1, 2, 3, 4, 6}, sink)
    if c[2]:
        family, prefix, pfam, ppre = c[2], c[3], c[0], c[1]
    else:
        family, prefix, pfam, ppre = c[0], c[1], c[2], c[3]
    if prefix and not family or ppre and not pfam:
        sink.warning("EDI-014", seg.loc(e), "voorvoegsels without their family name are not kept")
        prefix = prefix if family else ""
        ppre = ppre if pfam else ""
    try:
        return m.PersonName(
            family=family or None,
            prefix=prefix or None,
            partner_family=pfam or None,
            partner_prefix=ppre or None,
            initials=c[5] or None,
        )
    except ValueError as exc:
        sink.error("EDI-021", seg.loc(e), str(exc))
        return None


def name_parts(n: m.PersonName | None) -> tuple[str, ...]:
    if n is None:
        return ()
    if n.partner_family:
        return (
            n.partner_family,
            n.partner_prefix or "",
            n.family or "",
            n.prefix or "",
            "",
            n.initials or "",
        )
    return (n.family or "", n.prefix or "", "", "", "", n.initials or "")


class PidData:
    """What PID holds, before it becomes a Patient (MEDLAB) or a PatientMatch (MEDVRI)."""

    __slots__ = ("birth_date", "gender", "name", "reference", "bsn")

    def __init__(self) -> None:
        self.birth_date: dt.date | None = None
        self.gender: m.Gender | None = None
        self.name: m.PersonName | None = None
        self.reference: str | None = None
        self.bsn: str | None = None


def from_segment(seg: Segment, sink: ProblemSink) -> PidData:
    """PID -> its parts; ``EDI-021`` for a BSN that is not ``BSN`` + 9 digits passing the 11-test."""
    out = PidData()
    warn_unread(seg, {1, 2, 3, 4, 5}, sink)
    if seg.get(1):
        out.birth_date = read_date(seg, 1, sink)  # PID-1
    sex = seg.get(2)  # PID-2
    if sex:
        out.gender = SEX_IN.get(sex)  # type: ignore[assignment]
        if out.gender is None:
            sink.error("EDI-021", seg.loc(2), f"sex {sex!r} is not M, V, O or X")
    out.name = read_name(seg, 3, sink) if any(seg.get(3, k) for k in range(1, 7)) else None  # PID-3
    out.reference = seg.get(4) or None  # PID-4
    raw = seg.get(5)  # PID-5
    if raw:
        bsn = raw[3:] if raw.upper().startswith("BSN") else raw
        if not m.bsn_is_valid(bsn):
            sink.error("EDI-021", seg.loc(5), f"{raw!r} is not BSN and a number passing the 11-test")
        else:
            out.bsn = bsn
    return out


def to_segment(
    w: Writer,
    *,
    birth_date: dt.date | None,
    gender: str | None,
    name: m.PersonName | None,
    reference: str | None,
    bsn: str | None,
) -> str:
    bd = (
        (f"{birth_date.year:04d}", f"{birth_date.month:02d}", f"{birth_date.day:02d}") if birth_date else None
    )
    return w.segment(
        "PID",
        bd,  # PID-1
        SEX_OUT.get(gender or "", "") if gender else None,  # PID-2
        name_parts(name),  # PID-3
        reference,  # PID-4
        f"BSN{bsn}" if bsn else None,  # PID-5
    )


def address_from_segment(seg: Segment, sink: ProblemSink) -> tuple[m.Address | None, tuple[m.Telecom, ...]]:
    """PAD -> address (PAD-1) and phone (PAD-2)."""
    warn_unread(seg, {1, 2}, sink)
    warn_unread_components(seg, 1, {1, 2, 4, 5}, sink)
    street, number, city, postal = seg.get(1, 1), seg.get(1, 2), seg.get(1, 4), seg.get(1, 5)
    addr = (
        m.Address(
            street=street or None, house_number=number or None, city=city or None, postal_code=postal or None
        )
        if any((street, number, city, postal))
        else None
    )
    phone = seg.get(2)
    tel = (m.Telecom(system="phone", value=phone),) if phone.strip() else ()
    return addr, tel


def address_to_segment(w: Writer, address: m.Address | None, telecom: tuple[m.Telecom, ...]) -> str | None:
    phone = next((t.value for t in telecom if t.system == "phone"), None)
    if address is None and phone is None:
        return None
    a = address or m.Address()
    return w.segment(
        "PAD",
        (a.street or "", a.house_number or "", "", a.city or "", a.postal_code or ""),  # PAD-1
        phone,  # PAD-2
    )

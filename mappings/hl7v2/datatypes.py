"""HL7 v2.5 data types the segment mappings share (v2.5 chapter 2A), and the Dutch conventions on them.

Primitive: DT, DTM/TS, NM. Composite: CX (identifiers), XPN (person name), XCN (professional), XAD
(address), XTN (telecom), CWE/CE (coded), EI (entity id), HD (assigning authority). Every reader takes
the *decoded components* of one repetition as :meth:`~mappings.hl7v2.er7.Codec.components` gives them
(``comps[i][j]`` = component i+1, subcomponent j+1) and returns canonical values; every writer returns a
:data:`~mappings.hl7v2.er7.FieldValue` tuple.

Dutch conventions (documented in ``docs/hl7v2.md`` §3):

- **BSN** in a CX with assigning authority ``NLMINBIZA`` (HD.1; or the BSN OID in HD.2) and identifier
  type ``NNNLD``: ``123456782^^^NLMINBIZA^NNNLD``.
- **Names** (XPN and the name part of XCN): FN.1 the family name as displayed, FN.2 voorvoegsels of the
  own name, FN.3 own family name, FN.4 voorvoegsels of the partner's name, FN.5 partner's family name;
  XPN.2 the given names as written, XPN.3 initials, XPN.5 a title ("Dr."), XPN.7 ``L``. The name usage
  (NL1-NL4) is read from the order of FN.1 as the Dutch PN.NL convention does: own name only NL1,
  partner's only NL2, partner's then own NL3, own then partner's NL4 (joined by ``-``).
- **Professionals**: one XCN repetition per identifier, the authority as HD ``name&OID&ISO``: AGB
  ``VEKTIS&2.16.840.1.113883.2.4.6.1``, UZI ``CIBG&2.16.528.1.1007.3.1``, BIG ``CIBG&2.16.528.1.1007.5.1``.
- **Times** are local wall-clock (Europe/Amsterdam); a TS with an offset is converted to it, fractions
  of seconds are dropped (the canonical model keeps whole seconds).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from mappings import model as m
from mappings.problems import ProblemSink

AMS = ZoneInfo("Europe/Amsterdam")

_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"([+-]\d{4})?\Z"
)
_NM = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)\Z")

BSN_AUTHORITY = "NLMINBIZA"
BSN_TYPE = "NNNLD"
BSN_OID = "2.16.840.1.113883.2.4.6.3"
AGB_OID = "2.16.840.1.113883.2.4.6.1"
UZI_OID = "2.16.528.1.1007.3.1"
BIG_OID = "2.16.528.1.1007.5.1"
UZOVI_OID = "2.16.840.1.113883.2.4.6.4"


def comp(comps: list[list[str]], i: int, s: int = 1) -> str:
    """Component *i* (1-based), subcomponent *s* of decoded components; ``""`` when absent."""
    if i > len(comps):
        return ""
    c = comps[i - 1]
    return c[s - 1] if s <= len(c) else ""


def opt(value: str) -> str | None:
    """``None`` for an empty value and for the HL7 explicit null ``""`` (nothing to keep here)."""
    return None if not value or value == '""' else value


# --------------------------------------------------------------------------- primitives


_SENDER = threading.local()


def set_sender_offset(raw7: str | None) -> None:
    """The offset of MSH-7 (``20240301120000+0100`` -> ``+0100``), or none: what an unzoned time in the
    message being read is taken in (HL7 v2.5 §2.A.22: a time without offset is the sender's local time;
    MSH-7's offset says which). Set by :func:`mappings.hl7v2.msh.from_segment` for each message, per
    thread."""
    mt = _DTM.match(raw7) if raw7 else None
    _SENDER.offset = mt.group(8) if mt else None


def sender_offset() -> str | None:
    """The offset unzoned times of the message being read take (``None``: Europe/Amsterdam)."""
    return getattr(_SENDER, "offset", None)


def parse_dtm(raw: str, location: str, sink: ProblemSink, *, code: str = "HL7-011") -> dt.datetime | None:
    """DTM/TS.1 ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` -> local wall-clock, whole seconds.
    A date alone is midnight; less than a date is an error (the model needs a day). A time without an
    offset takes the sender's (MSH-7's, :func:`set_sender_offset`), else it is Amsterdam time already."""
    if not raw:
        return None
    mt = _DTM.match(raw)
    if not mt or mt.group(3) is None:
        sink.error(
            code, location, f"{raw[:40]!r} is not a date/time YYYYMMDD[HHMM[SS]][+/-ZZZZ] precise to the day"
        )
        return None
    y, mo, d, h, mi, s, _frac, off = mt.groups()
    try:
        t = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        sink.error(code, location, f"{raw!r} is not a valid date/time")
        return None
    if not off and h:  # a date alone is a day, in no zone
        off = sender_offset()
    if off:
        sign = -1 if off[0] == "-" else 1
        delta = dt.timedelta(hours=int(off[1:3]), minutes=int(off[3:5])) * sign
        try:
            t = t.replace(tzinfo=dt.timezone(delta)).astimezone(AMS).replace(tzinfo=None)
        except (ValueError, OverflowError):
            sink.error(code, location, f"{raw!r} has an impossible offset")
            return None
    return t


_DTM_CACHE: dict[tuple[str, str | None], dt.datetime] = {}
"""(DTM as written, the sender's offset) -> the wall-clock time read."""


def dtm_at(raw: str, seg, n: int, sink: ProblemSink) -> dt.datetime | None:
    """:func:`parse_dtm` of field *n* of ``seg`` with a small cache: the 30 OBX of a lab report mostly share
    one time, and the location string is only built when there is something to report."""
    if not raw:
        return None
    key = (raw, getattr(_SENDER, "offset", None))
    hit = _DTM_CACHE.get(key)
    if hit is not None:
        return hit
    value = parse_dtm(raw, seg.loc(n), sink)
    if value is not None:
        if len(_DTM_CACHE) > 4096:
            _DTM_CACHE.clear()
        _DTM_CACHE[key] = value
    return value


def parse_date(raw: str, location: str, sink: ProblemSink) -> dt.date | None:
    """DT ``YYYYMMDD`` (a TS with a time is accepted; its date is kept)."""
    if not raw:
        return None
    mt = _DTM.match(raw)
    if not mt or mt.group(3) is None:
        sink.error("HL7-011", location, f"{raw[:40]!r} is not a date YYYYMMDD")
        return None
    try:
        return dt.date(int(mt.group(1)), int(mt.group(2)), int(mt.group(3)))
    except ValueError:
        sink.error("HL7-011", location, f"{raw!r} is not a valid date")
        return None


def parse_nm(raw: str, location: str, sink: ProblemSink) -> Decimal | None:
    """NM: optional sign, digits, optional decimal point. Kept exactly as a Decimal."""
    if not raw:
        return None
    v = raw.strip()
    if not _NM.match(v):
        sink.error("HL7-011", location, f"{raw[:40]!r} is not a number (NM)")
        return None
    try:
        return Decimal(v)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        sink.error("HL7-011", location, f"{raw[:40]!r} is not a number (NM)")
        return None


def fmt_dtm(t: dt.datetime | None) -> str | None:
    return (
        None if t is None else f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"
    )


def fmt_date(d: dt.date | None) -> str | None:
    return None if d is None else f"{d.year:04d}{d.month:02d}{d.day:02d}"


def fmt_nm(v: Decimal | None) -> str | None:
    return None if v is None else format(v, "f")


# --------------------------------------------------------------------------- HD, EI, CWE


def hd(namespace: str | None, oid: str | None = None) -> tuple:
    """An HD as subcomponents (inside another type): ``namespace&oid&ISO``."""
    return (namespace, oid, "ISO") if oid else (namespace,)


def read_cwe(comps: list[list[str]]) -> tuple[str, str, str]:
    """CWE/CE: (code, text, coding system) of the first triplet."""
    return comp(comps, 1), comp(comps, 2), comp(comps, 3)


# --------------------------------------------------------------------------- CX


def is_bsn_cx(comps: list[list[str]]) -> bool:
    return (
        comp(comps, 4) == BSN_AUTHORITY
        or comp(comps, 4, 2) == BSN_OID
        or (comp(comps, 5) == BSN_TYPE and not comp(comps, 4))
    )


def bsn_cx(bsn: str) -> tuple:
    return (bsn, None, None, (BSN_AUTHORITY,), BSN_TYPE)


# --------------------------------------------------------------------------- names


def _assemble(prefix: str | None, family: str | None) -> str:
    return " ".join(p for p in (prefix, family) if p)


def name_display(n: m.PersonName) -> str:
    """FN.1: the family name as displayed for the name usage (own name when usage is absent)."""
    own = _assemble(n.prefix, n.family)
    partner = _assemble(n.partner_prefix, n.partner_family)
    if n.usage == "NL2" and partner:
        return partner
    if n.usage == "NL3" and partner and own:
        return f"{partner}-{own}"
    if n.usage == "NL4" and partner and own:
        return f"{own}-{partner}"
    return own or partner


def write_name(n: m.PersonName) -> tuple:
    """The name part as XPN components 1-7 (FN, given, initials, suffix, title, degree, type)."""
    if n.prefix or n.partner_prefix or n.partner_family:
        fn: tuple | str | None = (name_display(n), n.prefix, n.family, n.partner_prefix, n.partner_family)
    else:
        fn = n.family
    return (fn, n.given, n.initials, None, n.title, None, "L")


def read_name(comps: list[list[str]], base: int, location: str, sink: ProblemSink) -> m.PersonName | None:
    """A PersonName from XPN components (``base`` 1) or XCN components (``base`` 2: FN is XCN.2)."""
    fn = comps[base - 1] if base <= len(comps) else []
    sub = [opt(x) for x in fn] + [None] * (5 - len(fn))
    display, prefix, family, partner_prefix, partner_family = sub[:5]
    given = opt(comp(comps, base + 1))
    initials = opt(comp(comps, base + 2))
    title = opt(comp(comps, base + 4))
    usage = None
    if prefix or family or partner_prefix or partner_family:
        own = _assemble(prefix, family)
        partner = _assemble(partner_prefix, partner_family)
        if partner_family and display:
            usage = {own: "NL1", partner: "NL2", f"{partner}-{own}": "NL3", f"{own}-{partner}": "NL4"}.get(
                display
            )
            if usage is None:
                sink.warning(
                    "HL7-050",
                    f"{location}.{base}.1",
                    f"family name {display!r} is not the own and partner "
                    "name parts in any Dutch name usage order; name usage not set",
                )
        elif display and display != own and display != partner:
            sink.warning(
                "HL7-050",
                f"{location}.{base}.1",
                f"family name {display!r} differs from its parts {own or partner!r}; the parts are kept",
            )
    else:
        family = display
    if not any((family, partner_family, given, initials)):
        return None
    return m.PersonName(
        initials=initials,
        given=given,
        prefix=prefix,
        family=family,
        partner_prefix=partner_prefix,
        partner_family=partner_family,
        usage=usage,  # type: ignore[arg-type]  # one of NL1-NL4 by construction
        title=title,
    )


# --------------------------------------------------------------------------- professionals (XCN)

_PRO_IDS = (
    ("agb", "VEKTIS", AGB_OID, "PRN"),
    ("uzi", "CIBG", UZI_OID, "PRN"),
    ("big", "CIBG", BIG_OID, "LN"),
)


def write_xcn(p: m.HealthProfessional) -> list:
    """One repetition per identifier (AGB, UZI, BIG); the name in the first."""
    name = write_name(p.name)[:6] if p.name else (None,) * 6
    name_type = "L" if p.name else None
    reps: list = []
    for attr, ns, oid, typ in _PRO_IDS:
        value = getattr(p, attr)
        if value:
            first = not reps
            reps.append(
                (
                    value,
                    *(name if first else (None,) * 6),
                    None,
                    hd(ns, oid),
                    name_type if first else None,
                    None,
                    None,
                    typ,
                )
            )
    if not reps:
        ident = authority = None
        if p.id.startswith("xcn-") and "-" in p.id[4:]:  # the sender's own identifier (read_xcn)
            authority, ident = p.id[4:].split("-", 1)
        reps.append((ident, *name, None, authority if authority != "local" else None, name_type))
    return reps


def read_xcn(reps: list[list[list[str]]], location: str, sink: ProblemSink) -> list[m.HealthProfessional]:
    """Professionals from a repeating XCN field: a repetition without a name adds an identifier to the
    professional before it. The local id is ``agb-<AGB>``, ``uzi-<UZI>``, ``big-<BIG>`` or the location."""
    people: list[dict] = []
    for i, comps in enumerate(reps, 1):
        loc = f"{location}[{i}]" if i > 1 else location
        name = read_name(comps, 2, loc, sink)
        ident = comp(comps, 1)
        if name is not None or not people:
            people.append({"name": name, "loc": loc})
        person = people[-1]
        if ident:
            oid, ns, typ = comp(comps, 9, 2), comp(comps, 9), comp(comps, 13)
            for attr, pns, poid, ptyp in _PRO_IDS:
                if oid == poid or (not oid and ns == pns and (typ == ptyp or attr == "agb")):
                    person[attr] = ident
                    break
            else:
                person.setdefault("other", f"xcn-{ns or oid or 'local'}-{ident}")
                sink.warning(
                    "HL7-051",
                    f"{loc}.1",
                    f"identifier {ident!r} of authority {ns or oid or '(none)'!r} "
                    "is not AGB, UZI or BIG; kept only as the professional's local id",
                )
    out = []
    for person in people:
        loc = person.pop("loc")
        other = person.pop("other", None)
        ids = {k: v for k, v in person.items() if k != "name"}
        pid = next((f"{k}-{v}" for k, v in ids.items()), None) or _local_professional_id(
            other, person["name"], loc
        )
        try:
            out.append(m.HealthProfessional(id=pid, name=person["name"], **ids))
        except ValueError as exc:
            sink.error("HL7-020", loc, str(exc))
    return out


def _local_professional_id(other: str | None, name: m.PersonName | None, loc: str) -> str:
    """The local id of a professional without a Dutch identifier: made of what identifies them in the
    message (the sender's identifier with its authority, else the name), so two such doctors never share
    one and one doctor named twice is one Practitioner (never the field's name, ``PV1-7``, for all)."""
    if other is not None and len(other) <= 64:
        return re.sub(r"[^A-Za-z0-9.\-_:]", "-", other)
    if other is None and name is not None:
        return "name-" + hashlib.sha1(name_display(name).encode("utf-8")).hexdigest()[:16]
    text = other or loc
    return "xcn-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- addresses (XAD)

_ADDRESS_USE = {"home": "H", "work": "B", "temp": "C", "postal": "M"}
_ADDRESS_USE_BACK = {"H": "home", "B": "work", "O": "work", "C": "temp", "M": "postal"}


def write_xad(a: m.Address) -> tuple:
    line = " ".join(x for x in (a.street, a.house_number) if x) or None
    sad = (line, a.street, a.house_number) if a.house_number else a.street
    return (sad, None, a.city, None, a.postal_code, a.country, _ADDRESS_USE.get(a.use) if a.use else None)


def read_xad(comps: list[list[str]], location: str, sink: ProblemSink) -> m.Address | None:
    sad = comps[0] if comps else []
    line, street, number = (opt(x) for x in (sad + ["", "", ""])[:3])
    if street or number:
        house_number = number
    else:
        street, house_number = line, None
    typ = comp(comps, 7)
    use = _ADDRESS_USE_BACK.get(typ)
    if typ and use is None:
        sink.warning(
            "HL7-052", f"{location}.7", f"address type {typ!r} has no canonical counterpart; not kept"
        )
    a = m.Address(
        street=street,
        house_number=house_number,
        postal_code=opt(comp(comps, 5)),
        city=opt(comp(comps, 3)),
        country=opt(comp(comps, 6)),
        use=use,  # type: ignore[arg-type]  # a value of _ADDRESS_USE_BACK
    )
    return a if any((a.street, a.house_number, a.postal_code, a.city, a.country)) else None


# --------------------------------------------------------------------------- telecom (XTN)

_TEL_USE = {"home": "PRN", "work": "WPN", "temp": "ORN", "mobile": "PRN"}
_TEL_USE_BACK = {"PRN": "home", "WPN": "work", "ORN": "temp"}


def write_xtn(t: m.Telecom) -> tuple:
    """Phone and fax number in XTN.1, e-mail address in XTN.4; use in XTN.2, equipment in XTN.3."""
    if t.system == "email":
        return (None, _TEL_USE.get(t.use, "NET") if t.use else "NET", "Internet", t.value)
    equip = "FX" if t.system == "fax" else ("CP" if t.use == "mobile" else "PH")
    return (t.value, _TEL_USE.get(t.use) if t.use else None, equip)


def read_xtn(
    comps: list[list[str]], location: str, sink: ProblemSink, default_use: str | None = None
) -> m.Telecom | None:
    number, use_code, equip, email = (opt(comp(comps, i)) or "" for i in (1, 2, 3, 4))
    if equip in ("Internet", "X.400") or use_code == "NET" or (email and not number):
        system, value = "email", email or number
    else:
        system, value = ("fax" if equip == "FX" else "phone"), number or opt(comp(comps, 12)) or ""
    if not value or not value.strip():
        return None
    use = "mobile" if equip == "CP" else _TEL_USE_BACK.get(use_code, default_use if not use_code else None)
    if use_code and use_code not in _TEL_USE_BACK and use_code != "NET":
        sink.warning(
            "HL7-052", f"{location}.2", f"telecom use {use_code!r} has no canonical counterpart; not kept"
        )
    return m.Telecom(system=system, value=value, use=use)  # type: ignore[arg-type]  # values of the tables above

"""OBX[Observation] (HL7 v2.5 §7.4.2; V2-to-FHIR IG "OBX[Observation]") -> canonical Measurement.

- OBX-2 value type: ``NM`` -> ``value_quantity`` (exact Decimal); ``ST``/``TX``/``FT`` -> ``value_text``
  (TX repetitions are lines; FT ``\\.br\\`` is a line break); ``SN`` with no comparator -> a number,
  otherwise its text (``<5``, ``1:128``). Other types are not a measurement: warned (``HL7-055``), skipped.
- OBX-3 the NHG Tabel 45 code, coding system ``NHG45`` (or the Tabel 45 OID / URI), in the first or the
  alternate triplet; any other coding is warned (``HL7-055``) and the OBX skipped.
- OBX-6 units (CE.1, else CE.2), OBX-7 reference range ``low-high``, ``>=low``/``>low``, ``<=high``/``<high``,
  OBX-8 abnormal flag (L H N A LL HH), OBX-11 result status (F; C P R S I read with warning ``HL7-059``;
  D W X skipped, ``HL7-057``),
  OBX-14 observation time (OBR-7 when empty), OBX-21 observation instance id -> ``Measurement.id``
  (a v2.6 field; when absent the id is ``<MSH-10>-<OBR-1>-<OBX-1>``, characters outside a local id as ``-``).

Written: ``NM`` for numbers, ``ST`` for one-line text, ``FT`` for multi-line text, status ``F``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from mappings import model as m
from mappings.codetables import CodeTables, code_tables
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.datatypes import _DTM_CACHE
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 21})
TABEL45_SYSTEMS = frozenset(
    {
        "NHG45",
        "2.16.840.1.113883.2.4.4.30.45",
        "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen",
    }
)
TABEL45 = "NHG45"
FLAGS = frozenset({"L", "H", "N", "A", "LL", "HH"})
STATUS_KEPT = frozenset({"F", "C", "P", "R", "S", "I", ""})
"""Read (anything but F with warning ``HL7-059``); D deleted, W wrong, X not obtained are skipped
(``HL7-057``)."""
_N = r"[+-]?(?:\d+\.?\d*|\.\d+)"
_RANGE = re.compile(rf"\s*({_N})\s*-\s*({_N})\s*\Z")
_LOW = re.compile(rf"\s*>=?\s*({_N})\s*\Z")
_HIGH = re.compile(rf"\s*<=?\s*({_N})\s*\Z")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_:]")
_NM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)\Z")
UNREAD = tuple(n for n in range(1, 22) if n not in READ)
_PAD = [""] * 22


def safe_id(text: str) -> str:
    """A local id (``[A-Za-z0-9.-_:]{1,64}``) made from message values, for the default measurement id."""
    return _ID_UNSAFE.sub("-", text)[:58] or "obx"


def _code(seg: Segment) -> str | None:
    c = seg.components(3)
    for i in (1, 4):
        if t.comp(c, i + 2) in TABEL45_SYSTEMS and t.comp(c, i):
            return t.comp(c, i)
    return None


def _value(seg: Segment, vtype: str, sink: ProblemSink) -> tuple[Decimal | None, str | None] | None:
    raw = seg.raw(5)
    if not raw or raw == '""':
        return None, None
    if vtype == "NM":
        v = t.parse_nm(seg.get(5), seg.loc(5), sink)
        return (v, None) if v is not None else None
    if vtype in ("ST", "TX", "FT"):
        reps = seg.reps(5)
        return None, "\n".join(seg.codec.decode(r, seg.loc(5, i)) for i, r in enumerate(reps, 1))
    if vtype == "SN":
        c = [x[0] for x in seg.components(5)] + ["", "", "", ""]
        comparator, n1, sep, n2 = c[:4]
        if comparator in ("", "=") and not sep and not n2:
            v = t.parse_nm(n1, seg.loc(5, comp=2), sink)
            return (v, None) if v is not None else None
        return None, f"{comparator}{n1}{sep}{n2}"
    sink.warning(
        "HL7-055",
        seg.loc(2),
        f"value type {vtype!r} is not a measurement value (NM, SN, ST, TX, FT); OBX not kept",
    )
    return None


_RANGE_CACHE: dict[str, tuple[Decimal | None, Decimal | None]] = {}


def _range(seg: Segment, sink: ProblemSink) -> tuple[Decimal | None, Decimal | None]:
    raw = seg.get(7)
    if not raw:
        return None, None
    hit = _RANGE_CACHE.get(raw)
    if hit is not None:
        return hit
    value = _parse_range(raw, seg, sink)
    if value != (None, None):  # only good ranges: a bad one must be reported every time
        if len(_RANGE_CACHE) > 4096:
            _RANGE_CACHE.clear()
        _RANGE_CACHE[raw] = value
    return value


def _parse_range(raw: str, seg: Segment, sink: ProblemSink) -> tuple[Decimal | None, Decimal | None]:
    if mt := _RANGE.match(raw):
        return Decimal(mt.group(1)), Decimal(mt.group(2))
    if mt := _LOW.match(raw):
        return Decimal(mt.group(1)), None
    if mt := _HIGH.match(raw):
        return None, Decimal(mt.group(1))
    sink.warning(
        "HL7-056", seg.loc(7), f"reference range {raw[:40]!r} is not low-high, >=low or <=high; not kept"
    )
    return None, None


def from_segment(
    seg: Segment,
    sink: ProblemSink,
    *,
    default_time: dt.datetime | None,
    default_id: str,
    tables: CodeTables | None = None,
) -> m.Measurement | None:
    """One measurement, or ``None`` when the OBX is not one (warned) or is invalid (error).

    Hot path (30 OBX per lab report): when the segment holds no repetition, subcomponent or escape
    character, fields are read straight from the split segment; caches hold the parsed times and ranges
    a report repeats; location strings are built only when a problem is reported.
    """
    f = seg.fields
    codec = seg.codec
    if len(f) < 22:
        f = f + _PAD[: 22 - len(f)]
    if len(f) > 22 or any(map(f.__getitem__, UNREAD)):
        warn_unread(seg, READ, sink)
    comp_sep = codec.delims.component
    if not seg.simple:
        return _from_segment_general(seg, sink, default_time, default_id, tables)
    parts = f[3].split(comp_sep)
    code = None
    if len(parts) > 2 and parts[2] in TABEL45_SYSTEMS and parts[0]:
        code = parts[0]
    elif len(parts) > 5 and parts[5] in TABEL45_SYSTEMS and parts[3]:
        code = parts[3]
    if code is None:
        _not_tabel45(seg, sink)
        return None
    status = f[11]
    if status and status != "F" and not _status_kept(seg, status, sink):
        return None
    raw5 = f[5]
    if f[2] == "NM" and comp_sep not in raw5 and _NM_RE.match(raw5):
        quantity: Decimal | None = Decimal(raw5)
        text: str | None = None
    else:
        got = _value(seg, seg.get(2), sink)
        if got is None:
            return None
        quantity, text = got
    raw14 = f[14]
    if raw14:
        effective = _DTM_CACHE.get(raw14) or t.dtm_at(seg.get(14), seg, 14, sink)
        if effective is None:
            return None
    elif default_time is None:
        sink.error("HL7-010", seg.loc(14), "OBX-14 (or OBR-7) observation date/time is required")
        return None
    else:
        effective = default_time
    raw7 = f[7]
    low = high = None
    if raw7:
        low, high = _RANGE_CACHE.get(raw7) or _range(seg, sink)
    flag = f[8]
    if flag and flag not in FLAGS:
        sink.warning(
            "HL7-056", seg.loc(8), f"abnormal flag {seg.get(8)!r} is not L, H, N, A, LL or HH; not kept"
        )
        flag = ""
    unit = f[6]
    if comp_sep in unit:
        unit = seg.get(6) or seg.get(6, 2)
    tables = tables or code_tables()
    if code not in tables.tables["tabel45"].codes:
        tables.check("tabel45", code, seg.loc(3), sink)
    try:
        return m.Measurement(
            id=f[21].split(comp_sep, 1)[0] or default_id,
            code=code,
            effective=effective,
            value_quantity=quantity,
            value_text=text,
            unit=unit or None,
            reference_low=low,
            reference_high=high,
            interpretation=flag or None,  # type: ignore[arg-type]  # checked against FLAGS above
        )
    except ValueError as exc:
        sink.error("HL7-020", seg.loc(), str(exc))
        return None


def _not_tabel45(seg: Segment, sink: ProblemSink) -> None:
    sink.warning(
        "HL7-055",
        seg.loc(3),
        f"observation {seg.get(3)!r} ({seg.get(3, 3) or 'no coding system'}) "
        "is not coded in NHG Tabel 45 (NHG45); OBX not kept",
    )


def _status_kept(seg: Segment, status: str, sink: ProblemSink) -> bool:
    if status not in STATUS_KEPT:
        sink.warning(
            "HL7-057", seg.loc(11), f"result status {status!r} (deleted, wrong or not obtained); OBX not kept"
        )
        return False
    sink.warning(
        "HL7-059",
        seg.loc(11),
        f"result status {status!r} is not kept: the measurement is delivered as a result like any other",
    )
    return True


def _from_segment_general(
    seg: Segment,
    sink: ProblemSink,
    default_time: dt.datetime | None,
    default_id: str,
    tables: CodeTables | None,
) -> m.Measurement | None:
    """:func:`from_segment` for an OBX with repetitions, subcomponents or escapes: every value decoded."""
    code = _code(seg)
    if code is None:
        _not_tabel45(seg, sink)
        return None
    status = seg.get(11)
    if status and status != "F" and not _status_kept(seg, status, sink):
        return None
    got = _value(seg, seg.get(2), sink)
    if got is None:
        return None
    if seg.get(14):
        effective = t.dtm_at(seg.get(14), seg, 14, sink)
        if effective is None:
            return None
    elif default_time is None:
        sink.error("HL7-010", seg.loc(14), "OBX-14 (or OBR-7) observation date/time is required")
        return None
    else:
        effective = default_time
    low, high = _range(seg, sink)
    flag = seg.get(8)
    if flag and flag not in FLAGS:
        sink.warning("HL7-056", seg.loc(8), f"abnormal flag {flag!r} is not L, H, N, A, LL or HH; not kept")
        flag = ""
    tables = tables or code_tables()
    tables.check("tabel45", code, seg.loc(3), sink)
    try:
        return m.Measurement(
            id=seg.get(21) or default_id,
            code=code,
            effective=effective,
            value_quantity=got[0],
            value_text=got[1],
            unit=seg.get(6) or seg.get(6, 2) or None,
            reference_low=low,
            reference_high=high,
            interpretation=flag or None,  # type: ignore[arg-type]  # checked against FLAGS above
        )
    except ValueError as exc:
        sink.error("HL7-020", seg.loc(), str(exc))
        return None


def _fmt_range(low: Decimal | None, high: Decimal | None) -> str | None:
    if low is not None and high is not None:
        return f"{t.fmt_nm(low)}-{t.fmt_nm(high)}"
    if low is not None:
        return f">={t.fmt_nm(low)}"
    if high is not None:
        return f"<={t.fmt_nm(high)}"
    return None


def to_segment(
    x: m.Measurement, set_id: int, observed: dt.datetime | None = None, default_id: str | None = None
) -> tuple[str, list[FieldValue]]:
    """The OBX of a measurement. OBX-14 is left out when it equals ``observed`` (OBR-7), and OBX-21 when
    the id is the one a reader derives anyway (``default_id``): both are inherited on reading."""
    if x.value_quantity is not None:
        vtype, value = "NM", t.fmt_nm(x.value_quantity)
    elif x.value_text is not None:
        vtype, value = ("FT" if "\n" in x.value_text or "\r" in x.value_text else "ST"), x.value_text
    else:
        vtype, value = None, None
    display = code_tables()["tabel45"].display(x.code)
    fields: list[FieldValue] = [
        str(set_id),  # OBX-1
        vtype,  # OBX-2
        (x.code, display, TABEL45),  # OBX-3
        None,  # OBX-4
        value,  # OBX-5
        (x.unit,) if x.unit else None,  # OBX-6
        _fmt_range(x.reference_low, x.reference_high),  # OBX-7
        x.interpretation,  # OBX-8
        None,
        None,  # OBX-9, OBX-10
        "F",  # OBX-11
        None,
        None,  # OBX-12, OBX-13
        t.fmt_dtm(x.effective) if x.effective != observed else None,  # OBX-14
        None,
        None,
        None,
        None,
        None,
        None,  # OBX-15 .. OBX-20
        x.id if x.id != default_id else None,  # OBX-21
    ]
    return "OBX", fields

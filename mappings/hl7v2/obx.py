"""OBX[Observation] (HL7 v2.5 §7.4.2; V2-to-FHIR IG "OBX[Observation]") -> canonical Measurement.

Every OBX of a result is kept, whatever its coding system, value type or status; an OBX that cannot be
kept whole is an error, so the message is refused rather than delivered without it.

- OBX-1 set id: not the identity. A measurement's id is OBX-21 (a v2.6 field, used in any version) or,
  when absent, ``<MSH-10>-<OBR position>-<OBX position under that OBR>``: two OBX with the same OBX-1 (or
  two ``OBR|1``) stay two results.
- OBX-2 value type and OBX-5 value (§7.4.2.2, table 0125): ``NM`` a number (exact Decimal); ``SN``
  comparator, number, separator, number (``<^5`` below 5, ``^2^-^5`` a range, ``^1^:^128`` a ratio);
  ``ST``/``TX``/``FT`` text (repetitions and FT ``\\.br\\`` are line breaks); ``CWE``/``CE``/``CNE``/``CF``
  coded (every triplet, the text in ``value_text``); ``DT``/``DTM``/``TS``/``TM`` a moment with the precision
  sent; ``ED`` encapsulated data and ``RP`` a reference pointer as an attachment. Several repetitions of a
  coded value are codings of one value; any other value type is an error (``HL7-061``).
- OBX-3 the test: code, text and coding system of both triplets (and CWE.9, the original text). NHG
  Tabel 45 (``NHG45``, its OID or URI) is the canonical ``code`` with ``system`` None; any other system
  (``LN`` LOINC, ``SCT`` SNOMED CT, a lab's own codes) is kept as it is (:mod:`mappings.hl7v2.vocab`).
- OBX-6 units (CWE; UCUM only when the sender says so or the unit parses as UCUM), OBX-7 reference range
  (``low-high``, ``>=low``, ``<=high``, otherwise its text), OBX-8 abnormal flags (table 0078),
  OBX-11 result status (table 0085 -> FHIR ObservationStatus: P preliminary, C corrected, F final,
  X cancelled, D/W entered-in-error ...; a code outside the table is an error ``HL7-062``),
  OBX-14 observation time (OBR-7 when empty; a date alone stays a date), NTE after the OBX its notes.
- Not mapped, listed once per message as information (:data:`LISTED`): OBX-9 probability, OBX-10 nature
  of the test, OBX-12 date of last normal values, OBX-13 access checks, OBX-15 producer, OBX-16 responsible
  observer, OBX-17 method, OBX-18 equipment, OBX-19 analysis time, OBX-20 site, OBX-22 .. OBX-25
  (mood, performing organisation, its address and director).

Written: the value type of the value, the Tabel 45 display of the shipped table, the status of table 0085.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from mappings import model as m
from mappings import units
from mappings.codetables import CodeTables, code_tables
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2 import vocab
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 21})
LISTED = frozenset({9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33})
TABEL45_SYSTEMS = frozenset(
    {
        "NHG45",
        "2.16.840.1.113883.2.4.4.30.45",
        "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen",
    }
)
TABEL45 = "NHG45"
FLAGS = frozenset({"L", "H", "N", "A", "LL", "HH"})
"""The flags of the common form (the lean path of :mod:`mappings.hl7v2.fast`); any of table 0078 is read."""
CODED = frozenset({"CWE", "CE", "CNE", "CF"})
TEXT = frozenset({"ST", "TX", "FT"})
MOMENTS = frozenset({"DT", "DTM", "TS", "TM"})
_N = r"[+-]?(?:\d+\.?\d*|\.\d+)"
_RANGE = re.compile(rf"\s*({_N})\s*-\s*({_N})\s*\Z")
_LOW = re.compile(rf"\s*>=?\s*({_N})\s*\Z")
_HIGH = re.compile(rf"\s*<=?\s*({_N})\s*\Z")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_:]")
_NM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)\Z")
_TM_RE = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?\Z")
UNREAD = tuple(n for n in range(1, 22) if n not in READ)
_COMPARATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "": None, "=": None}


def safe_id(text: str) -> str:
    """A local id (``[A-Za-z0-9.-_:]{1,64}``) made from message values, for the default measurement id."""
    return _ID_UNSAFE.sub("-", text)[:58] or "obx"


def precision_of(raw: str) -> m.Precision:
    """The precision of a DTM as written (``20240503`` is a day; anything with a time is kept to the
    second)."""
    digits = len(raw.split("+", 1)[0].split("-", 1)[0].split(".", 1)[0])
    return "year" if digits <= 4 else "month" if digits <= 6 else "day" if digits <= 8 else "second"


def read_codings(comps: list[list[str]], sender: str) -> tuple[list[m.Coding], str | None]:
    """The codings of one CWE/CE (first triplet, alternate triplet, CWE.10-12 second alternate) and its
    original text (CWE.9); codings without a code are left out (their text goes to the text)."""
    out: list[m.Coding] = []
    text = None
    for i in (1, 4, 10):
        code = t.comp(comps, i)
        display = t.comp(comps, i + 1) or None
        if code:
            out.append(
                m.Coding(system=vocab.system_uri(t.comp(comps, i + 2), sender), code=code, display=display)
            )
        elif display and text is None:
            text = display
    return out, t.comp(comps, 9) or text


def read_code(
    comps: list[list[str]], sender: str
) -> tuple[str, str | None, str | None, tuple[m.Coding, ...]] | None:
    """OBX-3 -> (code, system (None: Tabel 45), text, other codings); the Tabel 45 coding first when
    there is one. ``None`` when no triplet has a code."""
    codings, original = read_codings(comps, sender)
    if not codings:
        return None
    first = next((c for c in codings if c.system == vocab.TABEL45_URI), codings[0])
    others = tuple(c for c in codings if c is not first)
    system = None if first.system == vocab.TABEL45_URI else first.system
    text = original or first.display
    return first.code, system, text, others


def _number(raw: str, seg: Segment, sink: ProblemSink, comp: int | None = None) -> Decimal | None:
    v = raw.strip()
    if _NM_RE.match(v):
        try:
            return Decimal(v)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            pass
    sink.error("HL7-011", seg.loc(5, comp=comp), f"{raw[:40]!r} is not a number")
    return None


def _value(seg: Segment, vtype: str, sender: str, sink: ProblemSink) -> dict | None:
    """The value fields of a Measurement for OBX-2/OBX-5; ``{}`` for no value, ``None`` on error."""
    raw = seg.raw(5)
    if not raw or raw == '""':
        return {}
    if vtype == "NM":
        v = _number(seg.get(5), seg, sink)
        return None if v is None else {"value_quantity": v}
    if vtype in TEXT:
        reps = seg.reps(5)
        return {"value_text": "\n".join(seg.codec.decode(r, seg.loc(5, i)) for i, r in enumerate(reps, 1))}
    if vtype == "SN":
        sn = [x[0] for x in seg.components(5)] + ["", "", "", ""]
        comparator, n1, sep, n2 = (x.strip() for x in sn[:4])
        if comparator not in _COMPARATORS or sep not in ("", "-", ":", "/", "+") or (sep and not n2):
            sink.error("HL7-011", seg.loc(5), f"{raw[:40]!r} is not a structured numeric (SN)")
            return None
        if sep == "+" or (comparator and sep):  # categorical, or a comparator on a range: kept as written
            return {"value_text": "".join(sn[:4])}
        sep = ":" if sep == "/" else sep  # both separators of a ratio (§2.A.73)
        v = _number(n1, seg, sink, 2)
        if v is None:
            return None
        out: dict = {"value_quantity": v, "comparator": _COMPARATORS[comparator]}
        if sep:
            high = _number(n2, seg, sink, 4)
            if high is None:
                return None
            out |= {"value_high": high, "value_separator": sep}
        return out
    if vtype in CODED:
        codings: list[m.Coding] = []
        texts: list[str] = []
        for comps in seg.all_components(5):
            got, text = read_codings(comps, sender)
            codings += got
            if text:
                texts.append(text)
        if not codings:
            return {"value_text": "\n".join(texts)} if texts else {}
        return {"value_coded": tuple(codings), "value_text": "\n".join(texts) or None}
    if vtype in MOMENTS:
        return _moment(seg, vtype, sink)
    if vtype in ("ED", "RP"):
        c = seg.components(5)
        if vtype == "ED":  # source application ^ type ^ subtype ^ encoding ^ data
            media, sub, enc, data = t.comp(c, 2), t.comp(c, 3), t.comp(c, 4), t.comp(c, 5)
            if enc.upper() not in ("BASE64", "A", ""):
                sink.error(
                    "HL7-061", seg.loc(5, comp=4), f"encapsulated data encoding {enc!r} is not Base64 or A"
                )
                return None
            if not data:
                sink.error("HL7-010", seg.loc(5, comp=5), "encapsulated data (ED.5) is empty")
                return None
            if enc.upper() != "BASE64":
                data = base64.b64encode(data.encode("utf-8")).decode("ascii")
            return {"value_attachment": m.Attachment(content_type=_mime(media, sub), data=data)}
        pointer, _app, media, sub = t.comp(c, 1), t.comp(c, 2), t.comp(c, 3), t.comp(c, 4)
        if not pointer:
            sink.error("HL7-010", seg.loc(5, comp=1), "reference pointer (RP.1) is empty")
            return None
        return {"value_attachment": m.Attachment(content_type=_mime(media, sub), url=pointer)}
    sink.error(
        "HL7-061",
        seg.loc(2),
        f"value type {vtype!r} is not one the gateway maps (NM SN ST TX FT CWE CE CNE CF DT DTM TS TM ED "
        "RP); the message is refused rather than delivered without this result",
    )
    return None


def _mime(media: str, sub: str) -> str | None:
    if not media and not sub:
        return None
    major = {
        "TEXT": "text",
        "IMAGE": "image",
        "AP": "application",
        "APPLICATION": "application",
        "AUDIO": "audio",
        "VIDEO": "video",
        "MULTIPART": "multipart",
    }.get(media.upper(), media.lower() or "application")
    minor = {
        "PDF": "pdf",
        "JPEG": "jpeg",
        "JPG": "jpeg",
        "PNG": "png",
        "GIF": "gif",
        "TIFF": "tiff",
        "RTF": "rtf",
        "HTML": "html",
        "XML": "xml",
        "PLAIN": "plain",
        "OCTET-STREAM": "octet-stream",
        "MSWORD": "msword",
        "X-HL7-CDA-LEVEL-ONE": "x-hl7-cda-level-one+xml",
    }.get(sub.upper(), sub.lower() or "octet-stream")
    return f"{major}/{minor}"


def _moment(seg: Segment, vtype: str, sink: ProblemSink) -> dict | None:
    """DT/DTM/TS/TM as ISO 8601 with the precision sent (the value, not the observation time: kept with
    the offset the sender wrote)."""
    raw = seg.get(5)
    if vtype == "TM":
        mt = _TM_RE.match(raw)
        if not mt or int(mt.group(1)) > 23 or int(mt.group(2) or 0) > 59 or int(mt.group(3) or 0) > 59:
            sink.error("HL7-011", seg.loc(5), f"{raw[:40]!r} is not a time HH[MM[SS]]")
            return None
        return {"value_moment": f"{mt.group(1)}:{mt.group(2) or '00'}:{mt.group(3) or '00'}"}
    mt = t._DTM.match(raw)
    if not mt:
        sink.error("HL7-011", seg.loc(5), f"{raw[:40]!r} is not a date/time YYYY[MM[DD[HHMM[SS]]]][+/-ZZZZ]")
        return None
    y, mo, d, h, mi, s, _frac, off = mt.groups()
    text = y + (f"-{mo}" if mo else "") + (f"-{d}" if d else "")
    try:
        day = dt.date(int(y), int(mo or 1), int(d or 1))
        if h:  # a time needs its offset in FHIR: the sender's, else the one it had in Amsterdam
            text += f"T{h}:{mi or '00'}:{s or '00'}"
            if not off:
                moment = dt.datetime(day.year, day.month, day.day, int(h), int(mi or 0), int(s or 0))
                off = moment.replace(tzinfo=t.AMS).strftime("%z")
            text += f"{off[:3]}:{off[3:5]}"
    except ValueError:
        sink.error("HL7-011", seg.loc(5), f"{raw!r} is not a valid date")
        return None
    if not m._MOMENT_RE.match(text):
        sink.error("HL7-011", seg.loc(5), f"{raw!r} is not a valid date/time")
        return None
    return {"value_moment": text}


_RANGE_CACHE: dict[str, tuple[Decimal | None, Decimal | None]] = {}


def _range(seg: Segment, sink: ProblemSink) -> tuple[Decimal | None, Decimal | None, str | None]:
    raw = seg.get(7)
    if not raw:
        return None, None, None
    hit = _RANGE_CACHE.get(raw)
    if hit is not None:
        return hit[0], hit[1], None
    if mt := _RANGE.match(raw):
        value: tuple[Decimal | None, Decimal | None] = Decimal(mt.group(1)), Decimal(mt.group(2))
    elif mt := _LOW.match(raw):
        value = Decimal(mt.group(1)), None
    elif mt := _HIGH.match(raw):
        value = None, Decimal(mt.group(1))
    else:
        return None, None, raw  # a range as text ("negatief", "70_105"): kept as text
    if len(_RANGE_CACHE) > 4096:
        _RANGE_CACHE.clear()
    _RANGE_CACHE[raw] = value
    return value[0], value[1], None


def from_segment(
    seg: Segment,
    sink: ProblemSink,
    *,
    default_time: dt.datetime | None,
    default_id: str,
    tables: CodeTables | None = None,
    sender: str = "",
    default_precision: m.Precision = "second",
    notes: tuple[str, ...] = (),
) -> m.LabResult | None:
    """One lab result; ``None`` (with an error in ``sink``) when the OBX cannot be kept whole."""
    warn_unread(seg, READ, sink, LISTED)
    code = read_code(seg.components(3), sender)
    if code is None:
        sink.error("HL7-010", seg.loc(3), "OBX-3 observation identifier is required")
        return None
    code_value, system, text, others = code
    raw11 = seg.get(11)
    status = vocab.result_status(raw11) if raw11 else "final"
    if status is None:
        sink.error("HL7-062", seg.loc(11), f"result status {raw11!r} is not in HL7 table 0085")
        return None
    vtype = seg.get(2)
    value = _value(seg, vtype, sender, sink) if seg.raw(5) else {}
    if value is None:
        return None
    if not vtype and value:
        sink.error("HL7-010", seg.loc(2), "OBX-2 value type is required when OBX-5 is valued")
        return None
    raw14 = seg.get(14)
    precision = default_precision
    if raw14:
        effective = t.dtm_at(raw14, seg, 14, sink)
        if effective is None:
            return None
        precision = precision_of(raw14)
    elif default_time is None:
        sink.error("HL7-010", seg.loc(14), "OBX-14 (or OBR-7) observation date/time is required")
        return None
    else:
        effective = default_time
    low, high, range_text = _range(seg, sink)
    flags = [f for f in (seg.get(8, rep=r) for r in range(1, len(seg.reps(8)) + 1)) if f]
    if len(flags) > 1:
        sink.error("HL7-063", seg.loc(8), "more than one abnormal flag; the gateway keeps one per result")
        return None
    flag = flags[0] if flags else None
    if flag is not None and flag not in units.interpretations():
        sink.error("HL7-063", seg.loc(8), f"abnormal flag {flag!r} is not in HL7 table 0078")
        return None
    unit_comps = seg.components(6)
    unit = t.comp(unit_comps, 1) or t.comp(unit_comps, 2) or None
    unit_system = vocab.system_uri(t.comp(unit_comps, 3), sender) if t.comp(unit_comps, 3) else None
    if unit_system == vocab.UCUM:  # UCUM only when it is UCUM; then the FHIR mapping labels it so itself
        unit_system = None
    tables = tables or code_tables()
    if system is None:
        if code_value not in tables.tables["tabel45"].codes:
            tables.check("tabel45", code_value, seg.loc(3), sink)
        elif text == tables["tabel45"].display(code_value):
            text = None  # the table's own name: nothing of the sender's to keep
    try:
        return m.LabResult(
            id=seg.get(21) or default_id,
            code=code_value,
            system=system,
            text=text,
            codings=others,
            effective=effective,
            precision=precision,
            status=status,  # type: ignore[arg-type]  # from table 0085's FHIR column
            unit=unit,
            unit_system=unit_system,
            reference_low=low,
            reference_high=high,
            reference_text=range_text,
            interpretation=flag,  # type: ignore[arg-type]  # checked against table 0078 above
            notes=notes,
            **value,
        )
    except ValueError as exc:
        sink.error("HL7-020", seg.loc(), str(exc))
        return None


def _fmt_range(x: m.LabResult) -> str | None:
    low, high = x.reference_low, x.reference_high
    if low is not None and high is not None:
        return f"{t.fmt_nm(low)}-{t.fmt_nm(high)}"
    if low is not None:
        return f">={t.fmt_nm(low)}"
    if high is not None:
        return f"<={t.fmt_nm(high)}"
    return x.reference_text


def _triplet(c: m.Coding) -> tuple[str, str | None, str]:
    return c.code, c.display, vocab.system_name(c.system)


def _fmt_value(x: m.LabResult) -> tuple[str | None, FieldValue]:
    if x.value_coded:
        reps = [
            (*_triplet(c), None, None, None, None, None, x.value_text if i == 0 and x.value_text else None)
            for i, c in enumerate(x.value_coded)
        ]
        return "CWE", [tuple(v for v in r) for r in reps] if len(reps) > 1 else reps[0]
    if x.value_moment is not None:
        if ":" in x.value_moment and "T" not in x.value_moment:
            return "TM", x.value_moment.replace(":", "")
        if "T" in x.value_moment:
            date, time = x.value_moment.split("T")
            off = ""
            for sign in "+-":
                if sign in time:
                    time, off = time.split(sign)
                    off = sign + off.replace(":", "")
            return "DTM", date.replace("-", "") + time.replace(":", "") + off
        return "DT", x.value_moment.replace("-", "")
    if x.value_attachment is not None:
        a = x.value_attachment
        major, _, minor = (a.content_type or "").partition("/")
        if a.data is not None:
            return "ED", (None, major.upper() or None, minor.upper() or None, "Base64", a.data)
        return "RP", (a.url, None, major.upper() or None, minor.upper() or None)
    if x.value_quantity is not None:
        if x.comparator is None and x.value_separator is None:
            return "NM", t.fmt_nm(x.value_quantity)
        return "SN", (x.comparator, t.fmt_nm(x.value_quantity), x.value_separator, t.fmt_nm(x.value_high))
    if x.value_text is not None:
        return ("FT" if "\n" in x.value_text or "\r" in x.value_text else "ST"), x.value_text
    return None, None


def to_segment(
    x: m.LabResult, set_id: int, observed: dt.datetime | None = None, default_id: str | None = None
) -> tuple[str, list[FieldValue]]:
    """The OBX of a measurement. OBX-14 is left out when it equals ``observed`` (OBR-7), and OBX-21 when
    the id is the one a reader derives anyway (``default_id``): both are inherited on reading."""
    vtype, value = _fmt_value(x)
    original = None
    if x.system is None:
        display = code_tables()["tabel45"].display(x.code)
        first: tuple = (x.code, display, TABEL45)
        original = x.text if x.text != display else None  # CWE.9: the sender's name of the test
    else:
        first = (x.code, x.text, vocab.system_name(x.system))
    alt: tuple = _triplet(x.codings[0]) if x.codings else (None, None, None)
    code3: tuple = (
        *first,
        *alt,
        None,
        None,
        original,
        *(_triplet(x.codings[1]) if len(x.codings) > 1 else ()),
    )
    unit: FieldValue = None
    if x.unit:
        unit = (x.unit, None, vocab.system_name(x.unit_system)) if x.unit_system else (x.unit,)
    effective = None
    if x.effective != observed:
        effective = t.fmt_dtm(x.effective)
        if effective and x.precision != "second":
            effective = effective[: {"year": 4, "month": 6, "day": 8}[x.precision]]
    fields: list[FieldValue] = [
        str(set_id),  # OBX-1
        vtype,  # OBX-2
        code3,  # OBX-3
        None,  # OBX-4
        value,  # OBX-5
        unit,  # OBX-6
        _fmt_range(x),  # OBX-7
        x.interpretation,  # OBX-8
        None,
        None,  # OBX-9, OBX-10
        vocab.result_status_code(x.status),  # OBX-11
        None,
        None,  # OBX-12, OBX-13
        effective,  # OBX-14
        None,
        None,
        None,
        None,
        None,
        None,  # OBX-15 .. OBX-20
        x.id if x.id != default_id else None,  # OBX-21
    ]
    return "OBX", fields

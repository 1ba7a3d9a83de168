"""FHIR JSON bytes of HL7 v2 messages, with a lean path for the hot case: an ORU^R01 lab report.

The general route is message -> canonical struct (:mod:`mappings.hl7v2.messages`) -> FHIR Bundle
(:func:`mappings.hl7v2.fhir.to_fhir`) -> JSON (:func:`mappings.fhir.common.dumps`). Measured on the
project machine for the 30-OBX ORU^R01 of ``bench/bench_hl7v2.py`` it makes 1,866 messages/s (parse 36 us,
canonical 160 us, Bundle 240 us, orjson with a Decimal callback per number 90 us), far from the 5,000/s of
issue 4. Hence :func:`oru_bytes`: the same reading loop as :func:`mappings.hl7v2.oru.read` (the MSH, PID,
PV1, IN1 and OBR readers themselves, once per message), but an OBX of the common form (NM value, Tabel 45
code in the first triplet, status F, a time and range the reader has seen before, no field the gateway does
not read) goes straight to its Bundle entry as JSON, without the canonical Measurement in between. Any other
OBX takes :func:`mappings.hl7v2.obx.from_segment` and :func:`mappings.fhir.observation.to_fhir`, as the
general route does, and a message with any problem at all (even a warning) is read again by the general
route, so problems are reported by one code only. Measured first at 3,734 messages/s (about 90 us for
MSH, PID, PV1, OBR and their resources and 3 us per OBX). Since then (docs/performance.md has the figure)
the OBX lines are split into fields without making a ``Segment`` of each (:func:`_split_obx`), all OBX of
an OBR are written in one loop with the JSON of their code, of unit + flag + range and of their time each
cached, and the header readers lost some overhead (BSN 11-test written out, MSH-3..6 and FHIR dateTimes
cached).

The output is byte for byte the general route's: ``tests/test_hl7v2_fast.py`` checks it on every golden
ORU^R01 and on generated variations of the benchmark message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from mappings.codetables import code_tables
from mappings.fhir import codes as fc
from mappings.fhir import observation
from mappings.fhir.common import _VARIANT, WriteContext, coding, dumps, fdatetime
from mappings.hl7v2 import canonical as c
from mappings.hl7v2 import fhir, in1, messages, msh, obr, obx, oru, pid, pv1
from mappings.hl7v2.canonical import LabOrder, OruMessage
from mappings.hl7v2.datatypes import _DTM_CACHE, sender_offset
from mappings.hl7v2.er7 import (
    MAX_FIELDS,
    MAX_MESSAGE_BYTES,
    MAX_SEGMENTS,
    Codec,
    Delimiters,
    Message,
    Segment,
    _decode,
    parse,
)
from mappings.model import Precision
from mappings.problems import ProblemSink

_IDENTIFIER = (
    b',"identifier":[{"use":"usual","system":' + orjson.dumps(fc.LOCAL_ID + observation.KIND) + b',"value":"'
)
_CATEGORY = b'"}],"status":"final","category":'


def _framed(category: str, concept: dict) -> tuple[bytes, bytes]:
    """(meta and the start of the identifier, category and code) as observation.to_fhir writes them for a
    result of ``category`` (the Tabel 45 table's, issue 20): the profile follows the category."""
    profile = fc.P_LAB_RESULT if category == "laboratory" else fc.P_GENERAL_MEASUREMENT
    head = b'","meta":' + orjson.dumps({"profile": [profile]}) + _IDENTIFIER
    tail = (
        _CATEGORY + orjson.dumps(observation.category_concept(category)) + b',"code":' + orjson.dumps(concept)
    )
    return head, tail


_INTERPRETATION = {
    k: b',"interpretation":' + orjson.dumps([{"coding": [coding(fc.V3_INTERPRETATION, k, v)]}])
    for k, v in observation._INTERPRETATIONS.items()
}
_CODINGS: dict[str, bytes] = {}
_TIMES: dict[tuple[str, str | None], bytes] = {}
_UNITS: dict[str | None, bytes] = {}
_RANGES: dict[tuple[str, str | None], bytes] = {}
_CACHE_MAX = 4096


def _unit(unit: str | None) -> bytes:
    """What ``observation._quantity`` adds to a value for ``unit`` (unit, UCUM system and code), as JSON."""
    tail = orjson.dumps(observation._quantity(None, unit))[1:-1]
    hit = b"," + tail if tail else b""
    if len(_UNITS) < _CACHE_MAX:
        _UNITS[unit] = hit
    return hit


def _range(raw7: str, unit: str | None) -> bytes | None:
    """``referenceRange`` of an OBX-7 the OBX reader has parsed before (its cache), for ``unit``."""
    rng = obx._RANGE_CACHE.get(raw7)
    if rng is None:
        return None
    r: dict = {}
    for key, value in zip(("low", "high"), rng, strict=True):
        if value is not None:
            r[key] = observation._quantity(value, unit)
    hit = b',"referenceRange":' + dumps([r])
    if len(_RANGES) < _CACHE_MAX:
        _RANGES[(raw7, unit)] = hit
    return hit


def _code(code: str) -> bytes:
    hit = orjson.dumps({"coding": [coding(fc.TABEL45, code, fc.display("tabel45", code))]})
    if len(_CODINGS) < _CACHE_MAX:
        _CODINGS[code] = hit
    return hit


def _time(raw14: str, off: str | None) -> bytes | None:
    """The FHIR dateTime (JSON) of an OBX-14 the OBX reader has parsed before (its cache)."""
    effective = _DTM_CACHE.get((raw14, off))
    if effective is None or obx.precision_of(raw14) != "second":
        return None
    if len(_TIMES) > _CACHE_MAX:
        _TIMES.clear()
    hit = _TIMES[(raw14, off)] = orjson.dumps(fdatetime(effective))
    return hit


_LEAN_MAX = 22  # OBX-1 .. OBX-21
_PLAIN = re.compile(r"-?[1-9][0-9]*(?:\.[0-9]+)?\Z")
_TABEL45_SYSTEMS = obx.TABEL45_SYSTEMS
_FLAGS = obx.FLAGS
_NM_RE = obx._NM_RE
_REFUSED = (9, 10, 12, 13, *range(15, 22))
"""The fields :func:`_lean_obx` refuses when valued: those the OBX reader warns about (``obx.UNREAD``) and
OBX-21 (an id of the sender's); checked against ``obx.UNREAD`` in ``tests/test_hl7v2_fast.py``."""


def _code3(
    raw3: str, comp: str, sender: str, cache: dict[str, tuple[bytes, bytes] | None]
) -> tuple[bytes, bytes] | None:
    """The ``code`` JSON of an OBX-3 without escapes, repetitions or subcomponents, as
    :func:`mappings.hl7v2.obx.read_code` and :func:`mappings.fhir.observation.code_concept` make it, or
    ``None`` when the general route must read it (a Tabel 45 code outside the table warns; no code).
    Cached either way: for one sender it depends on the text alone."""
    got = obx.read_code([[x] for x in raw3.split(comp)], sender)
    hit = None
    if got is not None:
        code, system, text, others = got
        tabel45 = _TABLES[0]["tabel45"]
        if system is None:
            if code in tabel45.codes:
                text = None if text == tabel45.display(code) else text
                hit = _framed(
                    observation.category(code), observation.code_concept(system, code, text, others)
                )
        else:
            hit = _framed("laboratory", observation.code_concept(system, code, text, others))
    if len(cache) < _CACHE_MAX:
        cache[raw3] = hit
    return hit


def _tail(unit: str, raw7: str, flag: str, comp: str) -> bytes | None:
    """What follows the number in the Observation of the common form, to the end of its Bundle entry:
    unit, interpretation (OBX-8) and reference range (OBX-7); ``None`` when the OBX is of another form.
    Cached only when found: a range is known once the OBX reader has parsed it (its cache)."""
    interpretation = _INTERP.get(flag)
    if interpretation is None or comp in unit:
        return None
    unit_or_none = unit or None
    rng = b""
    if raw7:
        found = _RANGES.get((raw7, unit_or_none)) or _range(raw7, unit_or_none)
        if found is None:
            return None
        rng = found
    hit = (_UNITS.get(unit_or_none) or _unit(unit_or_none)) + b"}" + interpretation + rng + b"}}"
    cache = _TAILS.setdefault(comp, {})
    if len(cache) < _CACHE_MAX:
        cache[(unit, raw7, flag)] = hit
    return hit


_TABLES: list = [None]
"""The code tables the caches below were filled from (``HISGW_CODE_TABLES_PATH`` may name others); set
by the first message, not at import."""
_CODE3: dict[tuple[str, str], dict[str, tuple[bytes, bytes] | None]] = {}
"""Per component separator and sender: OBX-3 as written -> its ``code`` JSON, or ``None`` for another
form."""
_TAILS: dict[str, dict[tuple[str, str, str], bytes]] = {}
"""Per component separator: (OBX-6, OBX-7, OBX-8) -> what :func:`_tail` gives."""
_MISS: Any = object()
_INTERP = {"": b"", **{k: _INTERPRETATION[k] for k in _FLAGS}}


def _lean_obx(
    rows: Rows,
    position: int,
    comp: str,
    subject: bytes,
    ids,
    default_time: bytes | None,
    id_prefix: str,
    sender: str,
    other: Other | None = None,
) -> tuple[bytes, bytes] | None:
    """The Observations of OBX of the common form (``rows``: their fields, segments without repetitions,
    subcomponents or escapes; ``position``: that of the first under its OBR), exactly as
    ``observation.to_fhir(obx.from_segment(...))`` gives them: their Bundle entries and the references to
    them, each as JSON separated by commas; ``None`` when any OBX is of another form (the caller takes the
    general route for it).
    ``ids``: the SHA-1 of the message's id namespace and ``Observation/``, to which the measurement id is
    added (a v5 UUID as ``WriteContext.id`` makes it, without hashing the prefix 30 times).

    Speed (the 30-OBX report of ``bench/bench_hl7v2.py``, one core): 3.9 us an OBX with a check per field
    and a call per OBX; about 2 us with the code, the unit + flag + range and the time each looked up once
    in a cache of their JSON (those repeat in a lab's traffic; the value, the ids and the subject do not and
    are spliced in every time), the module's names bound to locals, and one call per OBR."""
    code3, tails = _CODE3.setdefault((comp, sender), {}), _TAILS.setdefault(comp, {})
    times, plain, nm = _TIMES, _PLAIN.match, _NM_RE.match
    off = sender_offset()
    entries: list[bytes] = []
    refs: list[bytes] = []
    middles: dict[str, bytes] = {}
    extend, add_ref = entries.extend, refs.extend
    position -= 1
    for f in rows:
        position += 1
        n = len(f)
        if other is not None and (f[2] != "NM" or (n > 11 and f[11] and f[11] != "F")):
            default_id = f"{id_prefix}-{position}"
            got = _templated(f, other, subject, ids, default_id)
            if got is None:
                return None
            extend(got[0])
            add_ref(got[1])
            continue
        if n == 15:  # the usual length (OBX-14 the time): _REFUSED is then 9, 10, 12 and 13
            if f[2] != "NM" or f[9] or f[10] or f[12] or f[13] or (f[11] and f[11] != "F"):
                return None
            unit, raw7, flag, raw14 = f[6], f[7], f[8], f[14]
        else:
            if n > _LEAN_MAX or n < 6 or f[2] != "NM":
                return None
            if n > 9:
                if any(f[9:11]) or any(f[12:14]) or any(f[15:22]):  # _REFUSED
                    return None
                if n > 11 and f[11] and f[11] != "F":
                    return None
            unit = f[6] if n > 6 else ""
            raw7 = f[7] if n > 7 else ""
            flag = f[8] if n > 8 else ""
            raw14 = f[14] if n > 14 else ""
        default_id = f"{id_prefix}-{position}"
        raw3 = f[3]
        coding = code3[raw3] if raw3 in code3 else _code3(raw3, comp, sender, code3)
        if coding is None:
            return None
        raw5 = f[5]
        if plain(raw5):
            value = raw5  # as dumps writes the reader's Decimal: str(Decimal(raw5)) is raw5 for this form
        elif comp in raw5 or not nm(raw5):
            return None
        else:
            value = str(Decimal(raw5))
        tail = tails.get((unit, raw7, flag)) or _tail(unit, raw7, flag, comp)
        if tail is None:
            return None
        middle = middles.get(raw14)
        if middle is None:  # subject, time and the start of the value: the same for most OBX of a report
            time = (times.get((raw14, off)) or _time(raw14, off)) if raw14 else default_time
            if time is None:
                return None
            middle = middles[raw14] = (
                subject + b',"effectiveDateTime":' + time + b',"valueQuantity":{"value":'
            )
        if len(default_id) > 64:
            return None
        did = default_id.encode()
        h = ids.copy()
        h.update(did)
        x = h.hexdigest()
        rid = f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}".encode()
        # The Bundle entry of the resource observation.to_fhir builds, in its key order, as orjson writes
        # it, and the reference to it: the parts that vary are spliced between parts serialised once (the
        # dicts of an OBX -- resource, entry, reference -- and their serialisation cost 2 us of the 4.3 us
        # an OBX took). The id, default_id (a local id) and the number hold no character JSON escapes.
        # All entries go into one list joined once (a bytes object per OBX and a second join cost 0.15 us).
        extend(
            (
                b',{"fullUrl":"urn:uuid:',
                rid,
                b'","resource":{"resourceType":"Observation","id":"',
                rid,
                coding[0],
                did,
                coding[1],
                middle,
                value.encode(),
                tail,
            )
        )
        add_ref((b',{"reference":"urn:uuid:', rid, b'"}'))
    return b"".join(entries)[1:], b"".join(refs)[1:]


class Other(NamedTuple):
    """What an OBX of another form (a value type other than NM, a status other than F) needs for
    :func:`_templated`: the message's delimiters, the OBR's time and its precision, the sender."""

    codec: Codec
    observed: dt.datetime | None
    precision: Precision
    observed_text: bytes | None
    sender: str


_TEMPLATES: dict[tuple, bytes | None] = {}
"""(sender, OBR-7 as JSON, OBX-1 .. OBX-n) -> the Observation's Bundle entry as a ``bytes % (resource id,
resource id, local id, subject)`` format (``None``: that OBX takes the general route)."""
_ID_MARK = "lean-template-id"
_SUBJECT_MARK = {"reference": "urn:uuid:lean-template-subject"}
_TEMPLATE_CTX = WriteContext("lean-template")
_TEMPLATE_CTX.patient = _SUBJECT_MARK
_MARKS = (_TEMPLATE_CTX.id("Observation", _ID_MARK).encode(), _ID_MARK.encode(), orjson.dumps(_SUBJECT_MARK))
_CUT = re.compile(b"(" + b"|".join(map(re.escape, _MARKS)) + b")")
_ORDER = [_MARKS[0], _MARKS[0], _MARKS[1], _MARKS[2]]


def _template(f: list[str], other: Other) -> bytes | None:
    """The entry of an OBX of another form, made once by the general route (:func:`obx.from_segment`,
    :func:`observation.to_fhir`, ``dumps``) with marks where the ids and the subject go, as a ``%``
    format: such OBX (a coded or text finding, a ``<0.5``, a preliminary result) repeat in a lab's
    traffic, value and all. ``None`` when the general route reports anything about it."""
    key = (other.sender, other.observed_text, sender_offset(), *f[1:])
    seg = Segment(list(f), other.codec)
    seg.simple = True  # rows come without repetition, subcomponent or escape characters
    sink = ProblemSink()
    x = obx.from_segment(
        seg,
        sink,
        default_time=other.observed,
        default_id=_ID_MARK,
        sender=other.sender,
        default_precision=other.precision,
    )
    out = None
    if x is not None and not sink.problems and x.id == _ID_MARK:
        obs = observation.to_fhir(x, _TEMPLATE_CTX)
        parts = _CUT.split(b"," + dumps({"fullUrl": "urn:uuid:" + obs["id"], "resource": obs}))
        if parts[1::2] == _ORDER:  # the order observation.to_fhir writes them in
            out = b"%b".join(p.replace(b"%", b"%%") for p in parts[0::2])
    if len(_TEMPLATES) > _CACHE_MAX:
        _TEMPLATES.clear()
    _TEMPLATES[key] = out
    return out


def _templated(
    f: list[str], other: Other, subject: bytes, ids, default_id: str
) -> tuple[tuple, tuple] | None:
    """The entry and the reference of an OBX of another form, from its template (:func:`_template`)."""
    key = (other.sender, other.observed_text, sender_offset(), *f[1:])
    fmt = _TEMPLATES[key] if key in _TEMPLATES else _template(f, other)
    if fmt is None or len(default_id) > 64:
        return None
    h = ids.copy()
    h.update(default_id.encode())
    x = h.hexdigest()
    rid = f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}".encode()
    entry = fmt % (rid, rid, default_id.encode(), subject[11:])  # type: ignore[operator]
    return (entry,), (b',{"reference":"urn:uuid:', rid, b'"}')


def oru_fhir(
    msg: Message, obx_lines: list[tuple[int, Rows]] | None = None, found: list[OruMessage] | None = None
) -> dict | None:
    """The FHIR message Bundle of an ORU^R01 by the lean path; ``None`` when the message has any problem
    (the caller then takes the general route, which reports them). Mirrors :func:`mappings.hl7v2.oru.read`.
    ``obx_lines``: the message's OBX taken out by :func:`_split_obx` (``msg`` then holds none), per OBR;
    each must be of the common form, or ``None`` is returned."""
    tables = code_tables()
    if tables is not _TABLES[0]:  # other code tables: what the caches hold may no longer be so
        _TABLES[0] = tables
        _CODE3.clear()
        _CODINGS.clear()
        _TEMPLATES.clear()
    sink = ProblemSink()
    header = msh.from_segment(msg.msh, sink)
    if header is None or sink.problems:
        return None
    w = fhir._Writer(header)
    ctx = w.ctx
    ctx.patient = ctx.ref("Patient", fhir.patient.KEY)
    control = msg.msh.get(10)
    sender = oru.sender_of(msg)
    precision: Precision = "second"
    other: Other | None = None
    subject = b',"subject":' + orjson.dumps(ctx.patient)
    ids = hashlib.sha1(ctx._ns + b"Observation/")  # WriteContext.id's namespace (see _lean_obx)
    pid_seg = pv1_seg = in1_seg = obr_seg = None
    orders: list[LabOrder] = []
    observations: list[list[tuple[bytes, bytes]]] = []
    current: list[tuple[bytes, bytes]] = []
    observed = observed_text = None
    id_prefix = ""
    comp = msg.codec.delims.component
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name == "OBX" and obr_seg is not None:
            position = len(current) + 1
            lean = (
                _lean_obx([seg.fields], position, comp, subject, ids, observed_text, id_prefix, sender, other)
                if seg.simple
                else None
            )
            if lean is not None:
                res = lean
            elif len(seg.fields) > 21 and seg.fields[21]:
                return None  # the sender's own id: the general route checks that no two OBX share one
            else:
                x = obx.from_segment(
                    seg,
                    sink,
                    default_time=observed,
                    default_id=f"{id_prefix}-{position}",
                    sender=sender,
                    default_precision=precision,
                )
                if x is None or sink.problems:
                    return None
                obs = observation.to_fhir(x, ctx)
                url = "urn:uuid:" + obs["id"]
                res = dumps({"fullUrl": url, "resource": obs}), dumps({"reference": url})
            current.append(res)
        elif name == "PID" and pid_seg is None:
            pid_seg = seg
        elif name == "PV1" and pv1_seg is None and obr_seg is None:
            pv1_seg = seg
        elif name == "IN1" and in1_seg is None and obr_seg is None:
            in1_seg = seg
        elif name == "OBR":
            obr_seg = seg
            order = obr.from_segment(seg, sink)
            if order is None or sink.problems:
                return None
            orders.append(order)
            current = []
            observations.append(current)
            observed = order.observed
            precision = obx.precision_of(seg.get(7)) if seg.get(7) else "second"
            observed_text = None
            if observed is not None:
                observed_text = orjson.dumps(
                    fdatetime(observed)
                    if precision == "second"
                    else observed.date().isoformat()[: {"year": 4, "month": 7, "day": 10}[precision]]
                )
            id_prefix = obx.safe_id(f"{control}-{len(orders)}")
            other = Other(msg.codec, observed, precision, observed_text, sender)
            if obx_lines is not None and obx_lines[len(orders) - 1][1]:
                base, group = obx_lines[len(orders) - 1]
                rows = _lean_obx(group, 1, comp, subject, ids, observed_text, id_prefix, sender, other)
                if rows is None:
                    return None
                current.append(rows)
        else:
            return None  # a second PID, an unread segment: the general route reports it
    if pid_seg is None or obr_seg is None:
        return None
    insurance = in1.from_segment(in1_seg, sink) if in1_seg else None
    patient, identifiers = pid.from_segment(pid_seg, sink, insurance)
    visit = pv1.from_segment(pv1_seg, sink) if pv1_seg else None
    if patient is None or sink.problems:
        return None
    # the orders without their measurements: the Bundle's DiagnosticReports refer to the Observations
    message = OruMessage(
        header=header, patient=patient, orders=tuple(orders), identifiers=identifiers, visit=visit
    )
    if found is not None:  # the message without its results: what the MLLP listener audits (the BSN)
        found.append(message)
    # per order: its Observation entries as one fragment of comma-separated entries (spliced into the
    # Bundle's entry list), and the DiagnosticReport's result list
    fragments = [
        (
            orjson.Fragment(b",".join([e for e, _ in obs])),
            orjson.Fragment(b"[" + b",".join([r for _, r in obs]) + b"]"),
        )
        if obs
        else None
        for obs in observations
    ]
    return fhir.oru_bundle(w, message, fragments)


Rows = list[list[str]]
"""OBX lines split into fields (``f[n]`` is OBX-n), in message order."""


def _split_obx(text: str, delims: Delimiters) -> tuple[str, list[tuple[int, Rows]]] | None:
    """The message without its OBX lines, and per OBR its OBX lines (the occurrence in the message of the
    first, and their fields), when every OBX is plain (no repetition, subcomponent or escape character:
    what ``er7.parse`` marks ``simple``) and follows an OBR; ``None`` otherwise (the caller parses the whole
    message).

    Why: ``er7.parse`` makes a :class:`~mappings.hl7v2.er7.Segment` of each line (0.9 us with its checks);
    for the 30 OBX of the benchmark report that was 27 of the 268 us the lean path took
    (docs/performance.md). The OBX lines are split here and read as field lists; the other segments still
    go through ``er7.parse``, with every check it makes. The usual report (one OBR, its OBX last) is cut
    in two with ``str.find`` (13 us instead of 19 for a loop over the lines)."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    fs = delims.field
    prefix = "OBX" + fs
    esc, rep, sub = delims.escape, delims.repetition, delims.subcomponent
    if not esc or text.count("\r") > MAX_SEGMENTS:
        return None
    first = text.find("\r" + prefix)
    if first < 0:
        return None
    head, block = text[:first], text[first + 1 :].rstrip("\r")
    n_obr = head.count("\rOBR" + fs)
    if n_obr == 0:
        return None
    if block.count("\r" + prefix) == block.count("\r"):  # OBX only, to the end
        if esc in block or rep in block or sub in block:
            return None
        rows = [line.split(fs) for line in block.split("\r")]
        if max(map(len, rows)) >= MAX_FIELDS:
            return None
        return head, [(1, [])] * (n_obr - 1) + [(1, rows)]
    return _split_obx_lines(text, prefix, delims)


def _split_obx_lines(text: str, prefix: str, delims: Delimiters) -> tuple[str, list[tuple[int, Rows]]] | None:
    """:func:`_split_obx` for any order of segments (several OBR, segments between the OBX)."""
    fs = delims.field
    obr = "OBR" + fs
    head: list[str] = []
    groups: list[tuple[int, Rows]] = []
    plain: list[str] = []
    n = 0
    for line in text.split("\r"):
        if line.startswith(prefix):
            if not groups:
                return None
            n += 1
            plain.append(line)
            groups[-1][1].append(line.split(fs))
        else:
            if line.startswith(obr):
                groups.append((n + 1, []))
            head.append(line)
    block = "\r".join(plain)
    if delims.escape in block or delims.repetition in block or delims.subcomponent in block:
        return None
    if any(len(f) >= MAX_FIELDS for _, rows in groups for f in rows):
        return None
    return "\r".join(head), groups


def oru_bytes(data: bytes, sink: ProblemSink | None = None) -> bytes:
    """Parse an ORU^R01 (or any message) and give its FHIR Bundle as compact JSON bytes; raises
    :class:`~mappings.problems.InputError` as :func:`mappings.hl7v2.messages.read` does.

    Three routes, each giving the same bytes (``tests/test_hl7v2_fast.py``): OBX lines read as field lists
    (:func:`_split_obx`), else every segment parsed and the plain OBX written lean (:func:`oru_fhir`), else
    the general route."""
    text, charset, delims = _decode(data, MAX_MESSAGE_BYTES, "")
    split = _split_obx(text, delims) if "ORU" in text[:256] else None
    if split is not None:
        head = parse(split[0], charset=charset, delims=delims)
        if head.msh.get(9, 1) == "ORU" and head.msh.get(9, 2) == "R01":
            bundle = oru_fhir(head, split[1])
            if bundle is not None:
                return dumps(bundle)
    msg = parse(text, charset=charset, delims=delims)
    if msg.msh.get(9, 1) == "ORU" and msg.msh.get(9, 2) == "R01":
        bundle = oru_fhir(msg)
        if bundle is not None:
            return dumps(bundle)
    return bundle_bytes(messages.read(msg, sink))


def accept(msg: Message, sink: ProblemSink, *, accepted: tuple[str, ...] | None = None) -> c.Hl7Canonical:
    """Map a parsed message as the MLLP listener does before acknowledging it: an ORU^R01 by the lean
    path (the mapping ``hisgw convert`` and ``bench/`` use; its Bundle is not kept), any other message or
    one with a problem by :func:`mappings.hl7v2.messages.read`. Returns the canonical message (for an
    ORU^R01 by the lean path: without its results, which the Bundle held); raises as ``messages.read``."""
    if (
        msg.msh.get(9, 1) == "ORU"
        and msg.msh.get(9, 2) == "R01"
        and (accepted is None or "ORU^R01" in accepted)
    ):
        found: list[OruMessage] = []
        if oru_fhir(msg, found=found) is not None:
            return found[0]
    return messages.read(msg, sink, accepted=accepted)


def bundle_bytes(obj: c.Hl7Canonical) -> bytes:
    """The message Bundle of a canonical message as compact JSON bytes (the general route)."""
    return dumps(fhir.to_fhir(obj))

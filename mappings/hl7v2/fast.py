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
route, so problems are reported by one code only. Measured: 3,734 messages/s (docs/performance.md), twice
the general route and still short of 5,000/s: what is left is about 90 us for MSH, PID, PV1, OBR and their
resources and 3 us per OBX of plain Python (the v5 UUID of each Observation alone 0.7 us).

The output is byte for byte the general route's: ``tests/test_hl7v2_fast.py`` checks it on every golden
ORU^R01 and on generated variations of the benchmark message.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

import orjson

from mappings.codetables import code_tables
from mappings.fhir import codes as fc
from mappings.fhir import observation
from mappings.fhir.common import _VARIANT, coding, dumps, fdatetime
from mappings.hl7v2 import canonical as c
from mappings.hl7v2 import fhir, in1, messages, msh, obr, obx, pid, pv1
from mappings.hl7v2.canonical import LabOrder, OruMessage
from mappings.hl7v2.datatypes import _DTM_CACHE
from mappings.hl7v2.er7 import Message, parse_bytes
from mappings.problems import ProblemSink

_AFTER_ID = (
    b'","meta":'
    + orjson.dumps({"profile": [fc.P_LAB_RESULT]})
    + b',"identifier":[{"use":"usual","system":'
    + orjson.dumps(fc.LOCAL_ID + observation.KIND)
    + b',"value":"'
)
_AFTER_VALUE = b'"}],"status":"final","category":' + orjson.dumps(observation._LAB) + b',"code":'
_INTERPRETATION = {
    k: b',"interpretation":' + orjson.dumps([{"coding": [coding(fc.V3_INTERPRETATION, k, v)]}])
    for k, v in observation._INTERPRETATIONS.items()
}
_CODINGS: dict[str, bytes] = {}
_TIMES: dict[str, bytes] = {}
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


def _time(raw14: str) -> bytes | None:
    """The FHIR dateTime (JSON) of an OBX-14 the OBX reader has parsed before (its cache)."""
    effective = _DTM_CACHE.get(raw14)
    if effective is None:
        return None
    if len(_TIMES) > _CACHE_MAX:
        _TIMES.clear()
    hit = _TIMES[raw14] = orjson.dumps(fdatetime(effective))
    return hit


_LEAN_MAX = 22  # OBX-1 .. OBX-21
_PLAIN = re.compile(r"-?[1-9][0-9]*(?:\.[0-9]+)?\Z")
_TABEL45_SYSTEMS = obx.TABEL45_SYSTEMS
_FLAGS = obx.FLAGS
_NM_RE = obx._NM_RE
_REFUSED = (9, 10, 12, 13, *range(15, 22))
"""The fields :func:`_lean_obx` refuses when valued: those the OBX reader warns about (``obx.UNREAD``) and
OBX-21 (an id of the sender's); checked against ``obx.UNREAD`` in ``tests/test_hl7v2_fast.py``."""


def _lean_obx(
    f: list[str],
    comp: str,
    subject: bytes,
    ids,
    default_time: bytes | None,
    default_id: str,
    tabel45,
) -> tuple[bytes, bytes] | None:
    """The Observation of an OBX of the common form (``f``: its fields, a segment without repetitions,
    subcomponents or escapes), exactly as ``observation.to_fhir(obx.from_segment(...))`` gives it; ``None``
    when the OBX is of another form (the caller takes the general route for it). ``ids``: the SHA-1 of the
    message's id namespace and ``Observation/``, to which the measurement id is added (a v5 UUID as
    ``WriteContext.id`` makes it, without hashing the prefix 30 times)."""
    n = len(f)
    if n > _LEAN_MAX or n < 6 or f[2] != "NM":
        return None
    # _REFUSED, with slices (one check per field costs more than the rest of this function)
    if any(f[9:11]) or any(f[12:14]) or any(f[15:22]):
        return None
    if n > 11 and f[11] and f[11] != "F":
        return None
    parts = f[3].split(comp, 3)
    if len(parts) < 3 or parts[2] not in _TABEL45_SYSTEMS or parts[0] not in tabel45:
        return None
    raw5 = f[5]
    unit = f[6] if n > 6 else ""
    if comp in raw5 or comp in unit or not _NM_RE.match(raw5):
        return None
    flag = f[8] if n > 8 else ""
    if flag and flag not in _FLAGS:
        return None
    raw14 = f[14] if n > 14 else ""
    time = (_TIMES.get(raw14) or _time(raw14)) if raw14 else default_time
    if time is None or len(default_id) > 64:
        return None
    unit_or_none = unit or None
    raw7 = f[7] if n > 7 else ""
    rng = None
    if raw7:
        rng = _RANGES.get((raw7, unit_or_none)) or _range(raw7, unit_or_none)
        if rng is None:
            return None
    # as dumps writes the reader's Decimal: str(Decimal(raw5)), which is raw5 itself for this plain form
    value = raw5 if _PLAIN.match(raw5) else str(Decimal(raw5))
    h = ids.copy()
    h.update(default_id.encode())
    x = h.hexdigest()
    rid = f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"
    # The Bundle entry of the resource observation.to_fhir builds, in its key order, as orjson writes it,
    # and the reference to it: the parts that vary are spliced between parts serialised once (the dicts
    # of an OBX -- resource, entry, reference -- and their serialisation cost 2 us of the 4.3 us an OBX
    # took; 30 of them kept the report at 3,600/s). rid, default_id (a local id) and the number hold no
    # character JSON escapes.
    url = b"urn:uuid:" + rid.encode()
    entry = b"".join(
        (
            b'{"fullUrl":"',
            url,
            b'","resource":{"resourceType":"Observation","id":"',
            url[9:],
            _AFTER_ID,
            default_id.encode(),
            _AFTER_VALUE,
            _CODINGS.get(parts[0]) or _code(parts[0]),
            subject,
            b',"effectiveDateTime":',
            time,
            b',"valueQuantity":{"value":',
            value.encode(),
            _UNITS.get(unit_or_none) or _unit(unit_or_none),
            b"}",
            _INTERPRETATION[flag] if flag else b"",
            rng or b"",
            b"}}",
        )
    )
    return entry, b'{"reference":"' + url + b'"}'


def oru_fhir(msg: Message) -> dict | None:
    """The FHIR message Bundle of an ORU^R01 by the lean path; ``None`` when the message has any problem
    (the caller then takes the general route, which reports them). Mirrors :func:`mappings.hl7v2.oru.read`."""
    sink = ProblemSink()
    header = msh.from_segment(msg.msh, sink)
    if header is None or sink.problems:
        return None
    w = fhir._Writer(header)
    ctx = w.ctx
    ctx.patient = ctx.ref("Patient", fhir.patient.KEY)
    control = msg.msh.get(10)
    tabel45 = code_tables().tables["tabel45"].codes
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
            set_id = seg.fields[1] if len(seg.fields) > 1 and seg.fields[1].isdigit() else str(seg.occurrence)
            default_id = f"{id_prefix}-{set_id}"
            res = (
                _lean_obx(seg.fields, comp, subject, ids, observed_text, default_id, tabel45)
                if seg.simple
                else None
            )
            if res is None:
                x = obx.from_segment(seg, sink, default_time=observed, default_id=default_id)
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
            observed_text = orjson.dumps(fdatetime(observed)) if observed is not None else None
            id_prefix = obx.safe_id(f"{control}-{seg.get(1) or seg.occurrence}")
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
    # per order: its Observation entries as one fragment of comma-separated entries (spliced into the
    # Bundle's entry list), and the DiagnosticReport's result list
    lean = [
        (
            orjson.Fragment(b",".join(e for e, _ in obs)),
            orjson.Fragment(b"[" + b",".join(r for _, r in obs) + b"]"),
        )
        if obs
        else None
        for obs in observations
    ]
    return fhir.oru_bundle(w, message, lean)


def oru_bytes(data: bytes, sink: ProblemSink | None = None) -> bytes:
    """Parse an ORU^R01 (or any message) and give its FHIR Bundle as compact JSON bytes; raises
    :class:`~mappings.problems.InputError` as :func:`mappings.hl7v2.messages.read` does."""
    msg = parse_bytes(data)
    if msg.msh.get(9, 1) == "ORU" and msg.msh.get(9, 2) == "R01":
        bundle = oru_fhir(msg)
        if bundle is not None:
            return dumps(bundle)
    return bundle_bytes(messages.read(msg, sink))


def bundle_bytes(obj: c.Hl7Canonical) -> bytes:
    """The message Bundle of a canonical message as compact JSON bytes (the general route)."""
    return dumps(fhir.to_fhir(obj))

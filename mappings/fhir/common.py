"""What every FHIR mapping module shares: references, local ids, dates, decimals, codings, problems.

Writing (:class:`WriteContext`): every resource gets a deterministic id, a name-based UUID (RFC 4122
version 5) of a per-dossier scope and ``<ResourceType>/<key>``, so the same dossier always gives the same
bytes; inside a Bundle the ``fullUrl`` is ``urn:uuid:<id>`` and references use that form
(bundle.html#references). Reading (:class:`ReadContext`): references are resolved against the Bundle's
entries (``urn:uuid:``/absolute ``fullUrl``, or ``Type/id``), and every problem is reported through the
:class:`~mappings.problems.ProblemSink` with a FHIRPath-like location
(``Bundle.entry[3].resource.identifier[0].value``) and a ``FHIR-0xx`` code (``docs/problem-codes.md``).

Times (datatypes.html#dateTime): the canonical model holds naive wall-clock times of Europe/Amsterdam;
FHIR wants an offset with every time, so they are written with the Amsterdam offset of that moment and
read back by converting to Amsterdam time (a time written as Amsterdam wall clock plus its own offset is
kept as written, which keeps even the nonexistent 02:30 of the spring-forward night). Dates stay dates.
Empty optional texts are written as a primitive with only an extension (:func:`put`, :func:`take`).
Decimals stay :class:`~decimal.Decimal` inside the dicts and are written as JSON numbers with their exact
digits (:func:`dumps`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from mappings.codetables import code_tables
from mappings.fhir import codes as c
from mappings.model import ICPC_RE
from mappings.problems import ProblemSink

AMS = ZoneInfo("Europe/Amsterdam")
UTC = dt.UTC
NAMESPACE = uuid.UUID("6c1a3f52-8e0b-5d7e-9a55-2f3c4b5d6e7f")
"""Root namespace of the gateway's name-based resource ids (a fixed, arbitrary UUID)."""

_LOCAL_ID_RE = re.compile(r"^[A-Za-z0-9.\-_:]{1,64}\Z")


# --------------------------------------------------------------------------- JSON


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # the exact digits: FHIR decimals keep their precision (datatypes.html#decimal), "37.30" stays so
        return orjson.Fragment(str(obj))
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any, *, pretty: bool = False) -> bytes:
    """FHIR JSON bytes (orjson; Decimals with their exact digits). ``pretty``: sorted keys, indented."""
    if pretty:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return orjson.dumps(obj, default=_default)


# --------------------------------------------------------------------------- writing


_VARIANT = {x: "89ab"[int(x, 16) & 0x3] for x in "0123456789abcdef"}


def _uuid5(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))`` without the object overhead (a hot path): the
    SHA-1 of namespace and name, version nibble 5, variant bits 10 (RFC 4122 §4.3)."""
    x = hashlib.sha1(namespace + name.encode("utf-8")).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def _uuid5_bytes(namespace: bytes, name: str) -> bytes:
    """``uuid.uuid5(UUID(bytes=namespace), name).bytes``, without the object (1.5 us less a message)."""
    d = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50
    d[8] = (d[8] & 0x3F) | 0x80
    return bytes(d)


class WriteContext:
    """Deterministic resource ids and the references of one dossier's resources.

    ``scope`` names the dossier (practice and patient); two dossiers get different ids for their
    ``"ep1"``, one dossier always the same. ``patient``/``practice`` are the references every clinical
    resource needs (``None`` when a resource is mapped on its own, outside a dossier).
    """

    __slots__ = ("_ns", "_ids", "patient", "practice", "patient_display")

    def __init__(self, scope: str = "") -> None:
        self._ns = _uuid5_bytes(NAMESPACE.bytes, scope)
        self._ids: dict[tuple[str, str], str] = {}
        self.patient: dict | None = None
        self.practice: dict | None = None
        self.patient_display: str | None = None

    def id(self, rtype: str, key: str) -> str:
        """The resource id (a UUID) of the resource of type ``rtype`` for the local ``key``."""
        k = (rtype, key)
        rid = self._ids.get(k)
        if rid is None:
            rid = self._ids[k] = _uuid5(self._ns, f"{rtype}/{key}")
        return rid

    def url(self, rtype: str, key: str) -> str:
        """``urn:uuid:<id>``: the fullUrl of the resource in a Bundle."""
        return "urn:uuid:" + self.id(rtype, key)

    def ref(self, rtype: str, key: str) -> dict:
        """A Reference to the resource (bundle.html#references: by its ``urn:uuid`` fullUrl)."""
        return {"reference": "urn:uuid:" + self.id(rtype, key)}


def local_identifier(kind: str, value: str) -> dict:
    """The Identifier carrying a record's local id in the HIS (``urn:his-gateway:id:<kind>``)."""
    return {"use": "usual", "system": c.LOCAL_ID + kind, "value": value}


_OID_RE = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+\Z")


def identifiers(kind: str, x: Any) -> list[dict]:
    """A record's identifiers: the HIS's own first (nl-core: system ``urn:oid:<root>``, value the
    extension, use official), so a receiver can trace it back to the sending HIS; ours
    (:func:`local_identifier`) beside it."""
    out = []
    if x.source_root is not None:
        out.append({"use": "official", "system": "urn:oid:" + x.source_root, "value": x.source_ext})
    out.append(local_identifier(kind, x.id))
    return out


def source_of(res: dict) -> dict:
    """The HIS's own id of a record (``source_root``/``source_ext``): its first ``urn:oid:`` identifier
    that is no gateway id; empty when it has none."""
    for ident in as_list(res.get("identifier")):
        if not isinstance(ident, dict):
            continue
        system, value = ident.get("system"), ident.get("value")
        if (
            isinstance(system, str)
            and system.startswith("urn:oid:")
            and _OID_RE.match(system[8:])
            and isinstance(value, str)
            and 0 < len(value) <= 200
        ):
            return {"source_root": system[8:], "source_ext": value}
    return {}


def episode_context(ctx: WriteContext, episode_id: str) -> dict:
    """The link of a record to its episode: extension ext-Context-EpisodeOfCare (valueReference)."""
    return {"url": c.EXT_CONTEXT_EPISODE, "valueReference": ctx.ref("EpisodeOfCare", episode_id)}


def episode_of(res: dict, ctx: ReadContext, where: str) -> str | None:
    """The episode an ext-Context-EpisodeOfCare extension names, or ``None``."""
    ref = ext_value(res, c.EXT_CONTEXT_EPISODE, "valueReference")
    return None if ref is None else ctx.local(ref, f"{where}.extension", ("EpisodeOfCare",))


def coding(system: str, code: str, display: str | None = None) -> dict:
    """A Coding; ``display`` only when known."""
    if display is None:
        return {"system": system, "code": code}
    return {"system": system, "code": code, "display": display}


def meta(profile: str, shielded: bool = False) -> dict:
    """``Resource.meta``: the nl-core profile, and the security label R (restricted) for shielded data."""
    if shielded:
        return {"profile": [profile], "security": [SHIELDED]}
    return {"profile": [profile]}


SHIELDED = {"system": c.V3_CONFIDENTIALITY, "code": "R", "display": "restricted"}
"""Afgeschermd (shielded) data: HL7 v3 Confidentiality R (security-labels.html)."""


def fdate(value: dt.date) -> str:
    """A FHIR date (four year digits: ``date.isoformat`` pads)."""
    return value.isoformat()


def fdatetime(value: dt.datetime) -> str:
    """A FHIR dateTime of a naive Amsterdam wall-clock time: with the offset it had then.

    Offsets of whole minutes only (datatypes.html#dateTime); the local mean time Amsterdam kept before
    1937 (+00:19:32) is written in UTC instead, which reads back to the same wall-clock time.
    """
    cacheable = value.tzinfo is None and not value.fold  # equal datetimes may differ in fold
    if cacheable:
        hit = _FDATETIME.get(value)
        if hit is not None:
            return hit
    aware = value.replace(tzinfo=AMS)
    off = aware.utcoffset()
    if off is not None and off.seconds % 60:
        out = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        out = aware.isoformat()
    if cacheable:
        if len(_FDATETIME) >= 4096:
            _FDATETIME.clear()
        _FDATETIME[value] = out
    return out


_FDATETIME: dict[dt.datetime, str] = {}
"""Recent results of :func:`fdatetime` for naive times with ``fold=0`` (2 us each with the zone lookup; a
message repeats its times)."""


def fmidnight(value: dt.date) -> str:
    """The start of a day in Amsterdam as a FHIR instant (Bundle.timestamp)."""
    return fdatetime(dt.datetime(value.year, value.month, value.day))


EMPTY_TEXT = {"url": c.EXT_EMPTY_TEXT, "valueBoolean": True}
EMPTY = {"extension": [EMPTY_TEXT]}
"""The JSON primitive extension of an element whose value is the empty string (json.html#primitive): FHIR
strings are never empty (datatypes.html#string), yet a HIS may hold an empty text apart from no text."""


def put(obj: dict, key: str, value: str | None) -> None:
    """Set an optional text: nothing for ``None``, ``key`` for a text, ``_key`` marked empty for ``""``."""
    if value:
        obj[key] = value
    elif value is not None:
        obj["_" + key] = EMPTY


def is_empty_mark(ext: Any) -> bool:
    """Whether a primitive's extensions (``_key``) say its value is the empty string."""
    return isinstance(ext, dict) and EMPTY_TEXT in as_list(ext.get("extension"))


def take(obj: Any, key: str) -> str | None:
    """An optional text written by :func:`put`: the string, ``""`` when marked empty, else ``None``."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    if isinstance(value, str):
        return value
    if value is None and is_empty_mark(obj.get("_" + key)):
        return ""
    return None


def ext_string(url: str, value: str) -> dict:
    """An extension with a valueString; for the empty string the empty mark as a nested extension instead
    (an extension's value cannot carry extensions of its own in JSON: ext-1 wants a value or extensions)."""
    return {"url": url, "valueString": value} if value else {"url": url, "extension": [EMPTY_TEXT]}


def ext_text(obj: dict, url: str) -> str | None:
    """The valueString of the first extension with ``url`` (``""`` when marked empty)."""
    ext = extension(obj, url)
    return None if ext is None else string_of(ext)


def string_of(ext: dict) -> str | None:
    """The valueString of an extension written by :func:`ext_string` (``""`` when marked empty)."""
    value = ext.get("valueString")
    if isinstance(value, str):
        return value
    return "" if EMPTY_TEXT in as_list(ext.get("extension")) else None


def code_value(system: str, code: str, display: str | None = None) -> dict:
    """A Coding whose code may be the empty string (then marked as :func:`put` does)."""
    out = {"system": system}
    put(out, "code", code)
    if display is not None:
        out["display"] = display
    return out


# --------------------------------------------------------------------------- reading


class ReadContext:
    """The Bundle being read: its entries, references between them, the local ids given so far, problems.

    ``resolve`` turns a Reference into an entry index; ``ids`` maps an entry index to the canonical local
    id of the record read from it, so a reference can be turned into the id the canonical model uses.
    Outside a Bundle (``entries`` empty) references resolve to nothing, silently.
    """

    def __init__(
        self,
        sink: ProblemSink | None = None,
        entries: list[dict] | None = None,
        prefix: str = "Bundle",
        source: str | None = None,
        entry_path: str | None = None,
    ) -> None:
        self.sink = sink if sink is not None else ProblemSink()
        self.entries = entries or []
        self.prefix = prefix
        self.entry_path = entry_path if entry_path is not None else prefix + ".entry[{}].resource"
        self.source = source
        self.ids: dict[int, str] = {}
        self.used: set[int] = set()
        self._taken: dict[str, set[str]] = {}
        self._by_ref: dict[str, int] = {}
        for i, e in enumerate(self.entries):
            res = e.get("resource") if isinstance(e, dict) else None
            if not isinstance(res, dict):
                continue
            url = e.get("fullUrl")
            if isinstance(url, str):
                self._by_ref.setdefault(url, i)
            rid, rtype = res.get("id"), res.get("resourceType")
            if isinstance(rid, str) and isinstance(rtype, str):
                self._by_ref.setdefault(f"{rtype}/{rid}", i)

    # -- locations and problems
    def at(self, i: int) -> str:
        """The location of entry ``i``'s resource."""
        return self.entry_path.format(i)

    def _loc(self, where: str) -> str:
        return f"{self.source} {where}" if self.source else where

    def error(self, code: str, where: str, message: str) -> None:
        self.sink.error(code, self._loc(where), message)

    def warning(self, code: str, where: str, message: str) -> None:
        self.sink.warning(code, self._loc(where), message)

    # -- entries and references
    def resource(self, i: int) -> dict:
        return self.entries[i]["resource"]

    def resolve(self, ref: Any, where: str, types: tuple[str, ...]) -> int | None:
        """The entry a Reference points at (``FHIR-013`` when it resolves to nothing in the Bundle,
        ``FHIR-014`` when it is of another type than ``types``); ``None`` for a logical reference."""
        if not isinstance(ref, dict):
            return None
        target = ref.get("reference")
        if not isinstance(target, str):
            return None
        if not self.entries:
            return None
        i = self._by_ref.get(target)
        if i is None and "/" in target and not target.startswith("urn:"):
            parts = target.rstrip("/").split("/")
            if len(parts) >= 2:  # an absolute URL ending in Type/id, or Type/id/_history/n
                if len(parts) >= 4 and parts[-2] == "_history":
                    parts = parts[:-2]
                i = self._by_ref.get(f"{parts[-2]}/{parts[-1]}")
        if i is None:
            self.error(
                "FHIR-013",
                where + ".reference",
                f"reference {_cut(target)!r} resolves to no entry of the Bundle",
            )
            return None
        rtype = self.resource(i).get("resourceType")
        if rtype not in types:
            self.error(
                "FHIR-014", where + ".reference", f"reference to a {rtype}, expected {' or '.join(types)}"
            )
            return None
        return i

    def local(self, ref: Any, where: str, types: tuple[str, ...]) -> str | None:
        """The canonical local id of the record a Reference points at (``None`` if it has none)."""
        i = self.resolve(ref, where, types)
        return None if i is None else self.ids.get(i)

    def local_id(self, res: dict, kind: str, where: str, fallback: str) -> str:
        """The local id of a record: our ``urn:his-gateway:id:<kind>`` identifier, else the resource id
        (when it is a valid local id), else ``fallback``; made unique per kind (``525``, ``525-2``)."""
        system = c.LOCAL_ID + kind
        value = None
        for ident in as_list(res.get("identifier")):
            if (
                isinstance(ident, dict)
                and ident.get("system") == system
                and isinstance(ident.get("value"), str)
            ):
                value = ident["value"]
                break
        if value is None or not _LOCAL_ID_RE.match(value):
            rid = res.get("id")
            value = rid if isinstance(rid, str) and _LOCAL_ID_RE.match(rid) else fallback
        taken = self._taken.setdefault(kind, set())
        if value in taken:
            n = 2
            while f"{value[:60]}-{n}" in taken:
                n += 1
            new = f"{value[:60]}-{n}"
            self.warning(
                "FHIR-015", where + ".identifier", f"{kind} id {value!r} occurs twice; read as {new!r}"
            )
            value = new
        taken.add(value)
        return value


def _cut(value: str, n: int = 60) -> str:
    return value if len(value) <= n else value[:n] + "..."


def as_list(value: Any) -> list:
    """An element that repeats: its list, or ``[]`` when absent or malformed (the validator reports that)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def extension(obj: dict, url: str) -> dict | None:
    """The first extension with ``url`` on ``obj`` (an element or a resource)."""
    for ext in as_list(obj.get("extension")):
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext
    return None


def ext_value(obj: dict, url: str, key: str) -> Any:
    """The ``value[x]`` (under ``key``, e.g. ``valueString``) of the first extension with ``url``."""
    ext = extension(obj, url)
    return None if ext is None else ext.get(key)


def find_coding(cc: Any, systems: Collection[str]) -> tuple[int, dict] | None:
    """The first Coding with a code of a CodeableConcept whose system (URI or ``urn:oid:`` form) is in
    ``systems`` (a tuple or set: a hot path)."""
    if type(cc) is not dict:
        return None
    codings = cc.get("coding")
    if type(codings) is not list:
        return None
    for i, cd in enumerate(codings):
        if type(cd) is dict:
            system = cd.get("system")
            if type(system) is not str:
                continue
            if (system in systems or c.system_uri(system) in systems) and take(cd, "code") is not None:
                return i, cd
    return None


def code_in(cc: Any, systems: Collection[str]) -> str | None:
    """The code of the first Coding in one of ``systems`` (see :func:`find_coding`)."""
    hit = find_coding(cc, systems)
    return None if hit is None else take(hit[1], "code")


def table_code(cc: Any, system: str, where: str, ctx: ReadContext) -> str | None:
    """The code of ``system`` in a CodeableConcept, checked against its code table: a code that is not in
    the table is kept with a ``CODE-001`` warning, as every reader does (mappings/codetables.py)."""
    hit = find_coding(cc, (system,))
    if hit is None:
        return None
    code = take(hit[1], "code")
    table = c.TABLE_OF_SYSTEM[system]
    if code is not None and c.display(table, code) is None:
        ctx.warning(
            "CODE-001",
            f"{where}.coding[{hit[0]}].code",
            f"code {_cut(code)!r} is not in {code_tables()[table].title}; kept as is",
        )
    return code


def icpc_code(cc: Any, where: str, ctx: ReadContext) -> str | None:
    """The ICPC-1-NL code of a CodeableConcept, if it has one of the right shape (``FHIR-032`` if not)."""
    hit = find_coding(cc, (c.ICPC,))
    if hit is None:
        return None
    code = take(hit[1], "code") or ""
    if not ICPC_RE.match(code):
        ctx.error(
            "FHIR-032", f"{where}.coding[{hit[0]}].code", f"ICPC {_cut(code)!r} has not the shape A99[.9[9]]"
        )
        return None
    return table_code(cc, c.ICPC, where, ctx)


def has_profile(res: dict, profile: str) -> bool:
    return profile in as_list(as_dict(res.get("meta")).get("profile"))


def is_shielded(res: dict) -> bool:
    """Restricted (R) or very restricted (V) confidentiality: afgeschermd."""
    for label in as_list(as_dict(res.get("meta")).get("security")):
        if (
            isinstance(label, dict)
            and c.system_uri(label.get("system")) == c.V3_CONFIDENTIALITY
            and label.get("code") in ("R", "V")
        ):
            return True
    return False


_DATE_RE = re.compile(r"^([0-9]{4})(-[0-9]{2}(-[0-9]{2})?)?\Z")


def pdate(value: Any, where: str, ctx: ReadContext) -> dt.date | None:
    """A date from a FHIR date or dateTime (a dateTime gives its Amsterdam date); ``FHIR-021`` when the
    value is no date, or only a year or month (the canonical model keeps whole dates only)."""
    if value is None:
        return None
    if not isinstance(value, str):
        ctx.error("FHIR-021", where, "a date is a string YYYY-MM-DD")
        return None
    m = _DATE_RE.match(value)
    if m is not None:
        if m.group(3) is None:
            ctx.error("FHIR-021", where, f"partial date {value!r}: only whole dates (YYYY-MM-DD) can be kept")
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            ctx.error("FHIR-021", where, f"{value!r} is not a date of the calendar")
            return None
    if len(value) <= 10:
        ctx.error("FHIR-021", where, f"{_cut(value)!r} is not a date (YYYY-MM-DD)")
        return None
    t = pdatetime(value, where, ctx)
    return None if t is None else t.date()


def pdatetime(value: Any, where: str, ctx: ReadContext) -> dt.datetime | None:
    """A naive Amsterdam wall-clock time from a FHIR dateTime/instant (whole seconds).

    A whole date reads as its midnight (``FHIR-022`` warning); fractions of a second are dropped
    (``FHIR-022``); a partial date or a malformed value is ``FHIR-021``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        ctx.error("FHIR-021", where, "a dateTime is a string")
        return None
    if len(value) <= 10:
        d = pdate(value, where, ctx)
        if d is None:
            return None
        ctx.warning("FHIR-022", where, f"date {value!r} without a time read as midnight")
        return dt.datetime(d.year, d.month, d.day)
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        ctx.error("FHIR-021", where, f"{_cut(value)!r} is not a dateTime (YYYY-MM-DDThh:mm:ss+zz:zz)")
        return None
    if t.tzinfo is not None:
        naive = t.replace(tzinfo=None)
        # written as Amsterdam wall-clock time with its offset (as fdatetime does): keep the wall clock, so
        # that even a time in the spring-forward gap (02:30 that day, +01:00) reads back as written
        t = (
            naive
            if naive.replace(tzinfo=AMS).utcoffset() == t.utcoffset()
            else t.astimezone(AMS).replace(tzinfo=None)
        )
    if t.microsecond:
        ctx.warning("FHIR-022", where, f"fractions of a second in {value!r} dropped (whole seconds are kept)")
        t = t.replace(microsecond=0)
    return t


def pdecimal(value: Any, where: str, ctx: ReadContext) -> Decimal | None:
    """A Decimal from a JSON number (exact when decoded with ``float_hook=Decimal``)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        ctx.error("FHIR-021", where, "a decimal is a JSON number")
        return None
    try:
        if not result.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        ctx.error("FHIR-021", where, "a decimal must be a finite number")
        return None
    return result

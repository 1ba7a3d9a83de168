"""A fast validator for inbound FHIR R4 (4.0.1) JSON: structure, bindings and the rules the gateway needs.

What it checks (the spec sections are those of https://hl7.org/fhir/R4/):

- **Hostile input first** (``docs/fhir-validation.md`` §2): the document size (``max_bytes``, 16 MiB),
  the number of JSON values (500,000 separators), valid UTF-8, valid JSON (json.html), nesting (orjson
  refuses depth 1,024; the walk below refuses ``max_depth``, 64 levels, and is the only recursion),
  strings of at most 1 MiB characters (datatypes.html#string), base64 up to the document limit.
- **Structure** (json.html, elementdefinition.html): element names, JSON types, cardinality (array or
  single value, required elements), choice elements ``value[x]`` (exactly one), primitive extensions
  (``_birthDate``), nested and contained resources, every data type of R4. The element tables are data
  in ``mappings/fhir/structure/`` generated from the R4 StructureDefinitions (``generate.py``); every
  R4 element of each resource is listed, so an unknown element is exactly that.
- **Primitive forms** (datatypes.html#primitive): the regular expressions of R4 plus a calendar check
  of dates (``2023-02-30`` is no date), integer ranges, decimal finiteness.
- **Required bindings** (terminologies.html#required): the codes of every required value set of our
  resources and data types (status, intent, gender, Bundle.type, clinical and verification status
  codings ...), expanded into ``valuesets.json``.
- **Dutch identifiers** (DOMAIN.md §8): BSN (11-test) under its URI or ``urn:oid:`` system, AGB-Z
  8 digits, UZI 9 digits, URA 8 digits, UZOVI 4 digits, wherever an Identifier occurs.
- **References** (references.html, bundle.html#references): a reference's form, its target type,
  ``#id`` references to contained resources (dom-3), and inside a document, message or collection
  Bundle every reference must resolve to an entry (``urn:uuid:`` fullUrls, ``Type/id`` or absolute
  URLs); transaction and batch Bundles may point at resources on the server by ``Type/id``.
- **Extensions** (extensibility.html): ``url`` required, a ``value[x]`` or nested extensions, never both.
- **Invariants the gateway depends on**: bdl-1..5, bdl-7..12, dom-2, obs-6, qty-3, sqty-1, per-1.

Entry points: :func:`validate` (problems, never an exception for bad input) and
:func:`operation_outcome` (the problems as an OperationOutcome). Problem codes ``FHIRV-0xx`` are listed
in ``docs/fhir-validation.md`` §5; locations are FHIRPath expressions
(``Bundle.entry[2].resource.subject.reference``, ``Observation.value.ofType(Quantity).value``).
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from mappings.model import bsn_is_valid
from mappings.problems import InputError, Problem, ProblemSink, Severity

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Largest document accepted (bytes): a Bundle of a whole record with letters fits many times."""
MAX_SEPARATORS = 500_000
"""Most commas a document may hold: bounds the number of JSON values decoded (and so the memory)."""
MAX_DEPTH = 64
"""Deepest nesting of objects and arrays walked (a Bundle entry's Observation component's extension
is about 10 levels deep)."""
MAX_STRING_CHARS = 1024 * 1024
"""R4 datatypes.html#string: strings SHALL NOT exceed 1 MB; base64Binary is bounded by the document."""
MAX_PROBLEMS = 100
"""Errors listed before validation gives up (``IO-003``): garbage must not yield a list as large as itself."""
MAX_MESSAGE_VALUE = 60
"""Values quoted in messages are cut to this many characters."""

STRUCTURE = Path(__file__).resolve().parent / "structure"
FHIR_VERSION = "4.0.1"

# ------------------------------------------------------------------ primitive forms (R4 datatypes.html)

_CODE_RE = re.compile(r"[^\s]+(?: [^\s]+)*")
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
_URI_RE = re.compile(r"\S+")
_OID_RE = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+", re.ASCII)
_UUID_RE = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_B64_RE = re.compile(r"[A-Za-z0-9+/=\s]+", re.ASCII)
_YEAR = r"(?:[0-9](?:[0-9](?:[0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
_DATE_RE = re.compile(rf"({_YEAR})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01]))?)?", re.ASCII)
_DATETIME_RE = re.compile(
    rf"({_YEAR})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01])(?:T{_TIME}{_TZ})?)?)?", re.ASCII
)
_INSTANT_RE = re.compile(rf"({_YEAR})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T{_TIME}{_TZ}", re.ASCII)
_TIME_RE = re.compile(_TIME, re.ASCII)
_XHTML_NS = 'xmlns="http://www.w3.org/1999/xhtml"'
_ACTIVE_RE = re.compile(r"<\s*script|\son[a-z]+\s*=|javascript:", re.I)
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_SEEN_MAX = 50_000  # memory bound of each memo of good values (a few MB at most)
_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

TYPE_ERROR = "FHIRV-012"
FORM_ERROR = "FHIRV-020"
DATE_ERROR = "FHIRV-021"
SIZE_ERROR = "FHIRV-018"
EMPTY_ERROR = "FHIRV-015"

Check = Callable[[Any], "tuple[str, str] | None"]


def _jtype(value: object) -> str:
    """The JSON type of a value, for messages."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__} (not a JSON value)"


def _show(value: object) -> str:
    """A scalar for a message, cut short (input is hostile; containers are never printed)."""
    if isinstance(value, dict | list):
        return _jtype(value)
    text = repr(value)
    return text if len(text) <= MAX_MESSAGE_VALUE else text[:MAX_MESSAGE_VALUE] + "..."


def _not(what: str, value: object) -> tuple[str, str]:
    return TYPE_ERROR, f"expected {what}, got {_jtype(value)}"


def _string_check(form: re.Pattern[str] | None, name: str, limit: int = MAX_STRING_CHARS) -> Check:
    fullmatch = form.fullmatch if form is not None else None

    seen: set[str] = set()  # values of this form already found good: systems and codes repeat a lot

    def check(value: Any) -> tuple[str, str] | None:
        if type(value) is not str:
            return _not("a string", value)
        if value in seen:
            return None
        if len(value) > limit:
            return SIZE_ERROR, f"{name} of {len(value):,} characters; the limit is {limit:,}"
        if not value:
            return EMPTY_ERROR, "an empty string is not allowed (use no element instead)"
        if fullmatch is not None and fullmatch(value) is None:
            return FORM_ERROR, f"{_show(value)} is not a valid {name}"
        if not value.isascii():
            return _unicode(value)
        if fullmatch is not None and len(value) <= 256 and len(seen) < _SEEN_MAX:
            seen.add(value)
        return None

    return check


def _unicode(value: str) -> tuple[str, str] | None:
    """Decoded input (a dict) may hold lone surrogates, which no UTF-8 JSON can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return FORM_ERROR, f"not Unicode text: a lone surrogate at character {exc.start}"
    return None


def _calendar(year: str, month: str | None, day: str | None) -> bool:
    if day is None or int(day) <= 28:
        return True
    m, d, y = int(month or 0), int(day), int(year)
    if d > _DAYS[m]:
        return False
    return not (m == 2 and d == 29 and not (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)))


def _date_check(form: re.Pattern[str], name: str, example: str) -> Check:
    fullmatch = form.fullmatch

    def check(value: Any) -> tuple[str, str] | None:
        if type(value) is not str:
            return _not("a string", value)
        if len(value) > 64:
            return DATE_ERROR, f"{_show(value)} is not a valid {name} ({example})"
        m = fullmatch(value)
        if m is None:
            return DATE_ERROR, f"{_show(value)} is not a valid {name} ({example})"
        if not _calendar(*m.groups()):
            return DATE_ERROR, f"{value!r} is not a valid {name}: no such day"
        return None

    return check


def _time_check(value: Any) -> tuple[str, str] | None:
    if type(value) is not str:
        return _not("a string", value)
    if len(value) > 64 or _TIME_RE.fullmatch(value) is None:
        return DATE_ERROR, f"{_show(value)} is not a valid time (hh:mm:ss)"
    return None


def _boolean(value: Any) -> tuple[str, str] | None:
    if value is True or value is False:
        return None
    return _not("a boolean (true or false)", value)


def _integer_check(low: int, name: str) -> Check:
    def check(value: Any) -> tuple[str, str] | None:
        if type(value) is not int:
            if type(value) is float or isinstance(value, Decimal):
                return FORM_ERROR, f"{_show(value)} is not a valid {name} (no fraction or exponent)"
            return _not(f"a number ({name})", value)
        if value < low or value > _INT_MAX:
            return FORM_ERROR, f"{_show(value)} is out of range for {name} ({low}..{_INT_MAX})"
        return None

    return check


def _decimal(value: Any) -> tuple[str, str] | None:
    t = type(value)
    if t is int:
        return None
    if t is float:
        return None if math.isfinite(value) else (FORM_ERROR, "a decimal must be a finite number")
    if isinstance(value, Decimal) and value.is_finite():
        return None
    return _not("a number (decimal)", value)


def _base64(value: Any) -> tuple[str, str] | None:
    if type(value) is not str:
        return _not("a string", value)
    if not value:
        return EMPTY_ERROR, "an empty string is not allowed (use no element instead)"
    if _B64_RE.fullmatch(value) is None:
        return FORM_ERROR, "not valid base64 (characters other than A-Z a-z 0-9 + / =)"
    try:
        binascii.a2b_base64("".join(value.split()), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        return FORM_ERROR, f"not valid base64: {exc}"
    return None


def _xhtml(value: Any) -> tuple[str, str] | None:
    if type(value) is not str:
        return _not("a string", value)
    if len(value) > MAX_STRING_CHARS:
        return SIZE_ERROR, f"narrative of {len(value):,} characters; the limit is {MAX_STRING_CHARS:,}"
    if not value.startswith("<div") or _XHTML_NS not in value[:512] or not value.rstrip().endswith("</div>"):
        return (
            FORM_ERROR,
            'narrative must be one XHTML <div> with xmlns="http://www.w3.org/1999/xhtml" (txt-2)',
        )
    if _ACTIVE_RE.search(value):
        return FORM_ERROR, "narrative holds active content: script, event handler or javascript: (txt-1)"
    return None if value.isascii() else _unicode(value)


PRIMITIVES: dict[str, Check] = {
    "boolean": _boolean,
    "integer": _integer_check(_INT_MIN, "integer"),
    "unsignedInt": _integer_check(0, "unsignedInt"),
    "positiveInt": _integer_check(1, "positiveInt"),
    "decimal": _decimal,
    "string": _string_check(None, "string"),
    "markdown": _string_check(None, "markdown"),
    "code": _string_check(_CODE_RE, "code"),
    "id": _string_check(_ID_RE, "id ([A-Za-z0-9-.]{1,64})"),
    "uri": _string_check(_URI_RE, "uri"),
    "url": _string_check(_URI_RE, "url"),
    "canonical": _string_check(_URI_RE, "canonical"),
    "oid": _string_check(_OID_RE, "oid (urn:oid:...)"),
    "uuid": _string_check(_UUID_RE, "uuid (urn:uuid: and lower-case hex)"),
    "base64Binary": _base64,
    "date": _date_check(_DATE_RE, "date", "YYYY, YYYY-MM or YYYY-MM-DD"),
    "dateTime": _date_check(
        _DATETIME_RE, "dateTime", "YYYY[-MM[-DD[Thh:mm:ss[.s]+zz:zz]]], a time needs a zone"
    ),
    "instant": _date_check(_INSTANT_RE, "instant", "YYYY-MM-DDThh:mm:ss[.s]+zz:zz"),
    "time": _time_check,
    "xhtml": _xhtml,
}


# ------------------------------------------------------------------ Dutch identifier systems (DOMAIN.md §8)

_NL = "http://fhir.nl/fhir/NamingSystem/"
IDENTIFIER_SYSTEMS: dict[str, tuple[str, int]] = {
    _NL + "bsn": ("BSN", 9),
    "urn:oid:2.16.840.1.113883.2.4.6.3": ("BSN", 9),
    _NL + "agb-z": ("AGB", 8),
    "urn:oid:2.16.840.1.113883.2.4.6.1": ("AGB", 8),
    _NL + "uzi-nr-pers": ("UZI", 9),
    "urn:oid:2.16.528.1.1007.3.1": ("UZI", 9),
    _NL + "uzi-nr-sys": ("UZI", 9),
    "urn:oid:2.16.528.1.1007.3.2": ("UZI", 9),
    _NL + "ura": ("URA", 8),
    "urn:oid:2.16.528.1.1007.3.3": ("URA", 8),
    _NL + "uzovi": ("UZOVI", 4),
    "urn:oid:2.16.840.1.113883.2.4.6.4": ("UZOVI", 4),
}
"""Identifier systems whose values the gateway checks: name and number of digits (both spellings)."""

# ------------------------------------------------------------------ references (references.html)

_REF_RE = re.compile(
    r"(?:(?P<base>https?://\S+?)/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?",
    re.ASCII,
)
_CONDITIONAL_RE = re.compile(r"[A-Z][A-Za-z]{1,63}\?\S+", re.ASCII)
_LOCAL_RE = re.compile(r"#[A-Za-z0-9\-.]{0,64}", re.ASCII)
_ABSOLUTE_RE = re.compile(r"(?:https?|urn):\S+", re.ASCII)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHECKED_BUNDLES = frozenset({"document", "message", "collection"})
_SERVER_BUNDLES = frozenset({"transaction", "batch"})
_BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)

# ------------------------------------------------------------------ the compiled structure tables

_PRIM, _COMPLEX, _RESOURCE, _FORBIDDEN, _SKIP, _ENTRY = range(6)
_NULL = "null is not allowed (leave the element out)"
_BASE_TYPE = {"SimpleQuantity": "Quantity"}


class _Spec:
    """One JSON property of one element table (a choice element gives one per type)."""

    __slots__ = (
        "key",
        "fpath",
        "kind",
        "type",
        "many",
        "group",
        "check",
        "codes",
        "vs",
        "to",
        "table",
        "rule",
    )

    def __init__(self, key: str, fpath: str, kind: int, type_: str, many: bool, group: str | None):
        self.key = key
        self.fpath = fpath  # FHIRPath step: "status", "value.ofType(Quantity)"
        self.kind = kind
        self.type = type_
        self.many = many
        self.group = group  # the choice element ("value") or None
        self.check: Check | None = None
        self.codes: dict[str, frozenset[str]] | None = None  # required binding: system -> codes
        self.vs: str | None = None
        self.to: frozenset[str] | None = None  # Reference targets, None = any resource
        self.table: _Table | None = None
        self.rule: Callable[[_Walker, dict, str, _Spec], None] | None = None  # the type's own checks


class _Table:
    """The elements of one type or backbone element."""

    __slots__ = ("name", "specs", "required", "primitive_ext")

    def __init__(self, name: str):
        self.name = name
        self.specs: dict[str, _Spec] = {}
        self.required: list[tuple[tuple[str, ...], str]] = []  # (JSON names, FHIRPath step)
        self.primitive_ext: dict[str, _Spec] = {}  # "_birthDate" -> the spec of birthDate


class _Schema:
    __slots__ = ("tables", "resources", "valuesets", "unchecked")

    def __init__(self) -> None:
        self.tables: dict[str, _Table] = {}
        self.resources: dict[str, _Table] = {}
        self.valuesets: dict[str, dict[str, frozenset[str]]] = {}
        self.unchecked: dict[str, str] = {}


def _load(name: str) -> dict:
    return orjson.loads((STRUCTURE / name).read_bytes())


def _add_table(
    schema: _Schema, name: str, elements: dict[str, dict], primitives: set[str], complex_names: set[str]
) -> _Table:
    table = _Table(name)
    for element, spec in elements.items():
        many = spec.get("max", "1") not in ("0", "1")
        types = spec["t"]
        keys: list[tuple[str, str, Any, str | None]]  # (JSON key, FHIRPath, type(s), choice group)
        if element.endswith("[x]"):
            stem = element[:-3]
            # a profiled type keeps the base type's name: doseQuantity is a SimpleQuantity
            named = [(_BASE_TYPE.get(t, t), t) for t in types]
            keys = [(stem + n[0].upper() + n[1:], f"{stem}.ofType({n})", t, stem) for n, t in named]
        else:
            keys = [(element, element, types, None)]
        for key, fpath, tname, group in keys:
            if spec.get("max") == "0":
                kind = _FORBIDDEN
            elif tname in primitives:
                kind = _PRIM
            elif tname == "Resource" or (
                tname not in complex_names and tname[0].isupper() and "." not in tname
            ):
                kind = _RESOURCE  # Resource, or a named resource type (Bundle.entry.response.outcome)
            else:
                kind = _COMPLEX
            s = _Spec(key, fpath, kind, tname, many, group)
            if kind == _PRIM:
                s.check = PRIMITIVES[tname]
                table.primitive_ext["_" + key] = s
            if "vs" in spec:
                s.vs = spec["vs"]
            if "to" in spec:
                s.to = frozenset(spec["to"])
            table.specs[key] = s
        if spec.get("min", 0) >= 1:
            table.required.append((tuple(k for k, *_ in keys), element.removesuffix("[x]")))
    schema.tables[name] = table
    return table


@functools.cache
def _schema() -> _Schema:
    """Load and compile the structure data once (about 10 ms)."""
    schema = _Schema()
    types = _load("types.json")
    primitives = set(types.pop("_primitives"))
    types.pop("_source")
    files = sorted(p.name for p in STRUCTURE.glob("*.json") if p.name not in ("types.json", "valuesets.json"))
    resource_data = {name[:-5]: _load(name) for name in files}
    complex_names = set(types)
    for data in resource_data.values():
        complex_names.update(k for k in data if "." in k)
    complex_names.add("Element")
    for name, elements in types.items():
        _add_table(schema, name, elements, primitives, complex_names)
    _add_table(
        schema,
        "Element",
        {"id": {"t": "string"}, "extension": {"t": "Extension", "max": "*"}},
        primitives,
        complex_names,
    )
    for rtype, data in resource_data.items():
        data.pop("_source")
        for owner, elements in data.items():
            table = _add_table(schema, owner, elements, primitives, complex_names)
            if owner == rtype:
                schema.resources[rtype] = table
                table.specs["resourceType"] = _Spec("resourceType", "resourceType", _SKIP, "", False, None)
    for url, body in _load("valuesets.json").items():
        if "codes" in body:
            schema.valuesets[url] = {system: frozenset(codes) for system, codes in body["codes"].items()}
        else:
            schema.unchecked[url] = body["unchecked"]
    # the Extension rules (ext-1, url) are reported by the extension check with their own codes
    schema.tables["Extension"].required = []
    for table in schema.tables.values():
        for s in table.specs.values():
            if s.kind == _COMPLEX:
                s.table = schema.tables[s.type]
                s.rule = _TYPE_RULES.get(s.type)
                if s.type == "Bundle.entry":
                    s.kind = _ENTRY
            if s.vs in _SHAPE_ONLY and s.kind == _PRIM:
                s.check = _shape_check(s.check, *_SHAPE_ONLY[s.vs])  # type: ignore[arg-type]
            if s.vs is not None and s.vs in schema.valuesets:
                s.codes = schema.valuesets[s.vs]
                if s.kind == _PRIM:
                    s.check = _bound_check(s.check, s.codes, s.vs)  # type: ignore[arg-type]
            if s.rule is _rule_codings_only and s.codes is None:
                s.rule = None  # a CodeableConcept or Coding without a required binding
    return schema


def _bound_check(inner: Check, codes: dict[str, frozenset[str]], vs: str) -> Check:
    allowed = frozenset().union(*codes.values())
    listing = " | ".join(sorted(allowed)) if len(allowed) <= 12 else f"{len(allowed)} codes"

    def check(value: Any) -> tuple[str, str] | None:
        if type(value) is str and value in allowed:
            return None
        bad = inner(value)
        if bad is not None:
            return bad
        return "FHIRV-030", f"{_show(value)} is not in the required value set {vs} ({listing})"

    return check


_SHAPE_ONLY = {
    "http://hl7.org/fhir/ValueSet/mimetypes": (
        re.compile(r"[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*(?:\s*;.*)?", re.ASCII),
        "a mime type (BCP 13: type/subtype[;parameters])",
    ),
    "http://hl7.org/fhir/ValueSet/currencies": (
        re.compile(r"[A-Z]{3}", re.ASCII),
        "an ISO 4217 currency code",
    ),
}
"""Required value sets of code systems defined outside FHIR (not enumerable): only their shape is checked."""


def _shape_check(inner: Check, form: re.Pattern[str], what: str) -> Check:
    def check(value: Any) -> tuple[str, str] | None:
        bad = inner(value)
        if bad is not None:
            return bad
        if form.fullmatch(value) is None:
            return "FHIRV-030", f"{_show(value)} is not {what}"
        return None

    return check


def resource_types() -> tuple[str, ...]:
    """The resource types the validator knows (every R4 element of each)."""
    return tuple(sorted(_schema().resources))


# ------------------------------------------------------------------ the walk


def _step(key: object) -> str:
    """A FHIRPath step for a JSON key (a name that is not an identifier is delimited with backticks)."""
    text = key if isinstance(key, str) else repr(key)
    if _NAME_RE.fullmatch(text):
        return text
    text = text[:MAX_MESSAGE_VALUE].replace("\\", "\\\\").replace("`", "\\`")
    return f"`{text}`"


class _Scope:
    """One resource that may hold contained resources: the ids contained and the ``#`` references made."""

    __slots__ = ("contained", "local_refs", "refers_to_container", "path")

    def __init__(self, path: str):
        self.path = path
        self.contained: dict[str, tuple[str, str]] = {}  # id -> (resourceType, path)
        self.local_refs: list[tuple[str, str, frozenset[str] | None]] = []
        self.refers_to_container = False


class _BundleCtx:
    """The references made inside one Bundle, resolved when the Bundle has been walked."""

    __slots__ = ("refs", "type")

    def __init__(self, btype: object) -> None:
        self.type = btype
        self.refs: list[
            tuple[str, str, frozenset[str] | None, str | None]
        ] = []  # ref, path, to, entry fullUrl


class _Walker:
    __slots__ = ("schema", "sink", "max_depth", "scope", "bundles", "full_url")

    def __init__(self, schema: _Schema, sink: ProblemSink, max_depth: int):
        self.schema = schema
        self.sink = sink
        self.max_depth = max_depth
        self.scope: _Scope | None = None
        self.bundles: list[_BundleCtx] = []
        self.full_url: str | None = None  # fullUrl of the Bundle entry being walked

    # -- reporting

    def error(self, code: str, location: str, message: str) -> None:
        self.sink.error(code, location, message)

    # -- resources

    def resource(self, node: Any, path: str, depth: int, contained: bool = False) -> None:
        """Walk one resource (top level, Bundle entry, contained or nested)."""
        if type(node) is not dict:
            self.error(TYPE_ERROR, path, f"expected a resource (an object), got {_jtype(node)}")
            return
        rtype = node.get("resourceType")
        table = self.schema.resources.get(rtype) if type(rtype) is str else None
        if table is None:
            where = f"{path}.resourceType" if path else "resourceType"
            if rtype is None:
                self.error("FHIRV-010", where, "no resourceType: not a FHIR resource")
            else:
                self.error(
                    "FHIRV-010",
                    where,
                    f"resourceType {_show(rtype)} is not one the gateway handles "
                    f"({', '.join(sorted(self.schema.resources))})",
                )
            return
        path = path or str(rtype)  # a str: only a str names a table
        outer, outer_url = self.scope, self.full_url
        if not contained:
            self.scope = _Scope(path)
        elif "contained" in node:
            self.error(
                "FHIRV-070", f"{path}.contained", "a contained resource cannot contain resources (dom-2)"
            )
        bundle = _BundleCtx(node.get("type")) if rtype == "Bundle" else None
        try:
            if bundle is not None:
                self.bundles.append(bundle)
                try:
                    self.complex(node, table, path, depth)
                finally:
                    self.bundles.pop()
                    self.full_url = outer_url
                self.resolve(node, bundle, path)
            else:
                self.complex(node, table, path, depth)
            if rtype in _RESOURCE_RULES:
                _RESOURCE_RULES[rtype](self, node, path)
            if not contained:
                self._close_scope()
        finally:
            self.scope = outer

    def _close_scope(self) -> None:
        scope = self.scope
        assert scope is not None
        referenced = set()
        for ref, where, to in scope.local_refs:
            target = scope.contained.get(ref[1:])
            if target is None:
                self.error("FHIRV-051", where, f"{ref!r} names no contained resource of {scope.path}")
                continue
            referenced.add(ref[1:])
            if to is not None and target[0] not in to:
                self.error("FHIRV-052", where, f"refers to a {target[0]}; allowed: {', '.join(sorted(to))}")
        for cid, (_, where) in scope.contained.items():
            if cid not in referenced and not scope.refers_to_container:
                self.sink.warning(
                    "FHIRV-055",
                    where,
                    f"contained resource #{cid} is not referenced from its container (dom-3)",
                )

    # -- elements

    def complex(self, node: Any, table: _Table, path: str, depth: int) -> None:
        """Walk one object against its element table (the hot loop: leaves are checked inline)."""
        if type(node) is not dict:
            self.error(TYPE_ERROR, path, f"expected an object ({table.name}), got {_jtype(node)}")
            return
        if not node:
            self.error(EMPTY_ERROR, path, "an empty object is not allowed (ele-1)")
            return
        if depth >= self.max_depth:
            self.error("FHIRV-004", path, f"nested deeper than {self.max_depth} levels; not read further")
            return
        specs = table.specs
        groups: dict[str, str] | None = None
        for key, value in node.items():
            spec = specs.get(key)
            if spec is None:
                if type(key) is str and key[:1] == "_" and key in table.primitive_ext:
                    self._primitive_extension(node, key, value, table.primitive_ext[key], path, depth)
                else:
                    self._unknown(key, path, table)
                continue
            kind = spec.kind
            if spec.group is not None:
                if groups is None:
                    groups = {}
                first = groups.get(spec.group)
                if first is not None:
                    self.error(
                        "FHIRV-016",
                        f"{path}.{spec.group}",
                        f"both {first} and {key}: a choice element takes exactly one type",
                    )
                    continue
                groups[spec.group] = key
            if kind == _PRIM:
                if spec.many:
                    if type(value) is not list:
                        self.error(
                            "FHIRV-013",
                            f"{path}.{spec.fpath}",
                            f"expected an array ({key} repeats), got {_jtype(value)}",
                        )
                    elif not value:
                        self.error(EMPTY_ERROR, f"{path}.{spec.fpath}", "an empty array is not allowed")
                    else:
                        check = spec.check
                        for i, item in enumerate(value):
                            if item is None:
                                self._null_item(node, key, i, path, spec)
                                continue
                            bad = check(item)  # type: ignore[misc]
                            if bad is not None:
                                self.error(bad[0], f"{path}.{spec.fpath}[{i}]", bad[1])
                elif value is None:
                    self.error(EMPTY_ERROR, f"{path}.{spec.fpath}", _NULL)
                else:
                    bad = spec.check(value)  # type: ignore[misc]
                    if bad is not None:
                        if type(value) is list:
                            bad = (
                                "FHIRV-013",
                                f"expected a single value ({key} occurs at most once), got an array",
                            )
                        self.error(bad[0], f"{path}.{spec.fpath}", bad[1])
            elif kind == _COMPLEX:  # inlined: most of a document is data types
                if spec.many:
                    if type(value) is not list:
                        self.error(
                            "FHIRV-013",
                            f"{path}.{spec.fpath}",
                            f"expected an array ({key} repeats), got {_jtype(value)}",
                        )
                    elif not value:
                        self.error(EMPTY_ERROR, f"{path}.{spec.fpath}", "an empty array is not allowed")
                    else:
                        base, sub, rule, inner = f"{path}.{spec.fpath}", spec.table, spec.rule, depth + 2
                        for i, item in enumerate(value):
                            where = f"{base}[{i}]"
                            if item is None:
                                self.error(EMPTY_ERROR, where, _NULL)
                                continue
                            self.complex(item, sub, where, inner)  # type: ignore[arg-type]
                            if rule is not None and type(item) is dict:
                                rule(self, item, where, spec)
                elif type(value) is list:
                    self.error(
                        "FHIRV-013",
                        f"{path}.{spec.fpath}",
                        f"expected a single value ({key} occurs at most once), got an array",
                    )
                elif value is None:
                    self.error(EMPTY_ERROR, f"{path}.{spec.fpath}", _NULL)
                else:
                    where = f"{path}.{spec.fpath}"
                    self.complex(value, spec.table, where, depth + 1)  # type: ignore[arg-type]
                    if spec.rule is not None and type(value) is dict:
                        spec.rule(self, value, where, spec)
            elif kind == _RESOURCE or kind == _ENTRY:
                if spec.many:
                    if type(value) is not list:
                        self.error(
                            "FHIRV-013",
                            f"{path}.{spec.fpath}",
                            f"expected an array ({key} repeats), got {_jtype(value)}",
                        )
                    elif not value:
                        self.error(EMPTY_ERROR, f"{path}.{spec.fpath}", "an empty array is not allowed")
                    else:
                        base = f"{path}.{spec.fpath}"
                        for i, item in enumerate(value):
                            self._element(spec, item, f"{base}[{i}]", depth + 2)
                elif type(value) is list:
                    self.error(
                        "FHIRV-013",
                        f"{path}.{spec.fpath}",
                        f"expected a single value ({key} occurs at most once), got an array",
                    )
                else:
                    self._element(spec, value, f"{path}.{spec.fpath}", depth + 1)
            elif kind == _FORBIDDEN:
                self.error(
                    "FHIRV-013", f"{path}.{spec.fpath}", f"{key} is not allowed in {table.name} (max 0)"
                )
        for names, step in table.required:
            for name in names:
                if name in node or "_" + name in node:
                    break
            else:
                self.error("FHIRV-014", f"{path}.{step}", f"{step} is required in {table.name} (min 1)")

    def _element(self, spec: _Spec, value: Any, path: str, depth: int) -> None:
        """A nested resource, or a Bundle entry (the base of the references inside it)."""
        if value is None:
            self.error(EMPTY_ERROR, path, _NULL)
            return
        if spec.kind == _RESOURCE:
            if spec.key == "contained":
                self._contained(value, path, depth)
            else:
                expected = spec.type if spec.type != "Resource" else None
                if expected is not None and type(value) is dict and value.get("resourceType") != expected:
                    self.error("FHIRV-010", f"{path}.resourceType", f"expected a {expected} resource here")
                    return
                self.resource(value, path, depth)
            return
        table = spec.table
        assert table is not None
        if type(value) is dict:
            url = value.get("fullUrl")
            self.full_url = url if type(url) is str else None  # the base for relative references inside
        self.complex(value, table, path, depth)

    def _contained(self, value: Any, path: str, depth: int) -> None:
        scope = self.scope
        if type(value) is dict and scope is not None:
            cid = value.get("id")
            if type(cid) is not str:
                self.error(
                    "FHIRV-014", f"{path}.id", "a contained resource needs an id (references.html#contained)"
                )
            elif cid in scope.contained:
                self.error("FHIRV-070", f"{path}.id", f"duplicate contained id {_show(cid)}")
            else:
                scope.contained[cid] = (str(value.get("resourceType")), path)
        self.resource(value, path, depth, contained=True)

    def _unknown(self, key: object, path: str, table: _Table) -> None:
        where = f"{path}.{_step(key)}"
        if isinstance(key, str) and key.endswith("[x]"):
            self.error("FHIRV-011", where, f"{_show(key)}: name the type, e.g. {key[:-3]}String")
        else:
            self.error("FHIRV-011", where, f"unknown element {_show(key)} in {table.name}")

    def _null_item(self, node: dict, key: str, i: int, path: str, spec: _Spec) -> None:
        ext = node.get("_" + key)
        if type(ext) is list and i < len(ext) and type(ext[i]) is dict:
            return  # a value that has only extensions (json.html#primitive)
        self.error(
            EMPTY_ERROR,
            f"{path}.{spec.fpath}[{i}]",
            "null is allowed in a repeating primitive only where _" + key + " holds extensions",
        )

    def _primitive_extension(
        self, node: dict, key: str, value: Any, spec: _Spec, path: str, depth: int
    ) -> None:
        """``_birthDate`` / ``_given``: the id and extensions of primitive values (json.html#primitive)."""
        where = f"{path}.{spec.fpath}"
        element = self.schema.tables["Element"]
        base = node.get(spec.key)
        if not spec.many:
            if type(value) is list:
                self.error("FHIRV-017", where, f"{key} must be an object, {spec.key} does not repeat")
                return
            self.complex(value, element, where, depth + 1)
            return
        if type(value) is not list:
            self.error("FHIRV-017", where, f"{key} must be an array aligned with {spec.key}")
            return
        if type(base) is list and len(base) != len(value):
            self.error("FHIRV-017", where, f"{key} has {len(value)} items, {spec.key} has {len(base)}")
            return
        if all(item is None for item in value):
            self.error("FHIRV-017", where, f"{key} holds only nulls")
            return
        for i, item in enumerate(value):
            if item is not None:
                self.complex(item, element, f"{where}[{i}]", depth + 2)

    # -- references (references.html, bundle.html#references)

    def reference(self, node: dict, path: str, to: frozenset[str] | None) -> None:
        ref = node.get("reference")
        if type(ref) is not str or not ref:
            return
        where = path + ".reference"
        rtype = node.get("type")
        if ref[0] == "#":
            if _LOCAL_RE.fullmatch(ref) is None:
                self.error("FHIRV-054", where, f"{_show(ref)} is not a valid local reference (#id)")
            elif self.scope is not None:
                if ref == "#":
                    self.scope.refers_to_container = True
                else:
                    self.scope.local_refs.append((ref, where, to))
            return
        if _CONDITIONAL_RE.fullmatch(ref) is not None:
            # a conditional reference (http.html#trules): resolved by the server processing a transaction
            if not self.bundles or self.bundles[-1].type != "transaction":
                self.error(
                    "FHIRV-054", where, f"{_show(ref)}: a conditional reference only in a transaction Bundle"
                )
            elif to is not None and ref.split("?", 1)[0] not in to:
                self.error(
                    "FHIRV-052",
                    where,
                    f"refers to a {ref.split('?', 1)[0]}; allowed: {', '.join(sorted(to))}",
                )
            return
        m = _REF_RE.fullmatch(ref)
        if m is not None:
            target = m.group("type")
            if to is not None and target not in to:
                self.error("FHIRV-052", where, f"refers to a {target}; allowed: {', '.join(sorted(to))}")
            if type(rtype) is str and rtype != target and "/" not in rtype:
                self.error(
                    "FHIRV-052",
                    path + ".type",
                    f"type {_show(rtype)} does not match the reference ({target})",
                )
        elif _ABSOLUTE_RE.fullmatch(ref) is None or len(ref) > 4096:
            self.error(
                "FHIRV-054",
                where,
                f"{_show(ref)} is not a reference: use Type/id, an absolute URL, "
                "urn:uuid:..., or #id for a contained resource",
            )
            return
        if self.bundles:
            self.bundles[-1].refs.append((ref, where, to, self.full_url))

    def resolve(self, bundle: dict, ctx: _BundleCtx, path: str) -> None:
        """Every reference inside a Bundle must point at an entry (bundle.html#references)."""
        btype = bundle.get("type")
        if type(btype) is not str or (btype not in _CHECKED_BUNDLES and btype not in _SERVER_BUNDLES):
            return
        by_url: dict[str, str] = {}
        by_id: dict[tuple[str, str], str] = {}
        entries = bundle.get("entry")
        for entry in entries if type(entries) is list else ():
            if type(entry) is not dict:
                continue
            res = entry.get("resource")
            rtype = res.get("resourceType") if type(res) is dict else None
            if type(rtype) is not str:
                continue
            url = entry.get("fullUrl")
            if type(url) is str:
                by_url[url] = rtype
            rid = res.get("id")  # type: ignore[union-attr]
            if type(rid) is str:
                by_id[(rtype, rid)] = rtype
        for ref, where, to, from_url in ctx.refs:
            target = by_url.get(ref)
            m = None
            if target is None and not ref.startswith("urn:"):
                m = _REF_RE.fullmatch(ref)
                if m is not None and m.group("base") is None:
                    base = _base_of(from_url)
                    target = by_url.get(f"{base}/{ref}") if base else None
                    if target is None:
                        target = by_id.get((m.group("type"), m.group("id")))
            if target is None:
                if btype in _SERVER_BUNDLES and not ref.startswith("urn:"):
                    continue  # a transaction may refer to what the server holds
                self.error(
                    "FHIRV-050",
                    where,
                    f"{_show(ref)} is not in the Bundle ({btype}): every reference "
                    "must resolve to an entry's fullUrl or Type/id",
                )
            elif to is not None and target not in to and _REF_RE.fullmatch(ref) is None:
                # a urn:uuid (or other untyped) reference: its type is known only now
                self.error("FHIRV-052", where, f"refers to a {target}; allowed: {', '.join(sorted(to))}")


def _base_of(full_url: str | None) -> str | None:
    """The service base of an entry's RESTful fullUrl (``https://x/fhir/Patient/1`` -> ``https://x/fhir``)."""
    if full_url is None:
        return None
    m = _REF_RE.fullmatch(full_url)
    return m.group("base") if m is not None else None


# ------------------------------------------------------------------ rules of data types


def _rule_reference(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    w.reference(node, path, spec.to)


def _rule_identifier(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    system = node.get("system")
    if type(system) is not str:
        return
    known = IDENTIFIER_SYSTEMS.get(system)
    value = node.get("value")
    if known is None or type(value) is not str:
        return
    name, digits = known
    if len(value) != digits or not value.isascii() or not value.isdigit():
        w.error("FHIRV-041", path + ".value", f"{name} must be {digits} digits, got {_show(value)}")
    elif name == "BSN" and not bsn_is_valid(value):
        w.error("FHIRV-040", path + ".value", f"BSN {value} fails the 11-test")


def _rule_extension(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    if "url" not in node:
        w.error("FHIRV-060", path + ".url", "an extension needs a url")
    has_value = any(k.startswith("value") for k in node if type(k) is str)
    if has_value and "extension" in node:
        w.error("FHIRV-061", path, "an extension has a value[x] or nested extensions, not both (ext-1)")
    elif not has_value and "extension" not in node:
        w.error("FHIRV-061", path, "an extension needs a value[x] or nested extensions (ext-1)")


def _rule_codings(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    """A CodeableConcept or Coding under a required binding: a coding from the value set."""
    if spec.codes is None:
        return
    codings = node.get("coding") if spec.type == "CodeableConcept" else [node]
    where = path + ".coding" if spec.type == "CodeableConcept" else path
    if type(codings) is not list:
        w.error("FHIRV-031", where, f"needs a coding from the required value set {spec.vs}")
        return
    for c in codings:
        if type(c) is dict:
            system, code = c.get("system"), c.get("code")
            if type(system) is str and type(code) is str and code in spec.codes.get(system, ()):
                return
    shown = ", ".join(f"{s}|{' | '.join(sorted(c))}" for s, c in spec.codes.items())
    w.error("FHIRV-031", where, f"no coding from the required value set {spec.vs} ({shown})")


def _rule_quantity(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    if "code" in node and "system" not in node:
        w.error("FHIRV-070", path + ".system", "a Quantity with a code needs its system (qty-3)")


def _rule_period(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    start, end = node.get("start"), node.get("end")
    if type(start) is str and type(end) is str:
        a, b = _moment(start), _moment(end)
        if a is not None and b is not None and b < a:
            w.error("FHIRV-070", path + ".end", f"end {end} is before start {start} (per-1)")


def _moment(text: str) -> dt.datetime | None:
    """A full dateTime with zone as an aware moment; partial dates are not compared."""
    if len(text) < 20 or _DATETIME_RE.fullmatch(text) is None:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _rule_codings_only(w: _Walker, node: dict, path: str, spec: _Spec) -> None:
    if spec.codes is not None:
        _rule_codings(w, node, path, spec)


_TYPE_RULES: dict[str, Callable[[_Walker, dict, str, _Spec], None]] = {
    "Reference": _rule_reference,
    "Identifier": _rule_identifier,
    "Extension": _rule_extension,
    "CodeableConcept": _rule_codings_only,
    "Coding": _rule_codings_only,
    "Quantity": _rule_quantity,
    "SimpleQuantity": _rule_quantity,
    "Age": _rule_quantity,
    "Duration": _rule_quantity,
    "Distance": _rule_quantity,
    "Count": _rule_quantity,
    "Period": _rule_period,
}

# ------------------------------------------------------------------ rules of resources


def _rule_observation(w: _Walker, node: dict, path: str) -> None:
    if "dataAbsentReason" in node and any(type(k) is str and k.startswith("value") for k in node):
        w.error(
            "FHIRV-070", f"{path}.dataAbsentReason", "dataAbsentReason only when there is no value[x] (obs-6)"
        )


def _entries(node: dict) -> Iterator[tuple[int, dict]]:
    entries = node.get("entry")
    if type(entries) is list:
        for i, entry in enumerate(entries):
            if type(entry) is dict:
                yield i, entry


def _rule_bundle(w: _Walker, node: dict, path: str) -> None:
    """bdl-1..5, bdl-7..12 of bundle.html, fullUrl consistent with the resource's id."""
    btype = node.get("type")
    if type(btype) is not str or btype not in _BUNDLE_TYPES:
        return  # reported as FHIRV-030 or FHIRV-014; the rules below depend on the type
    if "total" in node and btype not in ("searchset", "history"):
        w.error("FHIRV-070", f"{path}.total", "total only in a searchset or history Bundle (bdl-1)")
    seen: dict[str, int] = {}
    first_type = None
    for i, entry in _entries(node):
        where = f"{path}.entry[{i}]"
        res = entry.get("resource")
        rtype = res.get("resourceType") if type(res) is dict else None
        if i == 0:
            first_type = rtype
        if "search" in entry and btype != "searchset":
            w.error("FHIRV-070", f"{where}.search", "entry.search only in a searchset Bundle (bdl-2)")
        needs_request = btype in ("batch", "transaction", "history")
        if needs_request != ("request" in entry):
            w.error(
                "FHIRV-070",
                f"{where}.request",
                "entry.request is required in batch, transaction and history "
                "Bundles and not allowed in others (bdl-3)",
            )
        needs_response = btype in ("batch-response", "transaction-response", "history")
        if needs_response != ("response" in entry):
            w.error(
                "FHIRV-070",
                f"{where}.response",
                "entry.response is required in batch-response, "
                "transaction-response and history Bundles and not allowed in others (bdl-4)",
            )
        if not ("resource" in entry or "request" in entry or "response" in entry):
            w.error("FHIRV-070", where, "an entry needs a resource, request or response (bdl-5)")
        url = entry.get("fullUrl")
        if type(url) is not str:
            continue
        if "/_history/" in url:
            w.error("FHIRV-053", f"{where}.fullUrl", "fullUrl cannot be version specific (bdl-8)")
        if url in seen and btype != "history":
            version = ((res or {}).get("meta") or {}).get("versionId") if type(res) is dict else None
            if version is None or type(version) is not str:
                w.error(
                    "FHIRV-053",
                    f"{where}.fullUrl",
                    f"fullUrl {_show(url)} is also the fullUrl of entry[{seen[url]}] (bdl-7)",
                )
        seen.setdefault(url, i)
        m = _REF_RE.fullmatch(url)
        if m is not None and type(res) is dict and type(res.get("id")) is str:
            if m.group("type") != rtype or m.group("id") != res["id"]:
                w.error(
                    "FHIRV-053",
                    f"{where}.fullUrl",
                    f"fullUrl {_show(url)} does not match the resource ({rtype}/{_show(res['id'])})",
                )
    if btype == "document":
        ident = node.get("identifier")
        if type(ident) is not dict or "system" not in ident or "value" not in ident:
            w.error(
                "FHIRV-070",
                f"{path}.identifier",
                "a document Bundle needs an identifier with system and value (bdl-9)",
            )
        if "timestamp" not in node:
            w.error("FHIRV-070", f"{path}.timestamp", "a document Bundle needs a timestamp (bdl-10)")
        if first_type != "Composition":
            w.error(
                "FHIRV-070",
                f"{path}.entry[0].resource",
                "a document Bundle starts with a Composition (bdl-11)",
            )
    elif btype == "message" and first_type != "MessageHeader":
        w.error(
            "FHIRV-070", f"{path}.entry[0].resource", "a message Bundle starts with a MessageHeader (bdl-12)"
        )


_RESOURCE_RULES: dict[str, Callable[[_Walker, dict, str], None]] = {
    "Observation": _rule_observation,
    "Bundle": _rule_bundle,
}


# ------------------------------------------------------------------ entry points


def _decode(data: bytes, max_bytes: int, sink: ProblemSink) -> Any:
    """Bytes to JSON values, refusing what is too big, not UTF-8, not JSON or too deep."""
    if len(data) > max_bytes:
        sink.error("FHIRV-001", "$", f"document of {len(data):,} bytes; the limit is {max_bytes:,}")
        return None
    if data[:3] == b"\xef\xbb\xbf":
        sink.warning("FHIRV-007", "$", "byte order mark at the start, ignored")
        data = data[3:]
    commas = data.count(b",")
    if commas > MAX_SEPARATORS:
        sink.error(
            "FHIRV-006", "$", f"{commas:,} commas: more JSON values than the limit ({MAX_SEPARATORS:,})"
        )
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            bytes(data).decode("utf-8")
        except UnicodeDecodeError as bad:
            line = data.count(b"\n", 0, bad.start) + 1
            sink.error("FHIRV-002", "$", f"not valid UTF-8 at byte {bad.start} (line {line}): {bad.reason}")
            return None
        if "depth" in exc.msg or "recursion" in exc.msg.lower():
            sink.error(
                "FHIRV-004",
                "$",
                f"nested deeper than the decoder allows (line {exc.lineno} column {exc.colno})",
            )
        else:
            sink.error("FHIRV-003", "$", f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})")
        return None


def validate(
    data: bytes | bytearray | memoryview | str | dict,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
    sink: ProblemSink | None = None,
) -> list[Problem]:
    """Every problem of one inbound FHIR R4 JSON resource (errors and warnings); empty when it is valid.

    ``data`` is the raw body (bytes, or text) or an already decoded JSON object. Bad input never raises:
    it is reported (at most :data:`MAX_PROBLEMS` errors, then ``IO-003``). With a *strict* ``sink`` the
    first error raises :class:`~mappings.problems.InputError`, as every reader of the gateway does.
    """
    own = sink if sink is not None else ProblemSink(max_errors=MAX_PROBLEMS)
    start = len(own.problems)
    try:
        if isinstance(data, str):
            if len(data) > max_bytes:  # at least this many bytes as UTF-8: refuse before encoding
                own.error(
                    "FHIRV-001",
                    "$",
                    f"document of {len(data):,} characters; the limit is {max_bytes:,} bytes",
                )
                return own.problems[start:]
            data = data.encode("utf-8", "surrogatepass")
        if isinstance(data, bytes | bytearray | memoryview):
            doc = _decode(bytes(data), max_bytes, own)
            if doc is None and own.has_errors:
                return own.problems[start:]
        else:
            doc = data
        if type(doc) is not dict:
            own.error("FHIRV-005", "$", f"a FHIR resource is a JSON object, got {_jtype(doc)}")
            return own.problems[start:]
        _Walker(_schema(), own, max_depth).resource(doc, "", 0)
    except InputError:
        if sink is not None and sink.strict:
            raise
    except RecursionError:  # defence in depth: the walk is bounded by max_depth, far below the limit
        own.problems.append(Problem(Severity.ERROR, "FHIRV-004", "$", "nested too deeply to validate"))
    return own.problems[start:]


def operation_outcome(problems: list[Problem]) -> dict:
    """The problems as a FHIR R4 OperationOutcome; one *information* issue "all OK" when there are none."""
    if not problems:
        issue = {
            "severity": "information",
            "code": "informational",
            "details": {"text": "All OK: the resource is valid FHIR R4 for this gateway"},
        }
        return {"resourceType": "OperationOutcome", "issue": [issue]}
    return {"resourceType": "OperationOutcome", "issue": [p.to_operation_outcome_issue() for p in problems]}


def has_errors(problems: list[Problem]) -> bool:
    """True when any problem is an error (warnings alone leave a resource acceptable)."""
    return any(p.severity is Severity.ERROR for p in problems)

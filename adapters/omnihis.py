"""OmniHIS-style JSON and NDJSON, one patient per document or per line (DOMAIN.md §6-§7).

The wire format is specified in ``docs/dialects/omnihis.md``; this module implements that spec. It is
our own documented format "in the style of" a JSON-speaking HIS: UTF-8, camelCase keys, dates
``YYYY-MM-DD``, moments ISO 8601 *with* a UTC offset (Europe/Amsterdam), decimals as JSON numbers
whose text is their exact value, optional values left out rather than null. Three forms:

- ``omnihis``        one JSON document, one patient (:data:`FORMAT`), indented two spaces;
- ``omnihis-ndjson`` one compact document per line, many patients, read and written streaming
  (:data:`NDJSON_FORMAT`);
- the postbox import (:data:`POSTBOX`): one JSON document per postbox item, the same bytes an HTTP
  inbox receives.

Reading is driven by the spec tables below (one ``_Spec`` per object type, keys in the order the
writer emits them). Each key has a reader that checks the JSON type and the value and reports a
problem at its JSON path (``export.ndjson:12 $.contacts[2].subContacts[0].episodeId``); unknown keys
are warnings (the *unused input* trace), never dropped silently. The structure is read to the fixed
depth of the spec, so hostile nesting is refused by the decoder (``OMN-004``) and never reaches
recursion of ours.

Moments: the canonical model keeps naive local wall-clock time; the writer adds the Amsterdam offset
(``fold=0``: in the repeated autumn hour, the first, summer-time, occurrence), the reader converts any
offset to Amsterdam wall time. A moment without an offset is an error. A wall time that Amsterdam skips
in spring (dirty data some systems hold) is written with the offset before the change and read back
as written, with a warning: the reader never shifts a recorded time by an hour on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from io import BytesIO
from operator import attrgetter
from typing import Any, BinaryIO, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
import orjson

from mappings import model as m
from mappings.codec import DossierFormat, PostboxFormat, sink_or_new
from mappings.codetables import code_tables
from mappings.problems import InputError, ProblemSink

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SCHEMA = "omnihis/1"
POSTBOX_SCHEMA = "omnihis-postbox/1"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Largest document (or NDJSON line) read: one patient's record, letters included, fits many times."""
MAX_SEPARATORS = 500_000
"""Most commas a document may hold: bounds the number of JSON values, so that memory stays bounded
(a 16 MiB array of tiny numbers would otherwise decode to some 400 MB of objects)."""
MAX_MESSAGE_VALUE = 60
"""Values quoted in problem messages are cut to this many characters (a 20 MB field stays out of logs)."""

_DECODER = msgspec.json.Decoder(float_hook=Decimal)  # JSON numbers with a fraction or exponent: exact
_ENCODER = msgspec.json.Encoder(decimal_format="number")  # a Decimal is written as its own exact text
_BAD: Any = object()  # a reader's "the value was bad and has been reported"
_BOM = b"\xef\xbb\xbf"

# re.ASCII: \d is 0-9 only (Python's \d also takes Arabic-Indic and other digits)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MOMENT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)", re.ASCII)
_LOCAL_MOMENT_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?", re.ASCII)
_DECIMAL_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
_SCHEMA_RE = re.compile(r"omnihis/1(?:\.\d+)?", re.ASCII)
_POSTBOX_SCHEMA_RE = re.compile(r"omnihis-postbox/1(?:\.\d+)?", re.ASCII)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# identifier shapes as the model checks them (mappings/model.py), checked here to name the exact key
_ID_MATCH = re.compile(r"[A-Za-z0-9.\-_:]{1,64}").fullmatch
_ICPC_MATCH = m.ICPC_RE.fullmatch
_SHAPES = {
    "AGB": (re.compile(r"\d{8}"), 8),
    "UZI": (re.compile(r"\d{9}"), 9),
    "URA": (re.compile(r"\d{8}"), 8),
    "UZOVI": (re.compile(r"\d{4}"), 4),
}
_FROM_ISO = dt.datetime.fromisoformat


# --------------------------------------------------------------------------- problems while reading


def _show(value: object) -> str:
    """A value for a message, cut short: input is hostile and may be megabytes long."""
    text = repr(value)
    return text if len(text) <= MAX_MESSAGE_VALUE else text[:MAX_MESSAGE_VALUE] + "..."


def _jtype(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    names: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _key_path(path: str, key: str) -> str:
    """The JSON path of a key that is not ours (an unknown key may hold any characters)."""
    if _KEY_RE.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{orjson.dumps(key[:MAX_MESSAGE_VALUE]).decode()}]"


class _Ctx:
    """One document being read: where it is, the sink, ids and references seen, errors so far."""

    __slots__ = ("sink", "where", "one_line", "codes", "tables", "errors", "ids", "refs")

    def __init__(self, sink: ProblemSink, where: str, *, one_line: bool = False):
        self.sink = sink
        self.where = where  # "export.json", or "export.ndjson:12" for a line of NDJSON
        self.one_line = one_line
        self.codes = code_tables()
        self.tables = {name: t.codes for name, t in self.codes.tables.items()}
        self.errors = 0
        self.ids: list[tuple[str, str, str, str]] = []  # (kind, id, path of its object, key)
        self.refs: list[tuple[str, str, str, str]] = []  # (kind referred to, id, path, key)

    def error(self, code: str, path: str, message: str) -> None:
        self.errors += 1
        self.sink.error(code, f"{self.where} {path}" if path else self.where, message)

    def warning(self, code: str, path: str, message: str) -> None:
        self.sink.warning(code, f"{self.where} {path}" if path else self.where, message)

    def error_at(self, code: str, data: bytes, pos: int, what: str, detail: str) -> None:
        """An error at a byte offset: the file line goes into the location, the column into the message."""
        line = data.count(b"\n", 0, pos) + 1
        col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        self.error_line(code, line, col, what, detail)

    def error_line(self, code: str, line: int, col: int, what: str, detail: str) -> None:
        where = self.where if self.one_line else f"{self.where}:{line}"
        self.errors += 1
        self.sink.error(code, where, f"{what} at column {col}: {detail}")

    def wrong_type(self, path: str, key: str, value: object, expected: str) -> Any:
        self.error("OMN-010", f"{path}.{key}", f"expected {expected}, found {_jtype(value)}")
        return _BAD

    def code(self, table: str, value: str, path: str, key: str) -> None:
        """Unknown codes are kept and reported (CODE-001), as every reader does."""
        self.codes.check(table, value, f"{self.where} {path}.{key}", self.sink)


# --------------------------------------------------------------------------- value readers and writers
# A reader takes (ctx, JSON value, path of the object, key), returns the canonical value, or reports the
# problem and returns _BAD. A writer takes the canonical value and returns the JSON value.

Reader = Callable[[_Ctx, Any, str, str], Any]
Writer = Callable[[Any], Any]

# The generated object readers (see _compile_reader) check the commonest kinds of value inline and
# call the reader only to report a bad one. ``arg``: the id kind, or the code table.
K_CALL, K_STR, K_ID, K_REF, K_CODE, K_ICPC = range(6)
_INLINE: dict[Reader, tuple[int, Any]] = {}


def _inline(kind: int, arg: Any = None) -> Callable[[Reader], Reader]:
    def register(read: Reader) -> Reader:
        _INLINE[read] = (kind, arg)
        return read

    return register


@_inline(K_STR)
def _r_str(c: _Ctx, v: Any, path: str, key: str) -> Any:
    return v if type(v) is str else c.wrong_type(path, key, v, "a string")


def _r_bool(c: _Ctx, v: Any, path: str, key: str) -> Any:
    return v if type(v) is bool else c.wrong_type(path, key, v, "true or false")


def _r_int(c: _Ctx, v: Any, path: str, key: str) -> Any:
    return v if type(v) is int and 0 < v < 1_000_000_000 else c.wrong_type(path, key, v, "a whole number")


def _r_date(c: _Ctx, v: Any, path: str, key: str) -> Any:
    if type(v) is not str:
        return c.wrong_type(path, key, v, "a date string YYYY-MM-DD")
    if _DATE_RE.fullmatch(v):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    c.error("OMN-020", f"{path}.{key}", f"{_show(v)} is not a date YYYY-MM-DD")
    return _BAD


_DAY_OFFSETS: dict[str, str] = {}


def _day_offset(day: str) -> str:
    """The Amsterdam offset (``+01:00``) that holds all of ``day`` (YYYY-MM-DD), or "" on the days the
    clocks change (and for what is not a date). Cached: a dossier's moments share few days."""
    off = _DAY_OFFSETS.get(day)
    if off is None:
        try:
            d = dt.date.fromisoformat(day)
        except ValueError:
            return ""
        first = dt.datetime(d.year, d.month, d.day, tzinfo=AMSTERDAM).isoformat()[19:]
        last = dt.datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=AMSTERDAM).isoformat()[19:]
        off = first if first == last else ""
        if len(_DAY_OFFSETS) >= 100_000:  # input with endless distinct days: stay bounded
            _DAY_OFFSETS.clear()
        _DAY_OFFSETS[day] = off
    return off


def _r_moment(c: _Ctx, v: Any, path: str, key: str) -> Any:
    # fast path: the offset is the one Amsterdam keeps all that day, so the wall time is as written
    if type(v) is str and len(v) > 19 and v[19:] == _day_offset(v[:10]) and _MOMENT_RE.fullmatch(v):
        try:
            return _FROM_ISO(v[:19])
        except ValueError:
            pass
    if type(v) is not str:
        return c.wrong_type(path, key, v, "a moment string YYYY-MM-DDThh:mm:ss+hh:mm")
    if not _MOMENT_RE.fullmatch(v):
        if _LOCAL_MOMENT_RE.fullmatch(v):
            c.error(
                "OMN-022",
                f"{path}.{key}",
                f"moment {_show(v)} has no UTC offset (write e.g. 2026-03-29T01:30:00+01:00)",
            )
        else:
            c.error(
                "OMN-021",
                f"{path}.{key}",
                f"{_show(v)} is not a moment YYYY-MM-DDThh:mm:ss with offset +hh:mm or Z (whole seconds)",
            )
        return _BAD
    try:
        aware = _FROM_ISO(v)
    except ValueError as exc:  # a 30th of February, an hour 25, an offset of a day or more
        c.error("OMN-021", f"{path}.{key}", f"{_show(v)} is not a valid moment: {exc}")
        return _BAD
    wall = aware.replace(tzinfo=None)
    try:
        local = aware.astimezone(AMSTERDAM)
        skipped = _in_spring_gap(wall) and aware.utcoffset() in _gap_offsets(wall)
    except OverflowError:
        c.error("OMN-021", f"{path}.{key}", f"{_show(v)} lies outside the years 1-9999 in Amsterdam time")
        return _BAD
    if skipped:
        c.warning(
            "OMN-024",
            f"{path}.{key}",
            f"{v}: local time {wall:%H:%M:%S} does not exist that day (the clocks skip an hour); "
            "kept as written",
        )
        return wall
    if local.fold:
        c.warning(
            "OMN-023",
            f"{path}.{key}",
            f"{v} falls in the hour repeated when summer time ends; kept as local time "
            f"{local:%Y-%m-%d %H:%M:%S}, which is written back with the summer-time offset",
        )
    return local.replace(tzinfo=None, fold=0)


def _in_spring_gap(wall: dt.datetime) -> bool:
    """True for a wall-clock time Amsterdam skips when summer time starts (02:00-03:00 in late March)."""
    aware = wall.replace(tzinfo=AMSTERDAM)
    return aware.astimezone(dt.UTC).astimezone(AMSTERDAM).replace(tzinfo=None) != wall


def _gap_offsets(wall: dt.datetime) -> tuple[dt.timedelta | None, ...]:
    """The two offsets a writer may put on a skipped time (fold=0: the one before, fold=1: after)."""
    return tuple(wall.replace(tzinfo=AMSTERDAM, fold=fold).utcoffset() for fold in (0, 1))


def _r_decimal(c: _Ctx, v: Any, path: str, key: str) -> Any:
    t = type(v)
    if t is Decimal:
        return v
    if t is int:
        return Decimal(v)
    if t is str:  # tolerated: a decimal sent as a string, as some JavaScript exporters do
        if len(v) <= 100 and _DECIMAL_RE.fullmatch(v):
            return Decimal(v)
        c.error("OMN-025", f"{path}.{key}", f"{_show(v)} is not a decimal number")
        return _BAD
    return c.wrong_type(path, key, v, "a number")


def _r_id(kind: str | None) -> Reader:
    """A local id; with a ``kind`` it is registered for the duplicate and reference checks."""

    @_inline(K_ID, kind)
    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        if type(v) is not str:
            return c.wrong_type(path, key, v, "an id string")
        if not _ID_MATCH(v):
            c.error("OMN-033", f"{path}.{key}", f"{_show(v)} is not an id (1-64 of A-Z a-z 0-9 . - _ :)")
            return _BAD
        if kind is not None:
            c.ids.append((kind, v, path, key))
        return v

    return read


def _r_ref(kind: str) -> Reader:
    """A reference to a local id of ``kind``; resolved when the whole document has been read."""

    @_inline(K_REF, kind)
    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        if type(v) is not str:
            return c.wrong_type(path, key, v, f"the id of a {kind}")
        c.refs.append((kind, v, path, key))
        return v

    return read


def _r_bsn(c: _Ctx, v: Any, path: str, key: str) -> Any:
    if type(v) is not str:
        return c.wrong_type(path, key, v, "a BSN string of 9 digits")
    if m.bsn_is_valid(v):
        return v
    c.error("OMN-030", f"{path}.{key}", f"BSN {_show(v)} is not 9 digits passing the 11-test")
    return _BAD


def _r_shape(what: str) -> Reader:
    pattern, digits = _SHAPES[what]

    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        if type(v) is not str:
            return c.wrong_type(path, key, v, f"an {what} string")
        if pattern.fullmatch(v):
            return v
        c.error("OMN-031", f"{path}.{key}", f"{what} {_show(v)} is not {digits} digits")
        return _BAD

    return read


@_inline(K_ICPC, "icpc")
def _r_icpc(c: _Ctx, v: Any, path: str, key: str) -> Any:
    if type(v) is not str:
        return c.wrong_type(path, key, v, "an ICPC code string")
    if _ICPC_MATCH(v):
        if v not in c.tables["icpc"]:
            c.code("icpc", v, path, key)
        return v
    c.error("OMN-032", f"{path}.{key}", f"ICPC {_show(v)} has not the shape A99, A99.9 or A99.99")
    return _BAD


def _r_code(table: str) -> Reader:
    @_inline(K_CODE, table)
    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        if type(v) is not str:
            return c.wrong_type(path, key, v, "a code string")
        if v not in c.tables[table]:
            c.code(table, v, path, key)
        return v

    return read


def _enum(pairs: dict[str, str]) -> tuple[Reader, Writer | None]:
    """A closed list of values: JSON value -> canonical value, and back (None: the same values)."""
    allowed = ", ".join(pairs)

    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        if type(v) is str and v in pairs:
            return pairs[v]
        if type(v) is not str:
            return c.wrong_type(path, key, v, f"one of {allowed}")
        c.error("OMN-012", f"{path}.{key}", f"{_show(v)} is not one of {allowed}")
        return _BAD

    if all(k == v for k, v in pairs.items()):
        return read, None
    return read, {canonical: native for native, canonical in pairs.items()}.__getitem__


def _same(*values: str) -> tuple[Reader, Writer | None]:
    return _enum({v: v for v in values})


def _r_schema(pattern: re.Pattern[str], expected: str) -> Reader:
    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        if type(v) is str and pattern.fullmatch(v):
            return v
        if type(v) is not str:
            return c.wrong_type(path, key, v, f"the string {expected!r}")
        c.error("OMN-006", f"{path}.{key}", f"schema {_show(v)} is not supported; expected {expected!r}")
        return _BAD

    return read


def _w_moment(v: dt.datetime) -> str:
    text = v.isoformat()
    off = _day_offset(text[:10])
    return text + off if off else v.replace(tzinfo=AMSTERDAM, fold=0).isoformat()


def _w_decimal(v: Decimal) -> Decimal:
    if not v.is_finite():
        raise ValueError(f"{v} cannot be written: OmniHIS JSON numbers are finite")
    return v


STR = (_r_str, None)
BOOL = (_r_bool, None)
DATE = (_r_date, dt.date.isoformat)
MOMENT = (_r_moment, _w_moment)
DECIMAL = (_r_decimal, _w_decimal)
INT = (_r_int, None)


# --------------------------------------------------------------------------- object specs


class _Field(NamedTuple):
    key: str  # the JSON key
    attr: str | tuple[str, ...]  # the model attribute; a tuple when one JSON object holds several
    read: Reader
    write: Writer | None = None  # None: the canonical value is already the JSON value
    required: bool = False
    omit_false: bool = False  # a boolean whose default is false is written only when true


def _field(
    key: str,
    attr: str,
    rw: tuple[Reader, Writer | None] | Reader,
    *,
    required: bool = False,
    omit_false: bool = False,
) -> _Field:
    read, write = rw if isinstance(rw, tuple) else (rw, None)
    return _Field(key, attr, read, write, required, omit_false)


class _Spec:
    """One JSON object type: its keys in writing order, the model class it becomes (None: the keyword
    arguments are handed to the caller), keys accepted but not kept, and defaults for the class."""

    def __init__(
        self, name: str, cls: type | None, fields: list[_Field], *, defaults: dict[str, Any] | None = None
    ):
        self.name = name
        self.cls = cls
        self.fields = fields
        self.keys = frozenset(f.key for f in fields)
        self.defaults = defaults or {}
        # attributes named "_..." (schema, exportedAt) are read and checked but are not in the model
        self.write_plan = [
            (
                f.key,
                attrgetter(f.attr) if isinstance(f.attr, str) else attrgetter(*f.attr),
                f.write,
                f.omit_false,
            )
            for f in fields
            if not (isinstance(f.attr, str) and f.attr.startswith("_"))
        ]
        self.read: Callable[[_Ctx, Any, str], Any] = _compile_reader(self)


def _not_object(c: _Ctx, o: Any, path: str) -> Any:
    c.error("OMN-010", path, f"expected an object, found {_jtype(o)}")
    return _BAD


def _unknown_keys(c: _Ctx, o: dict[str, Any], path: str, keys: frozenset[str]) -> None:
    for k in o:
        if k not in keys:
            c.warning("OMN-013", _key_path(path, k), "unknown key; ignored")


def _missing(c: _Ctx, o: dict[str, Any], path: str, key: str) -> None:
    c.error("OMN-011", f"{path}.{key}", "required key is null" if key in o else "required key is missing")


def _model_error(c: _Ctx, path: str, exc: Exception) -> Any:
    """A rule of the model across keys (an end before its start ...): reported at the object."""
    c.error("OMN-050", path, str(exc)[:300])
    return _BAD


def _compile_reader(spec: _Spec) -> Callable[[_Ctx, Any, str], Any]:
    """Build the reader of one object type as a small Python function, unrolled over its keys.

    Why generated: this is the hot path of reading (a typical dossier has 800 objects and 3,000 keys)
    and an unrolled function is twice as fast as a loop that interprets the spec. The function does
    exactly what the spec says: for each key, an inline check of the common case (a string, an id, a
    code) or a call of the key's reader, which reports any problem; then the model class is built.
    A JSON null is the same as an absent key. Every rejected value has been reported, so "the error
    count went up" means "this object is bad".
    """
    ns: dict[str, Any] = {
        "_BAD": _BAD,
        "_ID_MATCH": _ID_MATCH,
        "_ICPC_MATCH": _ICPC_MATCH,
        "_not_object": _not_object,
        "_unknown_keys": _unknown_keys,
        "_missing": _missing,
        "_model_error": _model_error,
        "CLS": spec.cls,
        "KEYS": spec.keys,
    }
    src = [
        "def read(c, o, path):",
        "    if type(o) is not dict:",
        "        return _not_object(c, o, path)",
        "    errors = c.errors",
        "    if not o.keys() <= KEYS:",
        "        _unknown_keys(c, o, path, KEYS)",
        f"    kw = {spec.defaults!r}",
    ]
    for i, f in enumerate(spec.fields):
        ns[f"R{i}"] = f.read
        key = repr(f.key)
        kind, arg = _INLINE.get(f.read, (K_CALL, None))
        store = (
            f"kw[{f.attr!r}] = v" if type(f.attr) is str else ", ".join(f"kw[{a!r}]" for a in f.attr) + " = r"
        )
        call = f"R{i}(c, v, path, {key})"
        src.append(f"    v = o.get({key})")
        src.append("    if v is not None:")
        if kind == K_STR:
            body = ["if type(v) is str:", f"    {store}", "else:", f"    {call}"]
        elif kind == K_ID:
            register = [f"    c.ids.append(({arg!r}, v, path, {key}))"] if arg else []
            body = ["if type(v) is str and _ID_MATCH(v):", f"    {store}", *register, "else:", f"    {call}"]
        elif kind == K_REF:
            body = [
                "if type(v) is str:",
                f"    {store}",
                f"    c.refs.append(({arg!r}, v, path, {key}))",
                "else:",
                f"    {call}",
            ]
        elif kind in (K_CODE, K_ICPC):
            cond = "type(v) is str" + (" and _ICPC_MATCH(v)" if kind == K_ICPC else "")
            body = [
                f"if {cond}:",
                f"    {store}",
                f"    if v not in c.tables[{arg!r}]:",
                f"        c.code({arg!r}, v, path, {key})",
                "else:",
                f"    {call}",
            ]
        elif type(f.attr) is str:
            body = [f"v = {call}", "if v is not _BAD:", f"    {store}"]
        else:
            body = [f"r = {call}", "if r is not _BAD:", f"    {store}"]
        src.extend("        " + line for line in body)
        if f.required:
            src += ["    else:", f"        _missing(c, o, path, {key})"]
    src += ["    if c.errors != errors:", "        return _BAD"]
    if spec.cls is None:
        src.append("    return kw")
    else:
        src += [
            "    try:",
            "        return CLS(**kw)",
            "    except (ValueError, TypeError) as exc:",
            "        return _model_error(c, path, exc)",
        ]
    exec(compile("\n".join(src), f"<omnihis reader {spec.name}>", "exec"), ns)  # noqa: S102 - our own text
    return ns["read"]


def _write_obj(obj: Any, spec: _Spec) -> dict[str, Any]:
    """The JSON object of a model object: keys in spec order, empty optionals left out."""
    out: dict[str, Any] = {}
    for key, get, write, omit_false in spec.write_plan:
        v = get(obj)
        if v is None or (omit_false and v is False):
            continue
        if write is not None:
            v = write(v)
            if v is None:  # an empty array or group
                continue
        out[key] = v
    return out


def _obj(spec: _Spec) -> tuple[Reader, Writer]:
    """A nested object."""
    read_obj = spec.read

    def read(c: _Ctx, v: Any, path: str, key: str) -> Any:
        return read_obj(c, v, f"{path}.{key}")

    return read, lambda v: _write_obj(v, spec)


def _array(key: str, attr: str, spec: _Spec) -> _Field:
    """An array of objects (left out when empty)."""
    read_obj = spec.read

    def read(c: _Ctx, v: Any, path: str, k: str) -> Any:
        if type(v) is not list:
            return c.wrong_type(path, k, v, "an array")
        base = f"{path}.{k}"
        errors = c.errors
        out = tuple([read_obj(c, item, f"{base}[{i}]") for i, item in enumerate(v)])
        return _BAD if c.errors != errors else out

    def write(v: tuple[Any, ...]) -> Any:
        return [_write_obj(x, spec) for x in v] if v else None

    return _Field(key, attr, read, write)


def _group(key: str, spec: _Spec) -> _Field:
    """Several model attributes held in one small JSON object (``productCode``, ``quantity`` ...),
    left out when all of them are empty."""
    attrs = tuple(f.attr for f in spec.fields)
    read_obj = spec.read

    def read(c: _Ctx, v: Any, path: str, k: str) -> Any:
        kw = read_obj(c, v, f"{path}.{k}")
        return _BAD if kw is _BAD else tuple(kw.get(a) for a in attrs)

    def write(vals: tuple[Any, ...]) -> Any:
        if all(x is None for x in vals):
            return None
        return {
            f.key: (x if f.write is None else f.write(x))
            for f, x in zip(spec.fields, vals, strict=True)
            if x is not None
        }

    return _Field(key, attrs, read, write)  # type: ignore[arg-type]


GENDER = _enum({"M": "male", "F": "female", "O": "other", "U": "unknown"})
DIRECTION = _enum({"incoming": "in", "outgoing": "out"})

ADDRESS = _Spec(
    "address",
    m.Address,
    [
        _field("street", "street", STR),
        _field("houseNumber", "house_number", STR),
        _field("postalCode", "postal_code", STR),
        _field("city", "city", STR),
        _field("country", "country", STR),
        _field("use", "use", _same("home", "work", "temp", "postal")),
    ],
)
TELECOM = _Spec(
    "telecom",
    m.Telecom,
    [
        _field("system", "system", _same("phone", "email", "fax"), required=True),
        _field("value", "value", STR, required=True),
        _field("use", "use", _same("home", "work", "mobile", "temp")),
    ],
)
NAME = _Spec(
    "name",
    m.PersonName,
    [
        _field("initials", "initials", STR),
        _field("givenNames", "given", STR),
        _field("prefix", "prefix", STR),
        _field("familyName", "family", STR),
        _field("partnerPrefix", "partner_prefix", STR),
        _field("partnerFamilyName", "partner_family", STR),
        _field("nameUsage", "usage", _same("NL1", "NL2", "NL3", "NL4")),
        _field("title", "title", STR),
    ],
)
INSURANCE = _Spec(
    "insurance",
    m.Insurance,
    [
        _field("uzovi", "uzovi", _r_shape("UZOVI"), required=True),
        _field("policyNumber", "policy_number", STR),
        _field("insurerName", "insurer_name", STR),
    ],
)
ORGANIZATION = _Spec(
    "organization",
    m.Organization,
    [
        _field("id", "id", _r_id("organization"), required=True),
        _field("name", "name", STR, required=True),
        _field("agb", "agb", _r_shape("AGB")),
        _field("ura", "ura", _r_shape("URA")),
        _field("address", "address", _obj(ADDRESS)),
        _array("telecom", "telecom", TELECOM),
    ],
)
PROFESSIONAL = _Spec(
    "professional",
    m.HealthProfessional,
    [
        _field("id", "id", _r_id("professional"), required=True),
        _field("name", "name", _obj(NAME)),
        _field("agb", "agb", _r_shape("AGB")),
        _field("uzi", "uzi", _r_shape("UZI")),
        _field("big", "big", STR),
        _field("role", "role", STR),
        _field("organizationId", "organization_id", _r_ref("organization")),
        _array("telecom", "telecom", TELECOM),
    ],
)
PATIENT = _Spec(
    "patient",
    m.Patient,
    [
        _field("bsn", "bsn", _r_bsn),
        _field("name", "name", _obj(NAME), required=True),
        _field("birthDate", "birth_date", DATE, required=True),
        _field("gender", "gender", GENDER),
        _field("address", "address", _obj(ADDRESS)),
        _array("telecom", "telecom", TELECOM),
        _field("insurance", "insurance", _obj(INSURANCE)),
        _field("deceasedDate", "deceased_date", DATE),
        _field("deregisteredDate", "deregistered_date", DATE),
    ],
    defaults={"bsn": None},
)
SOURCE_ID = _Spec(
    "sourceId",
    None,
    [
        _field("root", "source_root", STR, required=True),
        _field("extension", "source_ext", STR, required=True),
    ],
)
TIMING = _Spec(
    "timing",
    None,
    [
        _field("frequency", "timing_frequency", INT),
        _field("period", "timing_period", DECIMAL),
        _field("periodUnit", "timing_unit", _same("h", "d", "wk", "mo")),
    ],
)
EPISODE = _Spec(
    "episode",
    m.Episode,
    [
        _field("id", "id", _r_id("episode"), required=True),
        _field("title", "title", STR, required=True),
        _field("icpc", "icpc", _r_icpc),
        _field("startDate", "start", DATE),
        _field("endDate", "end", DATE),
        _field("attention", "attention", BOOL, omit_false=True),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("sourceId", SOURCE_ID),
    ],
)
JOURNAL_LINE = _Spec(
    "journal line",
    m.SoepLine,
    [
        _field("type", "type", _same("S", "O", "E", "P"), required=True),
        _field("text", "text", STR, required=True),
        _field("icpc", "icpc", _r_icpc),
        _group("sourceId", SOURCE_ID),
    ],
)
SUB_CONTACT = _Spec(
    "sub-contact",
    m.Deelcontact,
    [
        _field("episodeId", "episode_id", _r_ref("episode")),
        _field("icpc", "icpc", _r_icpc),
        _array("journalLines", "lines", JOURNAL_LINE),
    ],
)
VIDEO = _Spec(
    "video",
    m.VideoDetails,
    [
        _field("application", "application", STR),
        _field("connectionQuality", "connection_quality", _same("good", "moderate", "poor")),
        _field("patientDevice", "patient_device", STR),
        _field("identityVerified", "identity_verified", BOOL, omit_false=True),
    ],
)
CONTACT = _Spec(
    "contact",
    m.Contact,
    [
        _field("id", "id", _r_id("contact"), required=True),
        _field("startTime", "start", MOMENT, required=True),
        _field("endTime", "end", MOMENT),
        _field("contactType", "contact_type", _r_code("tabel14")),
        _field("authorId", "author_id", _r_ref("professional")),
        _array("subContacts", "deelcontacten", SUB_CONTACT),
        _field("video", "video", _obj(VIDEO)),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("sourceId", SOURCE_ID),
    ],
)
PRODUCT_CODE = _Spec(
    "productCode",
    None,
    [
        _field("system", "product_system", _same("GPK", "HPK", "PRK", "ZI"), required=True),
        _field("code", "product_code", STR, required=True),
    ],
)
QUANTITY = _Spec(
    "quantity",
    None,
    [
        _field("value", "quantity", DECIMAL),
        _field("unit", "quantity_unit", STR),
    ],
)
MEDICATION = _Spec(
    "medication",
    m.Medication,
    [
        _field("id", "id", _r_id("medication"), required=True),
        _field("productName", "product_name", STR, required=True),
        _group("productCode", PRODUCT_CODE),
        _field("atc", "atc", _r_code("atc")),
        _field("dosageText", "dosage_text", STR),
        _field("dosageCode", "dosage_code", _r_code("tabel25")),
        _field("startDate", "start", DATE),
        _field("endDate", "end", DATE),
        _field("status", "status", _same("active", "stopped", "completed")),
        _field("prescribedDate", "prescribed_on", DATE),
        _field("prescriberId", "prescriber_id", _r_ref("professional")),
        _group("quantity", QUANTITY),
        _field("episodeId", "episode_id", _r_ref("episode")),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("timing", TIMING),
        _group("sourceId", SOURCE_ID),
    ],
)
REFERENCE_RANGE = _Spec(
    "referenceRange",
    None,
    [
        _field("low", "reference_low", DECIMAL),
        _field("high", "reference_high", DECIMAL),
    ],
)
MEASUREMENT = _Spec(
    "measurement",
    m.Measurement,
    [
        _field("id", "id", _r_id("measurement"), required=True),
        _field("code", "code", _r_code("tabel45"), required=True),
        _field("effectiveTime", "effective", MOMENT, required=True),
        _field("value", "value_quantity", DECIMAL),
        _field("valueText", "value_text", STR),
        _field("unit", "unit", STR),
        _group("referenceRange", REFERENCE_RANGE),
        _field("interpretation", "interpretation", _same("L", "H", "N", "A", "LL", "HH")),
        _field("dateOnly", "date_only", BOOL, omit_false=True),
        _field("episodeId", "episode_id", _r_ref("episode")),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("sourceId", SOURCE_ID),
    ],
)
INTOLERANCE = _Spec(
    "intolerance",
    m.Intolerance,
    [
        _field("id", "id", _r_id("intolerance"), required=True),
        _field("text", "text", STR, required=True),
        _field("code", "code", _r_code("thesaurus122")),
        _field("startDate", "start", DATE),
        _field("status", "status", _same("active", "inactive")),
        _field("episodeId", "episode_id", _r_ref("episode")),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("sourceId", SOURCE_ID),
    ],
)
CONTRA_INDICATION = _Spec(
    "contra-indication",
    m.ContraIndication,
    [
        _field("id", "id", _r_id("contra-indication"), required=True),
        _field("text", "text", STR, required=True),
        _field("code", "code", _r_code("thesaurus40")),
        _field("startDate", "start", DATE),
        _field("endDate", "end", DATE),
        _field("episodeId", "episode_id", _r_ref("episode")),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("sourceId", SOURCE_ID),
    ],
)
ATTENTION_NOTE = _Spec(
    "attention note",
    m.AttentionNote,
    [
        _field("id", "id", _r_id("attention note"), required=True),
        _field("text", "text", STR, required=True),
        _field("date", "date", DATE),
        _field("episodeId", "episode_id", _r_ref("episode")),
        _field("shielded", "shielded", BOOL, omit_false=True),
        _group("sourceId", SOURCE_ID),
    ],
)


def _correspondence(name: str, read_id: Reader, read_episode: Reader) -> _Spec:
    return _Spec(
        name,
        m.Correspondence,
        [
            _field("id", "id", read_id, required=True),
            _field("dateTime", "date", MOMENT, required=True),
            _field("direction", "direction", DIRECTION, required=True),
            _field("kind", "kind", _r_code("tabel69")),
            _field("subject", "subject", STR),
            _field("senderName", "sender_name", STR),
            _field("senderDiscipline", "sender_discipline", STR),
            _field("addresseeName", "addressee_name", STR),
            _field("episodeId", "episode_id", read_episode),
            _field("senderReference", "sender_reference", STR),
            _field("shielded", "shielded", BOOL, omit_false=True),
            _group("sourceId", SOURCE_ID),
            _field("text", "text", STR, required=True),
        ],
    )


CORRESPONDENCE = _correspondence("correspondence", _r_id("correspondence"), _r_ref("episode"))

DOSSIER = _Spec(
    "dossier",
    None,
    [  # the Dossier is built by _read_dossier after the reference checks
        _field("schema", "_schema", _r_schema(_SCHEMA_RE, SCHEMA)),
        _field("exportedAt", "_exported_at", MOMENT),
        _field("practice", "practice", _obj(ORGANIZATION), required=True),
        _field("patient", "patient", _obj(PATIENT), required=True),
        _field("generalPractitioner", "gp", _obj(PROFESSIONAL)),
        _array("professionals", "professionals", PROFESSIONAL),
        _array("organizations", "organizations", ORGANIZATION),
        _array("episodes", "episodes", EPISODE),
        _array("contacts", "contacts", CONTACT),
        _array("medications", "medications", MEDICATION),
        _array("measurements", "measurements", MEASUREMENT),
        _array("intolerances", "intolerances", INTOLERANCE),
        _array("contraIndications", "contraindications", CONTRA_INDICATION),
        _array("attentionNotes", "attention_notes", ATTENTION_NOTE),
        _array("correspondence", "correspondence", CORRESPONDENCE),
    ],
)

# ----- the postbox item (DOMAIN.md §6): no episodes travel with it, so its episode ids are not resolved

PATIENT_MATCH = _Spec(
    "patient match",
    m.PatientMatch,
    [
        _field("bsn", "bsn", _r_bsn),
        _field("birthDate", "birth_date", DATE),
        _field("name", "name", _obj(NAME)),
        _field("senderReference", "sender_reference", STR),
    ],
)
CONCEPT_ENTRY = _Spec(
    "concept journal entry",
    None,
    [  # a JournalEntry; its episode is the filing's
        _field("dateTime", "date", MOMENT, required=True),
        _field("contactType", "contact_type", _r_code("tabel14")),
        _field("icpc", "icpc", _r_icpc),
        _array("journalLines", "lines", JOURNAL_LINE),
    ],
)
FILING = _Spec(
    "filing",
    None,
    [
        _field("episodeId", "episode_id", _r_id(None), required=True),
        _field("conceptJournalEntry", "journal_entry", _obj(CONCEPT_ENTRY), required=True),
    ],
)
POSTBOX_ITEM = _Spec(
    "postbox item",
    None,
    [
        _field("schema", "_schema", _r_schema(_POSTBOX_SCHEMA_RE, POSTBOX_SCHEMA)),
        _field("id", "id", _r_id(None), required=True),
        _field("kind", "kind", _same("feedback", "consult-answer", "letter", "result"), required=True),
        _field("createdAt", "created", MOMENT, required=True),
        _field("practiceAgb", "practice_agb", _r_shape("AGB"), required=True),
        _field("senderOrganization", "sender_organization", STR),
        _field("patient", "patient", _obj(PATIENT_MATCH), required=True),
        _field(
            "correspondence",
            "correspondence",
            _obj(_correspondence("postbox correspondence", _r_id(None), _r_id(None))),
            required=True,
        ),
        _field("filing", "filing", _obj(FILING)),
        _field("manualReason", "manual_reason", STR),
    ],
)


# --------------------------------------------------------------------------- documents


def _decode(c: _Ctx, data: bytes) -> Any:
    """Parse one JSON document; on failure say precisely why and where."""
    if len(data) > MAX_DOCUMENT_BYTES:
        c.error("OMN-001", "", f"document of {len(data)} bytes is over the limit of {MAX_DOCUMENT_BYTES}")
        return _BAD
    if data.startswith(_BOM):
        c.warning("OMN-007", "", "UTF-8 byte order mark at the start; ignored")
        data = data[3:]
    if not data or data.isspace():
        c.error("OMN-005", "", "no JSON document (the input is empty)")
        return _BAD
    if data.count(b",") > MAX_SEPARATORS:
        c.error("OMN-001", "", f"document has over {MAX_SEPARATORS} separators (too many values)")
        return _BAD
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:
        first: Exception = exc
    # the error path: find the position with strict UTF-8 and orjson's located messages
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as u:
        c.error_at("OMN-002", data, u.start, "not valid UTF-8", f"byte {u.start}, {u.reason}")
        return _BAD
    try:
        orjson.loads(data)  # depth limit 1024; stops there quickly
    except orjson.JSONDecodeError as j:
        if "depth" in j.msg:
            c.error_line("OMN-004", j.lineno, j.colno, "JSON nested too deeply", "the format needs 7 levels")
        else:
            hint = (
                "; this form holds one document (an NDJSON file? read it as omnihis-ndjson)"
                if "after document" in j.msg or "trailing" in j.msg
                else ""
            )
            c.error_line("OMN-003", j.lineno, j.colno, "not valid JSON", j.msg + hint)
        return _BAD
    if isinstance(first, RecursionError):
        c.error("OMN-004", "", "JSON nested too deeply (the format needs 7 levels)")
    else:
        c.error("OMN-003", "", f"not valid JSON: {first}")
    return _BAD


def _check_ids(c: _Ctx) -> None:
    """Duplicate ids and references that resolve nowhere, each at its JSON path."""
    known: dict[str, set[str]] = {"organization": set(), "professional": set(), "episode": set()}
    for kind, value, path, key in c.ids:
        seen = known.setdefault(kind, set())
        if value in seen:
            c.error("OMN-041", f"{path}.{key}", f"duplicate {kind} id {_show(value)}")
        seen.add(value)
    for kind, value, path, key in c.refs:
        if value not in known[kind]:
            c.error("OMN-040", f"{path}.{key}", f"refers to {kind} {_show(value)}, not in this document")


def _read_dossier(c: _Ctx, data: bytes) -> m.Dossier | None:
    root = _decode(c, data)
    if root is _BAD:
        return None
    kw = DOSSIER.read(c, root, "$")
    _check_ids(c)
    if kw is _BAD or c.errors:
        return None
    kw.pop("_schema", None)
    kw.pop("_exported_at", None)  # when the file was made: metadata, not part of the record
    try:
        return m.Dossier(**kw)
    except ValueError as exc:  # pragma: no cover - _check_ids has reported every reference rule
        _model_error(c, "$", exc)
        return None


def _read_postbox(c: _Ctx, data: bytes) -> m.PostboxItem | None:
    root = _decode(c, data)
    if root is _BAD:
        return None
    kw = POSTBOX_ITEM.read(c, root, "$")
    if kw is _BAD:
        return None
    kw.pop("_schema", None)
    if ("filing" in kw) == ("manual_reason" in kw):
        c.error("OMN-070", "$", "a postbox item has a filing or a manualReason (not both, not neither)")
        return None
    filing = kw.get("filing")
    path = "$"
    try:
        if filing is not None:
            path = "$.filing.conceptJournalEntry"
            entry = m.JournalEntry(episode_id=filing["episode_id"], **filing["journal_entry"])
            kw["filing"] = m.AutoFiling(episode_id=filing["episode_id"], journal_entry=entry)
            path = "$"
        return m.PostboxItem(**kw)
    except ValueError as exc:
        _model_error(c, path, exc)
        return None


def _dossier_json(d: m.Dossier) -> bytes:
    return _ENCODER.encode({"schema": SCHEMA, **_write_obj(d, DOSSIER)})


def _pretty(compact: bytes) -> bytes:
    return msgspec.json.format(compact, indent=2) + b"\n"


class OmniHisFormat(DossierFormat):
    """``omnihis``: one patient per JSON document."""

    name = "omnihis"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        sink = sink_or_new(sink)
        d = _read_dossier(_Ctx(sink, source), data)
        if d is None:
            raise InputError(sink.problems)
        return d

    def write(self, dossier: m.Dossier) -> bytes:
        return _pretty(_dossier_json(dossier))

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[m.Dossier]:
        # one byte over the limit is enough to refuse; a 100 MB input is never read whole
        yield self.read(stream.read(MAX_DOCUMENT_BYTES + 1), source=source, sink=sink)


class OmniHisNdjsonFormat(DossierFormat):
    """``omnihis-ndjson``: one compact patient document per line; read and written streaming."""

    name = "omnihis-ndjson"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        """Read a file that holds exactly one patient line."""
        sink = sink_or_new(sink)
        found = list(self.iter_read(BytesIO(data), source=source, sink=sink))
        if len(found) != 1:
            sink.error("OMN-060", source, f"{len(found)} patients in the file; read() takes exactly one")
            raise InputError(sink.problems)
        return found[0]

    def write(self, dossier: m.Dossier) -> bytes:
        return _dossier_json(dossier) + b"\n"

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[m.Dossier]:
        """Yield the dossier of each good line. A bad line is reported and skipped (lenient: reading
        goes on; strict: the first error raises). At the end, if any line had an error, raise
        :class:`InputError` with every problem. Memory: one line at a time, at most the line limit."""
        sink = sink_or_new(sink)
        errors = patients = lineno = 0
        while True:
            line = stream.readline(MAX_DOCUMENT_BYTES + 1)
            if not line:
                break
            lineno += 1
            c = _Ctx(sink, f"{source}:{lineno}", one_line=True)
            if len(line) > MAX_DOCUMENT_BYTES:
                c.error("OMN-001", "", f"line is over the limit of {MAX_DOCUMENT_BYTES} bytes; skipped")
                while line and not line.endswith(b"\n"):  # skip the rest of the line, a chunk at a time
                    line = stream.readline(1024 * 1024)
            elif not line.isspace():
                patients += 1
                d = _read_dossier(c, line)
                if d is not None:
                    yield d
            errors += c.errors
        if not patients and not errors:
            sink.error("OMN-005", source, "no patient in the file (it is empty or holds only empty lines)")
            errors += 1
        if errors:
            raise InputError(sink.problems)

    def write_many(self, dossiers: Iterable[m.Dossier], out: BinaryIO) -> int:
        n = 0
        for d in dossiers:
            out.write(_dossier_json(d) + b"\n")
            n += 1
        return n


class OmniHisPostbox(PostboxFormat):
    """The postbox import: one JSON document per item (also the body POSTed to an HTTP inbox)."""

    name = "omnihis"

    def write_postbox(self, item: m.PostboxItem) -> bytes:
        return _pretty(_ENCODER.encode({"schema": POSTBOX_SCHEMA, **_write_obj(item, POSTBOX_ITEM)}))

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> m.PostboxItem:
        sink = sink_or_new(sink)
        item = _read_postbox(_Ctx(sink, source), data)
        if item is None:
            raise InputError(sink.problems)
        return item


FORMAT = OmniHisFormat()
NDJSON_FORMAT = OmniHisNdjsonFormat()
POSTBOX = OmniHisPostbox()

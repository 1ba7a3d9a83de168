"""MicroHIS-style line records and postbox import (specified in ``docs/dialects/microhis.md``).

Windows-1252 text, CRLF line ends, one record per line, fields separated by ``|``, the first field the
record type. A file holds many patients (``DOS`` ... ``END`` each) between a header ``HDR`` and a trailer
``TRL`` that counts patients and records. Inside a field ``\\p`` stands for ``|``, ``\\\\`` for ``\\``,
``\\r`` and ``\\n`` for CR and LF, ``\\e`` for an empty text, ``\\uXXXX`` / ``\\UXXXXXXXX`` for a character
Windows-1252 cannot encode; so a raw ``|`` never occurs inside a field and a line splits with ``str.split``.

A record carries the scalar fields of one canonical object, in the order of the model; the objects nested
in it follow as their own records (pre-order). A record attaches to the nearest open object that has the
field its type names (``TEL`` -> ``telecom`` of the patient, practice or professional just before it).
Reading streams: one dossier is built and yielded per ``END``, with a per-line byte cap.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec

from adapters.forms import basic_date, basic_moment, exact_decimal, format_date, format_moment
from adapters.base import DossierFormat, PostboxFormat, sink_or_new
from mappings import model as m
from mappings.codetables import code_tables
from mappings.problems import InputError, ProblemSink

MAX_LINE = 1 << 20
VERSION = "1"
GENDER = {"male": "M", "female": "V", "other": "X", "unknown": "O"}
GENDER_BACK = {v: k for k, v in GENDER.items()}

# record type -> (class, field of the parent it fills); None = the top object of its document
RECORDS: dict[str, tuple[type, str | None]] = {
    "DOS": (m.Dossier, None), "PRK": (m.Organization, "practice"), "PAT": (m.Patient, "patient"),
    "HA": (m.HealthProfessional, "gp"), "ZVL": (m.HealthProfessional, "professionals"),
    "ORG": (m.Organization, "organizations"), "EPI": (m.Episode, "episodes"), "CON": (m.Contact, "contacts"),
    "MED": (m.Medication, "medications"), "BEP": (m.Measurement, "measurements"),
    "INT": (m.Intolerance, "intolerances"), "CI": (m.ContraIndication, "contraindications"),
    "ATT": (m.AttentionNote, "attention_notes"), "COR": (m.Correspondence, "correspondence"),
    "NAM": (m.PersonName, "name"), "ADR": (m.Address, "address"), "TEL": (m.Telecom, "telecom"),
    "VZK": (m.Insurance, "insurance"), "DC": (m.Deelcontact, "deelcontacten"), "REG": (m.SoepLine, "lines"),
    "VID": (m.VideoDetails, "video"),
    "PBX": (m.PostboxItem, None), "PPM": (m.PatientMatch, "patient"), "BRF": (m.Correspondence, "correspondence"),
    "AFL": (m.AutoFiling, "filing"), "JRN": (m.JournalEntry, "journal_entry"),
}
CODE_CHECKS = {(m.Episode, "icpc"): "icpc", (m.Deelcontact, "icpc"): "icpc", (m.SoepLine, "icpc"): "icpc",
               (m.Contact, "contact_type"): "tabel14", (m.Measurement, "code"): "tabel45",
               (m.Medication, "atc"): "atc", (m.Medication, "dosage_code"): "tabel25",
               (m.Intolerance, "code"): "thesaurus122", (m.ContraIndication, "code"): "thesaurus40",
               (m.Correspondence, "kind"): "tabel69"}


def _kind(t: Any) -> str | None:
    """The field form of a type: s text, d date, t moment, n decimal, b yes/no, g gender; None = nested."""
    args = [a for a in typing.get_args(t) if a is not type(None)] if typing.get_origin(t) in (typing.Union,
                                                                                                 __import__("types").UnionType) else [t]
    t = args[0]
    if t is dt.datetime:
        return "t"
    if t is dt.date:
        return "d"
    if t is Decimal:
        return "n"
    if t is bool:
        return "b"
    if t is str or typing.get_origin(t) is typing.Literal:
        return "s"
    return None


def _code_for(cls: type, field: str) -> str:
    if cls is m.PostboxItem and field == "correspondence":
        return "BRF"
    if cls is m.PostboxItem and field == "patient":
        return "PPM"
    for code, (c, f) in RECORDS.items():
        if f == field and code not in ("BRF", "PPM") and (c in _accepts(cls, field)):
            return code
    raise AssertionError((cls, field))  # pragma: no cover


def _accepts(cls: type, field: str) -> set[type]:
    f = next(x for x in msgspec.structs.fields(cls) if x.name == field)
    args = typing.get_args(f.type) or (f.type,)
    found = set()
    for a in args:
        found.update(typing.get_args(a) if typing.get_origin(a) is tuple else (a,))
    return found


SCALARS: dict[type, list[tuple[str, str]]] = {}
CHILDREN: dict[type, dict[str, bool]] = {}  # class -> {field: is_many} for nested objects
for _cls in {c for c, _ in RECORDS.values()}:
    SCALARS[_cls], CHILDREN[_cls] = [], {}
    for _f in msgspec.structs.fields(_cls):
        k = _kind(_f.type)
        if _f.name == "gender":
            k = "g"
        if k is not None:
            SCALARS[_cls].append((_f.name, k))
        else:
            CHILDREN[_cls][_f.name] = typing.get_origin(_f.type) is tuple
NULLABLE = {c: {f.name for f in msgspec.structs.fields(c) if f.required and type(None) in typing.get_args(f.type)}
            for c in SCALARS}
ACCEPTS = {(c, f): frozenset(_accepts(c, f)) for c in CHILDREN for f in CHILDREN[c]}
CODE_FOR = {(c, f): _code_for(c, f) for c in CHILDREN for f in CHILDREN[c]}
MANY_FIELDS = {c: [f for f, many in CHILDREN[c].items() if many] for c in CHILDREN}
CHECKS_BY_CLASS = {c: {f: t for (cc, f), t in CODE_CHECKS.items() if cc is c} for c in CHILDREN}
_CP1252 = frozenset(bytes(range(256)).decode("cp1252", errors="ignore"))
# one escape: \\ \p \r \n, \uXXXX except surrogates, \UXXXXXXXX up to 0010FFFF; a backslash followed by
# anything else matches the empty last alternative and is reported as broken
_ESCAPE = re.compile(r"\\(?:([\\prn])|u((?![dD][89A-Fa-f])[0-9A-Fa-f]{4})|U((?:000[0-9A-Fa-f]|0010)[0-9A-Fa-f]{4})|)")
_SIMPLE = {"\\": "\\", "p": "|", "r": "\r", "n": "\n"}


def _unescape(raw: str) -> str | None:
    """The text of an escaped field, or None if it holds a broken escape."""
    out: list[str] = []
    last = 0
    for match in _ESCAPE.finditer(raw):
        simple, hex4, hex8 = match.groups()
        if simple is None and hex4 is None and hex8 is None:
            return None
        out.append(raw[last:match.start()])
        out.append(_SIMPLE[simple] if simple is not None else chr(int(hex4 or hex8, 16)))
        last = match.end()
    out.append(raw[last:])
    return "".join(out)


_ESC = str.maketrans({"\\": "\\\\", "|": "\\p", "\r": "\\r", "\n": "\\n"})


# --------------------------------------------------------------------------- writing


def _escape(s: str) -> str:
    if s == "":
        return "\\e"
    s = s.translate(_ESC)
    if not s.isascii():
        s = "".join(c if c in _CP1252 else (f"\\u{ord(c):04X}" if ord(c) < 0x10000 else f"\\U{ord(c):08X}")
                    for c in s)
    return s


def _field(value: Any, kind: str) -> str:
    if value is None or value is False:
        return ""
    if kind == "s":
        return _escape(value)
    if kind == "d":
        return format_date(value)
    if kind == "t":
        return format_moment(value)
    if kind == "n":
        return str(value)
    if kind == "b":
        return "J"
    return GENDER[value]  # "g"


def _records(obj: msgspec.Struct, code: str, out: list[str]) -> None:
    cls = type(obj)
    out.append("|".join([code, *(_field(getattr(obj, f), k) for f, k in SCALARS[cls])]))
    for field, many in CHILDREN[cls].items():
        value = getattr(obj, field)
        if value is None:
            continue
        sub = CODE_FOR[(cls, field)]
        for item in (value if many else (value,)):
            _records(item, sub, out)


def _single_file(header: str, top: str, obj: msgspec.Struct) -> bytes:
    """A whole file holding one document: header, its records, END, trailer."""
    out = [f"HDR|{header}|{VERSION}"]
    _records(obj, top, out)
    out.append("END")
    out.append(f"TRL|1|{len(out) - 1}")
    return _encode(out)


def _encode(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


# --------------------------------------------------------------------------- reading


class _Open:
    __slots__ = ("cls", "values", "lineno", "code")

    def __init__(self, cls: type, values: dict, lineno: int, code: str):
        self.cls, self.values, self.lineno, self.code = cls, values, lineno, code


class _Reader:
    def __init__(self, source: str, sink: ProblemSink, top: str):
        self.source, self.sink, self.top = source, sink, top
        self.tables = code_tables()
        self.code_sets = {name: table.codes for name, table in self.tables.tables.items()}
        self.stack: list[_Open] = []
        self.broken = False  # the current document has an error: skip to its end

    def where(self, lineno: int, code: str | None = None, field: int | None = None) -> str:
        loc = f"{self.source}:{lineno}"
        if code:
            loc += f" record {code}"
        if field:
            loc += f" field {field}"
        return loc

    def unescape(self, raw: str, lineno: int, code: str, pos: int) -> str | None:
        if raw == "\\e":
            return ""
        text = _unescape(raw)
        if text is None:
            self.sink.error("MHS-005", self.where(lineno, code, pos), f"broken escape in {raw[:40]!r}")
        return text

    def value(self, raw: str, kind: str, lineno: int, code: str, pos: int) -> Any:
        try:
            if kind == "s":
                return raw if "\\" not in raw else self.unescape(raw, lineno, code, pos)
            if kind == "d":
                return basic_date(raw)
            if kind == "t":
                return basic_moment(raw)
            if kind == "n":
                return exact_decimal(raw)
            if kind == "b":
                if raw != "J":
                    raise ValueError
                return True
            return GENDER_BACK[raw]
        except (ValueError, KeyError):
            expect = {"d": "a date YYYYMMDD", "t": "a moment YYYYMMDDHHMMSS", "n": "a decimal number", "b": "J or empty",
                      "g": "M, V, X or O"}[kind]
            self.sink.error("MHS-006", self.where(lineno, code, pos), f"{raw[:40]!r} is not {expect}")
            return None

    def close(self) -> Any:
        """Build the object on top of the stack and attach it to its parent; return it."""
        item = self.stack.pop()
        try:
            for f in NULLABLE[item.cls]:
                item.values.setdefault(f, None)
            values = item.values
            for f in MANY_FIELDS[item.cls]:
                if f in values:
                    values[f] = tuple(values[f])
            obj = item.cls(**values)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            if isinstance(exc, TypeError) and "missing" in msg:
                msg = "missing required field: " + msg.split("missing required argument")[-1].strip(" '")
            self.sink.error("MHS-020", self.where(item.lineno, item.code), msg)
            self.broken = True
            return None
        if self.stack:
            parent = self.stack[-1]
            _, field = RECORDS[item.code]
            if CHILDREN[parent.cls][field]:
                parent.values.setdefault(field, []).append(obj)
            else:
                parent.values[field] = obj
        return obj

    def record(self, line: str, lineno: int) -> Any:
        """Handle one record; return a finished top object at its end record, else None."""
        fields = line.split("|")
        code = fields[0]
        if code == "END":
            if self.broken:
                self.stack.clear()
                self.broken = False
                return None
            while len(self.stack) > 1:
                if self.close() is None:
                    self.stack.clear()
                    self.broken = False
                    return None
            if not self.stack:
                self.sink.error("MHS-011", self.where(lineno, code), "END without an open dossier")
                return None
            obj = self.close()
            self.broken = False
            return obj
        spec = RECORDS.get(code)
        if spec is None:
            self.sink.warning("MHS-010", self.where(lineno, code), "unknown record type, not read")
            return None
        cls, field = spec
        if field is None:
            if self.stack:
                self.sink.error("MHS-011", self.where(lineno, code), f"{code} before the END of the previous one")
                self.stack.clear()
            self.broken = code != self.top
            if self.broken:
                self.sink.error("MHS-012", self.where(lineno, code), f"{code} records do not belong in this file")
                return None
        elif self.broken:
            return None
        else:
            self._attach_point(cls, field, lineno, code)
            if self.broken:
                return None
        return self._scalars(cls, fields, lineno, code)

    def _attach_point(self, cls: type, field: str, lineno: int, code: str) -> None:
        # pop finished objects until the nearest open one that has this record's field
        while len(self.stack) > 1 and cls not in ACCEPTS.get((self.stack[-1].cls, field), ()):
            if self.close() is None:
                return
        if not self.stack or cls not in ACCEPTS.get((self.stack[-1].cls, field), ()):
            self.sink.error("MHS-013", self.where(lineno, code), f"{code} record has no object it belongs to")
            self.broken = True
            return
        parent = self.stack[-1]
        if not CHILDREN[parent.cls][field] and field in parent.values:
            self.sink.error("MHS-014", self.where(lineno, code), f"a second {code} record for the same object")
            self.broken = True

    def _scalars(self, cls: type, fields: list[str], lineno: int, code: str) -> None:
        scalars = SCALARS[cls]
        if len(fields) - 1 != len(scalars):
            level = "MHS-004"
            if len(fields) - 1 > len(scalars) and all(f == "" for f in fields[1 + len(scalars):]):
                self.sink.warning("MHS-015", self.where(lineno, code), "empty fields beyond the last, ignored")
            else:
                self.sink.error(level, self.where(lineno, code),
                                f"{len(fields) - 1} fields, expected {len(scalars)}")
                self.broken = True
                return None
        values: dict[str, Any] = {}
        checks = CHECKS_BY_CLASS[cls]
        for pos, ((name, kind), raw) in enumerate(zip(scalars, fields[1:], strict=False), 2):
            if raw == "":
                continue
            if kind == "s" and "\\" not in raw:  # the common case, inline
                v = raw
            elif kind == "t" and len(raw) == 14 and raw.isdigit():
                try:  # C-level ISO 8601 basic format
                    v = basic_moment(raw)
                except ValueError:
                    v = self.value(raw, kind, lineno, code, pos)
            elif kind == "d" and len(raw) == 8 and raw.isdigit():
                try:
                    v = basic_date(raw)
                except ValueError:
                    v = self.value(raw, kind, lineno, code, pos)
            else:
                v = self.value(raw, kind, lineno, code, pos)
            if v is None:
                self.broken = True
                return None
            values[name] = v
            if checks:
                table = checks.get(name)
                if table and v not in self.code_sets[table]:
                    self.tables.check(table, v, self.where(lineno, code, pos), self.sink)
        self.stack.append(_Open(cls, values, lineno, code))
        return None

    def lines(self, stream: BinaryIO) -> Iterator[tuple[int, str]]:
        lineno = 0
        while True:
            raw = stream.readline(MAX_LINE + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                self.sink.error("MHS-001", self.where(lineno), f"line longer than {MAX_LINE} bytes")
                raise InputError(self.sink.problems)
            if raw.endswith(b"\r\n"):
                raw = raw[:-2]
            elif raw.endswith(b"\n"):
                raw = raw[:-1]
                self.sink.warning("MHS-003", self.where(lineno), "line ends in LF, not CRLF")
            try:
                text = raw.decode("cp1252")
            except UnicodeDecodeError as exc:
                self.sink.error("MHS-002", self.where(lineno),
                                f"byte 0x{raw[exc.start]:02X} at column {exc.start + 1} is not Windows-1252")
                continue
            yield lineno, text

    def documents(self, stream: BinaryIO, header: str) -> Iterator[Any]:
        it = self.lines(stream)
        first = next(it, None)
        if first is None or first[1] != f"HDR|{header}|{VERSION}":
            where = self.where(first[0] if first else 1, "HDR")
            self.sink.error("MHS-007", where, f"the file must start with HDR|{header}|{VERSION}")
            raise InputError(self.sink.problems)
        count = records = seen = 0
        trailer = None
        top = self.top
        for lineno, line in it:
            if trailer is not None:
                self.sink.error("MHS-009", self.where(lineno), "records after the trailer")
                break
            if line.startswith("TRL|"):
                trailer = (lineno, line)
                continue
            records += 1
            if line == top or line.startswith(top + "|"):
                seen += 1
            obj = self.record(line, lineno)
            if obj is not None:
                count += 1
                yield obj
        if self.stack and not self.broken:
            self.sink.error("MHS-008", self.where(self.stack[0].lineno, self.stack[0].code),
                            "file ends inside a dossier (no END): truncated?")
        if trailer is None:
            self.sink.error("MHS-008", f"{self.source}: end of file", "no trailer TRL: the file is truncated")
        else:
            expected = f"TRL|{seen}|{records}"
            if trailer[1] != expected:
                self.sink.error("MHS-009", self.where(trailer[0], "TRL"),
                                f"trailer says {trailer[1]!r}, the file holds {expected!r}")
        if self.sink.has_errors:
            raise InputError(self.sink.problems)


class MicroHisFormat(DossierFormat, PostboxFormat):
    """``microhis``: many patients per file, streaming; postbox items in their own file form."""

    name = "microhis"
    streaming = True
    media_type = "text/plain; charset=windows-1252"

    def write(self, dossier: m.Dossier) -> bytes:
        return _single_file("MICROHIS", "DOS", dossier)

    def write_many(self, dossiers: Iterable[m.Dossier], out: BinaryIO) -> int:
        out.write(_encode([f"HDR|MICROHIS|{VERSION}"]))
        count = records = 0
        for d in dossiers:
            lines: list[str] = []
            _records(d, "DOS", lines)
            lines.append("END")
            out.write(_encode(lines))
            count += 1
            records += len(lines)
        out.write(_encode([f"TRL|{count}|{records}"]))
        return count

    def iter_read(self, stream: BinaryIO, *, source: str = "<input>",
                  sink: ProblemSink | None = None) -> Iterator[m.Dossier]:
        yield from _Reader(source, sink_or_new(sink), "DOS").documents(stream, "MICROHIS")

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        import io

        sink = sink_or_new(sink)
        found = list(self.iter_read(io.BytesIO(data), source=source, sink=sink))
        if len(found) != 1:
            sink.error("MHS-016", source, f"the file holds {len(found)} dossiers; read() takes exactly one")
            raise InputError(sink.problems)
        return found[0]

    def write_postbox(self, item: m.PostboxItem) -> bytes:
        return _single_file("MICROHIS-POSTBUS", "PBX", item)

    def read_postbox(self, data: bytes, *, source: str = "<input>",
                     sink: ProblemSink | None = None) -> m.PostboxItem:
        import io

        sink = sink_or_new(sink)
        found = list(_Reader(source, sink, "PBX").documents(io.BytesIO(data), "MICROHIS-POSTBUS"))
        if len(found) != 1:
            sink.error("MHS-016", source, f"the file holds {len(found)} postbox items; expected one")
            raise InputError(sink.problems)
        return found[0]


FORMAT = MicroHisFormat()
POSTBOX = FORMAT

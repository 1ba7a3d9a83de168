"""MicroHIS-style line records and postbox import (specified in ``docs/dialects/microhis.md``).

Windows-1252 text, CRLF line ends, one record per line, fields separated by ``|``, field 1 the record
type (spec §1). A file holds many patients, each a ``DOS`` ... ``END`` block, between the header ``HDR``
and the trailer ``TRL`` that counts every record by type (§1, §6). Inside a text field ``\\p`` stands for
``|``, ``\\\\`` for ``\\``, ``\\r``/``\\n`` for CR/LF, ``\\e`` for the empty text, ``\\uXXXX`` and
``\\UXXXXXXXX`` for a character Windows-1252 cannot encode; an empty field is an absent value (§2). A raw
``|`` therefore never occurs inside a field and a line splits with ``str.split``.

A record carries the scalar fields of one canonical object in model order (§4); the objects nested in it
follow as records of their own, depth first, and attach to the nearest open object that takes their type
(§3). The tables below are the whole dialect: :data:`TOP`, :data:`RECORD_CLASS` and :data:`NESTED`; the
field list of each record is the model's own scalar fields, so every field of the model is carried.

Reading streams (§5): the input is read in 64 KiB chunks, decoded and split per chunk, each line capped at
:data:`MAX_LINE` bytes and each dossier at :data:`MAX_RECORDS` records; one dossier is built and yielded
per ``END``. Every problem is located as ``file:line record TYPE field N`` (§8).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec

from mappings import model as m
from mappings.codec import DossierFormat, PostboxFormat, sink_or_new
from mappings.codetables import code_tables
from mappings.problems import InputError, ProblemSink

MAX_LINE = 1 << 20
"""Bytes per line, line end included (spec §1). A longer line stops reading: it is garbage or an attack."""
MAX_RECORDS = 100_000
"""Records per dossier (a typical dossier has about 700): bounds the memory one patient may take."""
CHUNK = 1 << 16
VERSION = "1"
EXPORT_HEADER = "HDR|MICROHIS|" + VERSION
POSTBOX_HEADER = "HDR|MICROHIS-POSTBUS|" + VERSION

# --------------------------------------------------------------------------- the dialect as data (spec §3-§4)

TOP: dict[str, type] = {"DOS": m.Dossier, "PBX": m.PostboxItem}
"""Record types that open a document: a dossier in an export, a postbox item in a postbox file."""

RECORD_CLASS: dict[str, type] = {
    "PRK": m.Organization,
    "PAT": m.Patient,
    "NAM": m.PersonName,
    "ADR": m.Address,
    "TEL": m.Telecom,
    "VZK": m.Insurance,
    "HA": m.HealthProfessional,
    "ZVL": m.HealthProfessional,
    "ORG": m.Organization,
    "EPI": m.Episode,
    "CON": m.Contact,
    "DC": m.Deelcontact,
    "REG": m.SoepLine,
    "VID": m.VideoDetails,
    "MED": m.Medication,
    "BEP": m.Measurement,
    "INT": m.Intolerance,
    "CI": m.ContraIndication,
    "ATT": m.AttentionNote,
    "COR": m.Correspondence,
    "PPM": m.PatientMatch,
    "BRF": m.Correspondence,
    "AFL": m.AutoFiling,
    "JRN": m.JournalEntry,
}
"""Every other record type and the canonical class whose scalar fields it carries."""

NESTED: dict[type, dict[str, str]] = {
    m.Dossier: {
        "PRK": "practice",
        "PAT": "patient",
        "HA": "gp",
        "ZVL": "professionals",
        "ORG": "organizations",
        "EPI": "episodes",
        "CON": "contacts",
        "MED": "medications",
        "BEP": "measurements",
        "INT": "intolerances",
        "CI": "contraindications",
        "ATT": "attention_notes",
        "COR": "correspondence",
    },
    m.Organization: {"ADR": "address", "TEL": "telecom"},
    m.Patient: {"NAM": "name", "ADR": "address", "TEL": "telecom", "VZK": "insurance"},
    m.HealthProfessional: {"NAM": "name", "TEL": "telecom"},
    m.Contact: {"DC": "deelcontacten", "VID": "video"},
    m.Deelcontact: {"REG": "lines"},
    m.PostboxItem: {"PPM": "patient", "BRF": "correspondence", "AFL": "filing"},
    m.PatientMatch: {"NAM": "name"},
    m.AutoFiling: {"JRN": "journal_entry"},
    m.JournalEntry: {"REG": "lines"},
}
"""Per class: the record types of its nested objects and the field each fills, in model (= write) order."""

CODE_TABLES: dict[tuple[type, str], str] = {
    (m.Episode, "icpc"): "icpc",
    (m.Deelcontact, "icpc"): "icpc",
    (m.SoepLine, "icpc"): "icpc",
    (m.JournalEntry, "icpc"): "icpc",
    (m.Contact, "contact_type"): "tabel14",
    (m.JournalEntry, "contact_type"): "tabel14",
    (m.Measurement, "code"): "tabel45",
    (m.Medication, "atc"): "atc",
    (m.Medication, "dosage_code"): "tabel25",
    (m.Intolerance, "code"): "thesaurus122",
    (m.ContraIndication, "code"): "thesaurus40",
    (m.Correspondence, "kind"): "tabel69",
}
"""Fields whose codes are checked against the code tables; unknown codes are kept with CODE-001."""

REFERENCES: dict[type, tuple[tuple[str, type], ...]] = {
    m.HealthProfessional: (("organization_id", m.Organization),),
    m.Contact: (("author_id", m.HealthProfessional),),
    m.Deelcontact: (("episode_id", m.Episode),),
    m.Medication: (("prescriber_id", m.HealthProfessional), ("episode_id", m.Episode)),
    m.Measurement: (("episode_id", m.Episode),),
    m.Intolerance: (("episode_id", m.Episode),),
    m.ContraIndication: (("episode_id", m.Episode),),
    m.AttentionNote: (("episode_id", m.Episode),),
    m.Correspondence: (("episode_id", m.Episode),),
}
"""References inside a dossier (model.reference_problems), to locate a dangling one at its field."""

LATER_FIELDS: dict[type, str] = {
    m.SoepLine: "source_root",
    m.Contact: "source_root",
    m.Episode: "source_root",
    m.Medication: "shielded",
    m.Measurement: "date_only",
    m.Intolerance: "episode_id",
    m.ContraIndication: "episode_id",
    m.AttentionNote: "episode_id",
    m.Correspondence: "shielded",
}
"""Per record class, the first of the (optional) fields added at the end of its record after version 1
(spec §4): a record may stop before them and reads them as absent, so files written before still read."""

GENDER = {"male": "M", "female": "V", "other": "X", "unknown": "O"}
GENDER_BACK = {v: k for k, v in GENDER.items()}


def _scalar_kind(field: msgspec.structs.FieldInfo) -> tuple[str, Any] | None:
    """The field form of a model field (spec §2), or None for a nested object.

    s text, c coded text (extra = code table), e enumeration (extra = allowed values), d date, t moment,
    n decimal, i whole number, b yes/no, g gender.
    """
    t = field.type
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        t = next(a for a in typing.get_args(t) if a is not type(None))
    if field.name == "gender":
        return "g", None
    if typing.get_origin(t) is typing.Literal:
        return "e", frozenset(typing.get_args(t))
    simple = {str: "s", dt.datetime: "t", dt.date: "d", Decimal: "n", int: "i", bool: "b"}.get(t)
    return (simple, None) if simple else None


class _Spec:
    """One record type, derived from the model: its fields (position = index + 2) and its nested records."""

    __slots__ = (
        "code",
        "cls",
        "fields",
        "names",
        "width",
        "min_width",
        "required",
        "required_scalars",
        "nullable",
        "children",
        "many",
        "nested_out",
        "scalar_index",
        "field_pos",
        "texts",
        "convert",
        "leaf",
        "traced",
    )

    def __init__(self, code: str, cls: type):
        self.code, self.cls = code, cls
        infos = msgspec.structs.fields(cls)
        index = {f.name: i for i, f in enumerate(infos)}
        fields: list[tuple[str, str, Any]] = []
        self.required: set[str] = set()
        self.nullable: dict[str, None] = {}
        for f in infos:
            kind = _scalar_kind(f)
            if kind is None:
                continue
            table = CODE_TABLES.get((cls, f.name))
            fields.append((f.name, "c", table) if table else (f.name, *kind))
            if f.required:
                if type(None) in typing.get_args(f.type):
                    self.nullable[f.name] = None  # required but may be None (Patient.bsn): empty = None
                else:
                    self.required.add(f.name)
        self.fields: tuple[tuple[str, str, Any], ...] = tuple(fields)
        self.names = tuple(f[0] for f in fields)
        self.width = len(fields) + 1  # the record type is field 1
        first_later = LATER_FIELDS.get(cls)
        names = [name for name, *_ in fields]
        self.min_width = names.index(first_later) + 1 if first_later else self.width
        self.field_pos = {name: i + 2 for i, name in enumerate(self.names)}
        self.texts = tuple(name for name, kind, _ in fields if kind in "sc")
        self.convert = tuple(
            (name, self.field_pos[name], kind, extra) for name, kind, extra in fields if kind != "s"
        )
        self.required_scalars = frozenset(self.required)
        self.scalar_index = tuple(index[n] for n in self.names)
        nested = NESTED.get(cls, {})
        many = {f.name for f in infos if typing.get_origin(f.type) is tuple}
        # record type -> (field, holds many); fields that must be present come from required nested fields
        self.children = {c: (f, f in many) for c, f in nested.items()}
        self.required |= {f for f in nested.values() if next(i for i in infos if i.name == f).required}
        self.many = tuple(f for f in nested.values() if f in many)
        self.nested_out = tuple((index[f], c, f in many) for c, f in nested.items())
        self.leaf = not nested
        self.traced = "id" in index or cls in REFERENCES


SPECS: dict[str, _Spec] = {code: _Spec(code, cls) for code, cls in {**TOP, **RECORD_CLASS}.items()}

# --------------------------------------------------------------------------- escapes (spec §2)

_CP1252 = frozenset(bytes(range(256)).decode("cp1252", errors="ignore"))
# one escape: \\ \p \r \n, \uXXXX except surrogates, \UXXXXXXXX up to 0010FFFF; a backslash followed by
# anything else matches the empty last alternative and is reported as broken
_ESCAPE = re.compile(
    r"\\(?:([\\prn])|u((?![dD][89A-Fa-f])[0-9A-Fa-f]{4})"
    r"|U((?:000[0-9A-Fa-f]|0010)[0-9A-Fa-f]{4})|)"
)
_SIMPLE = {"\\": "\\", "p": "|", "r": "\r", "n": "\n"}
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:E[+-][0-9]+)?\Z")  # str(Decimal) of a finite number
_COUNT = re.compile(r"[0-9]{1,15}\Z")


def unescape(raw: str) -> str | None:
    """The text of an escaped field, or None if it holds a broken escape (spec §2)."""
    if raw == "\\e":
        return ""
    out: list[str] = []
    last = 0
    for match in _ESCAPE.finditer(raw):
        simple, hex4, hex8 = match.groups()
        if simple is None and hex4 is None and hex8 is None:
            return None
        out.append(raw[last : match.start()])
        out.append(_SIMPLE[simple] if simple is not None else chr(int(hex4 or hex8, 16)))
        last = match.end()
    out.append(raw[last:])
    return "".join(out)


def escape(s: str) -> str:
    """A text as a field: never empty (``\\e``), no raw ``|``/CR/LF, only Windows-1252 characters."""
    if not s:
        return "\\e"
    if "\\" in s or "|" in s or "\r" in s or "\n" in s:
        s = s.replace("\\", "\\\\").replace("|", "\\p").replace("\r", "\\r").replace("\n", "\\n")
    if not s.isascii():
        try:
            s.encode("cp1252")
        except UnicodeEncodeError:
            s = "".join(
                c if c in _CP1252 else f"\\u{ord(c):04X}" if ord(c) < 0x10000 else f"\\U{ord(c):08X}"
                for c in s
            )
    return s


# --------------------------------------------------------------------------- writing (spec §4-§6)


def _text_out(v: str | None) -> str:
    return "" if v is None else escape(v)


def _date_out(v: dt.date | None) -> str:
    # isoformat pads the year to 4 digits (strftime("%Y") does not below 1000) and is 4x faster
    return "" if v is None else v.isoformat().replace("-", "")


def _moment_out(v: dt.datetime | None) -> str:
    return "" if v is None else v.isoformat().replace("-", "").replace(":", "").replace("T", "")


_OUT: dict[str, Callable[[Any], str]] = {
    "s": _text_out,
    "c": _text_out,
    "e": _text_out,
    "d": _date_out,
    "t": _moment_out,
    "n": lambda v: "" if v is None else str(v),
    "i": lambda v: "" if v is None else str(v),
    "b": lambda v: "J" if v else "",
    "g": lambda v: GENDER[v],
}
_WRITERS = {
    code: tuple(zip(spec.scalar_index, [_OUT[k] for _, k, _ in spec.fields], strict=True))
    for code, spec in SPECS.items()
}
_astuple = msgspec.structs.astuple


def _emit(obj: msgspec.Struct, code: str, out: list[str], counts: dict[str, int]) -> None:
    """Append the records of ``obj`` (its own record, then its nested objects depth first) to ``out``."""
    values = _astuple(obj)
    out.append("|".join([code, *[fmt(values[i]) for i, fmt in _WRITERS[code]]]))
    counts[code] = counts.get(code, 0) + 1
    for i, sub, many in SPECS[code].nested_out:
        value = values[i]
        if value is None:
            continue
        if many:
            for item in value:
                _emit(item, sub, out, counts)
        else:
            _emit(value, sub, out, counts)


def _document(obj: msgspec.Struct, top: str, counts: dict[str, int]) -> list[str]:
    lines: list[str] = []
    _emit(obj, top, lines, counts)
    lines.append("END")
    counts["END"] = counts.get("END", 0) + 1
    return lines


def _trailer(counts: dict[str, int]) -> str:
    # counts is filled as records are written: the types come in the order they first occur
    return "|".join(["TRL", str(sum(counts.values())), *[f"{code}={n}" for code, n in counts.items()]])


def _encode(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _single_file(header: str, top: str, obj: msgspec.Struct) -> bytes:
    counts: dict[str, int] = {}
    lines = _document(obj, top, counts)
    return _encode([header, *lines, _trailer(counts)])


# --------------------------------------------------------------------------- reading (spec §5, §8)

_from_iso_date = dt.date.fromisoformat
_from_iso_moment = dt.datetime.fromisoformat
_EXPECT = {
    "d": "a date YYYYMMDD",
    "t": "a moment YYYYMMDDHHMMSS",
    "n": "a decimal number",
    "i": "a whole number",
    "b": "J or empty",
    "g": "M, V, X or O",
}


class _Reader:
    """Reads one file: lines -> records -> objects; yields each finished top object (dossier or item).

    The open objects form a stack of frames ``(spec, values, lineno, field, many)``; a record closes the
    frames above the nearest one that takes its type, then opens its own.
    """

    def __init__(self, source: str, sink: ProblemSink, top: str):
        self.source, self.sink, self.top = source, sink, top
        self.tables = code_tables()
        self.code_sets = {name: table.codes for name, table in self.tables.tables.items()}
        self.stack: list[tuple[_Spec, dict, int, str, bool]] = []  # the open objects that take nested ones
        self.trace: list[tuple[_Spec, dict, int]] = []  # every object of the current document
        self.open_line = 0  # line of the current document's top record; 0 = between documents
        self.broken = False  # the current document has an error: skip to its END
        self.bad_line = 0  # a line whose bytes were wrong: its document is broken
        self.records = 0
        self.lf_seen = False

    def where(self, lineno: int, code: str | None = None, pos: int | None = None) -> str:
        loc = f"{self.source}:{lineno}"
        if code is not None:
            loc += f" record {code[:12]}"
        if pos is not None:
            loc += f" field {pos}"
        return loc

    # ---- lines

    def lines(self, stream: BinaryIO) -> Iterator[tuple[int, str]]:
        """Decoded lines without their line end; whole chunks take a fast path when all is well."""
        lineno = 0
        pending = b""
        while True:
            chunk = stream.read(CHUNK)
            if chunk:
                block = pending + chunk if pending else chunk
                cut = block.rfind(b"\n") + 1
                if not cut:
                    if len(block) > MAX_LINE:
                        self.too_long(lineno + 1)
                    pending = block
                    continue
                pending, block = block[cut:], block[:cut]
            elif pending:
                block, pending = pending, b""
            else:
                return
            try:
                text = block.decode("cp1252")
            except UnicodeDecodeError:
                text = ""
            if (
                text
                and text.endswith("\r\n")
                and text.count("\n") == text.count("\r\n") == text.count("\r")
                and len(block) <= MAX_LINE
            ):
                lines = text.split("\r\n")
                lines.pop()
                for line in lines:
                    lineno += 1
                    yield lineno, line
                continue
            raws = block.split(b"\n")
            if not raws[-1]:
                raws.pop()
            last = len(raws) - 1
            for i, raw in enumerate(raws):
                lineno += 1
                yield lineno, self.slow_line(raw, lineno, ended=i < last or block.endswith(b"\n"))

    def too_long(self, lineno: int) -> None:
        self.sink.error("MHS-001", self.where(lineno), f"line longer than {MAX_LINE} bytes: reading stops")
        raise InputError(self.sink.problems)

    def slow_line(self, raw: bytes, lineno: int, ended: bool) -> str:
        """One line that is not plain: wrong line end, bytes outside Windows-1252, raw CR, too long."""
        if len(raw) > MAX_LINE:
            self.too_long(lineno)
        if raw.endswith(b"\r") and ended:
            raw = raw[:-1]
        elif not self.lf_seen:  # once per file: a whole file of LF line ends is one finding
            self.lf_seen = True
            self.sink.warning(
                "MHS-003",
                self.where(lineno),
                "line ends in LF, not CRLF" if ended else "the last line has no CRLF",
            )
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            text = raw.decode("cp1252", errors="replace")
            where = self.where(lineno, text.split("|", 1)[0], text[: exc.start].count("|") + 1)
            self.sink.error(
                "MHS-002", where, f"byte 0x{raw[exc.start]:02X} at column {exc.start + 1} is not Windows-1252"
            )
            self.bad_line = lineno
        if "\r" in text:
            head = text[: text.index("\r")]
            self.sink.error(
                "MHS-005",
                self.where(lineno, text.split("|", 1)[0], head.count("|") + 1),
                "a raw CR inside a line (write \\r)",
            )
            self.bad_line = lineno
        return text

    # ---- the file

    def documents(self, stream: BinaryIO, header: str) -> Iterator[Any]:
        it = self.lines(stream)
        first = next(it, None)
        if first is None or first[1] != header:
            got = "an empty file" if first is None else repr(first[1][:40])
            self.sink.error("MHS-007", self.where(1, "HDR"), f"the file must start with {header}, not {got}")
            raise InputError(self.sink.problems)
        counts: dict[str, int] = {}
        total = 0
        trailer: tuple[int, list[str]] | None = None
        last = 1
        for lineno, line in it:
            last = lineno
            fields = line.split("|")
            code = fields[0]
            if trailer is not None:
                self.sink.error("MHS-009", self.where(lineno, code), "records after the trailer")
                break
            if code == "TRL":
                trailer = (lineno, fields)
                continue
            total += 1
            counts[code] = counts.get(code, 0) + 1
            obj = self.record(code, fields, lineno, "\\" in line)
            if self.bad_line == lineno and self.open_line:
                self.broken = True
            if obj is not None:
                yield obj
        if self.open_line:
            self.sink.error(
                "MHS-008",
                self.where(self.open_line, self.top),
                "the file ends inside this document (no END): truncated?",
            )
        if trailer is None:
            self.sink.error("MHS-008", self.where(last + 1), "end of file without a trailer TRL: truncated?")
        else:
            self.check_trailer(*trailer, total, counts)
        if self.sink.has_errors:
            raise InputError(self.sink.problems)

    def check_trailer(self, lineno: int, fields: list[str], total: int, counts: dict[str, int]) -> None:
        """``TRL|<records>|<TYPE>=<count>|...`` must count exactly the records between header and trailer."""
        error = self.sink.error
        if len(fields) < 2 or not _COUNT.match(fields[1]):
            error("MHS-009", self.where(lineno, "TRL", 2), "the trailer's record count is not a number")
        elif int(fields[1]) != total:
            error(
                "MHS-009",
                self.where(lineno, "TRL", 2),
                f"the trailer counts {int(fields[1])} records, the file holds {total}",
            )
        listed: set[str] = set()
        for pos, item in enumerate(fields[2:], 3):
            code, eq, n = item.partition("=")
            if not eq or not _COUNT.match(n) or code in listed:
                why = f"{code[:12]} is counted twice" if code in listed else f"{item[:40]!r} is not TYPE=n"
                error("MHS-009", self.where(lineno, "TRL", pos), why)
                continue
            listed.add(code)
            if int(n) != counts.get(code, 0):
                error(
                    "MHS-009",
                    self.where(lineno, "TRL", pos),
                    f"the trailer counts {int(n)} {code[:12]} records, the file holds {counts.get(code, 0)}",
                )
        for code, count in counts.items():
            if code not in listed:
                error(
                    "MHS-009",
                    self.where(lineno, "TRL"),
                    f"the trailer does not count the {count} {code[:12]} records",
                )

    # ---- records

    def record(self, code: str, fields: list[str], lineno: int, escaped: bool = True) -> Any:
        """Handle one record; return the finished top object at its END, else None."""
        spec = SPECS.get(code)
        stack = self.stack
        if spec is None:
            if code == "END":
                return self.end(lineno)
            if code == "HDR":
                self.sink.error("MHS-007", self.where(lineno, code), "a second header")
            else:
                self.sink.warning("MHS-010", self.where(lineno, code), "unknown record type, not read")
            return None
        if code in TOP:
            if code != self.top:  # the other file kind: skip its block, or spoil the open one
                self.sink.error("MHS-012", self.where(lineno, code), f"{code} records do not belong here")
                self.open_line = self.open_line or lineno
                self.broken = True
                return None
            if self.open_line:
                self.sink.error(
                    "MHS-011",
                    self.where(lineno, code),
                    f"{code} before the END of the document opened on line {self.open_line}",
                )
            stack.clear()
            self.trace = []
            self.open_line, self.records, self.broken = lineno, 0, False
            field, many = "", False
        else:
            if self.broken:
                return None
            if not stack:
                self.sink.error("MHS-013", self.where(lineno, code), f"{code} record outside a document")
                return None
            self.records += 1
            if self.records > MAX_RECORDS:
                self.sink.error(
                    "MHS-019", self.where(lineno, code), f"more than {MAX_RECORDS} records in one document"
                )
                self.broken = True
                return None
            while True:  # close the open objects above the nearest one that takes this record
                parent = stack[-1]
                hit = parent[0].children.get(code)
                if hit is not None:
                    break
                if len(stack) == 1:
                    self.sink.error(
                        "MHS-013", self.where(lineno, code), f"{code} record has no open object it belongs to"
                    )
                    self.broken = True
                    return None
                if self.close() is None:
                    return None
            field, many = hit
            if not many and field in parent[1]:
                self.sink.error("MHS-014", self.where(lineno, code), f"a second {code} record for one object")
                self.broken = True
                return None
        values = self.scalars(spec, fields, lineno, code, escaped)
        if values is None:
            self.broken = True
            return None
        if spec.traced:
            self.trace.append((spec, values, lineno))
        if not spec.leaf:
            stack.append((spec, values, lineno, field, many))
            return None
        try:  # an object without nested records is complete: build it now, skip the stack
            obj = spec.cls(**values)
        except (ValueError, TypeError) as exc:
            self.invalid(spec, values, lineno, exc)
            self.broken = True
            return None
        if many:
            items = parent[1].get(field)
            if items is None:
                parent[1][field] = [obj]
            else:
                items.append(obj)
        else:
            parent[1][field] = obj
        return None

    def scalars(self, spec: _Spec, fields: list[str], lineno: int, code: str, escaped: bool) -> dict | None:
        """The field values of one record, converted; None after an error.

        Text fields stay as split unless the line holds a backslash; only the other forms are converted.
        """
        n = spec.width
        if spec.min_width <= len(fields) < n:
            fields = fields + [""] * (n - len(fields))  # a record written before its later fields
        elif len(fields) != n:
            if len(fields) < n:
                self.sink.error(
                    "MHS-004",
                    self.where(lineno, code),
                    f"{len(fields)} fields, expected {n} (the record type counts as field 1)",
                )
                return None
            self.sink.warning(
                "MHS-015",
                self.where(lineno, code, n + 1),
                f"fields {n + 1}..{len(fields)} are not part of {code}: not read",
            )
            fields = fields[:n]
        values: dict[str, Any] = {k: v for k, v in zip(spec.names, fields[1:], strict=True) if v}
        if spec.nullable:
            for k in spec.nullable:
                values.setdefault(k, None)
        if spec.required_scalars and not values.keys() >= spec.required_scalars:
            name = next(k for k in spec.names if k in spec.required_scalars and k not in values)
            self.sink.error("MHS-017", self.where(lineno, code, spec.field_pos[name]), f"{name} is required")
            return None
        if escaped:
            for name in spec.texts:
                raw = values.get(name)
                if raw is not None and "\\" in raw:
                    text = unescape(raw)
                    if text is None:
                        self.sink.error(
                            "MHS-005",
                            self.where(lineno, code, spec.field_pos[name]),
                            f"broken escape in {raw[:40]!r}",
                        )
                        return None
                    values[name] = text
        v: Any
        for name, pos, kind, extra in spec.convert:
            raw = fields[pos - 1]
            if not raw:
                continue
            if kind == "c":
                raw = values[name]  # unescaped
                if raw not in self.code_sets[extra]:
                    self.tables.check(extra, raw, self.where(lineno, code, pos), self.sink)
                continue
            if kind == "t":
                v = None
                if len(raw) == 14 and raw.isascii() and raw.isdigit():
                    try:
                        v = _from_iso_moment(raw[:8] + "T" + raw[8:])
                    except ValueError:
                        pass
            elif kind == "d":
                v = None
                if len(raw) == 8 and raw.isascii() and raw.isdigit():
                    try:
                        v = _from_iso_date(raw)
                    except ValueError:
                        pass
            elif kind == "e":
                if raw not in extra:
                    self.sink.error(
                        "MHS-006",
                        self.where(lineno, code, pos),
                        f"{raw[:40]!r} is not one of {', '.join(sorted(extra))}",
                    )
                    return None
                continue
            elif kind == "n":
                v = None
                if _DECIMAL.match(raw):
                    try:
                        v = Decimal(raw)
                    except ArithmeticError:  # an exponent beyond what decimal can hold
                        pass
            elif kind == "i":
                v = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
            elif kind == "b":
                v = True if raw == "J" else None
            else:
                v = GENDER_BACK.get(raw)
            if v is None:
                self.sink.error(
                    "MHS-006", self.where(lineno, code, pos), f"{raw[:40]!r} is not {_EXPECT[kind]}"
                )
                return None
            values[name] = v
        return values

    def close(self) -> Any:
        """Build the object on top of the stack and attach it to its parent; None after an error."""
        spec, values, lineno, field, many = self.stack.pop()
        for f in spec.many:
            v = values.get(f)
            if v is not None:
                values[f] = tuple(v)
        try:
            obj = spec.cls(**values)
        except (ValueError, TypeError) as exc:
            self.invalid(spec, values, lineno, exc)
            self.broken = True
            return None
        if self.stack:
            parent = self.stack[-1][1]
            if many:
                items = parent.get(field)
                if items is None:
                    parent[field] = [obj]
                else:
                    items.append(obj)
            else:
                parent[field] = obj
        return obj

    def end(self, lineno: int) -> Any:
        if not self.open_line:
            self.sink.error("MHS-011", self.where(lineno, "END"), "END without an open document")
            return None
        obj = None
        if not self.broken:
            while self.stack and (obj := self.close()) is not None and self.stack:
                pass
        self.stack.clear()
        self.trace = []
        self.open_line, self.broken = 0, False
        return obj

    def invalid(self, spec: _Spec, values: dict, lineno: int, exc: Exception) -> None:
        """Report why the model refused an object, at the record and, where it can be told, the field."""
        msg = str(exc)
        if isinstance(exc, TypeError):  # a required nested object is missing
            missing = next(
                (c for c, (f, _) in spec.children.items() if f in spec.required and f not in values), None
            )
            self.sink.error(
                "MHS-018",
                self.where(lineno, spec.code),
                f"{spec.code} needs a {missing} record" if missing else msg,
            )
            return
        if spec.cls is m.Dossier and self.locate_references():
            return
        pos = next(
            (
                spec.field_pos[name]
                for name in spec.names
                if isinstance(values.get(name), str) and repr(values[name]) in msg
            ),
            None,
        )
        self.sink.error("MHS-020", self.where(lineno, spec.code, pos), msg)

    def locate_references(self) -> bool:
        """Report duplicate ids and dangling references of the current dossier at their fields."""
        found = False
        ids: dict[type, set[str]] = {}
        for spec, values, lineno in self.trace:
            if "id" in values and spec.cls is not m.Dossier:
                seen = ids.setdefault(spec.cls, set())
                if values["id"] in seen:
                    self.sink.error(
                        "MHS-022",
                        self.where(lineno, spec.code, spec.field_pos["id"]),
                        f"duplicate {spec.cls.__name__} id {values['id']!r}",
                    )
                    found = True
                seen.add(values["id"])
        for spec, values, lineno in self.trace:
            for name, target in REFERENCES.get(spec.cls, ()):
                v = values.get(name)
                if v is not None and v not in ids.get(target, ()):
                    self.sink.error(
                        "MHS-021",
                        self.where(lineno, spec.code, spec.field_pos[name]),
                        f"{name} {v!r} refers to no {target.__name__} in this dossier",
                    )
                    found = True
        return found


class MicroHisFormat(DossierFormat, PostboxFormat):
    """``microhis``: many patients per file, streaming; postbox items in their own file form."""

    name = "microhis"

    def write(self, dossier: m.Dossier) -> bytes:
        """One dossier as a whole file (header, ``DOS`` ... ``END``, trailer)."""
        return _single_file(EXPORT_HEADER, "DOS", dossier)

    def write_many(self, dossiers: Iterable[m.Dossier], out: BinaryIO) -> int:
        """Stream every dossier to ``out``; the trailer with the counts comes last."""
        out.write(_encode([EXPORT_HEADER]))
        counts: dict[str, int] = {}
        n = 0
        for d in dossiers:
            out.write(_encode(_document(d, "DOS", counts)))
            n += 1
        out.write(_encode([_trailer(counts)]))
        return n

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[m.Dossier]:
        """Yield each dossier at its ``END``; raise InputError at the end if anything was wrong."""
        yield from _Reader(source, sink_or_new(sink), "DOS").documents(stream, EXPORT_HEADER)

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        """Read a file that holds exactly one dossier."""
        sink = sink_or_new(sink)
        found = list(self.iter_read(io.BytesIO(data), source=source, sink=sink))
        if len(found) != 1:
            sink.error("MHS-016", source, f"the file holds {len(found)} dossiers; read() takes exactly one")
            raise InputError(sink.problems)
        return found[0]

    def write_postbox(self, item: m.PostboxItem) -> bytes:
        """The postbox import form: ``HDR|MICROHIS-POSTBUS|1``, one ``PBX`` ... ``END``, trailer."""
        return _single_file(POSTBOX_HEADER, "PBX", item)

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> m.PostboxItem:
        sink = sink_or_new(sink)
        found = list(_Reader(source, sink, "PBX").documents(io.BytesIO(data), POSTBOX_HEADER))
        if len(found) != 1:
            sink.error("MHS-016", source, f"the file holds {len(found)} postbox items; expected one")
            raise InputError(sink.problems)
        return found[0]


FORMAT = MicroHisFormat()
POSTBOX = FORMAT

"""HL7 v2 ER7 ("pipe and hat") encoding: tokenizer, serializer, escapes, character sets and batches.

Implements HL7 v2.5 chapter 2: §2.5 message construction (segments, fields, repetitions, components,
subcomponents), §2.5.4 the delimiters declared by MSH-1 and MSH-2 (any characters, plus the v2.7
truncation character as a fifth MSH-2 character), §2.7 escape sequences in text (``\\F\\ \\S\\ \\T\\ \\R\\
\\E\\ \\P\\ \\Xhh..\\ \\.br\\``), §2.10.3 batch protocol (FHS/BHS ... BTS/FTS) and MSH-18 character sets
(HL7 table 0211: ``ASCII`` default, ``8859/1`` ... ``8859/9``, ``8859/15``, ``UNICODE UTF-8``).

Why our own tokenizer: measured on this project's machine with a 30-OBX ORU^R01, hl7apy parses about
9 messages/s, python-hl7 about 300/s and a plain ``str.split`` about 40,000/s (``bench/bench_hl7v2.py``
measures all three again next to this module; docs/performance.md, "HL7 v2"). The gateway's budget is
5,000 messages/s parsed *and* mapped on one core, so parsing here is a lean split: segments on ``\\r``
(``\\n`` and ``\\r\\n`` accepted as they arrive in the wild), fields on MSH-1; repetitions, components and
escapes are split and decoded only when a mapping asks for a value. Escape sequences are nevertheless
*validated* while parsing (only in segments that contain the escape character), so a broken escape is a
declared parse error, not a surprise half-way through a mapping.

Access is 1-based "as the spec counts", like python-hl7: ``seg.fields[n]`` is field *n*, and for MSH
``fields[1]`` is the field separator itself (MSH-1) and ``fields[2]`` the encoding characters (MSH-2).
``str(parse(text)) == text`` for a message whose segments end in ``\\r`` (terminators normalised).

Exceptions (one root for bad input)::

    InputError                       (mappings.problems)
    └── Hl7ParseError                -- .problems; locations like "PID-3", "OBX[2]-5", "MSH-18"

Limits (hostile input): a message over :data:`MAX_MESSAGE_BYTES` (10 MiB; a 20 MB OBX-5 is refused
before any splitting), more than :data:`MAX_SEGMENTS` segments, more than :data:`MAX_FIELDS` fields in a
segment or :data:`MAX_REPETITIONS` repetitions in a field are parse errors (``HL7-001``).
"""

from __future__ import annotations

import codecs
import csv
import functools
import itertools
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from mappings.problems import InputError, Problem, Severity

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
"""Largest message accepted (bytes). Embedded PDFs of a few MiB fit; 20 MB in one OBX-5 does not."""
MAX_SEGMENTS = 20_000
MAX_FIELDS = 500
MAX_REPETITIONS = 1_000
MAX_FILE_BYTES = 256 * 1024 * 1024
"""Largest batch file :func:`iter_messages` reads (each message in it is still capped separately)."""

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")
_BLANK_RUNS = re.compile(r"\r{2,}")
_NAMES_SEEN: set[str] = set()
"""Segment names already checked against the pattern (a set lookup is cheaper than a regex match)."""


class Hl7ParseError(InputError):
    """Bad HL7 v2 input: the message cannot be tokenised (location names segment and field)."""

    @classmethod
    def at(cls, code: str, location: str, message: str) -> Hl7ParseError:
        return cls([Problem(Severity.ERROR, code, location, message)])


# --------------------------------------------------------------------------- character sets


def _load_charsets() -> dict[str, str]:
    with (Path(__file__).parent / "tables" / "charsets.csv").open(encoding="utf-8", newline="") as fh:
        return {row["msh18"]: row["python"] for row in csv.DictReader(fh)}


CHARSETS: dict[str, str] = _load_charsets()
"""MSH-18 value -> Python codec, from ``tables/charsets.csv``: HL7 table 0211 and the legacy names senders
use (``UNICODE``, ``UTF-8``, ``ISO-8859-1`` ...; looked up without regard to case and spacing). Only
ASCII-compatible single-byte sets and UTF-8: UTF-16/32 and ISO 2022 code switching would break byte-level
framing and are refused (``HL7-004``)."""
_CHARSET_KEYS = {" ".join(k.upper().split()): v for k, v in CHARSETS.items()}


def python_codec(charset: str, location: str = "MSH-18") -> str:
    """The Python codec for an MSH-18 value; ``HL7-004`` if we do not support it."""
    try:
        return CHARSETS[charset]
    except KeyError:
        pass
    try:
        return _CHARSET_KEYS[" ".join(charset.upper().split())]
    except KeyError:
        raise Hl7ParseError.at(
            "HL7-004",
            location,
            f"character set {charset[:40]!r} is not supported "
            f"(use one of {', '.join(repr(k) for k in CHARSETS if k)})",
        ) from None


def known_charset(charset: str) -> bool:
    """True when :func:`python_codec` knows ``charset`` (a table 0211 or legacy name)."""
    return charset in CHARSETS or " ".join(charset.upper().split()) in _CHARSET_KEYS


# --------------------------------------------------------------------------- delimiters and escapes


class Delimiters(NamedTuple):
    """MSH-1 and MSH-2: field, component, repetition, escape, subcomponent and (v2.7+) truncation."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as written (a delimiter the sender did not declare is not written)."""
        chars = self.component + self.repetition + self.escape + self.subcomponent + self.truncation
        return chars if self.complete else "".join(c for c in chars if c not in _UNDECLARED)

    @property
    def complete(self) -> bool:
        """False when MSH-2 declared fewer than the four encoding characters (see :data:`_UNDECLARED`)."""
        return self.subcomponent not in _UNDECLARED and self.escape not in _UNDECLARED


_UNDECLARED = ("\x02", "\x03", "\x04")
"""Stand-ins for the repetition, escape and subcomponent separators when MSH-2 declares fewer than four
encoding characters (as v2.1-era senders and some interfaces do): the character is then no delimiter at
all (v2.5 §2.5.4 gives each its meaning only when declared), and a control character cannot occur in
a valid message unescaped."""


DEFAULT_DELIMITERS = Delimiters()

FieldValue = None | str | tuple | list
"""What writers hand to :meth:`Codec.field`: ``None``/``""`` empty, ``str`` a text (escaped here), a
``tuple`` of components (each ``str``/``None`` or a tuple of subcomponents), a ``list`` of repetitions."""


class Codec:
    """Delimiters plus character set of one message: decodes and encodes field text.

    ``decode`` turns escaped ER7 text of one leaf (a subcomponent) into the value; ``encode`` does the
    reverse. Newlines are written as ``\\.br\\`` and CR and other control characters as ``\\Xhh\\`` so
    that text with CR/LF/CRLF survives exactly and no MLLP framing byte (0x0B, 0x1C) ever reaches the
    wire inside a message.
    """

    __slots__ = ("delims", "charset", "python", "_table", "_specials", "_decode_map", "_structure", "_nested")

    def __init__(self, delims: Delimiters = DEFAULT_DELIMITERS, charset: str = "UNICODE UTF-8"):
        self.delims = delims
        self.charset = charset
        self.python = python_codec(charset)
        d = delims
        e = d.escape
        table: dict[int, str] = {}
        for i in range(32):
            if chr(i) != "\t":
                table[i] = f"{e}X{i:02X}{e}"
        table[10] = f"{e}.br{e}"
        table[0x7F] = f"{e}X7F{e}"
        for ch, code in (
            (e, "E"),
            (d.field, "F"),
            (d.component, "S"),
            (d.repetition, "R"),
            (d.subcomponent, "T"),
            (d.truncation, "P"),
        ):
            if ch:
                table[ord(ch)] = f"{e}{code}{e}"
        self._table = table
        self._specials = frozenset(chr(c) for c in table)
        self._structure = frozenset(c for c in (d.component, d.repetition, d.subcomponent, d.escape) if c)
        self._nested = frozenset(c for c in (d.repetition, d.subcomponent, d.escape) if c)
        self._decode_map = {
            "F": d.field,
            "S": d.component,
            "T": d.subcomponent,
            "R": d.repetition,
            "E": e,
            ".br": "\n",
        }
        if d.truncation:
            self._decode_map["P"] = d.truncation

    def plain(self, raw: str) -> bool:
        """True when a raw field has no component, repetition, subcomponent or escape character: its
        text is its value (the fast path of the hot mappings)."""
        return self._structure.isdisjoint(raw)

    def flat(self, raw: str) -> bool:
        """True when a raw field is one repetition of components without subcomponents or escapes."""
        return self._nested.isdisjoint(raw)

    def with_charset(self, charset: str) -> Codec:
        return Codec(self.delims, charset)

    # ---- decoding

    def decode(self, raw: str, location: str = "") -> str:
        """Decode the escapes of one leaf value. Unknown escapes (``\\H\\``, ``\\.sp\\``, ``\\Cxxyy\\``
        ...) are kept verbatim; a broken one (unterminated, empty, bad hex) raises ``HL7-006``."""
        e = self.delims.escape
        if not e or e not in raw:
            return raw
        parts = raw.split(e)
        if len(parts) % 2 == 0:
            raise Hl7ParseError.at("HL7-006", location, f"unterminated escape sequence in {_clip(raw)!r}")
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            seq = parts[i]
            mapped = self._decode_map.get(seq)
            if mapped is not None:
                out.append(mapped)
            elif not seq:
                raise Hl7ParseError.at("HL7-006", location, f"empty escape sequence in {_clip(raw)!r}")
            elif seq[0] == "X":
                hexdigits = seq[1:]
                if not _HEX.match(hexdigits):
                    raise Hl7ParseError.at(
                        "HL7-006",
                        location,
                        f"escape \\X{_clip(hexdigits)}\\ is not an even number of hexadecimal digits",
                    )
                try:
                    out.append(bytes.fromhex(hexdigits).decode(self.python))
                except UnicodeDecodeError:
                    raise Hl7ParseError.at(
                        "HL7-006",
                        location,
                        f"escape \\X{_clip(hexdigits)}\\ is not "
                        f"valid in character set {self.charset or 'ASCII'}",
                    ) from None
            else:
                out.append(e + seq + e)
            out.append(parts[i + 1])
        return "".join(out)

    def validate(self, raw: str, location: str) -> None:
        """Check every escape sequence in one leaf without building the value."""
        self.decode(raw, location)

    def components(self, raw: str, location: str = "") -> list[list[str]]:
        """One repetition's raw text -> decoded components, each a list of decoded subcomponents."""
        d = self.delims
        if not d.escape or d.escape not in raw:  # nothing to decode: splitting is all
            if d.subcomponent in raw:
                return [c.split(d.subcomponent) for c in raw.split(d.component)]
            return [[c] for c in raw.split(d.component)]
        out = []
        for i, comp in enumerate(raw.split(d.component), 1):
            if d.subcomponent in comp:
                out.append(
                    [
                        self.decode(s, f"{location}.{i}.{j}")
                        for j, s in enumerate(comp.split(d.subcomponent), 1)
                    ]
                )
            else:
                out.append([self.decode(comp, f"{location}.{i}")])
        return out

    # ---- encoding

    def encode(self, value: str) -> str:
        """Escape a text value for one leaf."""
        if not self._specials.isdisjoint(value):
            return value.translate(self._table)
        return value

    def field(self, value: FieldValue) -> str:
        """Encode a field value (see :data:`FieldValue`); trailing empty parts are dropped."""
        if value is None:
            return ""
        if isinstance(value, str):
            return self.encode(value)
        d = self.delims
        if isinstance(value, list):
            return _rstrip_join(d.repetition, [self.field(v) for v in value])
        comps = []
        for c in value:
            if c is None:
                comps.append("")
            elif isinstance(c, str):
                comps.append(self.encode(c))
            else:
                comps.append(_rstrip_join(d.subcomponent, [self.encode(s) if s else "" for s in c]))
        return _rstrip_join(d.component, comps)


_ID_COUNTER = itertools.count(1)


def new_control_id() -> str:
    """A fresh MSH-10 (at most 20 characters, as v2.5 allows): a random prefix drawn once per process
    plus a counter, so ids never repeat across restarts and cost no system call each."""
    return f"{_id_prefix()}{next(_ID_COUNTER):010d}"


@functools.lru_cache(maxsize=1)
def _id_prefix() -> str:
    return uuid.uuid4().hex[:10]


@functools.lru_cache(maxsize=64)
def codec_for(delims: Delimiters, charset: str) -> Codec:
    """A shared codec per delimiters and character set (building the escape tables costs more than
    parsing a small message)."""
    return Codec(delims, charset)


def _rstrip_join(sep: str, parts: list[str]) -> str:
    while parts and not parts[-1]:
        parts.pop()
    return sep.join(parts)


def _clip(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[:n] + "..."


# --------------------------------------------------------------------------- segments and messages


class Segment:
    """One segment: ``fields[0]`` the name, ``fields[n]`` field *n* as raw (escaped) ER7 text."""

    __slots__ = ("fields", "codec", "occurrence", "_counts", "simple")

    def __init__(
        self, fields: list[str], codec: Codec, occurrence: int = 1, counts: dict[str, int] | None = None
    ):
        self.fields = fields
        self.codec = codec
        self.occurrence = occurrence
        self._counts = counts  # segments per name in the message (shared): decides how loc() names it
        self.simple = False
        """True when the parsed segment holds no repetition, subcomponent or escape character: every
        field is then its components joined, and hot mappings read it without decoding."""

    @property
    def name(self) -> str:
        return self.fields[0]

    @property
    def repeated(self) -> bool:
        """True when the message holds more than one segment of this name (locations then say ``[n]``)."""
        return self._counts is not None and self._counts.get(self.fields[0], 0) > 1

    def __str__(self) -> str:
        f = self.fields
        if f[0] == "MSH" and len(f) > 1:
            return "MSH" + f[1] + f[1].join(f[2:])
        return self.codec.delims.field.join(f)

    def __repr__(self) -> str:
        return f"<Segment {_clip(str(self), 60)!r}>"

    def loc(
        self, field: int | None = None, rep: int = 1, comp: int | None = None, sub: int | None = None
    ) -> str:
        """A location as problems name it: ``PID-3``, ``OBX[2]-5``, ``PID-3[2].4.1``."""
        name = self.fields[0]
        counts = self._counts
        s = f"{name}[{self.occurrence}]" if counts is not None and counts.get(name, 0) > 1 else name
        if field is None:
            return s
        if rep == 1 and comp is None:  # the usual case: every reader names its fields before any problem
            return f"{s}-{field}"
        s += f"-{field}"
        if rep > 1:
            s += f"[{rep}]"
        if comp is not None:
            s += f".{comp}"
            if sub is not None:
                s += f".{sub}"
        return s

    def raw(self, n: int) -> str:
        """Field *n* as written (escaped, all repetitions); ``""`` when absent."""
        f = self.fields
        return f[n] if n < len(f) else ""

    def reps(self, n: int) -> list[str]:
        """The raw repetitions of field *n* (``[]`` when empty). MSH-1/MSH-2 are never split."""
        f = self.raw(n)
        if not f:
            return []
        if n <= 2 and self.fields[0] in _HEADER_SEGMENTS:
            return [f]
        r = self.codec.delims.repetition
        if r not in f:
            return [f]
        parts = f.split(r, MAX_REPETITIONS)
        if len(parts) > MAX_REPETITIONS:
            raise Hl7ParseError.at("HL7-001", self.loc(n), f"more than {MAX_REPETITIONS} repetitions")
        return parts

    def get(self, n: int, comp: int = 1, sub: int = 1, rep: int = 1) -> str:
        """The decoded value of field *n*, component *comp*, subcomponent *sub* of repetition *rep*."""
        fields = self.fields
        if n >= len(fields):
            return ""
        f = fields[n]
        if not f:
            return ""
        if self.simple and n > 2:  # no repetition, subcomponent or escape: only components to split
            if rep != 1 or sub != 1:
                return ""
            c = self.codec.delims.component
            if c not in f:
                return f if comp == 1 else ""
            parts = f.split(c, comp)
            return parts[comp - 1] if comp <= len(parts) else ""
        if n <= 2 and self.fields[0] in _HEADER_SEGMENTS:
            return f
        d = self.codec.delims
        if d.repetition in f:
            parts = f.split(d.repetition)
            f = parts[rep - 1] if rep <= len(parts) else ""
        elif rep != 1:
            return ""
        if d.component in f:
            parts = f.split(d.component)
            f = parts[comp - 1] if comp <= len(parts) else ""
        elif comp != 1:
            return ""
        if d.subcomponent in f:
            parts = f.split(d.subcomponent)
            f = parts[sub - 1] if sub <= len(parts) else ""
        elif sub != 1:
            return ""
        if d.escape and d.escape in f:
            return self.codec.decode(f, self.loc(n, rep, comp, sub))
        return f

    def components(self, n: int, rep: int = 1) -> list[list[str]]:
        """Decoded components (each a list of subcomponents) of repetition *rep* of field *n*."""
        reps = self.reps(n)
        if rep > len(reps):
            return []
        raw = reps[rep - 1]
        return self.codec.components(raw, self.loc(n, rep) if self.codec.delims.escape in raw else "")

    def all_components(self, n: int) -> list[list[list[str]]]:
        """Every repetition of field *n*, each as :meth:`components`."""
        esc = self.codec.delims.escape
        return [
            self.codec.components(r, self.loc(n, i) if esc in r else "")
            for i, r in enumerate(self.reps(n), 1)
        ]

    def _validate_escapes(self) -> None:
        d = self.codec.delims
        e = d.escape
        start = 3 if self.fields[0] in _HEADER_SEGMENTS else 1
        for n in range(start, len(self.fields)):
            f = self.fields[n]
            if e not in f:
                continue
            for r, rep in enumerate(f.split(d.repetition), 1):
                comps = rep.split(d.component)
                for c, comp in enumerate(comps, 1):
                    subs = comp.split(d.subcomponent)
                    for s, leaf in enumerate(subs, 1):
                        if e in leaf:
                            self.codec.validate(
                                leaf,
                                self.loc(
                                    n,
                                    r,
                                    c if len(comps) > 1 or len(subs) > 1 else None,
                                    s if len(subs) > 1 else None,
                                ),
                            )


_HEADER_SEGMENTS = frozenset(("MSH", "FHS", "BHS"))


class Message:
    """A parsed message: segments in order plus the codec (delimiters and MSH-18 character set)."""

    __slots__ = ("segments", "codec")

    def __init__(self, segments: list[Segment], codec: Codec):
        self.segments = segments
        self.codec = codec

    @property
    def delimiters(self) -> Delimiters:
        return self.codec.delims

    @property
    def charset(self) -> str:
        return self.codec.charset

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def segment(self, name: str) -> Segment | None:
        """The first segment named ``name``."""
        for s in self.segments:
            if s.fields[0] == name:
                return s
        return None

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.fields[0] == name]

    def __str__(self) -> str:
        return "".join(str(s) + "\r" for s in self.segments)

    def __repr__(self) -> str:
        return f"<Message {len(self.segments)} segments>"

    def to_bytes(self) -> bytes:
        """The message in its MSH-18 character set, every segment ended by ``\\r``."""
        text = str(self)
        try:
            return text.encode(self.codec.python)
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise InputError(
                [
                    Problem(
                        Severity.ERROR,
                        "HL7-030",
                        _segment_at(text, exc.start),
                        f"character {bad!r} cannot be written in character set "
                        f"{self.codec.charset or 'ASCII'}",
                    )
                ]
            ) from None


def _segment_at(text: str, offset: int) -> str:
    line = text.count("\r", 0, offset)
    name = text[text.rfind("\r", 0, offset) + 1 :][:3]
    return f"segment {line + 1} ({name})"


def build(
    segments: Sequence[tuple[str, Sequence[FieldValue]]], codec: Codec, msh: list[str] | None = None
) -> Message:
    """A message from ``(name, [field1, field2, ...])`` pairs; ``msh`` the already encoded MSH fields
    (``["MSH", "|", "^~\\\\&", ...]``). Trailing empty fields are dropped."""
    segs: list[Segment] = []
    counts: dict[str, int] = {}
    if msh is not None:
        while len(msh) > 3 and not msh[-1]:
            msh.pop()
        segs.append(Segment(msh, codec, 1, counts))
        counts["MSH"] = 1
    for name, values in segments:
        fields = [name] + [codec.field(v) for v in values]
        while len(fields) > 1 and not fields[-1]:
            fields.pop()
        counts[name] = counts.get(name, 0) + 1
        segs.append(Segment(fields, codec, counts[name], counts))
    return Message(segs, codec)


# --------------------------------------------------------------------------- parsing


def _delimiters(first: str, location: str = "MSH-2") -> Delimiters:
    """MSH-1 and MSH-2 (or FHS/BHS) of a header line, validated."""
    if len(first) < 8:
        raise Hl7ParseError.at("HL7-003", location, "header segment too short to declare its delimiters")
    fs = first[3]
    end = first.find(fs, 4)
    enc = first[4:] if end == -1 else first[4:end]
    if len(enc) > 5:
        enc = enc[:6]  # too long either way; the check below says so
    return _checked_delimiters(fs, enc, location)


@functools.lru_cache(maxsize=64)
def _checked_delimiters(fs: str, enc: str, location: str) -> Delimiters:
    chars = fs + enc
    if 1 <= len(enc) < 4:  # fewer encoding characters: the ones not declared are no delimiters
        enc = enc + "".join(_UNDECLARED[len(enc) - 1 :])
    if (
        not 4 <= len(enc) <= 5
        or len(set(chars)) != len(chars)
        or any(c.isalnum() or c.isspace() or ord(c) < 32 or ord(c) > 126 for c in chars)
    ):
        raise Hl7ParseError.at(
            "HL7-003",
            location,
            f"delimiters {chars!r} are not 2 to 6 distinct printable "
            "non-alphanumeric characters (MSH-1 and MSH-2)",
        )
    return Delimiters(fs, enc[0], enc[1], enc[2], enc[3], enc[4] if len(enc) == 5 else "")


def _charset_of(fields: list[str], delims: Delimiters) -> str:
    raw = fields[18].strip() if len(fields) > 18 else ""
    if delims.repetition in raw:
        raise Hl7ParseError.at(
            "HL7-004", "MSH-18", "more than one character set (ISO 2022 code switching) is not supported"
        )
    python_codec(raw)
    return raw


def parse(text: str, *, charset: str | None = None, delims: Delimiters | None = None) -> Message:
    """Parse one message from text (already decoded). ``charset`` overrides MSH-18 for re-encoding."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise Hl7ParseError.at(
            "HL7-001", "message", f"message is over the limit of {MAX_MESSAGE_BYTES} characters"
        )
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    if text.count("\r") > 2 * MAX_SEGMENTS:
        text = _BLANK_RUNS.sub("\r", text)  # runs of empty lines must not become millions of list items
    lines = text.split("\r")
    if len(lines) > MAX_SEGMENTS + 2:
        raise Hl7ParseError.at("HL7-001", "message", f"more than {MAX_SEGMENTS} segments")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    first = lines[i] if i < len(lines) else ""
    if not first.startswith("MSH"):
        raise Hl7ParseError.at("HL7-002", "segment 1", "message does not start with an MSH segment")
    if delims is None:
        delims = _delimiters(first)
    fs = delims.field
    first_fields = first.split(fs, 18)
    first_fields.insert(1, fs)
    cs = _charset_of(first_fields, delims) if charset is None else charset
    codec = codec_for(delims, cs)
    esc = delims.escape
    rep, sub = delims.repetition, delims.subcomponent
    segments: list[Segment] = []
    to_validate: list[Segment] = []
    counts: dict[str, int] = {}
    match_name = _SEGMENT_NAME.match
    for line in lines[i:]:
        if not line or (line[0] in " \t\x0b\x0c" and line.isspace()):
            continue
        if len(segments) >= MAX_SEGMENTS:
            raise Hl7ParseError.at("HL7-001", "message", f"more than {MAX_SEGMENTS} segments")
        if len(line) >= MAX_FIELDS and line.count(fs) >= MAX_FIELDS:
            raise Hl7ParseError.at(
                "HL7-001", f"segment {len(segments) + 1} ({line[:3]!r})", f"more than {MAX_FIELDS} fields"
            )
        fields = line.split(fs)
        name = fields[0]
        if name not in _NAMES_SEEN:
            if not match_name(name):
                raise Hl7ParseError.at(
                    "HL7-007",
                    f"segment {len(segments) + 1}",
                    f"{_clip(name, 20)!r} is not a segment name (three characters A-Z, 0-9)",
                )
            if len(_NAMES_SEEN) < 4096:
                _NAMES_SEEN.add(name)
        n = counts.get(name, 0) + 1
        counts[name] = n
        seg = Segment(fields, codec, n, counts)
        if name == "MSH":
            if segments:
                raise Hl7ParseError.at(
                    "HL7-041",
                    f"segment {len(segments) + 1} (MSH)",
                    "a second MSH: a file of several messages is read with iter_messages",
                )
            fields.insert(1, fs)
            rest = line[5 + len(delims.encoding_characters) :]
            if esc and esc in rest:
                to_validate.append(seg)
            elif rep not in rest and sub not in rest:
                seg.simple = True
        elif esc and esc in line:
            to_validate.append(seg)
        elif rep not in line and sub not in line:
            seg.simple = True
        segments.append(seg)
    for seg in to_validate:
        seg._validate_escapes()
    return Message(segments, codec)


def sniff_header(data: bytes) -> tuple[Delimiters, str]:
    """Delimiters and MSH-18 of a message in bytes, read from its first segment before decoding."""
    start = 3 if data.startswith(codecs.BOM_UTF8) else 0
    while start < len(data) and data[start] in b"\r\n \t":
        start += 1
    ends = [p for p in (data.find(b"\r", start), data.find(b"\n", start)) if p != -1]
    line = data[start : min(ends) if ends else len(data)].decode("latin-1")
    if not line.startswith("MSH"):
        raise Hl7ParseError.at("HL7-002", "segment 1", "message does not start with an MSH segment")
    delims = _delimiters(line)
    fields = line.split(delims.field, 18)
    fields.insert(1, delims.field)
    return delims, _charset_of(fields, delims)


def decode_bytes(
    data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, default_charset: str = ""
) -> tuple[str, str]:
    text, charset, _ = _decode(data, max_bytes, default_charset)
    return text, charset


def _decode(data: bytes, max_bytes: int, default_charset: str) -> tuple[str, str, Delimiters]:
    """The text of a message in bytes and its charset (MSH-18, or ``default_charset`` when empty)."""
    if len(data) > max_bytes:
        raise Hl7ParseError.at(
            "HL7-001", "message", f"message of {len(data)} bytes is over the limit of {max_bytes} bytes"
        )
    delims, charset = sniff_header(data)
    bom = data.startswith(codecs.BOM_UTF8)
    effective = charset or default_charset
    py = python_codec(effective, "MSH-18" if charset else "default character set")
    if bom:
        if py != "utf-8":
            raise Hl7ParseError.at(
                "HL7-005", "segment 1", f"UTF-8 byte order mark but MSH-18 declares {charset or 'ASCII'!r}"
            )
        data = data[3:]
    try:
        return data.decode(py), effective, delims
    except UnicodeDecodeError as exc:
        line = (
            data.count(b"\r", 0, exc.start)
            if b"\n" not in data
            else len(re.findall(rb"\r\n|\r|\n", data[: exc.start]))
        )
        name = re.split(rb"\r\n|\r|\n", data[: exc.start])[-1][:3].decode("latin-1")
        raise Hl7ParseError.at(
            "HL7-005",
            f"segment {line + 1} ({name})",
            f"byte 0x{data[exc.start]:02X} at offset {exc.start} is not valid in character set "
            f"{effective or 'ASCII'}" + ("" if charset else " (MSH-18 is empty: ASCII)"),
        ) from None


def parse_bytes(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, default_charset: str = "") -> Message:
    """Parse one message from bytes, decoded by its MSH-18 character set (ASCII when empty, unless
    ``default_charset`` names another table 0211 value for senders known to omit MSH-18)."""
    text, charset, delims = _decode(data, max_bytes, default_charset)
    return parse(text, charset=charset, delims=delims)


# --------------------------------------------------------------------------- batches


class BatchPart(NamedTuple):
    """One message found in a file: its 1-based number, the line it starts on, and its bytes."""

    number: int
    line: int
    data: bytes


def split_messages(data: bytes, *, max_bytes: int = MAX_FILE_BYTES) -> Iterator[BatchPart]:
    """Split a file or batch into message bytes (HL7 v2.5 §2.10.3).

    Accepts bare files of messages (each starting with MSH; segments ended by ``\\r``, ``\\n`` or
    ``\\r\\n``; blank lines between them ignored) and FHS/BHS envelopes. BTS-1 (messages in the batch) and
    FTS-1 (batches in the file) are checked when present (``HL7-040``); a segment outside any message
    is ``HL7-041``.
    """
    if len(data) > max_bytes:
        raise Hl7ParseError.at(
            "HL7-001", "file", f"file of {len(data)} bytes is over the limit of {max_bytes} bytes"
        )
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    data = unframe(data)
    current: list[bytes] = []
    start_line = 0
    number = 0
    in_batch = 0
    batches = 0
    messages_in_file = 0
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        head = line[:3]
        if head == b"MSH":
            if current:
                number += 1
                in_batch += 1
                yield BatchPart(number, start_line, b"\r".join(current) + b"\r")
            current = [line]
            messages_in_file += 1
            start_line = lineno
            continue
        if head in (b"FHS", b"BHS", b"BTS", b"FTS"):
            if current:
                number += 1
                in_batch += 1
                yield BatchPart(number, start_line, b"\r".join(current) + b"\r")
                current = []
            text = line.decode("latin-1")
            if head == b"FHS":
                _delimiters(text, f"line {lineno} FHS-2")
                batches = 0
                messages_in_file = 0
            elif head == b"BHS":
                _delimiters(text, f"line {lineno} BHS-2")
                in_batch = 0
                batches += 1
            else:
                fs = text[3:4] or "|"
                count = text.split(fs)[1].strip() if fs in text else ""
                expected = in_batch if head == b"BTS" else batches
                # FHS without BHS (v2.5 §2.10.3 makes BHS optional in practice): FTS-1 then counts the
                # one implicit batch or, as several senders write it, the messages
                allowed = {expected} if head == b"BTS" or batches else {0, 1, messages_in_file}
                if count and (not count.isdigit() or int(count) not in allowed):
                    what = "messages in the batch" if head == b"BTS" else "batches in the file"
                    raise Hl7ParseError.at(
                        "HL7-040",
                        f"line {lineno} {head.decode()}-1",
                        f"declares {count!r} {what}, found {expected}",
                    )
            continue
        if not current:
            raise Hl7ParseError.at(
                "HL7-041",
                f"line {lineno}",
                f"segment {line[:3].decode('latin-1')!r} outside any message (no MSH before it)",
            )
        current.append(line)
    if current:
        number += 1
        yield BatchPart(number, start_line, b"\r".join(current) + b"\r")


_FRAME_START = re.compile(rb"(\A|[\r\n])[ \t]*\x0b")
_FRAME_END = re.compile(rb"(?:\r\n|\r|\n)?\x1c(?:\r\n|\r|\n)?")


def unframe(data: bytes) -> bytes:
    """A file of MLLP frames (``0x0B message 0x1C 0x0D``, as captured from a connection, also inside an
    FHS envelope) as plain messages: start blocks at the start of a line are removed and each end block
    ends the last segment. A file without a start block is returned as it is (a 0x0B or 0x1C elsewhere is
    then the parse error it always was)."""
    if b"\x0b" not in data or not _FRAME_START.search(data):
        return data
    return _FRAME_START.sub(rb"\1", _FRAME_END.sub(b"\r", data))


def iter_messages(data: bytes, *, default_charset: str = "") -> Iterator[Message]:
    """Every message of a file or batch, parsed; errors name the message number and line."""
    for part in split_messages(data):
        try:
            yield parse_bytes(part.data, default_charset=default_charset)
        except Hl7ParseError as exc:
            raise Hl7ParseError(
                [
                    Problem(
                        p.severity,
                        p.code,
                        f"message {part.number} (line {part.line}) {p.location}",
                        p.message,
                    )
                    for p in exc.problems
                ]
            ) from None

"""The Edifact syntax layer (ISO 9735, syntax versions 1-3, as Dutch medical mail uses it).

What it reads and writes (``docs/dialects/edifact.md`` §2):

- the optional ``UNA`` service string advice (six service characters: component ``:``, element ``+``,
  decimal ``.``, release ``?``, reserved `` ``, segment ``'``); without it the defaults;
- the release character: ``?'`` ``?+`` ``?:`` ``??`` are data, a release before any other character is
  kept literally with a warning (``EDI-012``), a release at the very end of a segment is an error;
- one interchange ``UNB ... UNZ`` holding one or more messages ``UNH ... UNT``; ``UNT-1`` (segments of the
  message, UNH and UNT included), ``UNT-2`` = ``UNH-1``, ``UNZ-1`` (messages) and ``UNZ-2`` = ``UNB-5`` are
  checked;
- the syntax levels ``UNOA``, ``UNOB`` (ISO 646 subsets) and ``UNOC`` (ISO 8859-1); every other level is
  refused (``EDI-006``). Characters outside the declared level are kept (nothing accepted is lost) and
  warned about (``EDI-013``);
- the Dutch segment numbering: a tag may carry its position as components (``TXT:1``, ``BEP:1:1:2``,
  ``OPB:1:1:2:1``); they are kept in :attr:`Segment.numbers` and written back as read.

Hostile input: every problem is a :class:`~mappings.problems.Problem` located by file, line and segment
(``results.edi line 14 segment 12 BEP element 3``); limits on the interchange (``MAX_INTERCHANGE_BYTES``),
a segment (``MAX_SEGMENT_CHARS``: a 20 MB TXT is refused, ``EDI-010``) and the number of segments.

Why not pydifact (PyPI ``pydifact`` 0.2.3, the registry's Edifact library): it refuses the Dutch segment
numbering outright (``TXT:1`` raises ``EDISyntaxError: Invalid segment name``), so it cannot read a single
real MEDVRI or MEDLAB; it checks neither UNT nor UNZ counts and warns on every service segment for want of
directory files. Measured (``bench/bench_edifact.py``, docs/performance.md, a 30-result MEDLAB, numbering
stripped so that pydifact can parse it): pydifact's parse 9.4 ms; this tokenizer 0.30 ms, the whole read
into canonical structs 0.65 ms plus the byte-identical write 0.18 ms: read + write 11x faster than
pydifact's parse alone. The hot path splits in C: released service characters are swapped for private-use
code points first (:func:`_protect`), so every split is a plain ``str.split``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mappings.problems import InputError, ProblemSink

MAX_INTERCHANGE_BYTES = 64 * 1024 * 1024
"""Largest interchange read (a file of many messages); beyond it ``EDI-009``."""
MAX_SEGMENT_CHARS = 64 * 1024
"""Longest segment read; the longest legal Dutch medical segment is well under 1 KB (``EDI-010``)."""
MAX_SEGMENTS = 2_000_000

SYNTAX_LEVELS = {"UNOA": "latin-1", "UNOB": "latin-1", "UNOC": "latin-1"}
"""Syntax identifier -> the codec the bytes are read with. UNOA/UNOB are ASCII subsets (checked
character by character); UNOC is ISO 8859-1."""
_UNOA = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-()/='+:?!\"%&*;<>")
_UNOB = _UNOA | frozenset("abcdefghijklmnopqrstuvwxyz@[\\]_{|}~#$^`")
ALLOWED = {"UNOA": _UNOA, "UNOB": _UNOB}
_TAG_RE = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_NUMBERS = re.compile(r"(?::[0-9]+)+\Z")


@dataclass(frozen=True, slots=True)
class ServiceChars:
    """The six service characters of a UNA (ISO 9735 §4)."""

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    reserved: str = " "
    segment: str = "'"

    def una(self) -> str:
        return f"UNA{self.component}{self.element}{self.decimal}{self.release}{self.reserved}{self.segment}"


DEFAULT_CHARS = ServiceChars()


@dataclass(slots=True)
class Segment:
    """One segment: tag, the Dutch numbering (``TXT:3`` -> ``("3",)``) and its data elements, each a list
    of components with release characters removed. Counted as the spec counts: element 1 is the first
    after the tag, component 1 the first of an element."""

    tag: str
    elements: list[list[str]]
    numbers: tuple[str, ...] = ()
    line: int = 0
    index: int = 0  # 1-based position in the interchange
    source: str = "<input>"

    def get(self, element: int, component: int = 1) -> str:
        """The component's text, ``""`` when absent."""
        if element > len(self.elements):
            return ""
        comps = self.elements[element - 1]
        return comps[component - 1] if component <= len(comps) else ""

    def loc(self, element: int | None = None, component: int | None = None) -> str:
        """``results.edi line 14 segment 12 BEP element 3 component 2``."""
        where = f"{self.source} line {self.line} segment {self.index} {self.label}"
        if element is not None:
            where += f" element {element}"
            if component is not None:
                where += f" component {component}"
        return where

    @property
    def label(self) -> str:
        return ":".join((self.tag, *self.numbers))


@dataclass(slots=True)
class Message:
    """One message: UNH ... UNT (both included in :attr:`segments`)."""

    reference: str  # UNH-1
    type: str  # UNH-2.1 (MEDVRI, MEDLAB)
    version: str  # UNH-2.2
    segments: list[Segment]
    number: int  # 1-based in the interchange

    @property
    def body(self) -> list[Segment]:
        """The segments between UNH and UNT."""
        return self.segments[1:-1]

    @property
    def unh(self) -> Segment:
        return self.segments[0]


@dataclass(slots=True)
class Interchange:
    """UNB ... UNZ. Dates and references as written (``prepared_date`` ``YYMMDD``, ``prepared_time``
    ``HHMM``) so that a read-then-write gives the same bytes."""

    syntax: str  # UNB-1.1 UNOA / UNOB / UNOC
    syntax_version: str  # UNB-1.2
    sender: str  # UNB-2.1
    recipient: str  # UNB-3.1
    prepared_date: str  # UNB-4.1
    prepared_time: str  # UNB-4.2
    reference: str  # UNB-5
    messages: list[Message] = field(default_factory=list)
    chars: ServiceChars | None = None  # the UNA when the input had one
    sender_qualifier: str = ""  # UNB-2.2
    recipient_qualifier: str = ""  # UNB-3.2
    application: str = ""  # UNB-7 application reference
    test: str = ""  # UNB-11 test indicator ("1" = test)
    newline: str = ""  # what followed each segment terminator in the input ("\r\n", "\n", "")


# --------------------------------------------------------------------------- reading


# Released service characters are swapped for private-use code points before splitting (text decoded
# from ISO 8859-1 can never hold them), so that every split is a plain ``str.split`` in C.
_P_REL, _P_SEG, _P_EL, _P_COMP = "\ue000", "\ue001", "\ue002", "\ue003"
_PLACED = re.compile("[\ue000-\ue003]")


def _protect(text: str, chars: ServiceChars) -> str:
    rel = chars.release
    if rel not in text:
        return text
    return (
        text.replace(rel + rel, _P_REL)
        .replace(rel + chars.segment, _P_SEG)
        .replace(rel + chars.element, _P_EL)
        .replace(rel + chars.component, _P_COMP)
    )


def _restore_table(chars: ServiceChars) -> dict[int, str]:
    return {
        ord(_P_REL): chars.release,
        ord(_P_SEG): chars.segment,
        ord(_P_EL): chars.element,
        ord(_P_COMP): chars.component,
    }


def _lone_release(text: str, chars: ServiceChars, seg: Segment, e: int, c: int, sink: ProblemSink) -> None:
    """A release character left after protection precedes an ordinary character (kept, warned) or ends
    the data (an error)."""
    rel = chars.release
    i = text.find(rel)
    while i >= 0:
        if i + 1 >= len(text):
            sink.error("EDI-011", seg.loc(e, c), "a release character ends the data element")
            return
        sink.warning(
            "EDI-012",
            seg.loc(e, c),
            f"release character before {text[i + 1]!r}, which needs no release: both kept",
        )
        i = text.find(rel, i + 2)


def _segment(raw: str, chars: ServiceChars, index: int, line: int, source: str, sink: ProblemSink) -> Segment:
    parts = raw.split(chars.element)
    head = parts[0]
    comp = chars.component
    numbers: tuple[str, ...] = ()
    if len(head) > 3:
        numbers = tuple(head[4:].split(comp)) if head[3] == comp else ("",)
    seg = Segment(head[:3], [], numbers, line, index, source)
    if not _TAG_RE.match(seg.tag) or (
        numbers
        and not (
            _NUMBERS.match(head, 3) if comp == ":" else all(x.isdigit() and x.isascii() for x in numbers)
        )
    ):
        sink.error("EDI-004", seg.loc(), f"not a segment tag: {head[:20]!r}")
        return seg
    elements = [p.split(comp) for p in parts[1:]]
    rel = chars.release
    if rel not in raw and _PLACED.search(raw) is None:  # nothing was released
        seg.elements = elements
        return seg
    if rel in raw:
        for e, comps in enumerate(elements, 1):
            for c, x in enumerate(comps, 1):
                if rel in x:
                    _lone_release(x, chars, seg, e, c, sink)
    table = _restore_table(chars)
    seg.elements = [
        [x.translate(table) for x in comps] if _PLACED.search(p) else comps
        for p, comps in zip(parts[1:], elements, strict=True)
    ]
    return seg


def _chars_from_una(text: str, source: str, sink: ProblemSink) -> ServiceChars | None:
    if len(text) < 9:
        sink.error("EDI-002", f"{source} line 1 UNA", "the UNA service string advice is cut short")
        return None
    c = text[3:9]
    chars = ServiceChars(c[0], c[1], c[2], c[3], c[4], c[5])
    used = [c[0], c[1], c[3], c[5]]
    if len(set(used)) != 4 or any(ch.isalnum() or ch in "\r\n" for ch in used) or chars.decimal not in ".,":
        sink.error(
            "EDI-002",
            f"{source} line 1 UNA",
            f"service characters {c!r} are not four distinct separators and a decimal mark . or ,",
        )
        return None
    return chars


def tokenize(
    data: bytes, *, source: str = "<input>", sink: ProblemSink
) -> tuple[list[Segment], ServiceChars | None, ServiceChars, str]:
    """Bytes -> segments (service segments included), the UNA if present, the characters in force and the
    newline that follows segment terminators. Decoding: the syntax identifier of UNB decides; the bytes
    are first read as ISO 8859-1 (every level here is a subset of it)."""
    if len(data) > MAX_INTERCHANGE_BYTES:
        sink.error("EDI-009", source, f"interchange is over the limit of {MAX_INTERCHANGE_BYTES} bytes")
        raise InputError(sink.problems)
    text = data.decode("latin-1")
    if text.startswith("\ufeff") or data.startswith(b"\xef\xbb\xbf"):
        sink.error("EDI-003", f"{source} line 1", "a UTF-8 byte order mark: Edifact UNOA/UNOC is not UTF-8")
        raise InputError(sink.problems)
    stripped = text.lstrip("\r\n")
    lead_lines = text.count("\n", 0, len(text) - len(stripped))
    text = stripped
    una: ServiceChars | None = None
    if text.startswith("UNA"):
        una = _chars_from_una(text, source, sink)
        if una is None:
            raise InputError(sink.problems)
        text = text[9:]
    chars = una or DEFAULT_CHARS
    raws = _protect(text, chars).split(chars.segment)
    tail = raws.pop() if raws else ""
    newline = ""
    if len(raws) > 1:
        m = re.match(r"[\r\n]*", raws[1])
        newline = m.group(0) if m else ""
    segments: list[Segment] = []
    line = 1 + lead_lines
    if len(raws) > MAX_SEGMENTS:
        sink.error("EDI-009", source, f"more than {MAX_SEGMENTS} segments")
        raise InputError(sink.problems)
    for index, raw in enumerate(raws, 1):
        if raw[:1] in ("\r", "\n"):
            body = raw.lstrip("\r\n")
            line += raw.count("\n", 0, len(raw) - len(body))
            raw = body
        if len(raw) > MAX_SEGMENT_CHARS:
            sink.error(
                "EDI-010",
                f"{source} line {line} segment {index} {raw[:3]!r}",
                f"segment of {len(raw)} characters is over the limit of {MAX_SEGMENT_CHARS}",
            )
            raise InputError(sink.problems)
        if "\n" in raw or "\r" in raw:
            sink.error(
                "EDI-005",
                f"{source} line {line} segment {index} {raw[:3]!r}",
                "a line break inside a segment (a segment terminator is missing or data holds a line break)",
            )
            raise InputError(sink.problems)
        segments.append(_segment(raw, chars, index, line, source, sink))
    if tail.strip("\r\n\x1a "):
        sink.error(
            "EDI-007",
            f"{source} line {line} segment {len(raws) + 1}",
            "the interchange is cut short: its last segment has no terminator",
        )
    return segments, una, chars, newline


def _int(seg: Segment, e: int, sink: ProblemSink) -> int | None:
    v = seg.get(e)
    if not v.isdigit() or not v.isascii() or len(v) > 9:
        sink.error("EDI-008", seg.loc(e), f"{v[:20]!r} is not a count")
        return None
    return int(v)


def parse(
    data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None, check_only: bool = False
) -> Interchange:
    """Read one interchange; raise :class:`InputError` with every problem when it is not sound (with
    ``check_only`` the envelope's problems stay in ``sink`` and the messages found are returned, so that
    the caller reports the problems of the messages as well).

    Checks: UNB first, UNZ last, nothing after UNZ; each message UNH ... UNT with the right count and
    reference; UNZ's message count and reference; the syntax level known and every character in it."""
    sink = sink if sink is not None else ProblemSink()
    segments, una, chars, newline = tokenize(data, source=source, sink=sink)
    if not segments or segments[0].tag != "UNB":
        where = segments[0].loc() if segments else f"{source} line 1"
        sink.error("EDI-001", where, "an interchange starts with UNB (after an optional UNA)")
        raise InputError(sink.problems)
    unb = segments[0]
    syntax, version = unb.get(1, 1), unb.get(1, 2)
    if syntax not in SYNTAX_LEVELS:
        sink.error(
            "EDI-006",
            unb.loc(1, 1),
            f"syntax level {syntax!r} is not supported (UNOA, UNOB, UNOC: ISO 646 and ISO 8859-1)",
        )
        raise InputError(sink.problems)
    ic = Interchange(
        syntax=syntax,
        syntax_version=version,
        sender=unb.get(2, 1),
        sender_qualifier=unb.get(2, 2),
        recipient=unb.get(3, 1),
        recipient_qualifier=unb.get(3, 2),
        prepared_date=unb.get(4, 1),
        prepared_time=unb.get(4, 2),
        reference=unb.get(5, 1),
        application=unb.get(7, 1),
        test=unb.get(11, 1),
        chars=una,
        newline=newline,
    )
    if not ic.reference:
        sink.error("EDI-008", unb.loc(5), "UNB has no interchange reference")
    allowed = ALLOWED.get(syntax)
    if allowed is not None:
        _check_level(data, allowed, syntax, segments, sink)
    current: list[Segment] | None = None
    unz: Segment | None = None
    for seg in segments[1:]:
        if unz is not None:
            sink.error("EDI-007", seg.loc(), "a segment after UNZ")
            break
        tag = seg.tag
        if tag == "UNH":
            if current is not None:
                sink.error("EDI-008", seg.loc(), "UNH before the previous message's UNT")
            current = [seg]
        elif tag == "UNT":
            if current is None:
                sink.error("EDI-008", seg.loc(), "UNT without UNH")
                continue
            current.append(seg)
            _close(current, ic, sink)
            current = None
        elif tag == "UNZ":
            unz = seg
            if current is not None:
                sink.error("EDI-007", seg.loc(), "UNZ before the message's UNT: the message is cut short")
                current = None
        elif current is None:
            sink.error("EDI-008", seg.loc(), f"segment {tag} outside a message (between UNT and UNH)")
        else:
            current.append(seg)
    if current is not None:
        last = current[-1]
        sink.error("EDI-007", last.loc(), "the interchange is cut short: the message has no UNT")
    if unz is None:
        where = segments[-1].loc() if segments else source
        sink.error("EDI-007", where, "the interchange is cut short: no UNZ")
    else:
        count = _int(unz, 1, sink)
        if count is not None and count != len(ic.messages):
            sink.error(
                "EDI-008",
                unz.loc(1),
                f"UNZ counts {count} messages; the interchange holds {len(ic.messages)}",
            )
        if unz.get(2) != ic.reference:
            sink.error("EDI-008", unz.loc(2), f"UNZ reference {unz.get(2)!r} is not UNB's {ic.reference!r}")
    if not ic.messages and not sink.has_errors:
        sink.error("EDI-008", unb.loc(), "the interchange holds no message")
    if not check_only:
        sink.raise_if_errors()
    return ic


def _close(segs: list[Segment], ic: Interchange, sink: ProblemSink) -> None:
    unh, unt = segs[0], segs[-1]
    ref = unh.get(1)
    count = _int(unt, 1, sink)
    if count is not None and count != len(segs):
        sink.error(
            "EDI-008",
            unt.loc(1),
            f"UNT counts {count} segments; message {ref!r} has {len(segs)} (UNH and UNT included)",
        )
    if unt.get(2) != ref:
        sink.error("EDI-008", unt.loc(2), f"UNT reference {unt.get(2)!r} is not UNH's {ref!r}")
    if not ref:
        sink.error("EDI-008", unh.loc(1), "UNH has no message reference")
    ic.messages.append(
        Message(
            reference=ref,
            type=unh.get(2, 1),
            version=unh.get(2, 2),
            segments=segs,
            number=len(ic.messages) + 1,
        )
    )


def _check_level(
    data: bytes, allowed: frozenset[str], syntax: str, segments: list[Segment], sink: ProblemSink
) -> None:
    """Characters outside UNOA/UNOB are kept; one warning for the interchange names the first place and
    every such character (Dutch senders often declare UNOA and write lower case)."""
    present = {chr(b) for b in set(data)} - {"\r", "\n"}
    bad = "".join(sorted(present - allowed))
    if not bad:
        return
    for seg in segments:
        for e, comps in enumerate(seg.elements, 1):
            for c, text in enumerate(comps, 1):
                if any(ch not in allowed for ch in text):
                    sink.warning(
                        "EDI-013",
                        seg.loc(e, c),
                        f"characters outside {syntax} (first here) kept: {bad[:40]!r}",
                    )
                    return


# --------------------------------------------------------------------------- writing


class LineBreakInData(ValueError):
    """A value with a line break where the message holds one line (only TXT/OPB hold lines, one each)."""


class Writer:
    """Build segments as text with release characters added; :meth:`interchange` joins them."""

    def __init__(self, chars: ServiceChars = DEFAULT_CHARS) -> None:
        self.chars = chars
        c = chars
        self._need = re.compile("[" + re.escape(c.release + c.component + c.element + c.segment) + "]")
        self._rel = c.release

    def escape(self, text: str) -> str:
        if "\n" in text or "\r" in text:
            raise LineBreakInData(text)
        if self._need.search(text) is None:
            return text
        return self._need.sub(lambda m: self._rel + m.group(0), text)

    def segment(
        self, tag: str, *elements: str | tuple[str, ...] | list[str] | None, numbers: tuple[str, ...] = ()
    ) -> str:
        """One segment without terminator; trailing empty elements and components are left out."""
        c = self.chars
        out: list[str] = []
        for el in elements:
            if el is None:
                out.append("")
            elif isinstance(el, str):
                out.append(self.escape(el))
            else:
                comps = [self.escape(x or "") for x in el]
                while comps and not comps[-1]:
                    comps.pop()
                out.append(c.component.join(comps))
        while out and not out[-1]:
            out.pop()
        head = c.component.join((tag, *numbers))
        return c.element.join((head, *out))


def encode(text: str, syntax: str) -> bytes:
    """Text -> bytes in the interchange's level; raises ``UnicodeEncodeError`` for what it cannot hold."""
    return text.encode(SYNTAX_LEVELS.get(syntax, "latin-1"))


def write_interchange(ic: Interchange, bodies: list[tuple[str, str, str, list[str]]]) -> bytes:
    """Serialise an interchange: ``bodies`` holds (message reference, type, version, body segments)
    per message; UNH, UNT (with its count), UNB and UNZ are added here."""
    chars = ic.chars or DEFAULT_CHARS
    w = Writer(chars)
    term = chars.segment + ic.newline
    out: list[str] = []
    if ic.chars is not None:
        out.append(chars.una() + ic.newline)
    unb = w.segment(
        "UNB",
        (ic.syntax, ic.syntax_version),
        (ic.sender, ic.sender_qualifier),
        (ic.recipient, ic.recipient_qualifier),
        (ic.prepared_date, ic.prepared_time),
        ic.reference,
        None,
        ic.application or None,
        None,
        None,
        None,
        ic.test or None,
    )
    out.append(unb + term)
    for ref, mtype, version, body in bodies:
        out.append(w.segment("UNH", ref, (mtype, version)) + term)
        out.extend(s + term for s in body)
        out.append(w.segment("UNT", str(len(body) + 2), ref) + term)
    out.append(w.segment("UNZ", str(len(bodies)), ic.reference) + term)
    return encode("".join(out), ic.syntax)

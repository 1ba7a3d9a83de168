"""The ``edifact-medvri`` and ``edifact-medlab`` command-line formats: a file holding one interchange.

``hisgw convert results.edi --from edifact-medlab --to fhir`` reads one interchange (``UNB ... UNZ``) of
one or more messages and writes one FHIR message Bundle per message as NDJSON
(:func:`mappings.edifact.fhir.to_fhir`); ``--to hl7v2`` an ORU^R01 (MEDLAB) or MDM^T02 (MEDVRI) per
message; ``--to canonical`` the message structs as JSON Lines. The other way round (``--from fhir``,
``--from hl7v2``, ``--from canonical`` ``--to edifact-...``) writes **one interchange** holding every
message, its envelope that of the first message (new messages get UNB-5 from the first control id).

Every problem is located by file, line, segment number and tag (``results.edi line 14 segment 12 BEP
element 3``); all messages are checked, output is written only when every one is valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import msgspec

import formats
from mappings.codec import sink_or_new
from mappings.edifact import canonical as ec
from mappings.edifact import envelope as envl
from mappings.edifact import medlab, medvri
from mappings.edifact.fhir import from_fhir, from_mdm, from_oru, to_fhir, to_mdm, to_oru
from mappings.edifact.syntax import MAX_INTERCHANGE_BYTES, LineBreakInData, parse, write_interchange
from mappings.problems import InputError, Problem, ProblemSink, Severity

_READERS = {"MEDVRI": medvri.read, "MEDLAB": medlab.read}
_WRITERS = {ec.MedvriMessage: medvri.write, ec.MedlabMessage: medlab.write}


def read_interchange(
    data: bytes,
    *,
    source: str = "<input>",
    sink: ProblemSink | None = None,
    accept: tuple[str, ...] = ("MEDVRI", "MEDLAB"),
) -> list[ec.EdifactMessage]:
    """Every message of one interchange, mapped; :class:`InputError` with every problem otherwise."""
    sink = sink_or_new(sink)
    ic = parse(data, source=source, sink=sink, check_only=True)
    env = envl.from_interchange(ic)
    out: list[ec.EdifactMessage] = []
    for msg in ic.messages:
        reader = _READERS.get(msg.type)
        if reader is None or msg.type not in accept:
            sink.error(
                "EDI-031",
                msg.unh.loc(2),
                f"message type {msg.type!r} is not read here (accepted: {', '.join(accept)})",
            )
            continue
        if msg.version != "1":
            sink.warning(
                "EDI-032", msg.unh.loc(2, 2), f"{msg.type} version {msg.version!r} read as version 1"
            )
        x = reader(msg, env, sink)
        if x is not None:
            out.append(x)
    sink.raise_if_errors()
    return out


def write_messages(items: Iterable[ec.EdifactMessage]) -> bytes:
    """One interchange holding every message (the first message's envelope)."""
    items = list(items)
    if not items:
        return b""
    ic = envl.to_interchange(items[0].envelope)
    try:
        return write_interchange(ic, [_WRITERS[type(x)](x) for x in items])  # type: ignore[operator]
    except LineBreakInData as exc:
        raise InputError(
            [
                Problem(
                    Severity.ERROR,
                    "EDI-035",
                    f"message {items[0].reference}",
                    f"a value with a line break where Edifact holds one line: {str(exc)[:30]!r}",
                )
            ]
        ) from None
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise InputError(
            [
                Problem(
                    Severity.ERROR,
                    "EDI-033",
                    f"message {items[0].reference}",
                    f"character {bad!r} cannot be written in syntax level {ic.syntax} (ISO 8859-1)",
                )
            ]
        ) from None


def _name_of(codec_path: str) -> str:
    """The registry name of the format whose codec is ``codec_path`` (no other format's name is spelled
    here: the registry is the one list of names)."""
    return next(f.name for f in formats.all_formats() if f.codec_path == codec_path)


class EdifactFormat:
    """Files of one Edifact interchange of ``message_type`` messages. Its items are message structs, not
    dossiers; :attr:`message_pairs` names the conversions it makes (with the ``fhir``, ``hl7v2`` and
    ``canonical`` formats, named by their registry entries)."""

    def __init__(self, name: str, message_type: str) -> None:
        self.name = name
        self.message_type = message_type

    @property
    def message_pairs(self) -> dict[tuple[str, str], tuple[Any, Any]]:
        n = self.name
        out: dict[tuple[str, str], tuple[Any, Any]] = {(n, n): (self, self)}
        for side in (_FhirSide(self), _Hl7Side(self), _CanonicalSide(self)):
            out[(n, side.name)] = (self, side)
            out[(side.name, n)] = (side, self)
        return out

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> Any:
        raise InputError(
            [Problem(Severity.ERROR, "EDI-034", source, "an Edifact file holds messages, not a dossier")]
        )

    def write(self, dossier: Any) -> bytes:
        raise TypeError(f"{self.name} writes messages (write_many), not dossiers")

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[ec.EdifactMessage]:
        sink = sink_or_new(sink)
        data = stream.read(MAX_INTERCHANGE_BYTES + 1)
        yield from read_interchange(data, source=source, sink=sink, accept=(self.message_type,))

    def write_many(self, items: Iterable[Any], out: BinaryIO) -> int:
        items = [self._coerce(x) for x in items]
        out.write(write_messages(items))
        return len(items)

    def _coerce(self, x: Any) -> ec.EdifactMessage:
        if isinstance(x, ec.MedlabMessage | ec.MedvriMessage):
            got = "MEDLAB" if isinstance(x, ec.MedlabMessage) else "MEDVRI"
        elif self.message_type == "MEDLAB" and hasattr(x, "orders"):
            return from_oru(x)
        elif self.message_type == "MEDVRI" and hasattr(x, "item"):
            return from_mdm(x)
        else:
            got = type(x).__name__
        if got != self.message_type:
            raise InputError(
                [
                    Problem(
                        Severity.ERROR,
                        "EDI-031",
                        self.name,
                        f"a {got} message cannot be written as {self.message_type}",
                    )
                ]
            )
        return x


class _FhirSide:
    """FHIR message Bundles (NDJSON) of Edifact messages."""

    def __init__(self, fmt: EdifactFormat) -> None:
        self.fmt = fmt
        self.name = _name_of("mappings.fhir.format:FORMAT")

    def write_many(self, items: Iterable[ec.EdifactMessage], out: BinaryIO) -> int:
        from mappings.fhir.common import dumps

        n = 0
        for x in items:
            out.write(dumps(to_fhir(x)) + b"\n")
            n += 1
        return n

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[ec.EdifactMessage]:
        from mappings.fhir.format import MAX_BUNDLE_BYTES, decode

        sink = sink_or_new(sink)
        lineno = 0
        for line in iter(lambda: stream.readline(MAX_BUNDLE_BYTES + 1), b""):
            lineno += 1
            if not line.strip():
                continue
            where = f"{source}:{lineno}"
            doc = decode(line, where, sink)
            if doc is None:
                continue
            try:
                x = from_fhir(doc, sink, source=where)
            except InputError:
                continue
            if not sink.has_errors:
                yield x
        if sink.has_errors:
            raise InputError(sink.problems)


class _Hl7Side:
    """HL7 v2 messages (ORU^R01 for MEDLAB, MDM^T02 for MEDVRI)."""

    def __init__(self, fmt: EdifactFormat) -> None:
        self.fmt = fmt
        self.name = _name_of("mappings.hl7v2.format:FORMAT")

    def write_many(self, items: Iterable[ec.EdifactMessage], out: BinaryIO) -> int:
        from mappings.hl7v2 import messages

        n = 0
        for x in items:
            v2 = to_oru(x) if isinstance(x, ec.MedlabMessage) else to_mdm(x)
            out.write(messages.write(v2).to_bytes())
            n += 1
        return n

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[Any]:
        from mappings.hl7v2.format import FORMAT

        yield from FORMAT.iter_read(stream, source=source, sink=sink)


class _CanonicalSide:
    """The message structs as canonical JSON, one per line."""

    def __init__(self, fmt: EdifactFormat) -> None:
        self.fmt = fmt
        self.name = _name_of("adapters.canonical:FORMAT")

    def write_many(self, items: Iterable[ec.EdifactMessage], out: BinaryIO) -> int:
        n = 0
        for x in items:
            out.write(ec.to_json(x) + b"\n")
            n += 1
        return n

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[ec.EdifactMessage]:
        sink = sink_or_new(sink)
        for lineno, line in enumerate(iter(lambda: stream.readline(64 * 1024 * 1024 + 1), b""), 1):
            if not line.strip():
                continue
            try:
                yield ec.from_json(line)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                sink.error("CAN-002", f"{source}:{lineno}", f"not a valid canonical Edifact message: {exc}")
                raise InputError(sink.problems) from None


MEDVRI_FORMAT = EdifactFormat("edifact-medvri", "MEDVRI")
MEDLAB_FORMAT = EdifactFormat("edifact-medlab", "MEDLAB")

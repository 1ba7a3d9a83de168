"""The ``hl7v2`` command-line format: files of HL7 v2 messages, converted message by message.

``hisgw convert FILE --from hl7v2 --to fhir`` reads a file of many messages (each starting with MSH;
segments ended by ``\\r``, ``\\n`` or ``\\r\\n``; blank lines between messages; optional FHS/BHS batch
envelopes, :func:`mappings.hl7v2.er7.split_messages`) and writes one FHIR message Bundle per message
(:func:`mappings.hl7v2.fhir.to_fhir`) as NDJSON, in input order. ``--to hl7v2`` writes the messages
again (segments ended by ``\\r``, one message after another); ``--from fhir --to hl7v2`` reads such NDJSON
back. A file of messages holds no dossiers: the conversions this format makes are listed in
:attr:`Hl7v2Format.message_pairs` and the command line refuses any other pairing with it (exit 2).

Every problem is located by file, message number, the line the message starts on and the v2 location:
``results.hl7 message 2 (line 5) PID-7``; for FHIR input ``bundles.ndjson:3 Bundle.entry[2]...``. All
messages are checked (the first error only with ``--strict``); output is written only when all are valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from mappings.codec import sink_or_new
from mappings.hl7v2 import canonical as c
from mappings.hl7v2 import messages
from mappings.hl7v2.er7 import MAX_FILE_BYTES, Hl7ParseError, parse_bytes, split_messages
from mappings.problems import InputError, Problem, ProblemSink, Severity


def _relocate(sink: ProblemSink, problems: Iterable[Problem], prefix: str) -> None:
    for p in problems:
        if p.severity is Severity.ERROR:
            sink.error(p.code, f"{prefix} {p.location}", p.message)
        elif p.severity is Severity.INFORMATION:
            sink.info(p.code, f"{prefix} {p.location}", p.message)
        else:
            sink.warning(p.code, f"{prefix} {p.location}", p.message)


class Hl7v2Format:
    """Files of HL7 v2 messages (ER7). Its items are canonical message structs, not dossiers: it offers
    what the command line uses of a :class:`~adapters.base.DossierFormat` (``iter_read``, ``write_many``)
    and names the conversions it makes in :attr:`message_pairs`."""

    name = "hl7v2"

    @property
    def message_pairs(self) -> dict[tuple[str, str], tuple[Any, Any]]:
        """(from, to) -> (reader, writer) for every conversion of messages the command line makes."""
        fhir = FHIR_MESSAGES.name
        return {
            (self.name, self.name): (self, self),
            (self.name, fhir): (TO_FHIR, FHIR_MESSAGES),
            (fhir, self.name): (FHIR_MESSAGES, self),
        }

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> Any:
        raise InputError(
            [Problem(Severity.ERROR, "HL7-072", source, "an HL7 v2 file holds messages, not a dossier")]
        )

    def write(self, dossier: Any) -> bytes:
        raise TypeError("hl7v2 writes messages (write_many), not dossiers")

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[Any]:
        """Every message of the file as its canonical struct, in order (see the module docstring)."""
        return self._iter(stream, source, sink, lambda data, one: messages.read(parse_bytes(data), one))

    def _iter(self, stream: BinaryIO, source: str, sink: ProblemSink | None, read: Any) -> Iterator[Any]:
        sink = sink_or_new(sink)
        data = stream.read(MAX_FILE_BYTES + 1)
        try:
            parts = list(split_messages(data))
        except Hl7ParseError as exc:
            _relocate(sink, exc.problems, source)
            raise InputError(sink.problems) from None
        if not parts:
            sink.error("HL7-002", source, "no message: the input holds no MSH segment")
            raise InputError(sink.problems)
        for part in parts:
            prefix = f"{source} message {part.number} (line {part.line})"
            one = ProblemSink(strict=sink.strict)
            try:
                obj = read(part.data, one)
            except InputError as exc:
                _relocate(sink, [*one.problems, *(p for p in exc.problems if p not in one.problems)], prefix)
                continue
            _relocate(sink, one.problems, prefix)
            if not sink.has_errors:  # after an error nothing is written: stop mapping, go on checking
                yield obj

    def write_many(self, items: Iterable[c.Hl7Canonical], out: BinaryIO) -> int:
        """Every message in ER7, segments ended by ``\\r``, one after another."""
        n = 0
        for obj in items:
            out.write(messages.write(obj).to_bytes())
            n += 1
        return n


class Hl7v2ToFhir(Hl7v2Format):
    """``--from hl7v2 --to fhir``: each message straight to its Bundle's JSON bytes by
    :func:`mappings.hl7v2.fast.oru_bytes`, the one mapping the MLLP listener and ``bench/`` use too (the lean
    ORU^R01 path, every other message by the general route: the same bytes either way)."""

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[Any]:
        from mappings.hl7v2.fast import oru_bytes

        return self._iter(stream, source, sink, oru_bytes)


class FhirMessages:
    """HL7 v2 messages as FHIR R4 message Bundles, one per NDJSON line (or one pretty-printed Bundle)."""

    @property
    def name(self) -> str:
        """The name of the ``fhir`` format, whose Bundles these are."""
        from mappings.fhir.format import FORMAT as FHIR

        return FHIR.name

    def write_many(self, items: Iterable[c.Hl7Canonical], out: BinaryIO) -> int:
        from mappings.hl7v2.fast import bundle_bytes

        n = 0
        for obj in items:  # Bundle bytes made already (Hl7v2ToFhir), or a canonical message
            out.write((obj if isinstance(obj, bytes) else bundle_bytes(obj)) + b"\n")
            n += 1
        return n

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[c.Hl7Canonical]:
        from mappings.fhir.format import MAX_BUNDLE_BYTES, _whole, decode
        from mappings.hl7v2 import fhir

        sink = sink_or_new(sink)
        first = stream.readline(MAX_BUNDLE_BYTES + 1)
        lineno = 1
        while first and not first.strip():
            first = stream.readline(MAX_BUNDLE_BYTES + 1)
            lineno += 1
        if not first:
            sink.error("FHIR-006", f"{source}:1", "empty input: no Bundle")
            raise InputError(sink.problems)
        docs: Iterator[tuple[str, Any]]
        if _whole(first) is None:  # one pretty-printed Bundle
            rest = stream.read(MAX_BUNDLE_BYTES + 1 - len(first))
            docs = iter([(source, decode(first + rest, source, sink))])
        else:
            docs = self._lines(stream, first, lineno, source, sink, decode)
        for where, doc in docs:
            if doc is None:
                continue
            try:
                obj = fhir.from_fhir(doc, sink, source=where)
            except InputError:
                continue  # the problems are in the sink
            if not sink.has_errors:
                yield obj
        if sink.has_errors:
            raise InputError(sink.problems)

    @staticmethod
    def _lines(
        stream: BinaryIO, first: bytes, lineno: int, source: str, sink: ProblemSink, decode: Any
    ) -> Iterator[tuple[str, Any]]:
        line = first
        while line:
            if line.strip():
                where = f"{source}:{lineno}"
                yield where, decode(line, where, sink)
            line = stream.readline(64 * 1024 * 1024 + 1)
            lineno += 1


FHIR_MESSAGES = FhirMessages()
TO_FHIR = Hl7v2ToFhir()
FORMAT = Hl7v2Format()

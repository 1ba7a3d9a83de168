"""The ``fhir`` format: a dossier as a FHIR R4 ``collection`` Bundle (JSON); many as NDJSON, a Bundle a line.

``hisgw convert x --from medicom --to fhir`` writes :func:`mappings.fhir.bundle.to_fhir` as JSON (orjson,
byte-stable: the same dossier gives the same bytes); many dossiers stream as one Bundle per line. Reading
accepts one Bundle (pretty-printed or not; a summary document Bundle too) or NDJSON of Bundles. Each
Bundle is first checked by the inbound validator (:func:`mappings.fhir.validator.validate`: hostile input,
structure, bindings, Dutch identifiers, references; problems ``FHIRV-0xx``), then mapped by
:func:`mappings.fhir.bundle.from_fhir` (problems ``FHIR-0xx``). Locations are ``file[:line]`` plus a
FHIRPath-like expression: ``dossier.json Bundle.entry[3].resource.identifier[0].value``.

Numbers are decoded as exact decimals (msgspec ``float_hook=Decimal``): a measured ``37.30`` stays
``Decimal("37.30")``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec

from mappings.codec import DossierFormat, PostboxFormat, sink_or_new
from mappings.fhir import bundle
from mappings.fhir.common import dumps
from mappings.fhir.validator import MAX_SEPARATORS, validate
from mappings.model import Dossier, PostboxItem
from mappings.problems import InputError, ProblemSink

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
"""Largest Bundle read (one document, or one NDJSON line)."""
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode(data: bytes, where: str, sink: ProblemSink) -> object | None:
    """JSON bytes -> Python values, exact decimals; ``FHIR-001`` for bad JSON, ``FHIR-003`` when too big."""
    if len(data) > MAX_BUNDLE_BYTES:
        sink.error("FHIR-003", where, f"{len(data):,} bytes: over the limit of {MAX_BUNDLE_BYTES:,}")
        return None
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    commas = data.count(b",")
    if commas > MAX_SEPARATORS:  # bounds what the decoder allocates (the limit of the validator)
        sink.error(
            "FHIR-003", where, f"{commas:,} commas: more JSON values than allowed ({MAX_SEPARATORS:,})"
        )
        return None
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        sink.error("FHIR-001", where, f"not valid JSON: {exc}")
    except RecursionError:  # msgspec refuses deep nesting this way
        sink.error("FHIR-001", where, "not valid JSON: nested too deeply")
    return None


def read_bundle(data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> Dossier:
    """One Bundle's bytes -> the dossier; :class:`InputError` with every problem (the first, strict)."""
    sink = sink_or_new(sink)
    start = len(sink.problems)
    doc = decode(data, source, sink)
    if doc is None:
        raise InputError(sink.problems[start:])
    return read_decoded(doc, source=source, sink=sink)


def read_decoded(doc: Any, *, source: str, sink: ProblemSink) -> Dossier:
    """An already decoded Bundle -> the dossier (validated first, see :func:`read_bundle`)."""
    start = len(sink.problems)
    checked = ProblemSink(max_errors=sink.max_errors)
    validate(doc, sink=checked)  # any JSON value: the validator refuses what is not an object
    for p in checked.problems:
        located = f"{source} {p.location}"
        (sink.error if p.severity.value == "error" else sink.warning)(p.code, located, p.message)
    if checked.has_errors:
        raise InputError(sink.problems[start:])
    return bundle.from_fhir(doc, sink, source=source)


class FhirFormat(DossierFormat):
    """Dossiers as FHIR R4 collection Bundles (JSON; NDJSON when many)."""

    name = "fhir"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> Dossier:
        return read_bundle(data, source=source, sink=sink)

    def write(self, dossier: Dossier) -> bytes:
        return dumps(bundle.to_fhir(dossier)) + b"\n"

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[Dossier]:
        sink = sink_or_new(sink)
        first = stream.readline(MAX_BUNDLE_BYTES + 1)
        while first and not first.strip():
            first = stream.readline(MAX_BUNDLE_BYTES + 1)
        if not first:
            sink.error("FHIR-006", f"{source}:1", "empty input: no Bundle")
            raise InputError(sink.problems)
        doc = _whole(first)
        if doc is None:
            # one (pretty-printed) Bundle: read it whole
            rest = stream.read(MAX_BUNDLE_BYTES + 1 - len(first))
            yield self.read(first + rest, source=source, sink=sink)
            return
        yield read_decoded(doc, source=f"{source}:1", sink=sink)
        lineno = 1
        while line := stream.readline(MAX_BUNDLE_BYTES + 1):
            lineno += 1
            if line.strip():
                if len(line) > MAX_BUNDLE_BYTES:
                    sink.error("FHIR-003", f"{source}:{lineno}", f"line is over {MAX_BUNDLE_BYTES:,} bytes")
                    raise InputError(sink.problems)
                yield self.read(line, source=f"{source}:{lineno}", sink=sink)

    def write_many(self, dossiers: Iterable[Dossier], out: BinaryIO) -> int:
        n = 0
        for d in dossiers:
            out.write(self.write(d))
            n += 1
        return n

    def write_summaries(
        self, summaries: Iterable[Dossier | tuple[Dossier, Dossier]], out: BinaryIO, *, as_of: dt.date
    ) -> int:
        """Professional summaries as FHIR document Bundles (``hisgw summary --to fhir``), not collections:
        :func:`mappings.fhir.document.write_summary_documents` (an item may be a pair: the summary and the
        dossier it was selected from)."""
        from mappings.fhir.document import write_summary_documents

        return write_summary_documents(summaries, out, as_of=as_of)


class FhirPostbox(PostboxFormat):
    """The postbox form of ``fhir``: a postbox item as one FHIR Communication
    (:func:`mappings.fhir.communication.postbox_to_fhir`), POSTed to ``<url>/Communication``."""

    name = FhirFormat.name

    def write_postbox(self, item: PostboxItem) -> bytes:
        from mappings.fhir.communication import postbox_to_fhir

        return dumps(postbox_to_fhir(item))

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> PostboxItem:
        from mappings.fhir.communication import postbox_from_fhir

        sink = sink_or_new(sink)
        start = len(sink.problems)
        doc = decode(data, source, sink)
        item = None
        if isinstance(doc, dict) and doc.get("resourceType") == "Communication":
            item = postbox_from_fhir(doc, sink, source=source)
        elif doc is not None:
            sink.error("FHIR-002", source, "the document is not a Communication (a postbox item)")
        if item is None or sink.has_errors:
            raise InputError(sink.problems[start:])
        return item


def _whole(line: bytes) -> object | None:
    """The line decoded when it is a complete JSON object (NDJSON), ``None`` when it is the start of a
    pretty-printed document (or not JSON: the whole-document read reports that)."""
    text = line.strip()
    if not (text.startswith(b"{") and text.endswith(b"}")) or len(text) > MAX_BUNDLE_BYTES:
        return None
    if text.count(b",") > MAX_SEPARATORS:
        return None
    try:
        return _DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None


FORMAT = FhirFormat()
POSTBOX = FhirPostbox()

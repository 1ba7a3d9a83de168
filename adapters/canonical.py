"""The canonical format: the canonical model as JSON (one dossier per line when there are many).

A single dossier is one JSON object (``mappings.model.to_json``); a file of many dossiers has one object
per line (JSON Lines), which streams. Decoding validates every type and rule of the model and names
the JSON path of the first problem (msgspec stops at the first one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import msgspec

from mappings.codec import DossierFormat, sink_or_new
from mappings.model import Dossier, from_json, to_json
from mappings.problems import InputError, ProblemSink

MAX_LINE_BYTES = 64 * 1024 * 1024


class CanonicalFormat(DossierFormat):
    name = "canonical"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> Dossier:
        sink = sink_or_new(sink)
        try:
            return from_json(data)
        except msgspec.ValidationError as exc:
            sink.error("CAN-002", source, f"not a valid canonical dossier: {exc}")
        except msgspec.DecodeError as exc:
            sink.error("CAN-001", source, f"not valid JSON: {exc}")
        raise InputError(sink.problems)

    def write(self, dossier: Dossier) -> bytes:
        return to_json(dossier) + b"\n"

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[Dossier]:
        sink = sink_or_new(sink)
        first = stream.readline(MAX_LINE_BYTES + 1)
        rest_start = stream.readline(MAX_LINE_BYTES + 1)
        if rest_start and not rest_start.lstrip().startswith(b"{"):
            # a pretty-printed single document: read it whole
            yield self.read(first + rest_start + stream.read(), source=source, sink=sink)
            return
        if not first.strip() and not rest_start:
            sink.error("CAN-004", f"{source}:1", "empty input: no dossier")
            raise InputError(sink.problems)
        lineno = 0
        pending = [first, rest_start]
        while True:
            line = pending.pop(0) if pending else stream.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            lineno += 1
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                sink.error("CAN-003", f"{source}:{lineno}", f"line is over {MAX_LINE_BYTES} bytes")
                raise InputError(sink.problems)
            yield self.read(line, source=f"{source}:{lineno}", sink=sink)

    def write_many(self, dossiers: Iterable[Dossier], out: BinaryIO) -> int:
        n = 0
        for d in dossiers:
            out.write(self.write(d))
            n += 1
        return n


FORMAT = CanonicalFormat()

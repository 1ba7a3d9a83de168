"""What every dialect adapter offers, and the registry of formats the command line knows.

A format reads bytes into canonical :class:`~mappings.model.Dossier` objects and writes them back.
Formats that hold many patients in one file (``omnihis-ndjson``, ``microhis``, ``canonical``) read and
write *streaming*: one dossier at a time, so a 10,000-patient file never sits in memory whole.

Adapters report bad input through a :class:`~mappings.problems.ProblemSink` with a precise location,
and raise :class:`~mappings.problems.InputError` when a dossier cannot be built.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from mappings.model import Dossier, PostboxItem
from mappings.problems import InputError, Problem, ProblemSink, Severity

MAX_INPUT_BYTES = 256 * 1024 * 1024
"""Largest single document any adapter reads whole (streaming formats are limited per record)."""


class DossierFormat:
    """Base of every format. Subclasses implement :meth:`read` and :meth:`write`; streaming formats
    override :meth:`iter_read` and :meth:`write_many` as well."""

    name: str = ""
    streaming: bool = False
    media_type: str = "application/octet-stream"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> Dossier:
        """Read one dossier from bytes; raise InputError (with every problem, or the first in strict mode)."""
        raise NotImplementedError

    def write(self, dossier: Dossier) -> bytes:
        """Write one dossier; byte-stable: the same dossier always gives the same bytes."""
        raise NotImplementedError

    def iter_read(
        self, stream: BinaryIO, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> Iterator[Dossier]:
        """Yield every dossier in the stream. Default: the whole stream is one dossier."""
        data = stream.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(
                [
                    Problem(
                        Severity.ERROR,
                        "IO-001",
                        source,
                        f"input is over the limit of {MAX_INPUT_BYTES} bytes",
                    )
                ]
            )
        yield self.read(data, source=source, sink=sink)

    def write_many(self, dossiers: Iterable[Dossier], out: BinaryIO) -> int:
        """Write every dossier to ``out``; return how many. Default: exactly one dossier."""
        count = 0
        for d in dossiers:
            if count:
                raise InputError(
                    [
                        Problem(
                            Severity.ERROR,
                            "IO-002",
                            self.name,
                            f"format {self.name} holds one dossier; the input has more",
                        )
                    ]
                )
            out.write(self.write(d))
            count += 1
        return count


class PostboxFormat:
    """A HIS's postbox import form: how feedback (and auto-filings) enter that HIS."""

    name: str = ""

    def write_postbox(self, item: PostboxItem) -> bytes:
        raise NotImplementedError

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> PostboxItem:
        raise NotImplementedError


# name -> "module:attribute"; modules are imported on first use so the CLI starts fast.
_FORMATS: dict[str, str] = {
    "canonical": "adapters.canonical:FORMAT",
    "medicom": "adapters.medicom:FORMAT",
    "microhis": "adapters.microhis:FORMAT",
    "omnihis": "adapters.omnihis:FORMAT",
    "omnihis-ndjson": "adapters.omnihis:NDJSON_FORMAT",
    "ps-hl7v3": "adapters.ps_hl7v3:FORMAT",
    "fhir": "mappings.fhir.format:FORMAT",
    "hl7v2": "mappings.hl7v2.format:FORMAT",
    "edifact-medvri": "mappings.edifact.format:MEDVRI_FORMAT",
    "edifact-medlab": "mappings.edifact.format:MEDLAB_FORMAT",
}

_POSTBOX: dict[str, str] = {
    "medicom": "adapters.medicom:POSTBOX",
    "microhis": "adapters.microhis:POSTBOX",
    "omnihis": "adapters.omnihis:POSTBOX",
}


def format_names() -> list[str]:
    """Every format name the command line accepts (those whose module is installed)."""
    return [n for n in _FORMATS if _resolvable(_FORMATS[n])]


def _resolvable(target: str) -> bool:
    mod = target.split(":")[0]
    try:
        return importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:  # the parent package is not installed
        return False


def get_format(name: str) -> DossierFormat:
    """The format called ``name``; KeyError if unknown."""
    mod, attr = _FORMATS[name].split(":")
    return getattr(importlib.import_module(mod), attr)


def get_postbox_format(name: str) -> PostboxFormat:
    mod, attr = _POSTBOX[name].split(":")
    return getattr(importlib.import_module(mod), attr)


def sink_or_new(sink: ProblemSink | None) -> ProblemSink:
    return sink if sink is not None else ProblemSink()

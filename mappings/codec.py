"""What every reader and writer of dossiers (a format's *codec*) offers; the format's description is in
:mod:`formats` (``formats/registry.py``).

A codec reads bytes into canonical :class:`~mappings.model.Dossier` objects and writes them back. Formats
that hold many patients in one file (``streaming`` in their description) read and write one dossier at a
time, so a 10,000-patient file never sits in memory whole.

Codecs report bad input through a :class:`~mappings.problems.ProblemSink` with a precise location, and
raise :class:`~mappings.problems.InputError` when a dossier cannot be built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import formats
from mappings.model import Dossier, PostboxItem
from mappings.problems import InputError, Problem, ProblemSink, Severity

MAX_INPUT_BYTES = 256 * 1024 * 1024
"""Largest single document any adapter reads whole (streaming formats are limited per record)."""


class DossierFormat:
    """Base of every dossier codec. Subclasses set :attr:`name` (the registry's name of their format) and
    implement :meth:`read` and :meth:`write`; streaming formats override :meth:`iter_read` and
    :meth:`write_many` as well."""

    name: str = ""

    @property
    def description(self) -> formats.Format:
        """The format's registry entry (media type, streaming, postbox form ...)."""
        return formats.get(self.name)

    @property
    def streaming(self) -> bool:
        return self.description.streaming

    @property
    def media_type(self) -> str:
        return self.description.media_type

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
    """A HIS's postbox import form: how feedback (and auto-filings) enter that HIS (the format's
    :class:`formats.PostboxForm` says how it is delivered)."""

    name: str = ""

    def write_postbox(self, item: PostboxItem) -> bytes:
        raise NotImplementedError

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> PostboxItem:
        raise NotImplementedError


def sink_or_new(sink: ProblemSink | None) -> ProblemSink:
    return sink if sink is not None else ProblemSink()

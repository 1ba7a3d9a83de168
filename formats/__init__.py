"""Formats that describe themselves, and the one registry of them (``formats/registry.py``).

A :class:`Format` says everything the rest of the gateway needs to know about a format without importing
its reader and writer: its name, media type, whether it is written as well as read, whether it streams,
what it holds (dossiers or messages), whether it is a HIS export, its postbox form (how a postbox item
reaches a HIS in it, :class:`PostboxForm`), the extension of its files (drop files, golden files), how to
recognise its content (:attr:`Format.sniff`), the document that specifies it, and where its codec lives
(``"module:attribute"``, imported on first use so the command line starts fast).

Every list of formats in the gateway comes from here: the command line's ``--from``/``--to`` names, the
routing file's channels and drop dialects, the postbox simulators, the demo postboxes, the conformance
suites, the adapters benchmark. ``tests/test_formats.py`` proves no other module of ``adapters``,
``mappings``, ``gateway`` or ``conformance`` spells a format's name.

Layering: this package imports nothing of the project (it sits below ``adapters`` and ``mappings``);
codecs are reached through :meth:`Format.codec`. The codec base classes are in :mod:`mappings.codec`.

Adding a format (``docs/formats.md``): write its module (the codec, one object with ``read``/``write`` or
``iter_read``/``write_many``), its spec (``docs/dialects/<name>.md``), one golden folder
(``tests/golden/<name>/<case>/``), and one :class:`Format` entry in ``formats/registry.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol

SNIFF_BYTES = 4096
"""How much of the start of a file :func:`sniff` looks at (the rest only when a sniffer asks for it)."""


class Codec(Protocol):
    """What the command line uses of a format's reader and writer (:class:`mappings.codec.DossierFormat`,
    or the message codec of ``hl7v2``)."""

    name: str

    def iter_read(self, stream: BinaryIO, *, source: str = ..., sink: Any = ...) -> Iterator[Any]: ...

    def write_many(self, items: Iterable[Any], out: BinaryIO) -> int: ...


class PostboxCodec(Protocol):
    """Reader and writer of a format's postbox form (:class:`mappings.codec.PostboxFormat`)."""

    name: str

    def write_postbox(self, item: Any) -> bytes: ...

    def read_postbox(self, data: bytes, *, source: str = ..., sink: Any = ...) -> Any: ...


@dataclass(frozen=True, slots=True)
class PostboxForm:
    """How a postbox item (an answer, feedback, an auto-filing; DOMAIN.md §6) reaches a HIS in this format
    (``docs/postbox-delivery.md`` §4).

    ``drop``: written as ``<message id><extension>`` into the practice's drop directory (routing
    ``channel = "drop"``, ``dialect = <format name>``). ``channel``: the routing channel that sends it
    by itself, over ``transport`` (``"http"``: POSTed to the route's url plus ``path``; ``"mllp"``: framed
    over MLLP; ``"numbered-files"``: one file per item in the route's ``dir``, named by a number the
    channel gives and keeps per message id, as a mail client picks interchanges up; the codec then offers
    ``write_numbered(item, number, sender)``, ``gateway/outbox/numbered_drop.py``). ``codec``:
    ``"module:attribute"`` of its reader/writer (:class:`PostboxCodec`); ``None``
    where the transport writes the message itself (MLLP builds the MDM^T02 with the message id in MSH-10).
    """

    codec: str | None
    drop: bool = False
    channel: str | None = None
    transport: Literal["http", "mllp", "numbered-files"] | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class Format:
    """One format, described once (see the module docstring)."""

    name: str
    """The name the command line, the routing file and the conformance suites use."""
    title: str
    """What it is, in a few words (``hisgw convert --help``)."""
    media_type: str
    extension: str
    """Extension of its files, with the dot: drop files, golden files (``tests/golden/<name>/<case>/``)."""
    codec_path: str
    """``"module:attribute"`` of the reader/writer, imported on first use."""
    spec: str
    """The document that specifies it, relative to the repository root."""
    writes: bool = True
    """``False``: read only (``--to`` refuses it, exit 2)."""
    streaming: bool = False
    """Many dossiers (or messages) per file, read and written one at a time."""
    holds: Literal["dossiers", "messages"] = "dossiers"
    """``messages``: a file of messages, converted message by message (``hl7v2``); no dossier, no summary."""
    export: bool = False
    """A HIS export dialect: the ``his-export`` conformance suite reads it, consults attach it."""
    postbox: PostboxForm | None = None
    sniff: Callable[[bytes], bool] | None = None
    """Does this content look like the format? Given the file's bytes without a BOM and leading white space;
    a sniffer looks at the start (about :data:`SNIFF_BYTES`). :func:`sniff` asks in registry order: the
    first match wins, so a narrower format comes before a wider one."""

    def codec(self) -> Any:
        """The reader/writer object (imported on first use)."""
        return _load(self.codec_path)

    def postbox_codec(self) -> Any:
        """The reader/writer of its postbox form; ``LookupError`` when it has none."""
        if self.postbox is None or self.postbox.codec is None:
            raise LookupError(f"format {self.name} has no postbox file form")
        return _load(self.postbox.codec)


def _load(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def all_formats() -> tuple[Format, ...]:
    """Every registered format, in registry order."""
    from formats.registry import FORMATS

    return FORMATS


def names() -> list[str]:
    """Every format name, in registry order."""
    return [f.name for f in all_formats()]


def get(name: str) -> Format:
    """The format called ``name``; :class:`UnknownFormat` (a ``KeyError``) if there is none."""
    for f in all_formats():
        if f.name == name:
            return f
    raise UnknownFormat(name)


class UnknownFormat(KeyError):
    """No format of that name is registered."""


def writable() -> list[Format]:
    """Formats the command line can write (``--to``)."""
    return [f for f in all_formats() if f.writes]


def dossier_formats() -> list[Format]:
    """Formats whose files hold dossiers (every one but the message formats)."""
    return [f for f in all_formats() if f.holds == "dossiers"]


def exports() -> list[Format]:
    """The HIS export dialects (read by the ``his-export`` conformance suite)."""
    return [f for f in all_formats() if f.export]


def drop_formats() -> list[Format]:
    """Formats whose postbox form is a file in a drop directory (routing ``dialect``)."""
    return [f for f in all_formats() if f.postbox is not None and f.postbox.drop]


def channels() -> dict[str, Format]:
    """Routing channel name -> the format it carries, for every channel a format's postbox form names."""
    return {f.postbox.channel: f for f in all_formats() if f.postbox is not None and f.postbox.channel}


def sniff(data: bytes, among: Iterable[Format] | None = None) -> Format | None:
    """The first format (registry order, or ``among``'s order) whose sniffer recognises ``data``."""
    head = data[:SNIFF_BYTES]
    start = len(head) - len(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    text = data[start:] if start else data
    for f in all_formats() if among is None else among:
        if f.sniff is not None and f.sniff(text):
            return f
    return None


__all__ = [
    "Codec",
    "Format",
    "PostboxCodec",
    "PostboxForm",
    "UnknownFormat",
    "all_formats",
    "channels",
    "dossier_formats",
    "drop_formats",
    "exports",
    "get",
    "names",
    "sniff",
    "writable",
]

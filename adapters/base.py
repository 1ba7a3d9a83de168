"""Earlier home of the codec base classes and the format lookup, kept so that existing imports work.

The codec base classes are in :mod:`mappings.codec`; the formats, their descriptions and the one list of
their names are in :mod:`formats` (``formats/registry.py``). New code imports from there.
"""

from __future__ import annotations

import formats
from mappings.codec import MAX_INPUT_BYTES, DossierFormat, PostboxFormat, sink_or_new


def format_names() -> list[str]:
    """Every format name the command line accepts (:func:`formats.names`)."""
    return formats.names()


def get_format(name: str) -> DossierFormat:
    """The codec of the format called ``name``; KeyError if unknown."""
    return formats.get(name).codec()


def get_postbox_format(name: str) -> PostboxFormat:
    """The postbox codec of the format called ``name``; KeyError if unknown, LookupError if it has none."""
    return formats.get(name).postbox_codec()


__all__ = [
    "MAX_INPUT_BYTES",
    "DossierFormat",
    "PostboxFormat",
    "format_names",
    "get_format",
    "get_postbox_format",
    "sink_or_new",
]

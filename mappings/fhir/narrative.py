"""Readable XHTML narrative for the summary document's sections (R4 narrative.html).

The narrative is what a specialist reads, so it is Dutch and plain: one table per section, dates as
``21-06-2017``, multi-line texts with line breaks. Every text is escaped (``& < >``; quotes need no
escaping outside attributes, and no attribute carries data); characters XML 1.0 does not allow are left
out of the narrative (the data itself keeps them). Only the basic XHTML of narrative.html is used (txt-1):
``div table thead tbody tr th td p br b``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

XHTML_NS = "http://www.w3.org/1999/xhtml"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def esc(text: str | None) -> str:
    """``text`` as XHTML character data: escaped, line breaks as ``<br/>``, XML-invalid characters out."""
    if not text:
        return ""
    if _NOT_XML.search(text):
        text = _NOT_XML.sub("", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in text or "\n" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br/>")
    return text


def day(value: dt.date | None) -> str:
    """A date as Dutch readers write it: ``21-06-2017``."""
    return value.strftime("%d-%m-%Y") if value is not None else ""


def moment(value: dt.datetime | None) -> str:
    """A moment: ``21-06-2017 09:30``; midnight (a HIS that records only the date) as the date alone."""
    if value is None:
        return ""
    if not (value.hour or value.minute or value.second):
        return value.strftime("%d-%m-%Y")
    return value.strftime("%d-%m-%Y %H:%M")


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of already escaped cells."""
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def div(body: str) -> dict:
    """The Narrative of a section or resource: status generated, the XHTML ``div``."""
    return {"status": "generated", "div": f'<div xmlns="{XHTML_NS}">{body}</div>'}

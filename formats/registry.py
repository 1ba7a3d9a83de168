"""The registry: every format of the gateway, described once. This is the only list of format names.

The order is the order the command line lists them in. Sniffers are written so that no two claim the same
content (the order does not decide between them); ``tests/test_formats.py`` checks each against the golden
files of every format. To add a format, add its :class:`~formats.Format` here (``docs/formats.md``).
"""

from __future__ import annotations

import json
import re

from formats import Format, PostboxForm

_HL7V2_START = re.compile(rb"\x0b?(?:MSH|FHS|BHS)[^A-Za-z0-9\s]")
_RECORD_LINE = re.compile(rb"[A-Z]{3}\|")


def _xml_with(*markers: bytes):
    def sniff(data: bytes) -> bool:
        head = data[:4096]
        return head.startswith(b"<") and any(m in head for m in markers)

    return sniff


def _lines(data: bytes, n: int) -> list[bytes]:
    """The first ``n`` non-blank lines (without splitting a large file whole)."""
    out: list[bytes] = []
    start = 0
    while len(out) < n and start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end == -1 else end
        line = data[start:end].strip()
        if line:
            out.append(line)
        start = end + 1
    return out


def _ndjson(data: bytes) -> bool:
    """Two or more lines, each a whole JSON object, the first one decodable."""
    lines = _lines(data, 3)
    if len(lines) < 2 or not all(ln.startswith(b"{") and ln.endswith(b"}") for ln in lines):
        return False
    try:
        json.loads(lines[0])
    except ValueError:
        return False
    return True


def _fhir(data: bytes) -> bool:
    """A JSON object naming a resourceType (anywhere: sorted keys put a Bundle's own after its entries)."""
    return data.startswith(b"{") and b'"resourceType"' in data


def _omnihis(data: bytes) -> bool:
    return data.startswith(b"{") and not _fhir(data) and not _ndjson(data)


def _omnihis_ndjson(data: bytes) -> bool:
    return data.startswith(b"{") and not _fhir(data) and _ndjson(data)


def _hl7v2(data: bytes) -> bool:
    return _HL7V2_START.match(data) is not None


def _microhis(data: bytes) -> bool:
    return _RECORD_LINE.match(data) is not None and not _hl7v2(data)


_EDIFACT_UNH = re.compile(rb"UNH.[^'\r\n]{0,40}?.(MEDVRI|MEDLAB)\b")


def _edifact(message_type: bytes):
    """An Edifact interchange (UNA or UNB first) whose first message is ``message_type``."""

    def sniff(data: bytes) -> bool:
        if not data.startswith((b"UNA", b"UNB")):
            return False
        m = _EDIFACT_UNH.search(data[:65536])
        return m is not None and m.group(1) == message_type

    return sniff


FORMATS: tuple[Format, ...] = (
    Format(
        name="medicom",
        title="Medicom-style XML export (one patient per file)",
        media_type="application/xml",
        extension=".xml",
        codec_path="adapters.medicom:FORMAT",
        spec="docs/dialects/medicom.md",
        export=True,
        postbox=PostboxForm(codec="adapters.medicom:POSTBOX", drop=True),
        sniff=_xml_with(b"MedicomExport", b"urn:his-gateway:medicom"),
    ),
    Format(
        name="microhis",
        title="MicroHIS-style line records (many patients per file)",
        media_type="text/plain; charset=windows-1252",
        extension=".txt",
        codec_path="adapters.microhis:FORMAT",
        spec="docs/dialects/microhis.md",
        streaming=True,
        export=True,
        postbox=PostboxForm(codec="adapters.microhis:POSTBOX", drop=True),
        sniff=_microhis,
    ),
    Format(
        name="omnihis",
        title="OmniHIS-style JSON (one patient per document)",
        media_type="application/json",
        extension=".json",
        codec_path="adapters.omnihis:FORMAT",
        spec="docs/dialects/omnihis.md",
        export=True,
        postbox=PostboxForm(codec="adapters.omnihis:POSTBOX", drop=True, channel="http", transport="http"),
        sniff=_omnihis,
    ),
    Format(
        name="omnihis-ndjson",
        title="OmniHIS-style JSON, one patient per line",
        media_type="application/x-ndjson",
        extension=".ndjson",
        codec_path="adapters.omnihis:NDJSON_FORMAT",
        spec="docs/dialects/omnihis.md",
        streaming=True,
        export=True,
        sniff=_omnihis_ndjson,
    ),
    Format(
        name="ps-hl7v3",
        title="HL7v3 professional summary QUPC_IN990002NL (read only)",
        media_type="application/xml",
        extension=".xml",
        codec_path="adapters.ps_hl7v3:FORMAT",
        spec="docs/professional-summary.md",
        writes=False,
        export=True,
        sniff=_xml_with(b"QUPC_IN990002NL"),
    ),
    Format(
        name="canonical",
        title="the canonical model as JSON (one dossier per line when there are many)",
        media_type="application/json",
        extension=".json",
        codec_path="adapters.canonical:FORMAT",
        spec="mappings/model.py",
        streaming=True,
    ),
    Format(
        name="fhir",
        title="FHIR R4 Bundles as JSON (one per line when there are many)",
        media_type="application/fhir+json",
        extension=".json",
        codec_path="mappings.fhir.format:FORMAT",
        spec="docs/fhir-mapping.md",
        streaming=True,
        postbox=PostboxForm(
            codec="mappings.fhir.format:POSTBOX", channel="fhir", transport="http", path="/Communication"
        ),
        sniff=_fhir,
    ),
    Format(
        name="hl7v2",
        title="HL7 v2 messages (ER7), converted message by message",
        media_type="x-application/hl7-v2+er7",
        extension=".hl7",
        codec_path="mappings.hl7v2.format:FORMAT",
        spec="docs/hl7v2.md",
        streaming=True,
        holds="messages",
        postbox=PostboxForm(codec=None, channel="mllp", transport="mllp"),
        sniff=_hl7v2,
    ),
    Format(
        name="edifact-medvri",
        title="Edifact MEDVRI letters (one interchange of many messages)",
        media_type="application/EDIFACT",
        extension=".edi",
        codec_path="mappings.edifact.format:MEDVRI_FORMAT",
        spec="docs/dialects/medvri.md",
        streaming=True,
        holds="messages",
        export=True,
        postbox=PostboxForm(
            codec="mappings.edifact.postbox:POSTBOX", channel="edifact", transport="numbered-files"
        ),
        sniff=_edifact(b"MEDVRI"),
    ),
    Format(
        name="edifact-medlab",
        title="Edifact MEDLAB lab results (one interchange of many messages)",
        media_type="application/EDIFACT",
        extension=".edi",
        codec_path="mappings.edifact.format:MEDLAB_FORMAT",
        spec="docs/dialects/medlab.md",
        streaming=True,
        holds="messages",
        export=True,
        sniff=_edifact(b"MEDLAB"),
    ),
)

"""MSH[MessageHeader] (HL7 v2.5 §2.14.9; V2-to-FHIR IG "MSH[MessageHeader]").

MSH-1/MSH-2 are the delimiters (the tokenizer reads them); MSH-9 message type^trigger^structure,
MSH-10 control id, MSH-11 processing id and MSH-12 version are required. We accept versions 2.1 to
2.8.2 (``HL7-013`` otherwise) and write 2.5. MSH-15/MSH-16 select enhanced acknowledgement mode.
"""

from __future__ import annotations

from mappings.hl7v2 import er7
from mappings.hl7v2.canonical import Hd, MessageHeader
from mappings.hl7v2.datatypes import fmt_dtm, opt, parse_dtm, set_sender_offset
from mappings.hl7v2.er7 import Codec, Delimiters, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

VERSIONS = frozenset(
    {"2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
ACK_TYPES = frozenset({"AL", "NE", "ER", "SU"})
READ = frozenset({3, 4, 5, 6, 7, 9, 10, 11, 12, 15, 16, 17, 18})


_HD_CACHE: dict[tuple[str, str], Hd | None] = {}
"""MSH-3 to MSH-6 of simple segments as written -> their HD (a sender's names repeat in every message)."""


def _hd(seg: Segment, n: int) -> Hd | None:
    if seg.simple:  # no subcomponents or escapes: the components are the values
        raw = seg.raw(n)
        if not raw:
            return None
        key = (raw, seg.codec.delims.component)
        if key in _HD_CACHE:
            return _HD_CACHE[key]
        vals = [opt(x) for x in raw.split(key[1])[:3]] + [None, None, None]
        hd = Hd(namespace=vals[0], universal_id=vals[1], universal_id_type=vals[2]) if any(vals) else None
        if len(_HD_CACHE) < 1024:
            _HD_CACHE[key] = hd
        return hd
    else:
        c = seg.components(n)
        if not c:
            return None
        vals = [opt(x[0]) if x else None for x in c[:3]] + [None, None, None]
    return Hd(namespace=vals[0], universal_id=vals[1], universal_id_type=vals[2]) if any(vals) else None


def from_segment(seg: Segment, sink: ProblemSink) -> MessageHeader | None:
    """The header; ``None`` (with errors in ``sink``) when a required field is missing or wrong."""
    ok = True
    mtype, trigger, structure = seg.get(9, 1), seg.get(9, 2), seg.get(9, 3)
    control = seg.get(10)
    processing = seg.get(11)
    version = seg.get(12)
    for n, value in ((9, mtype), (10, control), (11, processing), (12, version)):
        if not value:
            sink.error("HL7-010", seg.loc(n), f"MSH-{n} is required")
            ok = False
    if version and version not in VERSIONS:
        sink.error("HL7-013", seg.loc(12), f"version {version!r} is not supported (2.1 to 2.8.2)")
        ok = False
    for n in (15, 16):
        v = seg.get(n)
        if v and v not in ACK_TYPES:
            sink.error("HL7-011", seg.loc(n), f"acknowledgement type {v!r} is not AL, NE, ER or SU")
            ok = False
    raw7 = seg.get(7)
    set_sender_offset(None)  # MSH-7 itself: its own offset or Amsterdam
    ts = parse_dtm(raw7, seg.loc(7), sink) if raw7 else None
    set_sender_offset(raw7)
    warn_unread(seg, READ, sink)
    if not ok:
        return None
    return MessageHeader(
        message_type=mtype,
        trigger_event=trigger,
        message_structure=opt(structure),
        control_id=control,
        sending_application=_hd(seg, 3),
        sending_facility=_hd(seg, 4),
        receiving_application=_hd(seg, 5),
        receiving_facility=_hd(seg, 6),
        timestamp=ts,
        processing_id=processing,
        version=version,
        accept_ack_type=opt(seg.get(15)),
        application_ack_type=opt(seg.get(16)),
        country=opt(seg.get(17)),
        charset=seg.get(18),
    )


def codec_for(h: MessageHeader, delims: Delimiters | None = None) -> Codec:
    return er7.codec_for(delims or Delimiters(), h.charset)


def to_segment(h: MessageHeader, codec: Codec) -> list[str]:
    """The encoded MSH fields, ``fields[n]`` = MSH-n (for :func:`mappings.hl7v2.er7.build`)."""
    d = codec.delims

    def hd(x: Hd | None) -> str:
        return codec.field((x.namespace, x.universal_id, x.universal_id_type)) if x else ""

    fields = [
        "MSH",
        d.field,
        d.encoding_characters,
        hd(h.sending_application),
        hd(h.sending_facility),
        hd(h.receiving_application),
        hd(h.receiving_facility),
        fmt_dtm(h.timestamp) or "",
        "",
        codec.field((h.message_type, h.trigger_event, h.message_structure)),
        codec.encode(h.control_id),
        codec.encode(h.processing_id),
        codec.encode(h.version),
        "",
        "",
        h.accept_ack_type or "",
        h.application_ack_type or "",
        h.country or "",
        h.charset,
    ]
    return fields

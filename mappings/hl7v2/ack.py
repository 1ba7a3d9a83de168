"""ACK messages (HL7 v2.5 §2.9 acknowledgement rules, §2.13.1 ACK) in original and enhanced mode.

Original mode (MSH-15 and MSH-16 both empty): one application acknowledgement, ``AA`` accept, ``AE``
error (the message was understood but its content is wrong), ``AR`` reject (not understood: no MSH,
broken syntax, unsupported type, version or character set). Enhanced mode (MSH-15 or MSH-16 valued):
the *accept* acknowledgement ``CA``/``CE``/``CR`` says whether the message was safely stored, sent as
MSH-15 asks (``AL`` always, ``NE`` never, ``ER`` on error only, ``SU`` on success only; empty = ``AL``);
the *application* acknowledgement follows MSH-16 the same way.

Every problem becomes an ERR segment (:mod:`mappings.hl7v2.err`), warnings too (severity ``W`` next to
an ``AA``). The ACK answers in the sender's version and character set; characters that set cannot carry
are replaced (an ACK must always be sendable).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from mappings.hl7v2 import er7, err, msa
from mappings.hl7v2 import msh as msh_seg
from mappings.hl7v2.canonical import AckMessage, Hd, MessageHeader
from mappings.hl7v2.er7 import (
    Delimiters,
    Hl7ParseError,
    Message,
    Segment,
    build,
    codec_for,
    known_charset,
    parse,
)
from mappings.hl7v2.trace import warn_unread
from mappings.problems import Problem, ProblemSink, Severity

Outcome = Literal["accept", "error", "reject"]
ORIGINAL = {"accept": "AA", "error": "AE", "reject": "AR"}
ENHANCED = {"accept": "CA", "error": "CE", "reject": "CR"}
GATEWAY = Hd(namespace="HISGW")
MAX_ERR = 50
"""At most this many ERR segments, errors first: an ACK stays small whatever the message held."""


def is_enhanced(msh: Segment | None) -> bool:
    return msh is not None and bool(msh.get(15) or msh.get(16))


def wanted(ack_type: str, outcome: Outcome) -> bool:
    """Whether an acknowledgement of this outcome is sent under MSH-15/16 value ``ack_type``."""
    if ack_type == "NE":
        return False
    if ack_type == "ER":
        return outcome != "accept"
    if ack_type == "SU":
        return outcome == "accept"
    return True


def header_segment(data: bytes) -> Segment | None:
    """The MSH of a message in bytes, as far as it can be read (for the ACK of a broken message).
    Never raises."""
    try:
        start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        ends = [p for p in (data.find(b"\r", start), data.find(b"\n", start)) if p != -1]
        line = data[start : min(ends) if ends else min(len(data), 65536)][:65536].decode("latin-1")
        return parse(line, charset="").msh
    except Hl7ParseError:
        return None


def _hd(seg: Segment | None, n: int) -> Hd | None:
    if seg is None:
        return None
    vals = [seg.get(n, i) or None for i in (1, 2, 3)]
    return Hd(namespace=vals[0], universal_id=vals[1], universal_id_type=vals[2]) if any(vals) else None


def build_ack(
    incoming: Segment | None,
    code: str,
    problems: Sequence[Problem] = (),
    *,
    control_id: str | None = None,
    now: dt.datetime | None = None,
    text: str | None = None,
) -> Message:
    """The ACK for a message whose MSH is ``incoming`` (``None``: not even an MSH could be read)."""
    version = incoming.get(12) if incoming is not None else ""
    charset = incoming.get(18) if incoming is not None else ""
    trigger = incoming.get(9, 2) if incoming is not None else ""
    header = MessageHeader(
        message_type="ACK",
        trigger_event=trigger,
        message_structure="ACK",
        control_id=control_id or er7.new_control_id(),
        sending_application=_hd(incoming, 5) or GATEWAY,
        sending_facility=_hd(incoming, 6),
        receiving_application=_hd(incoming, 3),
        receiving_facility=_hd(incoming, 4),
        timestamp=(now or dt.datetime.now()).replace(microsecond=0),
        processing_id=(incoming.get(11) if incoming is not None else "") or "P",
        version=version if version in msh_seg.VERSIONS else "2.5",
        charset=charset if known_charset(charset) else "",
    )
    delims = (
        incoming.codec.delims if incoming is not None and incoming.codec.delims.complete else Delimiters()
    )
    codec = codec_for(delims, header.charset)
    segments = [msa.to_segment(code, incoming.get(10) if incoming is not None else "", text)]
    ordered = sorted(problems, key=lambda p: p.severity is not Severity.ERROR)[:MAX_ERR]
    segments += [err.to_segment(p, header.version) for p in ordered]
    return build(segments, codec, msh=msh_seg.to_segment(header, codec))


def ack_bytes(ack: Message) -> bytes:
    """The ACK in its character set; characters it cannot carry become ``?``."""
    return str(ack).encode(ack.codec.python, errors="replace")


def read(msg: Message, sink: ProblemSink) -> AckMessage | None:
    """An ACK message -> :class:`AckMessage` (for the MLLP client and tests)."""
    header = msh_seg.from_segment(msg.msh, sink)
    seg = msg.segment("MSA")
    if seg is None:
        sink.error("HL7-015", "MSA", "an ACK needs an MSA segment")
        return None
    warn_unread(seg, frozenset({1, 2, 3}), sink)
    got = msa.from_segment(seg, sink)
    if header is None or got is None:
        return None
    errors = tuple(err.from_segment(s, sink) for s in msg.all("ERR"))
    return AckMessage(header=header, code=got[0], control_id=got[1], text=got[2], errors=errors)


def write(a: AckMessage) -> Message:
    codec = msh_seg.codec_for(a.header)
    segments = [msa.to_segment(a.code, a.control_id, a.text)]
    for e in a.errors:
        p = Problem(Severity(e.severity), e.code, e.location, e.message)
        segments.append(err.to_segment(p, a.header.version, e.hl7_code))
    return build(segments, codec, msh=msh_seg.to_segment(a.header, codec))

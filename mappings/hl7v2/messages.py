"""Which HL7 v2 messages the gateway reads and writes, and the dispatch between ER7 and canonical.

Inbound: ADT^A01-A13/A28/A31/A40 -> :class:`AdtMessage` (Patient, visit, merge), ORU^R01/R30 ->
:class:`OruMessage` (Patient + Measurements), MDM^T01-T11 -> :class:`MdmMessage` (PostboxItem), ORM^O01
and OML^O21 -> :class:`OrderMessage` (orders), SIU^S12-S15 -> :class:`SiuMessage` (appointment), REF^I12
-> :class:`RefMessage` (ConsultRequest), RRI^I12 and ACK for the replies we receive. Outbound: the same
writers, built from the canonical model by :func:`mappings.hl7v2.mdm.from_postbox`,
:func:`mappings.hl7v2.oru.from_measurements`, :func:`mappings.hl7v2.ref.reply_to` and
:func:`mappings.hl7v2.ack.build_ack`.

An unsupported MSH-9 message type is ``HL7-012``, an unsupported trigger event of a known type
``HL7-014``."""

from __future__ import annotations

from collections.abc import Callable

from mappings.hl7v2 import ack, adt, mdm, orm, oru, ref, siu
from mappings.hl7v2.canonical import (
    AckMessage,
    AdtMessage,
    Hl7Canonical,
    MdmMessage,
    OrderMessage,
    OruMessage,
    RefMessage,
    RriMessage,
    SiuMessage,
)
from mappings.hl7v2.er7 import Hl7ParseError, Message, parse_bytes
from mappings.problems import InputError, ProblemSink

Reader = Callable[[Message, ProblemSink], Hl7Canonical | None]

READERS: dict[str, dict[str, Reader]] = {
    "ADT": {e: adt.read for e in adt.EVENTS},
    "ORU": {e: oru.read for e in oru.EVENTS},
    "MDM": {e: mdm.read for e in mdm.EVENTS},
    "ORM": {"O01": orm.read},
    "OML": {"O21": orm.read},
    "SIU": {e: siu.read for e in siu.EVENTS},
    "REF": {"I12": ref.read_ref},
    "RRI": {"I12": ref.read_rri},
    "ACK": {"": ack.read},
}
WRITERS: dict[type, Callable[..., Message]] = {
    AdtMessage: adt.write,
    OruMessage: oru.write,
    MdmMessage: mdm.write,
    OrderMessage: orm.write,
    SiuMessage: siu.write,
    RefMessage: ref.write_ref,
    RriMessage: ref.write_rri,
    AckMessage: ack.write,
}
INBOUND = (
    *(f"ADT^{e}" for e in adt.EVENTS),
    *(f"ORU^{e}" for e in oru.EVENTS),
    *(f"MDM^{e}" for e in mdm.EVENTS),
    "ORM^O01",
    "OML^O21",
    *(f"SIU^{e}" for e in siu.EVENTS),
    "REF^I12",
)
"""What the MLLP listener accepts (RRI and ACK are replies; they come back on our own connections)."""


def reader_for(msg: Message, sink: ProblemSink, accepted: tuple[str, ...] | None = None) -> Reader | None:
    """The reader for MSH-9 (``HL7-012``/``HL7-014`` in ``sink`` when there is none)."""
    mtype, event = msg.msh.get(9, 1), msg.msh.get(9, 2)
    by_event = READERS.get(mtype)
    if by_event is None or (accepted is not None and not any(a.startswith(mtype + "^") for a in accepted)):
        sink.error(
            "HL7-012",
            msg.msh.loc(9, comp=1),
            f"message type {mtype!r} is not supported (accepted: {', '.join(accepted or INBOUND)})",
        )
        return None
    if mtype == "ACK":
        return by_event[""]
    reader = by_event.get(event)
    if reader is None or (accepted is not None and f"{mtype}^{event}" not in accepted):
        sink.error("HL7-014", msg.msh.loc(9, comp=2), f"trigger event {event!r} of {mtype} is not supported")
        return None
    return reader


def read(
    msg: Message, sink: ProblemSink | None = None, *, accepted: tuple[str, ...] | None = None
) -> Hl7Canonical:
    """Map a parsed message to its canonical struct. Raises :class:`InputError` with every problem found
    (the first only, when ``sink`` is strict); warnings stay in ``sink``."""
    sink = sink if sink is not None else ProblemSink()
    reader = reader_for(msg, sink, accepted)
    result = reader(msg, sink) if reader is not None else None
    if result is None or sink.has_errors:
        sink.raise_if_errors()
        raise InputError([])  # pragma: no cover - every reader reports why it returned nothing
    return result


def read_bytes(data: bytes, sink: ProblemSink | None = None, *, default_charset: str = "") -> Hl7Canonical:
    """Parse and map one message in bytes (parse errors are :class:`Hl7ParseError`)."""
    return read(parse_bytes(data, default_charset=default_charset), sink)


def write(obj: Hl7Canonical) -> Message:
    """The ER7 message of a canonical message struct (``.to_bytes()`` for the wire)."""
    return WRITERS[type(obj)](obj)


__all__ = ["read", "read_bytes", "write", "reader_for", "INBOUND", "Hl7ParseError"]

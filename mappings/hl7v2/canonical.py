"""The canonical form of each HL7 v2 message the gateway reads or writes.

Each message maps to one tagged struct (``"message": "ADT"`` ...) built from the canonical model
(:mod:`mappings.model`: Patient, Measurement, PostboxItem ...) plus what only HL7 v2 carries: the message
header (MSH), identifiers other than the BSN, the visit (PV1), the lab order (OBR), the consult request
and its answer (REF/RRI: a small struct of our own, since the dossier model has no consult). Decoding
canonical JSON validates like :func:`mappings.model.from_json` (every ``__post_init__`` runs).

Segment[Struct] map, in the notation of the HL7 V2-to-FHIR IG::

    MSH[MessageHeader]  EVN[event_time]  PID[Patient]+PID-3[Identifier]  PV1[Visit]
    OBR[LabOrder]  OBX[Measurement]  TXA+OBX[PostboxItem.correspondence]  OBX(sub-id "filing")[AutoFiling]
    RF1+PRD+NTE[ConsultRequest] / [ConsultReply]  MSA+ERR[AckMessage]
"""

from __future__ import annotations

import datetime as dt

import msgspec

from mappings import model as m


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Hd(_Base, frozen=True):
    """HD: namespace id, universal id (an OID), universal id type (``ISO``)."""

    namespace: str | None = None
    universal_id: str | None = None
    universal_id_type: str | None = None


class MessageHeader(_Base, frozen=True):
    """MSH. ``charset`` is MSH-18 as written (``""`` = ASCII, ``UNICODE UTF-8``, ``8859/1`` ...)."""

    message_type: str  # MSH-9.1
    trigger_event: str  # MSH-9.2
    control_id: str  # MSH-10
    message_structure: str | None = None  # MSH-9.3
    sending_application: Hd | None = None  # MSH-3
    sending_facility: Hd | None = None  # MSH-4
    receiving_application: Hd | None = None  # MSH-5
    receiving_facility: Hd | None = None  # MSH-6
    timestamp: dt.datetime | None = None  # MSH-7
    processing_id: str = "P"  # MSH-11
    version: str = "2.5"  # MSH-12
    accept_ack_type: str | None = None  # MSH-15
    application_ack_type: str | None = None  # MSH-16
    country: str | None = None  # MSH-17
    charset: str = ""  # MSH-18


class Identifier(_Base, frozen=True):
    """A patient identifier other than the BSN (CX): value, assigning authority, identifier type."""

    value: str
    authority: str | None = None
    type: str | None = None


class Visit(_Base, frozen=True):
    """PV1: patient class (``O`` outpatient, ``N`` not applicable ...), visit number, attending doctor."""

    patient_class: str
    visit_number: str | None = None  # PV1-19
    attending: tuple[m.HealthProfessional, ...] = ()  # PV1-7
    admitted: dt.datetime | None = None  # PV1-44


class LabOrder(_Base, frozen=True):
    """OBR with its results: the order and the OBX measurements under it."""

    service_code: str  # OBR-4.1
    service_text: str | None = None  # OBR-4.2
    service_system: str | None = None  # OBR-4.3
    placer_number: str | None = None  # OBR-2
    filler_number: str | None = None  # OBR-3
    observed: dt.datetime | None = None  # OBR-7
    ordering: tuple[m.HealthProfessional, ...] = ()  # OBR-16
    result_status: str | None = None  # OBR-25
    measurements: tuple[m.LabResult, ...] = ()
    notes: tuple[str, ...] = ()  # NTE after the OBR


class ConsultParty(_Base, frozen=True):
    """PRD: the referring (``RP``) or referred-to (``RT``) party, a professional or a vakgroep."""

    role: str  # PRD-1
    professional: m.HealthProfessional | None = None  # PRD-2 name, PRD-7 identifiers
    specialism: str | None = None  # PRD-4.1 point of care: the vakgroep
    organization: str | None = None  # PRD-4.4 facility
    address: m.Address | None = None  # PRD-3
    telecom: tuple[m.Telecom, ...] = ()  # PRD-5


class ConsultRequest(_Base, frozen=True):
    """A consult (e-consult) request, REF^I12: RF1 + PRD + PID + the question as NTE lines."""

    id: str  # RF1-6 originating referral identifier
    patient: m.Patient
    requester: ConsultParty
    recipient: ConsultParty
    question: str  # NTE-3, one NTE per line
    status: str = "P"  # RF1-1 (P pending, A accepted, R rejected, E expired)
    priority: str | None = None  # RF1-2 (S stat, A asap, R routine)
    type: str | None = None  # RF1-3
    disposition: str | None = None  # RF1-4 (WR send written report ...)
    category: str | None = None  # RF1-5
    effective: dt.datetime | None = None  # RF1-7
    expires: dt.datetime | None = None  # RF1-8
    reason_code: str | None = None  # RF1-10.1 (an ICPC code, reason_system ICPC1NL)
    reason_text: str | None = None  # RF1-10.2
    reason_system: str | None = None  # RF1-10.3
    identifiers: tuple[Identifier, ...] = ()


class ConsultReply(_Base, frozen=True):
    """The answer to a consult, RRI^I12: MSA names the REF it answers, NTE lines carry the answer."""

    referral_id: str  # RF1-6
    in_reply_to: str  # MSA-2: MSH-10 of the REF
    patient: m.Patient
    responder: ConsultParty
    answer: str
    requester: ConsultParty | None = None
    status: str = "A"  # RF1-1
    answered: dt.datetime | None = None  # RF1-7
    identifiers: tuple[Identifier, ...] = ()


class AckError(_Base, frozen=True):
    """One ERR segment: severity (E/W/I), our problem code, the location and the message."""

    severity: str
    code: str
    location: str
    message: str
    hl7_code: str = "207"  # ERR-3, HL7 table 0357


class AdtMessage(_Base, frozen=True, tag="ADT", tag_field="message"):
    """ADT^A04/A08/A28/A31: a patient registered or updated."""

    header: MessageHeader
    patient: m.Patient
    event_time: dt.datetime | None = None  # EVN-2
    identifiers: tuple[Identifier, ...] = ()
    visit: Visit | None = None


class OruMessage(_Base, frozen=True, tag="ORU", tag_field="message"):
    """ORU^R01: a patient and lab results (measurements) grouped by order."""

    header: MessageHeader
    patient: m.Patient
    orders: tuple[LabOrder, ...]
    identifiers: tuple[Identifier, ...] = ()
    visit: Visit | None = None
    patient_notes: tuple[str, ...] = ()  # NTE after the PID

    @property
    def measurements(self) -> tuple[m.LabResult, ...]:
        return tuple(x for o in self.orders for x in o.measurements)


class MdmMessage(_Base, frozen=True, tag="MDM", tag_field="message"):
    """MDM^T02: a document (letter, feedback, consult answer) for a practice's postbox."""

    header: MessageHeader
    item: m.PostboxItem
    identifiers: tuple[Identifier, ...] = ()
    visit: Visit | None = None


class RefMessage(_Base, frozen=True, tag="REF", tag_field="message"):
    header: MessageHeader
    consult: ConsultRequest


class RriMessage(_Base, frozen=True, tag="RRI", tag_field="message"):
    header: MessageHeader
    reply: ConsultReply


class AckMessage(_Base, frozen=True, tag="ACK", tag_field="message"):
    """ACK: MSA-1 ``AA``/``AE``/``AR`` (original mode) or ``CA``/``CE``/``CR`` (enhanced, accept)."""

    header: MessageHeader
    code: str  # MSA-1
    control_id: str  # MSA-2
    text: str | None = None  # MSA-3
    errors: tuple[AckError, ...] = ()


Hl7Canonical = AdtMessage | OruMessage | MdmMessage | RefMessage | RriMessage | AckMessage

_ENCODER = msgspec.json.Encoder(decimal_format="string")
_DECODER = msgspec.json.Decoder(Hl7Canonical)


def to_json(obj: Hl7Canonical) -> bytes:
    """Canonical JSON of a message struct (declaration order, byte-stable)."""
    return _ENCODER.encode(obj)


def from_json(data: bytes | str) -> Hl7Canonical:
    """Decode and validate; raises ``msgspec.ValidationError`` naming the JSON path."""
    return _DECODER.decode(data)

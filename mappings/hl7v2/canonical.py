"""The canonical form of each HL7 v2 message the gateway reads or writes.

Each message maps to one tagged struct (``"message": "ADT"`` ...) built from the canonical model
(:mod:`mappings.model`: Patient, Measurement, PostboxItem ...) plus what only HL7 v2 carries: the message
header (MSH), identifiers other than the BSN, the visit (PV1), the lab order (OBR), the consult request
and its answer (REF/RRI: a small struct of our own, since the dossier model has no consult). Decoding
canonical JSON validates like :func:`mappings.model.from_json` (every ``__post_init__`` runs).

Segment[Struct] map, in the notation of the HL7 V2-to-FHIR IG::

    MSH[MessageHeader]  EVN[event_time]  PID[Patient]+PID-3[Identifier]  PV1[Visit]  MRG[PriorPatient]
    OBR[LabOrder]  OBX[Measurement]  TXA+OBX[PostboxItem.correspondence]  OBX(sub-id "filing")[AutoFiling]
    ORC+OBR+NTE+OBX[Order]  SCH+TQ1+NTE+AIS/AIG/AIL/AIP[Appointment]
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


class Location(_Base, frozen=True):
    """PL: a place in a hospital (point of care = ward or clinic, room, bed, facility), as sent."""

    point_of_care: str | None = None  # PL.1
    room: str | None = None  # PL.2
    bed: str | None = None  # PL.3
    facility: str | None = None  # PL.4 (HD.1)
    description: str | None = None  # PL.9


class Visit(_Base, frozen=True):
    """PV1: patient class (``O`` outpatient, ``N`` not applicable ...), visit number, attending doctor, and
    what the ADT events move: locations, admission and discharge."""

    patient_class: str
    visit_number: str | None = None  # PV1-19
    preadmit_number: str | None = None  # PV1-5 (CX.1)
    alternate_visit_id: str | None = None  # PV1-50 (CX.1)
    attending: tuple[m.HealthProfessional, ...] = ()  # PV1-7
    admitted: dt.datetime | None = None  # PV1-44
    referring: tuple[m.HealthProfessional, ...] = ()  # PV1-8 referring doctor (often the GP)
    consulting: tuple[m.HealthProfessional, ...] = ()  # PV1-9
    admitting: tuple[m.HealthProfessional, ...] = ()  # PV1-17
    location: Location | None = None  # PV1-3 assigned patient location
    admission_type: str | None = None  # PV1-4 (table 0007)
    prior_location: Location | None = None  # PV1-6
    hospital_service: str | None = None  # PV1-10 (table 0069)
    admit_source: str | None = None  # PV1-14 (table 0023)
    discharge_disposition: str | None = None  # PV1-36 (table 0112)
    discharged: dt.datetime | None = None  # PV1-45
    admit_reason: str | None = None  # PV2-3.1 admit reason (CWE code)
    admit_reason_text: str | None = None  # PV2-3.2
    admit_reason_system: str | None = None  # PV2-3.3
    expected_admit: dt.datetime | None = None  # PV2-8 expected admit date/time
    expected_discharge: dt.datetime | None = None  # PV2-9 expected discharge date/time


class OtherInsurance(_Base, frozen=True):
    """IN1 of an insurer that is no Dutch health insurer (IN1-3 not a UZOVI code, or empty): kept as sent
    with warning ``HL7-065`` (the canonical Insurance holds UZOVI insurers only)."""

    insurer_id: str | None = None  # IN1-3.1
    insurer_authority: str | None = None  # IN1-3.4 (HD.1)
    insurer_name: str | None = None  # IN1-4.1
    policy_number: str | None = None  # IN1-36


class PriorPatient(_Base, frozen=True):
    """MRG (ADT^A40 merge): the identifiers of the record merged into the PID's patient. Nothing is
    deleted: the prior record is kept and linked (FHIR ``Patient.link`` replaces / replaced-by)."""

    identifiers: tuple[Identifier, ...]  # MRG-1 prior patient identifier list
    account_number: str | None = None  # MRG-3
    visit_number: str | None = None  # MRG-5


class OrderCommon(_Base, frozen=True):
    """ORC, the common order segment (IG ``ORC[ServiceRequest]``)."""

    control: str  # ORC-1 order control (NW new, CA cancel, RE observations to follow ..., table 0119)
    placer_number: str | None = None  # ORC-2
    filler_number: str | None = None  # ORC-3
    group_number: str | None = None  # ORC-4 placer group number
    status: str | None = None  # ORC-5 order status (table 0038)
    transaction_time: dt.datetime | None = None  # ORC-9
    ordering: tuple[m.HealthProfessional, ...] = ()  # ORC-12


class LabOrder(_Base, frozen=True):
    """OBR with its results: the order and the OBX measurements under it (and the ORC before it)."""

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
    common: OrderCommon | None = None  # the ORC in front of the OBR (ORU^R30 always has one)


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
    """ADT^A01-A13, A28, A31, A40: a patient admitted, transferred, discharged, registered, updated or
    merged (the event is MSH-9.2)."""

    header: MessageHeader
    patient: m.Patient
    event_time: dt.datetime | None = None  # EVN-2
    identifiers: tuple[Identifier, ...] = ()
    visit: Visit | None = None
    merged: PriorPatient | None = None  # MRG (A40)
    other_insurance: OtherInsurance | None = None  # IN1 of an insurer without a UZOVI code


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
    """MDM^T01-T11: a document (letter, feedback, consult answer) for a practice's postbox, or a notice
    about one (status change, addendum, edit, replacement, cancellation; the event is MSH-9.2)."""

    header: MessageHeader
    item: m.PostboxItem
    identifiers: tuple[Identifier, ...] = ()
    visit: Visit | None = None
    parent_document: str | None = None  # TXA-13 (addendum, replacement: the document it concerns)
    completion_status: str | None = None  # TXA-17 as sent; None = AU (authenticated)
    availability: str | None = None  # TXA-19 as sent; None = AV (available)


class Coded(_Base, frozen=True):
    """CWE/CE: code, text, coding system (the v2 name as sent: ``LN``, ``99zdl`` ...)."""

    code: str | None = None
    text: str | None = None
    system: str | None = None


class Specimen(_Base, frozen=True):
    """SPM (OML^O21): the specimen an order is for."""

    placer_id: str | None = None  # SPM-2.1 (EIP placer EI.1)
    placer_namespace: str | None = None  # SPM-2.1.2
    filler_id: str | None = None  # SPM-2.2 (EIP filler EI.1)
    type: Coded | None = None  # SPM-4 specimen type
    collected: dt.datetime | None = None  # SPM-17.1 collection date/time
    received: dt.datetime | None = None  # SPM-18 received date/time
    available: str | None = None  # SPM-20 specimen availability (Y/N)
    reject_reason: Coded | None = None  # SPM-21 specimen reject reason (table 0490)


class Order(_Base, frozen=True):
    """One order of an ORM^O01 or OML^O21: ORC (common order) with its OBR (the service requested), NTE
    notes and OBX observations sent with it (FHIR: ServiceRequest, IG ``ORC[ServiceRequest]``)."""

    control: str  # ORC-1 order control (NW new, CA cancel, XO change ..., table 0119)
    service: Coded | None = None  # OBR-4 universal service identifier
    placer_number: str | None = None  # ORC-2 (else OBR-2)
    filler_number: str | None = None  # ORC-3 (else OBR-3)
    group_number: str | None = None  # ORC-4 placer group number
    status: str | None = None  # ORC-5 order status (table 0038)
    transaction_time: dt.datetime | None = None  # ORC-9
    ordering: tuple[m.HealthProfessional, ...] = ()  # ORC-12 (else OBR-16)
    priority: str | None = None  # OBR-5 (v2.4-) / TQ1-9 priority: S stat, A asap, R routine
    requested: dt.datetime | None = None  # OBR-6 requested date/time (else TQ1-7 start)
    reason: Coded | None = None  # OBR-31 reason for study
    specimen_source: str | None = None  # OBR-15.1 (v2.5) / SPM-4.1 specimen type
    notes: str | None = None  # NTE-3 under the order, one line each
    observations: tuple[m.LabResult, ...] = ()  # OBX sent with the order
    specimens: tuple[Specimen, ...] = ()  # SPM (OML^O21)


class OrderMessage(_Base, frozen=True, tag="ORM", tag_field="message"):
    """ORM^O01 (general order) and OML^O21 (laboratory order): a patient and one or more orders."""

    header: MessageHeader
    patient: m.Patient
    orders: tuple[Order, ...]
    identifiers: tuple[Identifier, ...] = ()
    visit: Visit | None = None
    notes: str | None = None  # NTE before the patient (message notes)


class Resource(_Base, frozen=True):
    """One resource of an appointment: AIS service, AIG general resource, AIL location, AIP person."""

    kind: str  # AIS, AIG, AIL or AIP
    code: Coded | None = None  # AIS-3 service (e.g. a video consult), AIG-3 resource
    professional: m.HealthProfessional | None = None  # AIP-3 (XCN)
    location: Location | None = None  # AIL-3 (PL)
    role: Coded | None = None  # AIG-4 / AIP-4 resource role, AIL-4 location type
    start: dt.datetime | None = None  # AIS-4, AIG-8, AIL-6, AIP-6
    duration: str | None = None  # AIS-7, AIG-11, AIL-9, AIP-9 (as sent)
    duration_units: str | None = None  # AIS-8, AIG-12, AIL-10, AIP-10
    status: str | None = None  # AIS-10, AIG-14, AIL-12, AIP-12 filler status (table 0278)
    action: str | None = None  # AIx-2 segment action code (A add, D delete, U update)


class Appointment(_Base, frozen=True):
    """SCH (+ TQ1, NTE, AIS/AIG/AIL/AIP): an appointment, e.g. a video consult (AIS-3)."""

    placer_id: str | None = None  # SCH-1
    filler_id: str | None = None  # SCH-2
    event_reason: Coded | None = None  # SCH-6
    reason: Coded | None = None  # SCH-7 appointment reason
    type: Coded | None = None  # SCH-8 appointment type
    duration: str | None = None  # SCH-9 (as sent)
    duration_units: str | None = None  # SCH-10
    start: dt.datetime | None = None  # SCH-11.4 or TQ1-7
    end: dt.datetime | None = None  # SCH-11.5 or TQ1-8
    timing_in_tq1: bool = False  # the timing came in TQ1 (and is written there again)
    filler_status: str | None = None  # SCH-25 (table 0278: Booked, Cancelled, Complete, Noshow ...)
    placer_order: str | None = None  # SCH-26 placer order number (EI.1): the order this appointment is for
    filler_order: str | None = None  # SCH-27 filler order number (EI.1)
    notes: str | None = None  # NTE after SCH
    resources: tuple[Resource, ...] = ()


class SiuMessage(_Base, frozen=True, tag="SIU", tag_field="message"):
    """SIU^S12-S15: an appointment booked, rescheduled, modified or cancelled (the event is MSH-9.2)."""

    header: MessageHeader
    appointment: Appointment
    patient: m.Patient | None = None
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


Hl7Canonical = (
    AdtMessage | OruMessage | MdmMessage | OrderMessage | SiuMessage | RefMessage | RriMessage | AckMessage
)

_ENCODER = msgspec.json.Encoder(decimal_format="string")
_DECODER = msgspec.json.Decoder(Hl7Canonical)


def to_json(obj: Hl7Canonical) -> bytes:
    """Canonical JSON of a message struct (declaration order, byte-stable)."""
    return _ENCODER.encode(obj)


def from_json(data: bytes | str) -> Hl7Canonical:
    """Decode and validate; raises ``msgspec.ValidationError`` naming the JSON path."""
    return _DECODER.decode(data)

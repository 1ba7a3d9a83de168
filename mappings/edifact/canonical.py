"""The canonical form of the two Edifact messages the gateway reads and writes (``docs/dialects/edifact.md``).

Both are built from the canonical model (:mod:`mappings.model`) plus what only Edifact carries: the
interchange envelope (UNB) and the message reference (UNH-1).

- :class:`MedvriMessage`: a free-text letter (MEDVRI) = a :class:`~mappings.model.PostboxItem` and the
  patient's sex (PID-2), which a postbox item's patient match does not hold.
- :class:`MedlabMessage`: lab results (MEDLAB) = the laboratory (ZKH), the patient (PID, PAD), the
  requester (ART), one or more reports (DET + IDE) each with results (BEP + OPB) and free text (TXT).

Segment[Struct] map::

    UNB[Envelope]  UNH-1[reference]
    MEDVRI: GGA[item.sender_organization, correspondence.sender_discipline, correspondence.sender_name]
            DET[correspondence.date]  PID[item.patient, gender]  TXT[correspondence.text]
            GGO[correspondence.addressee_name]  UNB-3[item.practice_agb]
    MEDLAB: ZKH[laboratory]  PID+PAD[patient]  ART[requester]  DET[LabReport.observed]
            IDE[LabReport.lab_number, complete]  BEP[LabResult.measurement, name]  OPB[LabResult.comments]
            TXT[text]
"""

from __future__ import annotations

import datetime as dt

import msgspec

from mappings import model as m


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Envelope(_Base, frozen=True, kw_only=True):
    """UNB (and UNA): kept as written so that a read-then-write gives the same bytes.

    ``prepared_date``/``prepared_time`` are ``YYMMDD``/``HHMM`` as in UNB-4; ``una`` says whether the
    interchange opened with a UNA (and which six characters it named)."""

    syntax: str = "UNOC"  # UNB-1.1
    syntax_version: str = "1"  # UNB-1.2
    sender: str  # UNB-2.1
    recipient: str  # UNB-3.1
    prepared_date: str  # UNB-4.1
    prepared_time: str  # UNB-4.2
    reference: str  # UNB-5
    sender_qualifier: str = ""  # UNB-2.2
    recipient_qualifier: str = ""  # UNB-3.2
    application: str = ""  # UNB-7
    test: str = ""  # UNB-11
    una: str | None = None  # the six service characters of the UNA, when there was one
    newline: str = "\r\n"  # what follows each segment terminator


class LabResult(_Base, frozen=True, kw_only=True):
    """BEP (and its OPB comments): one result, the lab's own test name and comment lines."""

    measurement: m.Measurement
    name: str | None = None  # BEP-2
    comments: tuple[str, ...] = ()  # OPB, one per line
    changed: bool = False  # BEP-4: a corrected result


class LabReport(_Base, frozen=True, kw_only=True):
    """DET + IDE and its results: one sample's observation time and the lab's number for it."""

    observed: dt.datetime | None = None  # DET-1, DET-2
    lab_number: str | None = None  # IDE-2
    complete: bool = True  # IDE-1: J complete, N more results follow
    results: tuple[LabResult, ...] = ()


class MedvriMessage(_Base, frozen=True, kw_only=True, tag="MEDVRI", tag_field="message"):
    """MEDVRI: a free-text letter for a practice's postbox (a consult answer, feedback)."""

    envelope: Envelope
    reference: str  # UNH-1
    item: m.PostboxItem
    gender: m.Gender | None = None  # PID-2


class MedlabMessage(_Base, frozen=True, kw_only=True, tag="MEDLAB", tag_field="message"):
    """MEDLAB: lab results for one patient."""

    envelope: Envelope
    reference: str  # UNH-1
    laboratory: str  # ZKH-1
    patient: m.Patient
    reports: tuple[LabReport, ...]
    requester: m.HealthProfessional | None = None  # ART
    department: str | None = None  # AFD-1
    text: str | None = None  # TXT lines of the whole message

    @property
    def measurements(self) -> tuple[m.Measurement, ...]:
        return tuple(r.measurement for rep in self.reports for r in rep.results)


EdifactMessage = MedvriMessage | MedlabMessage

_ENCODER = msgspec.json.Encoder(decimal_format="string")
_DECODER = msgspec.json.Decoder(EdifactMessage)


def to_json(obj: EdifactMessage) -> bytes:
    """Canonical JSON (declaration order, byte-stable)."""
    return _ENCODER.encode(obj)


def from_json(data: bytes | str) -> EdifactMessage:
    """Decode and validate; raises ``msgspec.ValidationError`` naming the JSON path."""
    return _DECODER.decode(data)

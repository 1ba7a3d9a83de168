"""The canonical model: one GP dossier, as every adapter and mapping speaks it (DOMAIN.md §5–§7).

Every adapter reads its dialect *into* these types and writes *from* them; the FHIR and HL7 v2 mappings
do the same. No adapter knows FHIR, no mapping knows a dialect.

The types are immutable ``msgspec.Struct`` classes (frozen, keyword-only). msgspec was chosen over
pydantic because the adapters' budget is 5 ms per typical dossier (about 600 objects): construction of a
Struct costs well under a microsecond, and the canonical JSON codec (:func:`to_json` / :func:`from_json`)
validates types and runs every ``__post_init__`` check while decoding.

Dutch terms kept where they are the real term, explained once:

- **BSN** (burgerservicenummer): the 9-digit citizen number; valid numbers pass the *11-test*.
- **AGB** (Algemeen GegevensBeheer, AGB-Z): the 8-digit Vektis code of care providers and practices.
- **UZI**: the 9-digit number on a care professional's UZI pass; **URA**: the 8-digit UZI register
  number of an organisation. **UZOVI**: the 4-digit code of a health insurer.
- **ICPC** (ICPC-1-NL): the International Classification of Primary Care, Dutch extension
  (``K78``, ``L86.01``); codes an episode, a deelcontact or an E line.
- **Episode**: a health problem followed over time (title, ICPC, start/end, attention flag =
  *attentiewaarde*: a closed episode still worth the attention of another doctor).
- **Contact** and **deelcontact**: one contact (consult, visit, phone, video ...; NHG Tabel 14) splits
  into deelcontacten, one per problem, each linked to an episode and holding **SOEP** lines:
  S subjective, O objective, E evaluation (with ICPC), P plan.
- **Voorvoegsels**: name prefixes such as ``van der``, kept apart from the family name; a patient may
  use a partner's name (NameUsage NL1–NL4).
- **Afgeschermd** (shielded): data the GP marked as not to be shared; summaries leave it out.
- **Postbox** (postvak): where messages for a practice land before the GP files them in the record.

Times: dates are ``datetime.date``; moments are naive ``datetime.datetime`` in the practice's wall-clock
time (Europe/Amsterdam), whole seconds. That is what a HIS stores; OmniHIS-style files add the offset.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Literal

import msgspec

# --------------------------------------------------------------------------- validators

_AGB_RE = re.compile(r"^[0-9]{8}\Z")
_UZI_RE = re.compile(r"^[0-9]{9}\Z")
_URA_RE = re.compile(r"^[0-9]{8}\Z")
_UZOVI_RE = re.compile(r"^[0-9]{4}\Z")
# ICPC-1-NL: chapter letter, two digits (process codes -30..-69 and diagnoses), optional Dutch
# extension ".d" or ".dd".
ICPC_RE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?\Z")
_ID_RE = re.compile(r"^[A-Za-z0-9.\-_:]{1,64}\Z")


def bsn_is_valid(bsn: str) -> bool:
    """The BSN 11-test: 9 digits d1..d9, 9*d1 + 8*d2 + ... + 2*d8 - 1*d9 divisible by 11, and not 0."""
    if len(bsn) != 9 or not bsn.isascii() or not bsn.isdigit():
        return False
    d = bsn.encode()  # ASCII digits: d[i] - 48 is the digit (written out: 0.6 us; a sum() over zip: 2.5 us)
    total = 9 * d[0] + 8 * d[1] + 7 * d[2] + 6 * d[3] + 5 * d[4] + 4 * d[5] + 3 * d[6] + 2 * d[7] - d[8]
    total -= 43 * 48  # the weights add up to 43
    return total % 11 == 0 and total != 0


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _check_id(value: str, what: str) -> None:
    _check(
        bool(_ID_RE.match(value)), f"{what} {value!r} is not a valid local id (1-64 of A-Z a-z 0-9 . - _ :)"
    )


_OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+\Z")


def _check_source(root: str | None, ext: str | None, what: str) -> None:
    """The HIS's own identifier of an item: an OID root and an extension, both or neither (nl-core)."""
    _check((root is None) == (ext is None), f"{what}: source root and source extension go together")
    _check(root is None or bool(_OID_RE.match(root)), f"{what}: source root {root!r} is not an OID")
    _check(ext is None or 0 < len(ext) <= 200, f"{what}: source extension must be 1-200 characters")


def _check_moment(value: dt.datetime | None, what: str) -> None:
    if value is not None:
        _check(value.tzinfo is None, f"{what} must be a local wall-clock time without offset")
        _check(value.microsecond == 0, f"{what} must be whole seconds")


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every model struct: immutable, keyword-only, unknown fields refused. Subclasses inherit this at
    run time, yet each says ``frozen=True`` again: type checkers read msgspec's ``dataclass_transform``
    per class and would take a subclass without it for a mutable one (mypy: "Non-frozen dataclass cannot
    inherit from a frozen dataclass")."""


# --------------------------------------------------------------------------- people and places

Gender = Literal["male", "female", "other", "unknown"]
NameUsage = Literal["NL1", "NL2", "NL3", "NL4"]
"""zib NameUsage: NL1 own name, NL2 partner's name, NL3 partner's then own, NL4 own then partner's."""
TelecomSystem = Literal["phone", "email", "fax"]
TelecomUse = Literal["home", "work", "mobile", "temp"]
AddressUse = Literal["home", "work", "temp", "postal"]


class PersonName(_Base, frozen=True):
    """A Dutch person name with its parts kept apart (zib NameInformation)."""

    initials: str | None = None  # "J.P."
    given: str | None = None  # first names as written: "Jan Pieter"
    prefix: str | None = None  # voorvoegsels of the own family name: "van der"
    family: str | None = None  # own family name (geslachtsnaam): "Berg"
    partner_prefix: str | None = None
    partner_family: str | None = None
    usage: NameUsage | None = None
    title: str | None = None  # academic or other title before the name: "Dr."

    def __post_init__(self) -> None:
        _check(
            any((self.family, self.partner_family, self.given, self.initials)),
            "a name needs at least a family name, partner name, given name or initials",
        )


class Address(_Base, frozen=True):
    street: str | None = None
    house_number: str | None = None  # "12", "12a", "12-2"
    postal_code: str | None = None  # "1256 DC"
    city: str | None = None
    country: str | None = None
    use: AddressUse | None = None


class Telecom(_Base, frozen=True):
    system: TelecomSystem
    value: str
    use: TelecomUse | None = None

    def __post_init__(self) -> None:
        _check(bool(self.value.strip()), "telecom value is empty")


class Insurance(_Base, frozen=True):
    """Health insurance: insurer by UZOVI and the policy (polis) number."""

    uzovi: str
    policy_number: str | None = None
    insurer_name: str | None = None

    def __post_init__(self) -> None:
        _check(bool(_UZOVI_RE.match(self.uzovi)), f"UZOVI {self.uzovi!r} is not 4 digits")


class Organization(_Base, frozen=True):
    """A care organisation: the GP practice, a hospital, a district team."""

    id: str
    name: str
    agb: str | None = None
    ura: str | None = None
    address: Address | None = None
    telecom: tuple[Telecom, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.id, "organization id")
        _check(self.agb is None or bool(_AGB_RE.match(self.agb)), f"AGB {self.agb!r} is not 8 digits")
        _check(self.ura is None or bool(_URA_RE.match(self.ura)), f"URA {self.ura!r} is not 8 digits")


class HealthProfessional(_Base, frozen=True):
    """A care professional (the GP, a locum, a specialist); ``role`` is a UZI role code, 01.015 = huisarts."""

    id: str
    name: PersonName | None = None
    agb: str | None = None
    uzi: str | None = None
    big: str | None = None
    role: str | None = None
    organization_id: str | None = None
    telecom: tuple[Telecom, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.id, "professional id")
        _check(self.agb is None or bool(_AGB_RE.match(self.agb)), f"AGB {self.agb!r} is not 8 digits")
        _check(self.uzi is None or bool(_UZI_RE.match(self.uzi)), f"UZI {self.uzi!r} is not 9 digits")
        _check(any((self.name, self.agb, self.uzi, self.big)), "a professional needs a name or an identifier")


class Patient(_Base, frozen=True):
    bsn: str | None
    name: PersonName
    birth_date: dt.date
    gender: Gender = "unknown"
    address: Address | None = None
    telecom: tuple[Telecom, ...] = ()
    insurance: Insurance | None = None
    deceased_date: dt.date | None = None
    deregistered_date: dt.date | None = None  # left the practice (moved away)

    def __post_init__(self) -> None:
        _check(self.bsn is None or bsn_is_valid(self.bsn), f"BSN {self.bsn!r} fails the 11-test")


# --------------------------------------------------------------------------- the journal

SoepType = Literal["S", "O", "E", "P"]


class SoepLine(_Base, frozen=True):
    """One journal line: S, O, E or P and its text (an E line may carry an ICPC)."""

    type: SoepType
    text: str
    icpc: str | None = None

    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check(
            self.icpc is None or bool(ICPC_RE.match(self.icpc)),
            f"ICPC {self.icpc!r} has not the shape A99[.9[9]]",
        )
        _check_source(self.source_root, self.source_ext, "journal line")


class Deelcontact(_Base, frozen=True):
    """The part of a contact about one problem: linked to an episode, coded by ICPC, holding SOEP lines."""

    episode_id: str | None = None
    icpc: str | None = None
    lines: tuple[SoepLine, ...] = ()

    def __post_init__(self) -> None:
        _check(
            self.icpc is None or bool(ICPC_RE.match(self.icpc)),
            f"ICPC {self.icpc!r} has not the shape A99[.9[9]]",
        )


class VideoDetails(_Base, frozen=True):
    """What the journal records of a video consult (DOMAIN.md §4)."""

    application: str | None = None
    connection_quality: Literal["good", "moderate", "poor"] | None = None
    patient_device: str | None = None
    identity_verified: bool = False


class Contact(_Base, frozen=True):
    """A contact (consult, visit, phone, e-mail, video ...); ``contact_type`` is an NHG Tabel 14 code."""

    id: str
    start: dt.datetime
    end: dt.datetime | None = None
    contact_type: str | None = None
    author_id: str | None = None
    deelcontacten: tuple[Deelcontact, ...] = ()
    video: VideoDetails | None = None
    shielded: bool = False

    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "contact id")
        _check_moment(self.start, "contact start")
        _check_moment(self.end, "contact end")
        _check(self.end is None or self.end >= self.start, "contact ends before it starts")
        _check_source(self.source_root, self.source_ext, "contact")


class Episode(_Base, frozen=True):
    """An episode: active while ``end`` is empty; ``attention`` = attentiewaarde."""

    id: str
    title: str
    icpc: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    attention: bool = False
    shielded: bool = False

    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "episode id")
        _check(
            self.icpc is None or bool(ICPC_RE.match(self.icpc)),
            f"ICPC {self.icpc!r} has not the shape A99[.9[9]]",
        )
        _check(
            self.end is None or self.start is None or self.end >= self.start, "episode ends before it starts"
        )
        _check_source(self.source_root, self.source_ext, "episode")

    @property
    def active(self) -> bool:
        return self.end is None


# --------------------------------------------------------------------------- medication, results, alerts

ProductCodeSystem = Literal["GPK", "HPK", "PRK", "ZI"]
MedicationStatus = Literal["active", "stopped", "completed"]
TimingUnit = Literal["h", "d", "wk", "mo"]
"""UCUM units of a dosage schedule's period (FHIR Timing.repeat.periodUnit, a subset)."""


class Medication(_Base, frozen=True):
    """A prescription / medication agreement. ``product_code`` is a G-Standaard code of ``product_system``."""

    id: str
    product_name: str
    product_system: ProductCodeSystem | None = None
    product_code: str | None = None
    atc: str | None = None
    dosage_text: str | None = None
    dosage_code: str | None = None  # NHG Tabel 25 numeric code
    start: dt.date | None = None
    end: dt.date | None = None
    status: MedicationStatus = "active"
    prescribed_on: dt.date | None = None
    prescriber_id: str | None = None
    quantity: Decimal | None = None
    quantity_unit: str | None = None
    episode_id: str | None = None

    shielded: bool = False
    timing_frequency: int | None = None  # the schedule beside dosage_text (FHIR Timing.repeat): 2 ...
    timing_period: Decimal | None = None  # ... per 1 ...
    timing_unit: TimingUnit | None = None  # ... d
    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "medication id")
        _check(bool(self.product_name.strip()), "medication has no product name")
        _check(
            (self.product_code is None) == (self.product_system is None),
            "product code and product code system go together",
        )
        _check(
            self.end is None or self.start is None or self.end >= self.start,
            "medication ends before it starts",
        )
        _check(
            (self.timing_period is None) == (self.timing_unit is None),
            "timing period and timing unit go together",
        )
        _check(
            self.timing_frequency is None or self.timing_frequency >= 1, "timing frequency must be at least 1"
        )
        _check(
            self.timing_period is None or (self.timing_period.is_finite() and self.timing_period > 0),
            "timing period must be a positive number",
        )
        _check_source(self.source_root, self.source_ext, "medication")


class Coding(_Base, frozen=True):
    """A code in a code system named by its URI (``http://loinc.org``), with the text its sender gave it."""

    system: str
    code: str
    display: str | None = None

    def __post_init__(self) -> None:
        _check(bool(self.code.strip()), "a coding needs a code")
        _check(bool(self.system.strip()), "a coding needs a code system")


class Attachment(_Base, frozen=True):
    """Data sent with a result (HL7 v2 ED encapsulated data, RP reference pointer): inline base64 data
    or a reference (URL) to it, with its MIME type."""

    content_type: str | None = None
    data: str | None = None  # base64
    url: str | None = None

    def __post_init__(self) -> None:
        _check(self.data is not None or self.url is not None, "an attachment needs data or a reference")


Interpretation = Literal[
    "L", "H", "N", "A", "LL", "HH", "LU", "HU", "<", ">", "AA", "U", "D", "B", "W", "S", "R", "I", "MS", "VS",
    "NEG", "POS", "IND", "DET", "ND", "E",
]  # fmt: skip
"""Abnormal flags: HL7 v2 table 0078 = v3 ObservationInterpretation
(``mappings/data/observation-interpretation.csv``, the same codes; ``tests/test_hl7v2_obx.py`` checks they
agree)."""
MeasurementStatus = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
]
"""FHIR ObservationStatus; a lab's correction (HL7 v2 OBX-11 ``C``) is ``corrected``."""
Precision = Literal["year", "month", "day", "second"]
"""How precise a moment was given: a date alone stays a date (``day``)."""
_MOMENT_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?)?)?)?\Z")
_TIME_RE = re.compile(r"^\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?\Z")


class Measurement(_Base, frozen=True):
    """A measurement or lab result coded by NHG Tabel 45: numeric (with unit) or text, or no value."""

    id: str
    code: str
    effective: dt.datetime
    value_quantity: Decimal | None = None
    value_text: str | None = None
    unit: str | None = None
    reference_low: Decimal | None = None
    reference_high: Decimal | None = None
    interpretation: Literal["L", "H", "N", "A", "LL", "HH"] | None = None

    date_only: bool = False  # taken on a day, no time recorded: ``effective`` is that day's midnight
    episode_id: str | None = None
    shielded: bool = False
    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "measurement id")
        _check(bool(self.code.strip()), "measurement has no Tabel 45 code")
        _check_moment(self.effective, "measurement time")
        _check(
            self.value_quantity is None or self.value_text is None,
            "a measurement has a number or a text, not both",
        )
        for v in (self.value_quantity, self.reference_low, self.reference_high):
            _check(v is None or v.is_finite(), "measurement numbers must be finite")
        _check(
            not self.date_only or self.effective.time() == dt.time(0),
            "a date-only measurement has no time of day",
        )
        _check_source(self.source_root, self.source_ext, "measurement")


class LabResult(Measurement, frozen=True):  # type: ignore[misc]  # Measurement is frozen by _Base
    """A lab result as laboratories send it (HL7 v2 OBX): a :class:`Measurement` whose test may be coded
    in any code system (``system`` None: NHG Tabel 45; LOINC, SNOMED CT, a lab's own codes otherwise), with
    its status, the precision of its time, notes, and values of more kinds.

    A HIS dossier holds :class:`Measurement`; a lab message holds these (a ``Measurement`` is a
    ``LabResult`` with every field below at its default). Values: ``value_quantity`` a number (with
    ``comparator`` ``<5``; with ``value_high`` and ``value_separator`` a range ``2-5`` or a ratio
    ``1:128``), ``value_text`` a text, ``value_coded`` a coded value (its text in ``value_text``),
    ``value_moment`` a date/time as ISO 8601 with the precision sent (``2024-05``,
    ``2024-05-03T10:20:00+02:00``) or a time of day (``10:20:00``), ``value_attachment`` data."""

    interpretation: Interpretation | None = None  # type: ignore[assignment]  # a wider table than a HIS's
    system: str | None = None  # None: NHG Tabel 45
    text: str | None = None  # the name of the test as the sender wrote it
    codings: tuple[Coding, ...] = ()  # other codings of the same test
    status: MeasurementStatus = "final"
    precision: Precision = "second"  # of effective
    comparator: Literal["<", "<=", ">", ">="] | None = None
    value_high: Decimal | None = None
    value_separator: Literal["-", ":"] | None = None
    value_coded: tuple[Coding, ...] = ()
    value_moment: str | None = None
    value_attachment: Attachment | None = None
    unit_system: str | None = None  # the unit's code system when the sender named one other than UCUM
    reference_text: str | None = None  # a reference range not of the form low-high
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        kinds = (
            self.value_quantity is not None,
            bool(self.value_coded),
            self.value_moment is not None,
            self.value_attachment is not None,
        )
        _check(sum(kinds) <= 1, "a result has one value")
        _check(
            (self.value_high is None) == (self.value_separator is None),
            "a second number needs its separator (range or ratio)",
        )
        _check(
            self.value_high is None or self.value_quantity is not None,
            "a range or ratio needs a first number",
        )
        _check(
            self.value_moment is None
            or bool(_MOMENT_RE.match(self.value_moment) or _TIME_RE.match(self.value_moment)),
            "a date/time value must be ISO 8601",
        )
        _check(self.value_high is None or self.value_high.is_finite(), "measurement numbers must be finite")


class Intolerance(_Base, frozen=True):
    """An intolerance or allergy; ``code`` from G-Standaard thesaurus 122 (ongewenste medicatiegroepen)."""

    id: str
    text: str
    code: str | None = None
    start: dt.date | None = None
    status: Literal["active", "inactive"] = "active"

    episode_id: str | None = None
    shielded: bool = False
    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "intolerance id")
        _check_source(self.source_root, self.source_ext, "intolerance")


class ContraIndication(_Base, frozen=True):
    """A contra-indication (ICA); ``code`` from G-Standaard thesaurus 40."""

    id: str
    text: str
    code: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None

    episode_id: str | None = None
    shielded: bool = False
    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "contra-indication id")
        _check_source(self.source_root, self.source_ext, "contra-indication")


class AttentionNote(_Base, frozen=True):
    """A free-text attention note (attentiepunt) for whoever treats the patient next."""

    id: str
    text: str
    date: dt.date | None = None

    episode_id: str | None = None
    shielded: bool = False
    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "attention note id")
        _check(bool(self.text.strip()), "attention note is empty")
        _check_source(self.source_root, self.source_ext, "attention note")


class Correspondence(_Base, frozen=True):
    """A letter or message in the record; ``kind`` is an NHG Tabel 69 code. The text is never altered."""

    id: str
    date: dt.datetime
    direction: Literal["in", "out"]
    text: str
    kind: str | None = None
    subject: str | None = None
    sender_name: str | None = None
    sender_discipline: str | None = None
    addressee_name: str | None = None
    episode_id: str | None = None
    sender_reference: str | None = None

    shielded: bool = False
    source_root: str | None = None  # the HIS's own id: OID root (FHIR identifier system urn:oid:<root>)
    source_ext: str | None = None  # ... and its extension (identifier value)

    def __post_init__(self) -> None:
        _check_id(self.id, "correspondence id")
        _check_moment(self.date, "correspondence date")
        _check_source(self.source_root, self.source_ext, "correspondence")


# --------------------------------------------------------------------------- the dossier


class Dossier(_Base, frozen=True):
    """A GP dossier as a HIS exports it: the practice, the patient, their GP and the record.

    ``professionals`` and ``organizations`` hold everyone else the record refers to (locums, the
    organisation a locum worked for); ``author_id``/``prescriber_id``/``organization_id`` refer to
    ``gp`` or to them by ``id``. ``episode_id`` everywhere refers to ``episodes``.
    """

    practice: Organization
    patient: Patient
    gp: HealthProfessional | None = None
    professionals: tuple[HealthProfessional, ...] = ()
    organizations: tuple[Organization, ...] = ()
    episodes: tuple[Episode, ...] = ()
    contacts: tuple[Contact, ...] = ()
    medications: tuple[Medication, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    intolerances: tuple[Intolerance, ...] = ()
    contraindications: tuple[ContraIndication, ...] = ()
    attention_notes: tuple[AttentionNote, ...] = ()
    correspondence: tuple[Correspondence, ...] = ()

    def __post_init__(self) -> None:
        for problem in reference_problems(self):
            raise ValueError(problem)

    def professional(self, pid: str) -> HealthProfessional | None:
        if self.gp is not None and self.gp.id == pid:
            return self.gp
        return next((p for p in self.professionals if p.id == pid), None)

    def episode(self, eid: str) -> Episode | None:
        return next((e for e in self.episodes if e.id == eid), None)


def reference_problems(d: Dossier) -> list[str]:
    """Duplicate ids and references that do not resolve inside the dossier, as messages."""
    out: list[str] = []

    def unique(kind: str, ids: list[str]) -> set[str]:
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                out.append(f"duplicate {kind} id {i!r}")
            seen.add(i)
        return seen

    orgs = unique("organization", [d.practice.id] + [o.id for o in d.organizations])
    pros = unique("professional", ([d.gp.id] if d.gp else []) + [p.id for p in d.professionals])
    eps = unique("episode", [e.id for e in d.episodes])
    unique("contact", [c.id for c in d.contacts])
    unique("medication", [m.id for m in d.medications])
    unique("measurement", [m.id for m in d.measurements])
    unique("intolerance", [m.id for m in d.intolerances])
    unique("contra-indication", [m.id for m in d.contraindications])
    unique("attention note", [m.id for m in d.attention_notes])
    unique("correspondence", [m.id for m in d.correspondence])
    for p in ([d.gp] if d.gp else []) + list(d.professionals):
        if p.organization_id is not None and p.organization_id not in orgs:
            out.append(f"professional {p.id!r} refers to unknown organization {p.organization_id!r}")
    for c in d.contacts:
        if c.author_id is not None and c.author_id not in pros:
            out.append(f"contact {c.id!r} refers to unknown author {c.author_id!r}")
        for dc in c.deelcontacten:
            if dc.episode_id is not None and dc.episode_id not in eps:
                out.append(f"contact {c.id!r} refers to unknown episode {dc.episode_id!r}")
    for m in d.medications:
        if m.prescriber_id is not None and m.prescriber_id not in pros:
            out.append(f"medication {m.id!r} refers to unknown prescriber {m.prescriber_id!r}")
        if m.episode_id is not None and m.episode_id not in eps:
            out.append(f"medication {m.id!r} refers to unknown episode {m.episode_id!r}")
    linked: tuple[tuple[str, tuple], ...] = (
        ("measurement", d.measurements),
        ("intolerance", d.intolerances),
        ("contra-indication", d.contraindications),
        ("attention note", d.attention_notes),
        ("correspondence", d.correspondence),
    )
    for kind, items in linked:
        for k in items:
            if k.episode_id is not None and k.episode_id not in eps:
                out.append(f"{kind} {k.id!r} refers to unknown episode {k.episode_id!r}")
    return out


# --------------------------------------------------------------------------- the postbox


class PatientMatch(_Base, frozen=True):
    """How a message names its patient; auto-filing needs BSN + birth date + the sender's reference."""

    bsn: str | None = None
    birth_date: dt.date | None = None
    name: PersonName | None = None
    sender_reference: str | None = None

    def __post_init__(self) -> None:
        _check(self.bsn is None or bsn_is_valid(self.bsn), f"BSN {self.bsn!r} fails the 11-test")


class JournalEntry(_Base, frozen=True):
    """A concept journal entry (one deelcontact) the GP reviews before it becomes part of the record."""

    date: dt.datetime
    episode_id: str
    icpc: str | None = None
    lines: tuple[SoepLine, ...] = ()
    contact_type: str | None = None

    def __post_init__(self) -> None:
        _check_moment(self.date, "journal entry date")
        _check_id(self.episode_id, "episode id")
        _check(
            self.icpc is None or bool(ICPC_RE.match(self.icpc)),
            f"ICPC {self.icpc!r} has not the shape A99[.9[9]]",
        )


class AutoFiling(_Base, frozen=True):
    """A ready filing: the correspondence item plus a concept journal entry under a known episode."""

    episode_id: str
    journal_entry: JournalEntry

    def __post_init__(self) -> None:
        _check(
            self.journal_entry.episode_id == self.episode_id,
            "journal entry is not under the filing's episode",
        )


class PostboxItem(_Base, frozen=True):
    """What the gateway delivers into a practice's postbox: feedback, an answer or a letter.

    ``filing`` is present only when the match was certain (DOMAIN.md §6); otherwise
    ``manual_reason`` says why the item waits for manual filing. The letter (``correspondence.text``)
    is delivered exactly as received.
    """

    id: str
    kind: Literal["feedback", "consult-answer", "letter", "result"]
    created: dt.datetime
    practice_agb: str
    patient: PatientMatch
    correspondence: Correspondence
    sender_organization: str | None = None
    filing: AutoFiling | None = None
    manual_reason: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.id, "postbox item id")
        _check_moment(self.created, "postbox item creation time")
        _check(bool(_AGB_RE.match(self.practice_agb)), f"AGB {self.practice_agb!r} is not 8 digits")
        _check(
            (self.filing is None) != (self.manual_reason is None),
            "a postbox item has either a filing or a reason for manual filing",
        )


# --------------------------------------------------------------------------- canonical JSON

_ENCODER = msgspec.json.Encoder(decimal_format="string")
_DOSSIER_DECODER = msgspec.json.Decoder(Dossier)
_POSTBOX_DECODER = msgspec.json.Decoder(PostboxItem)


def to_json(obj: Dossier | PostboxItem) -> bytes:
    """Canonical JSON: fields in declaration order, defaults included, byte-stable."""
    return _ENCODER.encode(obj)


def from_json(data: bytes | str) -> Dossier:
    """Decode and validate canonical JSON; raises ``msgspec.ValidationError`` naming the JSON path."""
    return _DOSSIER_DECODER.decode(data)


def postbox_from_json(data: bytes | str) -> PostboxItem:
    return _POSTBOX_DECODER.decode(data)

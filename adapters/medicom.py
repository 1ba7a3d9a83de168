"""Medicom-style XML export and postbox import (specified in ``docs/dialects/medicom.md``; DOMAIN.md §7).

XML 1.0 with Dutch element names in the default namespace ``urn:his-gateway:medicom:1``, declared
encoding ISO-8859-15, optional elements omitted rather than empty, dates ``YYYYMMDD`` and moments
``YYYYMMDDHHMMSS`` (the practice's wall-clock time). Two roots: ``MedicomExport`` (one dossier, spec §3)
and ``MedicomPostbus`` (one postbox item, spec §4).

The element tables below *are* the dialect (spec §3 and §4 list the same rows): one :class:`Row` per
canonical field. Writer and reader both walk them, so they cannot drift apart, and a test holds the spec's
tables to them.

Reading (spec §5) goes through :func:`adapters.xmlsafe.parse_xml` only and visits every element once: an
element, attribute or text the tables do not know is reported as a warning (``MED-010``), the trace of
unused input, so nothing in an export is dropped silently. Malformed values and values that break a rule
of the canonical model are errors located as ``file:line /XPath``; lenient mode collects them all, strict
mode stops at the first.

Writing (spec §2) is a careful string writer rather than an lxml tree: building the tree with
``SubElement`` costs about 4 ms for a typical dossier, this writer well under 2 ms. It escapes exactly as
lxml does (``& < >``, CR as ``&#13;``, characters outside ISO-8859-15 as decimal character references);
``tests/test_medicom.py`` re-serialises its output with lxml to prove that.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from lxml import etree

from adapters.forms import basic_date, basic_moment
from adapters.xmlsafe import element_path, parse_xml
from mappings import model as m
from mappings.codec import DossierFormat, PostboxFormat, sink_or_new
from mappings.codetables import code_tables
from mappings.problems import InputError, Problem, ProblemSink, Severity

NS = "urn:his-gateway:medicom:1"
VERSION = "1"
ENCODING = "ISO-8859-15"
EXPORT_ROOT = "MedicomExport"
POSTBOX_ROOT = "MedicomPostbus"
_Q = "{" + NS + "}"


# --------------------------------------------------------------------------- value kinds (spec §2)


@dataclass(frozen=True)
class Kind:
    """How one value is written as text and read back; ``parse`` raises ValueError or KeyError."""

    name: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str]


_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


def _decimal(raw: str) -> Decimal:
    # Decimal() alone would also take " 1", "1_000", "1e5" and "NaN"
    if not _DECIMAL_RE.match(raw):
        raise ValueError(raw)
    return Decimal(raw)


def _integer(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ValueError(raw)
    return int(raw)


def _enum(name: str, words: dict[str, str]) -> Kind:
    """A closed set of values, ``words`` mapping each canonical value to the dialect's word."""
    back = {v: k for k, v in words.items()}
    return Kind(name, back.__getitem__, words.__getitem__)


def _tokens(name: str, cls: type, fld: str) -> Kind:
    """A closed set written as the canonical token itself (the values of the model's Literal)."""
    tp = next(f.type for f in msgspec.structs.fields(cls) if f.name == fld)
    if typing.get_origin(tp) is not typing.Literal:  # Literal[...] | None
        tp = next(a for a in typing.get_args(tp) if typing.get_origin(a) is typing.Literal)
    return _enum(name, {v: v for v in typing.get_args(tp)})


# Formatting through isoformat(): four times faster than strftime, and strftime("%Y") does not pad a year
# below 1000 to four digits.
def _format_moment(v: dt.datetime) -> str:
    iso = v.isoformat()  # YYYY-MM-DDTHH:MM:SS: the model keeps whole seconds
    return iso[:4] + iso[5:7] + iso[8:10] + iso[11:13] + iso[14:16] + iso[17:19]


DATE = Kind("date YYYYMMDD", basic_date, lambda v: v.isoformat().replace("-", ""))
MOMENT = Kind("moment YYYYMMDDHHMMSS", basic_moment, _format_moment)
DECIMAL = Kind("decimal number", _decimal, lambda v: format(v, "f"))
INTEGER = Kind("whole number", _integer, str)
YESNO = Kind("ja or nee", {"ja": True, "nee": False}.__getitem__, lambda v: "ja" if v else "nee")
GENDER = _enum("gender (M, V, X, O)", {"male": "M", "female": "V", "other": "X", "unknown": "O"})
TELECOM_SYSTEM = _enum("telecom kind", {"phone": "telefoon", "email": "email", "fax": "fax"})
TELECOM_USE = _enum("telecom use", {"home": "prive", "work": "werk", "mobile": "mobiel", "temp": "tijdelijk"})
ADDRESS_USE = _enum(
    "address kind", {"home": "woonadres", "work": "werkadres", "temp": "tijdelijk", "postal": "postadres"}
)
MEDICATION_STATUS = _enum(
    "medication status", {"active": "actueel", "stopped": "gestopt", "completed": "afgerond"}
)
INTOLERANCE_STATUS = _enum("intolerance status", {"active": "actief", "inactive": "inactief"})
QUALITY = _enum("connection quality", {"good": "goed", "moderate": "matig", "poor": "slecht"})
DIRECTION = _enum("direction", {"in": "inkomend", "out": "uitgaand"})
POSTBOX_KIND = _enum(
    "postbox item kind",
    {
        "feedback": "terugkoppeling",
        "consult-answer": "consultantwoord",
        "letter": "brief",
        "result": "uitslag",
    },
)
NAME_USAGE = _tokens("name usage (NL1-NL4)", m.PersonName, "usage")
PRODUCT_SYSTEM = _tokens("product code system", m.Medication, "product_system")
SOEP = _tokens("journal line type (S, O, E, P)", m.SoepLine, "type")
INTERPRETATION = _tokens("interpretation", m.Measurement, "interpretation")
TIMING_UNIT = _tokens("timing unit (h, d, wk, mo)", m.Medication, "timing_unit")


# --------------------------------------------------------------------------- the element tables (spec §3, §4)


@dataclass
class Row:
    """One canonical field, carried by an attribute of its record (``attr``), by a text element (``text``),
    by a nested record (``one``) or by repeated records (``many``, optionally inside a container element).
    ``kind`` None is plain text; ``check`` names the code table an unknown code is reported against."""

    field: str
    name: str
    kind: Kind | None = None
    spec: Spec | None = None
    many: bool = False
    container: str | None = None
    check: str | None = None


@dataclass
class Spec:
    """One record element: its canonical class, its attributes, its own text (``content``) and children."""

    cls: type
    attrs: list[Row]
    rows: list[Row] = field(default_factory=list)
    content: str | None = None  # the canonical field carried by the element's own text (Regel, Telecom)
    id_kind: str | None = None  # ids of this kind are unique within a document
    derived: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (other field, its field)
    # compiled by _compile for the reader's inner loop
    by_attr: dict[str, tuple] = field(default_factory=dict)  # name -> (field, parse, check)
    children: dict[str, tuple] = field(default_factory=dict)  # qualified tag -> (field, row or None)
    required: frozenset[str] = frozenset()
    nullable: tuple[str, ...] = ()
    plain: bool = False  # no derived or nullable fields and not the dossier: build() takes its short path


def attr(fld: str, name: str, kind: Kind | None = None, *, check: str | None = None) -> Row:
    return Row(fld, name, kind, check=check)


def text(fld: str, tag: str) -> Row:
    return Row(fld, tag)


def one(fld: str, tag: str, spec: Spec) -> Row:
    return Row(fld, tag, spec=spec)


def many(fld: str, tag: str, spec: Spec, container: str | None = None) -> Row:
    return Row(fld, tag, spec=spec, many=True, container=container)


NAAM = Spec(
    m.PersonName,
    [attr("usage", "naamgebruik", NAME_USAGE)],
    [
        text("title", "Titel"),
        text("initials", "Voorletters"),
        text("given", "Voornamen"),
        text("prefix", "Voorvoegsels"),
        text("family", "Geslachtsnaam"),
        text("partner_prefix", "PartnerVoorvoegsels"),
        text("partner_family", "PartnerGeslachtsnaam"),
    ],
)
ADRES = Spec(
    m.Address,
    [attr("use", "soort", ADDRESS_USE)],
    [
        text("street", "Straat"),
        text("house_number", "Huisnummer"),
        text("postal_code", "Postcode"),
        text("city", "Plaats"),
        text("country", "Land"),
    ],
)
TELECOM = Spec(
    m.Telecom, [attr("system", "soort", TELECOM_SYSTEM), attr("use", "gebruik", TELECOM_USE)], content="value"
)
VERZEKERING = Spec(
    m.Insurance,
    [attr("uzovi", "uzovi"), attr("policy_number", "polisnummer")],
    [text("insurer_name", "Verzekeraar")],
)
ORGANISATIE = Spec(
    m.Organization,
    [attr("id", "id"), attr("agb", "agb"), attr("ura", "ura")],
    [text("name", "Naam"), one("address", "Adres", ADRES), many("telecom", "Telecom", TELECOM)],
    id_kind="organization",
)
ZORGVERLENER = Spec(
    m.HealthProfessional,
    [
        attr("id", "id"),
        attr("agb", "agb"),
        attr("uzi", "uzi"),
        attr("big", "big"),
        attr("role", "rol"),
        attr("organization_id", "organisatie"),
    ],
    [one("name", "Naam", NAAM), many("telecom", "Telecom", TELECOM)],
    id_kind="professional",
)
PATIENT = Spec(
    m.Patient,
    [
        attr("bsn", "bsn"),
        attr("birth_date", "geboortedatum", DATE),
        attr("gender", "geslacht", GENDER),
        attr("deceased_date", "overlijdensdatum", DATE),
        attr("deregistered_date", "uitschrijfdatum", DATE),
    ],
    [
        one("name", "Naam", NAAM),
        one("address", "Adres", ADRES),
        many("telecom", "Telecom", TELECOM),
        one("insurance", "Verzekering", VERZEKERING),
    ],
)
EPISODE = Spec(
    m.Episode,
    [
        attr("id", "id"),
        attr("icpc", "icpc", check="icpc"),
        attr("start", "begindatum", DATE),
        attr("end", "einddatum", DATE),
        attr("attention", "attentiewaarde", YESNO),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [text("title", "Titel")],
    id_kind="episode",
)
REGEL = Spec(
    m.SoepLine,
    [
        attr("type", "type", SOEP),
        attr("icpc", "icpc", check="icpc"),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    content="text",
)
DEELCONTACT = Spec(
    m.Deelcontact,
    [attr("episode_id", "episode"), attr("icpc", "icpc", check="icpc")],
    [many("lines", "Regel", REGEL)],
)
VIDEOCONSULT = Spec(
    m.VideoDetails,
    [
        attr("connection_quality", "verbindingskwaliteit", QUALITY),
        attr("identity_verified", "identiteitgecontroleerd", YESNO),
    ],
    [text("application", "Applicatie"), text("patient_device", "ApparaatPatient")],
)
CONTACT = Spec(
    m.Contact,
    [
        attr("id", "id"),
        attr("start", "begin", MOMENT),
        attr("end", "eind", MOMENT),
        attr("contact_type", "contactsoort", check="tabel14"),
        attr("author_id", "auteur"),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [one("video", "Videoconsult", VIDEOCONSULT), many("deelcontacten", "Deelcontact", DEELCONTACT)],
    id_kind="contact",
)
VOORSCHRIFT = Spec(
    m.Medication,
    [
        attr("id", "id"),
        attr("product_system", "codesysteem", PRODUCT_SYSTEM),
        attr("product_code", "code"),
        attr("atc", "atc", check="atc"),
        attr("dosage_code", "doseringcode", check="tabel25"),
        attr("start", "begindatum", DATE),
        attr("end", "einddatum", DATE),
        attr("status", "status", MEDICATION_STATUS),
        attr("prescribed_on", "voorschrijfdatum", DATE),
        attr("prescriber_id", "voorschrijver"),
        attr("quantity", "hoeveelheid", DECIMAL),
        attr("quantity_unit", "eenheid"),
        attr("episode_id", "episode"),
        attr("shielded", "afgeschermd", YESNO),
        attr("timing_frequency", "frequentie", INTEGER),
        attr("timing_period", "periode", DECIMAL),
        attr("timing_unit", "periodeeenheid", TIMING_UNIT),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [text("product_name", "Product"), text("dosage_text", "Dosering")],
    id_kind="medication",
)
BEPALING = Spec(
    m.Measurement,
    [
        attr("id", "id"),
        attr("code", "code", check="tabel45"),
        attr("effective", "datum", MOMENT),
        attr("value_quantity", "waarde", DECIMAL),
        attr("unit", "eenheid"),
        attr("reference_low", "ondergrens", DECIMAL),
        attr("reference_high", "bovengrens", DECIMAL),
        attr("interpretation", "interpretatie", INTERPRETATION),
        attr("date_only", "zondertijd", YESNO),
        attr("episode_id", "episode"),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [text("value_text", "Tekst")],
    id_kind="measurement",
)
INTOLERANTIE = Spec(
    m.Intolerance,
    [
        attr("id", "id"),
        attr("code", "code", check="thesaurus122"),
        attr("start", "begindatum", DATE),
        attr("status", "status", INTOLERANCE_STATUS),
        attr("episode_id", "episode"),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [text("text", "Tekst")],
    id_kind="intolerance",
)
CONTRAINDICATIE = Spec(
    m.ContraIndication,
    [
        attr("id", "id"),
        attr("code", "code", check="thesaurus40"),
        attr("start", "begindatum", DATE),
        attr("end", "einddatum", DATE),
        attr("episode_id", "episode"),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [text("text", "Tekst")],
    id_kind="contra-indication",
)
ATTENTIE = Spec(
    m.AttentionNote,
    [
        attr("id", "id"),
        attr("date", "datum", DATE),
        attr("episode_id", "episode"),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [text("text", "Tekst")],
    id_kind="attention note",
)
BRIEF = Spec(
    m.Correspondence,
    [
        attr("id", "id"),
        attr("date", "datum", MOMENT),
        attr("direction", "richting", DIRECTION),
        attr("kind", "soort", check="tabel69"),
        attr("episode_id", "episode"),
        attr("sender_reference", "kenmerk"),
        attr("shielded", "afgeschermd", YESNO),
        attr("source_root", "bronroot"),
        attr("source_ext", "bronid"),
    ],
    [
        text("subject", "Onderwerp"),
        text("sender_name", "Afzender"),
        text("sender_discipline", "AfzenderDiscipline"),
        text("addressee_name", "Geadresseerde"),
        text("text", "Tekst"),
    ],
    id_kind="correspondence",
)
EXPORT = Spec(
    m.Dossier,
    [],
    [
        one("practice", "Praktijk", ORGANISATIE),
        one("patient", "Patient", PATIENT),
        one("gp", "Huisarts", ZORGVERLENER),
        many("professionals", "Zorgverlener", ZORGVERLENER, "Zorgverleners"),
        many("organizations", "Organisatie", ORGANISATIE, "Organisaties"),
        many("episodes", "Episode", EPISODE, "Episodes"),
        many("contacts", "Contact", CONTACT, "Contacten"),
        many("medications", "Voorschrift", VOORSCHRIFT, "Medicatie"),
        many("measurements", "Bepaling", BEPALING, "Bepalingen"),
        many("intolerances", "Intolerantie", INTOLERANTIE, "Intoleranties"),
        many("contraindications", "Contraindicatie", CONTRAINDICATIE, "Contraindicaties"),
        many("attention_notes", "Attentie", ATTENTIE, "Attenties"),
        many("correspondence", "Brief", BRIEF, "Correspondentie"),
    ],
)

# The postbox import form (spec §4). The filing's episode is the concept deelcontact's episode: the model
# demands the two are equal, so the dialect carries it once.
PATIENT_MATCH = Spec(
    m.PatientMatch,
    [attr("bsn", "bsn"), attr("birth_date", "geboortedatum", DATE), attr("sender_reference", "kenmerk")],
    [one("name", "Naam", NAAM)],
)
CONCEPTDEELCONTACT = Spec(
    m.JournalEntry,
    [
        attr("date", "datum", MOMENT),
        attr("episode_id", "episode"),
        attr("icpc", "icpc", check="icpc"),
        attr("contact_type", "contactsoort", check="tabel14"),
    ],
    [many("lines", "Regel", REGEL)],
)
ARCHIVERING = Spec(
    m.AutoFiling,
    [],
    [one("journal_entry", "Conceptdeelcontact", CONCEPTDEELCONTACT)],
    derived={"episode_id": ("journal_entry", "episode_id")},
)
POSTBUS = Spec(
    m.PostboxItem,
    [
        attr("id", "id"),
        attr("kind", "soort", POSTBOX_KIND),
        attr("created", "aangemaakt", MOMENT),
        attr("practice_agb", "praktijkagb"),
    ],
    [
        text("sender_organization", "AfzenderOrganisatie"),
        one("patient", "Patient", PATIENT_MATCH),
        one("correspondence", "Brief", BRIEF),
        one("filing", "Archivering", ARCHIVERING),
        text("manual_reason", "RedenHandmatig"),
    ],
)

SPECS: dict[str, Spec] = {
    EXPORT_ROOT: EXPORT,
    "Praktijk, Organisatie": ORGANISATIE,
    "Adres": ADRES,
    "Telecom": TELECOM,
    "Patient": PATIENT,
    "Naam": NAAM,
    "Verzekering": VERZEKERING,
    "Huisarts, Zorgverlener": ZORGVERLENER,
    "Episode": EPISODE,
    "Contact": CONTACT,
    "Videoconsult": VIDEOCONSULT,
    "Deelcontact": DEELCONTACT,
    "Regel": REGEL,
    "Voorschrift": VOORSCHRIFT,
    "Bepaling": BEPALING,
    "Intolerantie": INTOLERANTIE,
    "Contraindicatie": CONTRAINDICATIE,
    "Attentie": ATTENTIE,
    "Brief": BRIEF,
    POSTBOX_ROOT: POSTBUS,
    "Patient (postbus)": PATIENT_MATCH,
    "Archivering": ARCHIVERING,
    "Conceptdeelcontact": CONCEPTDEELCONTACT,
}
"""Every record element, by the heading of its table in the spec (§3, §4)."""

ID_TAGS: dict[str, set[str]] = {}
"""The record elements that carry the ids of each kind (``episode`` -> ``Episode``)."""


def _compile(spec: Spec) -> None:
    """Index a spec for the reader; derive required and nullable fields from the model."""
    spec.by_attr = {r.name: (r.field, r.kind.parse if r.kind else None, r.check) for r in spec.attrs}
    for r in spec.rows:
        spec.children[_Q + (r.container or r.name)] = (r.field, r if r.spec is not None else None)
        if r.spec is not None and r.spec.id_kind is not None:
            ID_TAGS.setdefault(r.spec.id_kind, set()).add(r.name)
    fields = msgspec.structs.fields(spec.cls)
    dropped = (
        {f.name for f in fields}
        - {r.field for r in spec.rows + spec.attrs}
        - set(spec.derived)
        - {spec.content}
    )
    if dropped:  # every canonical field has its place: the dialect is lossless
        raise AssertionError(f"{spec.cls.__name__}: fields without a place: {sorted(dropped)}")
    spec.required = frozenset(
        f.name
        for f in fields
        if f.required and f.name not in spec.derived and type(None) not in typing.get_args(f.type)
    )
    spec.nullable = tuple(f.name for f in fields if f.required and type(None) in typing.get_args(f.type))
    spec.plain = not spec.derived and not spec.nullable and spec.cls is not m.Dossier


for _spec in SPECS.values():
    _compile(_spec)


# --------------------------------------------------------------------------- writing (spec §2)

# Characters XML 1.0 cannot carry at all, not even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape_text(s: str) -> str:
    # str.replace returns the very same object when there is nothing to replace: cheap for ordinary text
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)
_ATTR_SPECIAL = re.compile('[&<>"\t\n\r]')  # a parser normalises tab, LF and CR in attribute values to spaces


def _write_record(out: list[str], obj: Any, spec: Spec, tag: str, indent: str, root_attrs: str = "") -> None:
    head = tag + root_attrs
    for a in spec.attrs:
        value = getattr(obj, a.field)
        if value is None or value is False:
            continue  # absent: the attribute is omitted
        if a.kind is not None:
            value = a.kind.format(value)
        elif _ATTR_SPECIAL.search(value):
            value = value.translate(_ATTR_ESCAPES)
        head += f' {a.name}="{value}"'
    if spec.content is not None:  # a record carried as text with attributes: <Regel type="S">...</Regel>
        body = _escape_text(getattr(obj, spec.content))
        out.append(f"{indent}<{head}>{body}</{tag}>\n" if body else f"{indent}<{head}/>\n")
        return
    start = len(out)
    out.append(f"{indent}<{head}>\n")
    inner = indent + "  "
    for row in spec.rows:
        value = getattr(obj, row.field)
        if value is None or value == ():
            continue  # absent: the element is omitted, never written empty
        if row.spec is None:
            body = _escape_text(value)
            out.append(f"{inner}<{row.name}>{body}</{row.name}>\n" if body else f"{inner}<{row.name}/>\n")
        elif not row.many:
            _write_record(out, value, row.spec, row.name, inner)
        elif row.container is None:
            for item in value:
                _write_record(out, item, row.spec, row.name, inner)
        else:
            out.append(f"{inner}<{row.container}>\n")
            deeper = inner + "  "
            for item in value:
                _write_record(out, item, row.spec, row.name, deeper)
            out.append(f"{inner}</{row.container}>\n")
    if len(out) == start + 1:
        out[start] = f"{indent}<{head}/>\n"  # a record with no elements (a Bepaling with a number) is empty
    else:
        out.append(f"{indent}</{tag}>\n")


def _serialise(root: str, obj: Any, spec: Spec) -> bytes:
    out = [f'<?xml version="1.0" encoding="{ENCODING}"?>\n']
    _write_record(out, obj, spec, root, "", f' xmlns="{NS}" versie="{VERSION}"')
    doc = "".join(out)
    bad = _NOT_XML.search(doc)
    if bad:
        line = doc.count("\n", 0, bad.start()) + 1
        raise InputError(
            [
                Problem(
                    Severity.ERROR,
                    "MED-030",
                    f"{root} (written line {line})",
                    f"a text holds U+{ord(bad.group()):04X}, which XML 1.0 cannot carry",
                )
            ]
        )
    return doc.encode(ENCODING, "xmlcharrefreplace")


# --------------------------------------------------------------------------- reading (spec §5)


LOCATED_UNUSED = 100
"""Unused-input warnings located by XPath; later ones by line only (a flood must stay cheap)."""
_DOSSIER_DEFAULTS = {f.name: f.default for f in msgspec.structs.fields(m.Dossier) if not f.required}


class _Reader:
    """One read of one document: walks the tree once, against the tables, into canonical objects."""

    def __init__(self, source: str, sink: ProblemSink):
        self.source, self.sink = source, sink
        self.codes = {name: t.codes for name, t in code_tables().tables.items()}
        self.unused_count = 0
        self.failed_ids: dict[str, set[str]] = {}  # ids of records that could not be built, per kind

    # -- problems (off the hot path: a location is computed only when something is wrong)

    def where(self, el: etree._Element, suffix: str = "") -> str:
        return f"{self.source}:{el.sourceline} {element_path(el)}{suffix}"

    def unused(self, el: etree._Element, suffix: str, what: str) -> None:
        # A flood of unknown elements must not cost a sibling count each: past LOCATED_UNUSED warnings the
        # location is the line alone (the sink keeps counting, and stops listing at its own cap).
        self.unused_count += 1
        located = self.unused_count <= LOCATED_UNUSED
        where = self.where(el, suffix) if located else f"{self.source}:{el.sourceline}"
        self.sink.warning("MED-010", where, f"{what}, not read")

    def unknown_attribute(self, el: etree._Element, name: str) -> None:
        if name[0] == "{":  # a namespaced attribute: show it with the document's own prefix
            ns, local = name[1:].split("}", 1)
            prefix = next((p for p, uri in el.nsmap.items() if uri == ns and p), None)
            name = f"{prefix}:{local}" if prefix else name
        self.unused(el, f"/@{name}", "unknown attribute")

    def stray_text(self, el: etree._Element, tail: bool) -> None:
        if tail:
            self.unused(el, "/following-sibling::text()[1]", "text between elements")
        else:
            self.unused(el, "/text()[1]", "text where only elements belong")

    def twice(self, el: etree._Element) -> None:
        self.sink.error("MED-014", self.where(el), "element may occur only once")

    def bad_value(self, el: etree._Element, name: str, raw: str, spec: Spec) -> None:
        kind = next(a.kind for a in spec.attrs if a.name == name)
        expect = kind.name if kind is not None else "value"
        self.sink.error("MED-012", self.where(el, f"/@{name}"), f"{raw[:40]!r} is not a {expect}")

    def unknown_code(self, table: str, code: str, el: etree._Element, name: str) -> None:
        code_tables().check(table, code, self.where(el, f"/@{name}"), self.sink)

    def odd_text(self, el: etree._Element) -> bool:
        """A text element with attributes or child elements: report them; False if it cannot be read."""
        for name in el.keys():
            self.unknown_attribute(el, name)
        if len(el):
            self.sink.error("MED-013", self.where(el[0]), "an element where text belongs")
            return False
        return True

    # -- the walk

    def record(self, el: etree._Element, spec: Spec) -> Any:
        """Read one record element into ``spec.cls``; None once the reason it cannot be built is reported.

        This is the hot path (a typical dossier has about 900 elements with 2,000 attributes): an attribute
        costs one dict lookup and its conversion; the rare cases (an unknown attribute or element, text
        between elements, a repeated element) are each detected by one cheap test and handled out of line."""
        values: dict[str, Any] = {}
        ok = True
        by_attr, codes = spec.by_attr, self.codes
        for name, raw in el.items():
            entry = by_attr.get(name)
            if entry is None:
                if name != "versie" or el.getparent() is not None:  # the root's versie: document()
                    self.unknown_attribute(el, name)
                continue
            fld, parse, check = entry
            if parse is None:
                values[fld] = raw
            else:
                try:
                    values[fld] = parse(raw)
                except (ValueError, KeyError):
                    self.bad_value(el, name, raw, spec)
                    ok = False
                    continue
            if check is not None and raw not in codes[check]:
                self.unknown_code(check, raw, el, name)
        body = el.text
        if spec.content is not None:  # <Regel type="S">text</Regel>
            if len(el):
                self.sink.error("MED-013", self.where(el[0]), "an element inside text")
                return None
            values[spec.content] = "" if body is None else body
            return self.build(el, spec, values) if ok else None
        if body is not None and not body.isspace():
            self.stray_text(el, tail=False)
        children = spec.children
        lists: dict[str, list[Any]] | None = None
        for child in el:  # the parser drops comments and PIs: every child is an element
            tail = child.tail
            if tail is not None and not tail.isspace():
                self.stray_text(child, tail=True)
            entry = children.get(child.tag)
            if entry is None:
                self.unused(child, "", "unknown element")
                continue
            fld, row = entry
            if row is None:  # a text element
                if fld in values:
                    self.twice(child)
                    ok = False
                elif (len(child) or child.keys()) and not self.odd_text(child):
                    ok = False
                else:
                    body = child.text
                    values[fld] = "" if body is None else body  # present but empty: the empty text
            elif not row.many:
                if fld in values:
                    self.twice(child)
                    ok = False
                    continue
                value = self.record(child, row.spec)
                if value is None:
                    ok = False
                values[fld] = value
            else:
                if lists is None:
                    lists = {}
                if row.container is None:
                    if fld in lists:
                        lists[fld].append(self.record(child, row.spec))
                    else:
                        lists[fld] = [self.record(child, row.spec)]
                elif fld in lists:
                    self.twice(child)
                    ok = False
                else:
                    lists[fld] = self.container(child, row)
        if lists is not None:
            for fld, found in lists.items():
                if None in found:
                    ok = False
                values[fld] = tuple(found)
        if spec.cls is m.Dossier:  # before the Dossier is built, and in lenient mode despite other errors
            ok = self.references(el, values) and ok
        obj = self.build(el, spec, values) if ok else None
        if obj is None and spec.id_kind is not None and isinstance(values.get("id"), str):
            self.failed_ids.setdefault(spec.id_kind, set()).add(values["id"])
        return obj

    def container(self, el: etree._Element, row: Row) -> list[Any]:
        """The items of a container element (``<Episodes>``); anything but the item element is unused."""
        for name in el.keys():
            self.unknown_attribute(el, name)
        body = el.text
        if body is not None and not body.isspace():
            self.stray_text(el, tail=False)
        tag, spec = _Q + row.name, row.spec
        assert spec is not None
        found = []
        for child in el:
            tail = child.tail
            if tail is not None and not tail.isspace():
                self.stray_text(child, tail=True)
            if child.tag == tag:
                found.append(self.record(child, spec))
            else:
                self.unused(child, "", "unknown element")
        return found

    def build(self, el: etree._Element, spec: Spec, values: dict[str, Any]) -> Any:
        if spec.plain and spec.required <= values.keys():  # the common case, in one test
            try:
                return spec.cls(**values)
            except ValueError as exc:
                self.sink.error("MED-020", self.culprit(el, spec, values, str(exc)), str(exc))
                return None
        if spec.derived:
            for fld, (source, name) in spec.derived.items():
                if source in values:
                    values[fld] = getattr(values[source], name)
        if not spec.required <= values.keys():
            names = {r.field: r.container or r.name for r in spec.rows}
            names.update((r.field, "@" + r.name) for r in spec.attrs)
            if spec.content:
                names[spec.content] = "text"
            missing = sorted(names[f] for f in spec.required - values.keys())
            self.sink.error("MED-011", self.where(el), "missing " + ", ".join(missing))
            return None
        if spec.nullable:
            for fld in spec.nullable:
                values.setdefault(fld, None)  # required but nullable (a patient without BSN): omitted = None
        try:
            return spec.cls(**values)
        except ValueError as exc:
            self.sink.error("MED-020", self.culprit(el, spec, values, str(exc)), str(exc))
            return None

    def culprit(self, el: etree._Element, spec: Spec, values: dict[str, Any], message: str) -> str:
        """Where a model rule broke. The model's messages quote the offending value (``BSN '123' fails
        the 11-test``), so point at the attribute or element holding it; otherwise at the record."""
        for fld, value in values.items():
            if isinstance(value, str) and value and repr(value) in message:
                for a in spec.attrs:
                    if a.field == fld:
                        return self.where(el, f"/@{a.name}")
                for r in spec.rows:
                    if r.field == fld and r.spec is None:
                        child = el.find(_Q + r.name)
                        if child is not None:
                            return self.where(child)
        return self.where(el)

    def references(self, root: etree._Element, values: dict[str, Any]) -> bool:
        """Ids unique per kind and every reference resolving (spec §2.5), checked before the Dossier is
        built so that each problem is located at the offending attribute rather than at the root. In
        lenient mode this runs even when some records failed: their ids count as known (from
        ``failed_ids``), so a broken episode does not make every reference to it dangle as well."""
        d = _DOSSIER_DEFAULTS | values

        def live(*groups: Any) -> list[Any]:
            return [x for g in groups for x in (g if isinstance(g, tuple) else (g,)) if x is not None]

        pros = live(d["gp"], d["professionals"])
        ids = {
            "organization": live(d.get("practice"), d["organizations"]),
            "professional": pros,
            "episode": live(d["episodes"]),
            "contact": live(d["contacts"]),
            "medication": live(d["medications"]),
            "measurement": live(d["measurements"]),
            "intolerance": live(d["intolerances"]),
            "contra-indication": live(d["contraindications"]),
            "attention note": live(d["attention_notes"]),
            "correspondence": live(d["correspondence"]),
        }
        ok = True
        known: dict[str, set[str]] = {}
        for kind, objs in ids.items():
            known[kind] = {o.id for o in objs}
            if len(known[kind]) < len(objs):
                self.duplicates(root, kind)
                ok = False
            known[kind] |= self.failed_ids.get(kind, set())
        refs = [
            ("organization", "organisatie", [p.organization_id for p in pros]),
            ("professional", "auteur", [c.author_id for c in ids["contact"]]),
            ("professional", "voorschrijver", [x.prescriber_id for x in ids["medication"]]),
            (
                "episode",
                "episode",
                [dc.episode_id for c in ids["contact"] for dc in c.deelcontacten]
                + [
                    x.episode_id
                    for kind in (
                        "medication",
                        "measurement",
                        "intolerance",
                        "contra-indication",
                        "attention note",
                        "correspondence",
                    )
                    for x in ids[kind]
                ],
            ),
        ]
        for kind, name, named in refs:
            dangling = {i for i in named if i is not None} - known[kind]
            if dangling:
                ok = False
                for el in root.iter():
                    if el.get(name) in dangling:
                        self.sink.error(
                            "MED-020",
                            self.where(el, f"/@{name}"),
                            f"refers to unknown {kind} {el.get(name)!r}",
                        )
        return ok

    def duplicates(self, root: etree._Element, kind: str) -> None:
        seen: set[str | None] = set()
        for el in root.iter(*(_Q + t for t in sorted(ID_TAGS[kind]))):
            ident = el.get("id")
            if ident in seen:
                self.sink.error("MED-020", self.where(el, "/@id"), f"duplicate {kind} id {ident!r}")
            seen.add(ident)

    def document(self, data: bytes, root_name: str, spec: Spec) -> Any:
        tree = parse_xml(data, self.source)
        root = tree.getroot()
        if root.tag != _Q + root_name:
            qn = etree.QName(root)
            self.sink.error(
                "MED-001",
                self.where(root),
                f"root element is {{{qn.namespace or ''}}}{qn.localname}, expected {{{NS}}}{root_name}",
            )
            raise InputError(self.sink.problems)
        declared = (tree.docinfo.encoding or "").upper()
        if declared != ENCODING:
            self.sink.warning(
                "MED-003",
                f"{self.source}:1",
                f"declared encoding is {declared}, not {ENCODING}; read as declared",
            )
        if root.get("versie") != VERSION:
            self.sink.error(
                "MED-002", self.where(root, "/@versie"), f"versie {root.get('versie')!r} is not {VERSION!r}"
            )
        obj = self.record(root, spec)
        if obj is None or self.sink.has_errors:
            raise InputError(self.sink.problems)
        return obj


class MedicomFormat(DossierFormat, PostboxFormat):
    """``medicom``: one dossier per file (``MedicomExport``); postbox items as ``MedicomPostbus``."""

    name = "medicom"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        """Read one ``MedicomExport``; InputError carries every problem (the first in strict mode)."""
        return _Reader(source, sink_or_new(sink)).document(data, EXPORT_ROOT, EXPORT)

    def write(self, dossier: m.Dossier) -> bytes:
        """Write one dossier as ``MedicomExport``; byte-stable."""
        return _serialise(EXPORT_ROOT, dossier, EXPORT)

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> m.PostboxItem:
        """Read one ``MedicomPostbus`` item."""
        return _Reader(source, sink_or_new(sink)).document(data, POSTBOX_ROOT, POSTBUS)

    def write_postbox(self, item: m.PostboxItem) -> bytes:
        """Write one postbox item as ``MedicomPostbus``; byte-stable."""
        return _serialise(POSTBOX_ROOT, item, POSTBUS)


FORMAT = MedicomFormat()
POSTBOX = FORMAT

"""Reader for the NHG professional summary as HL7v3 ``QUPC_IN990002NL`` (Huisartswaarneming 6.10.1.3).

"Opleveren professionele samenvatting": the GP system's answer to the out-of-hours query
``QUPC_IN990001NL`` over the national LSP/AORTA infrastructure (DOMAIN.md §5, NHG-richtlijn
Gegevensuitwisseling huisarts en centrale huisartsenpost v5). The content sits under
``ControlActProcess/subject/PrimaryCareProvision``; the full mapping table, with the reasons for every
element that is not read, is ``docs/professional-summary.md``. In short:

=============================================================  ===========================================
HL7v3 (relative to PrimaryCareProvision)                        canonical
=============================================================  ===========================================
subject/Patient (id root 2.16.840.1.113883.2.4.6.3 = BSN)       Dossier.patient
author/AssignedEntity (AGB 2.16.840.1.113883.2.4.6.1,            Dossier.gp
UZI 2.16.528.1.1007.3.1; code = UZI role)
author/AssignedEntity/Organization (AGB / URA)                  Dossier.practice
component7/episodeOfCondition (ICPC in reason/ObservationDx)    Episode
component2/observation code LOINC 74018-3 "Alert" -> act id      Episode.attention (attentiewaarde)
component1/encounter (code NHG Tabel 14)                        Contact (author: gp or a professional)
encounter/component[sequenceNumber = n]/JournalEntry (S/O/E/P)  Contact.deelcontacten[n].lines
encounter/component/ObservationDx (ICPC)                        Deelcontact.icpc
episodOfCare/component/actReference/id -> JournalEntry id       Deelcontact.episode_id
encounter/component/Prescription                                Medication
component2/observation code system NHG Tabel 45                 Measurement
component3/ContraIndication (G-Standaard thesaurus 40)          ContraIndication
component4/ObservationIntolerance (thesaurus 122)               Intolerance
pertinentInformation/pertinentAnnotationObsEvent                AttentionNote
any item's id (root + extension)                                its source_root / source_ext (issue 20)
any item's confidentialityCode R or V                           its shielded (afgeschermd)
episodOfCare/component/actReference/id -> an item's id           its episode_id
medicationAdministrationRequest PIVL_TS period                  Medication.timing_* (0.5 d = 2 per 1 d)
observation effectiveTime of 8 digits                           Measurement.date_only
=============================================================  ===========================================

How it reads: every element handler walks *all* children of its element once and either maps a child or
hands it to the trace of unused input; so nothing is dropped silently (the Microsoft FHIR-Converter idea,
STYLE.md). The trace is reported in document order, naming the top of each subtree nothing read: as
``PS-090`` warnings for the patient's content, as ``PS-091`` information for the *envelope*, what describes
the message and not the patient (:meth:`_Reader.is_envelope`: the transmission wrapper, the control act and
query acknowledgement, the care provision record itself, act ids and template claims). An element
counts as read when its content went into the dossier, or when it merely repeats what the dossier
already says (a fixed act code such as ``DISDX``, a status that agrees with the dates, the repeated GP
under every encounter). An act whose statusCode is
``nullified`` (entered in error) is not read at all. A test pins the trace of every golden case.

Identifiers: HL7v3 ids are (root OID, extension) pairs; the canonical local id is the extension when it is
a valid local id, made unique per kind in document order (``525``, a second ``525`` under another root
becomes ``525-2``), otherwise a positional id (``c13``, ``att1``). References (alerts, actReference) are
resolved on the full pair, so two ids that share an extension never mix. Roots and code systems are
accepted as bare OIDs and in the ``urn:oid:`` form.

The format is read-only here: the gateway does not answer LSP queries (``write`` raises ``PS-100``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from lxml import etree

from adapters.xmlsafe import parse_xml
from mappings import model as m
from mappings.codec import DossierFormat, sink_or_new
from mappings.codetables import CodeTables, code_tables
from mappings.problems import InputError, Problem, ProblemSink, Severity

V3 = "{urn:hl7-org:v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
AMS = ZoneInfo("Europe/Amsterdam")

OID_BSN = "2.16.840.1.113883.2.4.6.3"
OID_AGB = "2.16.840.1.113883.2.4.6.1"
OID_UZI_PERSON = "2.16.528.1.1007.3.1"
OID_URA = "2.16.528.1.1007.3.3"
OID_BIG = "2.16.528.1.1007.5.1"
OID_ICPC = "2.16.840.1.113883.2.4.4.31.1"
OID_TABEL14 = "2.16.840.1.113883.2.4.4.30.14"
OID_TABEL45 = "2.16.840.1.113883.2.4.4.30.45"
OID_SOEP = "2.16.840.1.113883.2.4.4.32.2"
OID_THESAURUS40 = "2.16.840.1.113883.2.4.4.1.902.40"
OID_THESAURUS122 = "2.16.840.1.113883.2.4.4.1.902.122"
OID_ATC = "2.16.840.1.113883.6.73"
OID_LOINC = "2.16.840.1.113883.6.1"
LOINC_ALERT = "74018-3"
PRODUCT_SYSTEMS = {
    "2.16.840.1.113883.2.4.4.1": "GPK",
    "2.16.840.1.113883.2.4.4.7": "HPK",
    "2.16.840.1.113883.2.4.4.10": "PRK",
    "2.16.840.1.113883.2.4.4.8": "ZI",
}
TELECOM_USE = {"HP": "home", "H": "home", "WP": "work", "MC": "mobile", "TMP": "temp"}
TELECOM_SCHEME = {"tel": "phone", "mailto": "email", "fax": "fax"}
ADDRESS_USE = {"HP": "home", "H": "home", "WP": "work", "TMP": "temp", "PST": "postal"}
GENDER = {"M": "male", "F": "female", "UN": "other"}  # HL7 AdministrativeGender; nullFlavor -> unknown
_PERSON_IDS = {OID_AGB: "agb", OID_UZI_PERSON: "uzi", OID_BIG: "big"}
_ORG_IDS = {OID_AGB: "agb", OID_URA: "ura"}
# HL7 ActStatus -> canonical status; a paused, withdrawn or cancelled prescription is not in use
RX_STATUS = {
    "active": "active",
    "new": "active",
    "completed": "completed",
    "aborted": "stopped",
    "suspended": "stopped",
    "held": "stopped",
    "cancelled": "stopped",
}
INTERPRETATIONS = frozenset({"L", "H", "N", "A", "LL", "HH"})
OID_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
# HL7 v3 Confidentiality: N normal; R restricted and V very restricted are what a HIS calls afgeschermd
CONFIDENTIALITY = {"N": False, "R": True, "V": True}
_OID_RE = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+\Z")
# PIVL_TS period units (UCUM) the canonical dosage schedule keeps
TIMING_UNITS = {"h": "h", "d": "d", "wk": "wk", "mo": "mo"}

# HL7v3 TS: YYYYMMDD[HH[MM[SS[.F+]]]][+/-ZZ[zz]]; fractions are dropped (the model keeps whole seconds)
_TS_RE = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.[0-9]{1,6})?)?)?)?"
    r"(?:([+-])([0-9]{2})([0-9]{2})?)?\Z"
)
# HL7v3 REAL / PQ.value literal; no NaN, Infinity, underscores or absurd exponents
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?\Z")
_NS_RE = re.compile(r"\{[^}]*\}")


def _t(local: str) -> str:
    return V3 + local


_PCP, _PATIENT, _TEMPLATE_ID = _t("PrimaryCareProvision"), _t("Patient"), _t("templateId")


ID, CODE, TEXT, VALUE, STATUS, TIME, LOW, HIGH, NAME = (
    _t("id"),
    _t("code"),
    _t("text"),
    _t("value"),
    _t("statusCode"),
    _t("effectiveTime"),
    _t("low"),
    _t("high"),
    _t("name"),
)
TELECOM, ADDR, AUTHOR, ORGANIZATION, COMPONENT = (
    _t("telecom"),
    _t("addr"),
    _t("author"),
    _t("Organization"),
    _t("component"),
)


def _oid(root: str | None) -> str | None:
    """A root or code system as a bare OID (``urn:oid:`` form accepted)."""
    return root[8:] if root and root.startswith("urn:oid:") else root


def _text(el: etree._Element) -> str | None:
    t = "".join(el.itertext())
    return t if t.strip() else None


class _Reader:
    """One read: the tree, the problems, the trace of unused elements, and what was found so far."""

    def __init__(self, tree: etree._ElementTree, source: str, sink: ProblemSink, tables: CodeTables):
        self.tree = tree
        self.root = tree.getroot()
        self.source = source
        self.sink = sink
        self.tables = tables
        self.unused: list[etree._Element] = []
        self.skip = self.unused.append
        self.gp: m.HealthProfessional | None = None
        self.practice: m.Organization | None = None
        self.pros: list[m.HealthProfessional] = []
        self.orgs: list[m.Organization] = []

    # -- locations and the trace ---------------------------------------------------------------------
    def where(self, el: etree._Element, attr: str | None = None) -> str:
        """``file:line /A/B[2]/C[/@attr]``, the same XPath as ``xmlsafe.element_path`` (computed in C)."""
        top = "/" + etree.QName(self.root).localname
        path = top if el is self.root else f"{top}/{self.tree.getelementpath(el)}"
        if "{" in path:
            path = _NS_RE.sub("", path)
        return f"{self.source}:{el.sourceline} {path}" + (f"/@{attr}" if attr else "")

    def only(self, el: etree._Element, tag: str) -> etree._Element | None:
        """The first child named ``tag``; every other child goes to the trace."""
        found = None
        for c in el:
            if c.tag == tag and found is None:
                found = c
            else:
                self.skip(c)
        return found

    def nullified(self, el: etree._Element) -> bool:
        """An act with statusCode ``nullified`` was entered in error: it is not read (the trace names it)."""
        if any(s.get("code") == "nullified" for s in el.iterchildren(STATUS)):
            self.skip(el)
            return True
        return False

    def leaf(self, el: etree._Element) -> etree._Element:
        """``el`` is read for its attributes only: any child (``translation``, ``originalText``) is unused."""
        for c in el:
            self.skip(c)
        return el

    def report_unused(self) -> None:
        # only the top of an unused subtree is named: a handler may give up on an element after its children
        unused = set(self.unused)
        tops = [el for el in dict.fromkeys(self.unused) if not any(a in unused for a in el.iterancestors())]
        # handlers run in logical, not document, order: a stable sort on the line restores document order
        for el in sorted(tops, key=lambda e: e.sourceline or 0):
            if self.is_envelope(el):
                self.sink.info("PS-091", self.where(el), "envelope element not read (about the message)")
            else:
                self.sink.warning("PS-090", self.where(el), "element not read into the canonical dossier")

    def is_envelope(self, el: etree._Element) -> bool:
        """Whether an unread element describes the message rather than the patient
        (``docs/professional-summary.md`` §1.4): everything outside ``PrimaryCareProvision`` (transmission
        wrapper, ControlActProcess, queryAck); the provision's own ``templateId``, ``id``, ``statusCode`` and
        ``effectiveTime`` and the ``Patient/statusCode`` (the record at the sender); any act's own ``id`` or
        ``templateId`` (the dossier keys its records by its own local ids; a template is a conformance
        claim)."""
        if el.tag in (ID, _TEMPLATE_ID):
            return True
        pcp = next(el.iterancestors(_PCP), None)
        if pcp is None:  # outside the provision: the message and its control act
            return el.tag != _PCP
        parent = el.getparent()
        if el.tag == STATUS and parent is not None and parent.tag == _PATIENT:
            return True
        return parent is pcp and el.tag in (STATUS, TIME)

    # -- values ----------------------------------------------------------------------------------------
    def moment(self, el: etree._Element | None, attr: str = "value") -> dt.datetime | None:
        """An HL7v3 TS as local wall-clock time; an offset is converted to Europe/Amsterdam."""
        if el is None:
            return None
        raw = el.get(attr)
        if raw is None:
            return None
        mt = _TS_RE.match(raw)
        try:
            if mt is None:
                raise ValueError
            y, mo, d, h, mi, s, sign, oh, om = mt.groups()
            t = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
            if sign:
                off = dt.timedelta(hours=int(oh), minutes=int(om or 0))
                t = (
                    t.replace(tzinfo=dt.timezone(off if sign == "+" else -off))
                    .astimezone(AMS)
                    .replace(tzinfo=None)
                )
        except (ValueError, OverflowError):
            self.sink.error(
                "PS-010", self.where(el, attr), f"{raw!r} is not an HL7v3 TS (YYYYMMDD[HHMM[SS]][+ZZzz])"
            )
            return None
        return t

    def date(self, el: etree._Element | None, attr: str = "value") -> dt.date | None:
        t = self.moment(el, attr)
        return t.date() if t else None

    def interval(self, el: etree._Element) -> tuple[dt.date | None, dt.date | None]:
        """IVL_TS ``low``/``high`` as dates; a bare ``value`` is a one-day interval's start."""
        low = high = None
        if el.get("value") is not None:
            low = self.date(el)
        for c in el:
            if c.tag == LOW:
                low = self.date(self.leaf(c))
            elif c.tag == HIGH:
                high = self.date(self.leaf(c))
            else:
                self.skip(c)
        return low, high

    def decimal(self, el: etree._Element, attr: str = "value") -> Decimal | None:
        raw = el.get(attr)
        if raw is None:
            return None
        if not _NUMBER_RE.match(raw.strip()):
            self.sink.error("PS-060", self.where(el, attr), f"{raw!r} is not a number")
            return None
        value = Decimal(raw.strip())
        # 1.2E2 is written out (120): every dialect writes plain decimals
        return Decimal(format(value, "f")) if "e" in raw.lower() else value

    def check(self, table: str, code: str | None, el: etree._Element) -> None:
        """CODE-001 for a code the shipped (or configured) table lacks; the location is built only then."""
        if code is not None and code not in self.tables[table].codes:
            self.tables.check(table, code, self.where(el, "code"), self.sink)

    def source_id(self, el: etree._Element, f: dict) -> None:
        """The HIS's own id of an item (root OID + extension), kept beside the local id (nl-core)."""
        root, ext = _oid(el.get("root")), el.get("extension")
        if "source_root" not in f and root and ext and _OID_RE.match(root) and len(ext) <= 200:
            f["source_root"], f["source_ext"] = root, ext

    def confidentiality(self, el: etree._Element, f: dict) -> bool:
        """``confidentialityCode`` R or V: afgeschermd (shielded); N: not. Another code stays in the trace."""
        code = el.get("code")
        if code in CONFIDENTIALITY and _oid(el.get("codeSystem")) in (OID_CONFIDENTIALITY, None):
            f["shielded"] = f.get("shielded", False) or CONFIDENTIALITY[code]
            self.leaf(el)
            return True
        return False

    def build(self, el: etree._Element, make, **kwargs):
        """Construct a model object; its ValueError becomes a located problem (PS-020)."""
        try:
            return make(**kwargs)
        except ValueError as exc:
            self.sink.error("PS-020", self.where(el), str(exc))
            return None

    @staticmethod
    def local_id(ext: str | None, prefix: str, used: set[str], n: int) -> str:
        """The extension if it is a valid local id, else ``prefix + n``; ``-2``, ``-3`` ... keep it unique."""
        cand = ext if ext and m._ID_RE.match(ext) else f"{prefix}{n}"
        base, k = cand, 2
        while cand in used:
            cand, k = f"{base}-{k}", k + 1
        used.add(cand)
        return cand

    # -- people and places -----------------------------------------------------------------------------
    def name(self, el: etree._Element) -> m.PersonName | None:
        """A Dutch HL7v3 name: ``given`` (qualifier IN = initials), ``prefix`` (VV = voorvoegsel of the
        family part that follows, AC = title), ``family`` (BR or none = own, SP = partner's). The order of
        own and partner name gives the name usage: own only -> none stated, partner only -> NL2, partner
        first -> NL3, own first -> NL4 (Datatypen R1 NL, zib NameInformation)."""
        parts: dict[str, str] = {}
        pending: list[etree._Element] = []  # voorvoegsels waiting for the family part they belong to
        order: list[str] = []
        for c in el:
            tag, quals = c.tag, (c.get("qualifier") or "").split()
            value = " ".join("".join(c.itertext()).split())
            if not value:
                self.skip(c)
            elif tag == _t("given") and "CL" not in quals:
                if "IN" in quals:
                    parts["initials"] = parts.get("initials", "") + value
                else:
                    parts["given"] = f"{parts['given']} {value}" if "given" in parts else value
            elif tag == _t("prefix") and "AC" in quals and "title" not in parts:
                parts["title"] = value
            elif tag == _t("prefix") and (not quals or "VV" in quals):
                pending.append(c)
            elif tag == _t("family"):
                kind = "partner" if "SP" in quals else "own"
                key, pkey = (
                    ("partner_family", "partner_prefix") if kind == "partner" else ("family", "prefix")
                )
                if key in parts:
                    self.skip(c)  # a second own (or partner) family name has no place in the model
                    continue
                parts[key] = value
                if pending:
                    parts[pkey] = " ".join(" ".join("".join(p.itertext()).split()) for p in pending)
                    pending = []
                order.append(kind)
            elif tag == _t("delimiter"):
                pass  # presentation only ("Jansen-de Vries"); the usage says the same
            else:
                self.skip(c)  # suffix, call name (CL), a second title: no canonical field
        for p in pending:
            self.skip(p)  # a voorvoegsel with no family name after it
        if not parts and el.text and el.text.strip():
            parts["family"] = " ".join(el.text.split())  # unstructured name: <name>Jansma</name>
        if "partner" in order:
            parts["usage"] = "NL2" if order == ["partner"] else ("NL3" if order[0] == "partner" else "NL4")
        if not parts:
            return None
        return self.build(el, m.PersonName, **parts)

    def address(self, el: etree._Element) -> m.Address | None:
        f: dict[str, str | None] = {}
        for c in el:
            local = {
                "streetName": "street",
                "houseNumber": "house_number",
                "buildingNumberSuffix": "suffix",
                "postalCode": "postal_code",
                "city": "city",
                "country": "country",
            }.get(c.tag[len(V3) :])
            if local is None or local in f or not c.tag.startswith(V3):
                self.skip(c)
            else:
                f[local] = _text(c)
        suffix = f.pop("suffix", None)
        if suffix:  # 12 + a -> 12a, as the dialects keep it
            f["house_number"] = (f.get("house_number") or "") + suffix
        return self.build(el, m.Address, use=ADDRESS_USE.get(el.get("use", "")), **f)

    def telecom(self, el: etree._Element) -> m.Telecom | None:
        value = el.get("value", "")
        scheme, _, rest = value.partition(":")
        system = TELECOM_SCHEME.get(scheme)
        if system is None or not rest.strip():
            self.sink.error(
                "PS-011",
                self.where(self.leaf(el), "value"),
                f"telecom {value!r} is not tel:, mailto: or fax:",
            )
            return None
        return self.build(
            self.leaf(el), m.Telecom, system=system, value=rest, use=TELECOM_USE.get(el.get("use", ""))
        )

    def organization(self, el: etree._Element, oid: str) -> m.Organization | None:
        f: dict = {"telecom": []}
        for c in el:
            tag = c.tag
            key = _ORG_IDS.get(_oid(c.get("root")) or "") if tag == ID and c.get("extension") else None
            if key and key not in f:
                f[key] = self.leaf(c).get("extension")
            elif tag == NAME and "name" not in f:
                f["name"] = _text(c)
            elif tag == TELECOM:
                tc = self.telecom(c)
                if tc:
                    f["telecom"].append(tc)
            elif tag == ADDR and "address" not in f:
                f["address"] = self.address(c)
            else:
                self.skip(c)
        if not f.get("name"):
            self.sink.warning(
                "PS-014", self.where(el), "organization without a name: '(naam onbekend)' is used"
            )
            f["name"] = "(naam onbekend)"
        f["telecom"] = tuple(f["telecom"])
        return self.build(el, m.Organization, id=oid, **f)

    def person_fields(self, el: etree._Element) -> dict:
        """AssignedEntity / AssignedPerson: ids, UZI role, name (assignedPerson or assignee/assigneePerson),
        telecom elements, and the Organization element (returned, not read)."""
        f: dict = {"telecom": [], "org": None}
        for c in el:
            tag = c.tag
            if tag == ID:
                key = _PERSON_IDS.get(_oid(c.get("root")) or "")
                if key and c.get("extension") and key not in f:
                    f[key] = self.leaf(c).get("extension")
                else:
                    self.skip(c)
            elif tag == CODE and "role" not in f and c.get("code"):
                f["role"] = self.leaf(c).get("code")
            elif tag == _t("assignedPerson") and "name_el" not in f:
                f["name_el"] = self.only(c, NAME)
            elif tag == _t("assignee") and "name_el" not in f:
                person = self.only(c, _t("assigneePerson"))
                f["name_el"] = self.only(person, NAME) if person is not None else None
            elif tag == TELECOM:
                f["telecom"].append(c)
            elif tag == ORGANIZATION and f["org"] is None:
                f["org"] = c
            else:
                self.skip(c)
        if f.get("name_el") is None:
            f.pop("name_el", None)
        return f

    @staticmethod
    def person_ids(el: etree._Element) -> dict[str, str]:
        """The AGB, UZI and BIG numbers of an AssignedPerson, read without touching the trace."""
        out: dict[str, str] = {}
        for c in el.iterchildren(ID):
            key = _PERSON_IDS.get(_oid(c.get("root")) or "")
            if key and c.get("extension"):
                out.setdefault(key, c.get("extension"))  # type: ignore[arg-type]
        return out

    def known(self, ids: dict[str, str]) -> m.HealthProfessional | None:
        """The GP or a professional met before with one of these numbers."""
        for p in ([self.gp] if self.gp else []) + self.pros:
            if any(v and getattr(p, k) == v for k, v in ids.items()):
                return p
        return None

    def professional(
        self, el: etree._Element, pid: str, f: dict, org_id: str | None
    ) -> m.HealthProfessional | None:
        telecom = tuple(t for t in (self.telecom(c) for c in f["telecom"]) if t)
        name = self.name(f["name_el"]) if "name_el" in f else None
        return self.build(
            el,
            m.HealthProfessional,
            id=pid,
            name=name,
            agb=f.get("agb"),
            uzi=f.get("uzi"),
            big=f.get("big"),
            role=f.get("role"),
            organization_id=org_id,
            telecom=telecom,
        )

    def org_ref(self, el: etree._Element) -> str | None:
        """A professional's Organization: the practice, an organisation met before, or a new one."""
        agb = ura = None
        for c in el:
            if c.tag == ID:
                root = _oid(c.get("root"))
                agb = agb or (c.get("extension") if root == OID_AGB else None)
                ura = ura or (c.get("extension") if root == OID_URA else None)
        for o in ([self.practice] if self.practice else []) + self.orgs:
            if (agb and o.agb == agb) or (ura and o.ura == ura):
                return o.id  # the same organisation again: its repeated details are not compared
        oid = self.local_id(
            f"org-{agb or ura}" if agb or ura else None,
            "org-",
            {o.id for o in self.orgs} | {self.practice.id if self.practice else ""},
            len(self.orgs) + 1,
        )
        org = self.organization(el, oid)
        if org is None:
            return None
        self.orgs.append(org)
        return oid

    def person_ref(self, el: etree._Element) -> str | None:
        """An AssignedPerson as a local professional id: the GP or a professional met before when an AGB,
        UZI or BIG number matches (the repeated name, role and organisation are then the same person's and
        are not compared); otherwise a new professional with its organisation."""
        ids = self.person_ids(el)
        found = self.known(ids)
        if found is not None:
            return found.id
        has_name = any(c.tag in (_t("assignedPerson"), _t("assignee")) for c in el)
        if not ids and not has_name:
            self.skip(el)  # nobody we can name: the reference is not kept
            return None
        f = self.person_fields(el)
        org_id = self.org_ref(f["org"]) if f["org"] is not None else None
        pid = self.local_id(
            f"prof-{ids.get('uzi') or ids.get('agb') or ids.get('big')}" if ids else None,
            "prof-",
            {p.id for p in self.pros} | {"huisarts"},
            len(self.pros) + 1,
        )
        pro = self.professional(el, pid, f, org_id)
        if pro is None:
            return None
        self.pros.append(pro)
        return pid

    # -- the message -------------------------------------------------------------------------------------
    def read(self) -> m.Dossier:
        root = self.root
        if root.tag != _t("QUPC_IN990002NL"):
            self.sink.error(
                "PS-001",
                self.where(root),
                f"root element is {etree.QName(root).localname} "
                f"in {etree.QName(root).namespace or 'no namespace'}, not QUPC_IN990002NL in urn:hl7-org:v3",
            )
            raise InputError(self.sink.problems)
        pcp = None
        for c in root:
            if c.tag == _t("interactionId"):
                if c.get("extension") != "QUPC_IN990002NL":
                    self.sink.error(
                        "PS-002", self.where(c, "extension"), "interactionId is not QUPC_IN990002NL"
                    )
                self.leaf(c)
            elif c.tag == _t("ControlActProcess") and pcp is None:
                for s in c:
                    if s.tag == _t("subject") and pcp is None:
                        for p in s:
                            if p.tag == _t("PrimaryCareProvision") and pcp is None:
                                pcp = p
                            else:
                                self.skip(p)
                    else:  # trigger event code, time, sending system, queryAck: the message, not the patient
                        self.skip(s)
            else:
                self.skip(c)  # transmission wrapper
        if pcp is None:
            self.sink.error("PS-003", self.where(root), "no ControlActProcess/subject/PrimaryCareProvision")
            raise InputError(self.sink.problems)
        return self.provision(pcp)

    def provision(self, pcp: etree._Element) -> m.Dossier:
        groups: dict[str, list[etree._Element]] = {}
        for c in pcp:
            groups.setdefault(c.tag, []).append(c)
        handled = {
            _t(n)
            for n in (
                "subject",
                "author",
                "component7",
                "component1",
                "component2",
                "component3",
                "component4",
                "pertinentInformation",
            )
        }
        for tag, els in groups.items():
            if tag not in handled:
                for c in els:
                    self.skip(c)  # templateId, the record's id, status and period: no canonical field
        patient = self.patient(groups.get(_t("subject"), []), pcp)
        self.author(groups.get(_t("author"), []), pcp)
        episodes, keys, links = self.episodes(groups.get(_t("component7"), []))
        alerts: list[etree._Element] = []
        observations: list[etree._Element] = []
        for comp in groups.get(_t("component2"), []):
            (alerts if self.is_alert(comp) else observations).append(comp)
        flagged = self.attention_flags(alerts, keys)
        contacts, meds = self.encounters(groups.get(_t("component1"), []), links)
        measurements = self.measurements(observations, links)
        cis = self.contraindications(groups.get(_t("component3"), []), links)
        intolerances = self.intolerances(groups.get(_t("component4"), []), links)
        notes = self.attention_notes(groups.get(_t("pertinentInformation"), []), links)
        self.report_unused()
        episode_objs = []
        for el, kw in episodes:
            e = self.build(el, m.Episode, attention=kw["id"] in flagged, **kw)
            if e:
                episode_objs.append(e)
        if self.sink.has_errors or patient is None or self.practice is None:
            if not self.sink.has_errors:  # pragma: no cover - each cause reports its own error first
                self.sink.error("PS-005", self.where(pcp), "no patient or practice could be read")
            raise InputError(self.sink.problems)
        try:
            return m.Dossier(
                practice=self.practice,
                patient=patient,
                gp=self.gp,
                professionals=tuple(self.pros),
                organizations=tuple(self.orgs),
                episodes=tuple(episode_objs),
                contacts=tuple(contacts),
                medications=tuple(meds),
                measurements=tuple(measurements),
                intolerances=tuple(intolerances),
                contraindications=tuple(cis),
                attention_notes=tuple(notes),
            )
        except ValueError as exc:
            self.sink.error("PS-021", self.where(pcp), str(exc))
            raise InputError(self.sink.problems) from None

    def patient(self, subjects: list[etree._Element], pcp: etree._Element) -> m.Patient | None:
        el = None
        for s in subjects:
            if el is None:
                el = self.only(s, _t("Patient"))
            else:
                self.skip(s)
        if el is None:
            self.sink.error("PS-004", self.where(pcp), "no subject/Patient")
            raise InputError(self.sink.problems)
        f: dict = {"telecom": []}
        person = None
        for c in el:
            tag = c.tag
            if tag == ID and _oid(c.get("root")) == OID_BSN and "bsn" not in f:
                bsn = self.leaf(c).get("extension") or ""
                if not m.bsn_is_valid(bsn):
                    self.sink.error(
                        "PS-012",
                        self.where(c, "extension"),
                        f"BSN {bsn!r} is not 9 digits passing the 11-test",
                    )
                f["bsn"] = bsn
            elif tag == ADDR and "address" not in f:
                f["address"] = self.address(c)
            elif tag == TELECOM:
                tc = self.telecom(c)
                if tc:
                    f["telecom"].append(tc)
            elif tag == _t("Person") and person is None:
                person = c
            else:
                self.skip(c)  # statusCode, other ids
        if person is not None:
            for c in person:
                tag = c.tag
                if tag == NAME and "name" not in f:
                    f["name"] = self.name(c)
                elif tag == _t("administrativeGenderCode") and "gender" not in f:
                    f["gender"] = GENDER.get(self.leaf(c).get("code", ""), "unknown")
                elif tag == _t("birthTime") and "birth_date" not in f:
                    f["birth_date"] = self.date(self.leaf(c))
                elif tag == _t("deceasedTime") and "deceased_date" not in f:
                    f["deceased_date"] = self.date(self.leaf(c))
                else:
                    self.skip(c)  # birthplace, deceasedInd, multipleBirthInd ...
        if f.get("name") is None or f.get("birth_date") is None:
            self.sink.error(
                "PS-013",
                self.where(person if person is not None else el),
                "the patient needs a name and a birth date",
            )
            return None
        if "bsn" in f and not m.bsn_is_valid(f["bsn"]):
            return None
        f["telecom"] = tuple(f["telecom"])
        return self.build(el, m.Patient, **{"bsn": None, **f})

    def author(self, authors: list[etree._Element], pcp: etree._Element) -> None:
        el = None
        for a in authors:
            if el is None:
                el = self.only(a, _t("AssignedEntity"))
            else:
                self.skip(a)
        if el is None:
            self.sink.error("PS-006", self.where(pcp), "no author/AssignedEntity (the GP)")
            return
        f = self.person_fields(el)
        if f["org"] is None:
            self.sink.error("PS-007", self.where(el), "the GP's Organization (the practice) is missing")
        else:
            self.practice = self.organization(f["org"], "praktijk")
        self.gp = self.professional(el, "huisarts", f, "praktijk" if self.practice else None)

    # -- episodes and their attention flags --------------------------------------------------------------
    def episodes(self, comps: list[etree._Element]):
        """Episodes as (element, fields) — built once the attention flags are known — plus the id pairs that
        name each episode and the actReference links (JournalEntry id pair -> episode id)."""
        out: list[tuple[etree._Element, dict]] = []
        keys: dict[tuple[str | None, str], str] = {}
        links: dict[tuple[str | None, str], str] = {}
        used: set[str] = set()
        for n, comp in enumerate(comps, 1):
            ep = self.only(comp, _t("episodeOfCondition"))
            if ep is None:
                continue
            if self.nullified(ep):  # withdrawn: an Alert naming it is not an error, it is simply not read
                for c in ep.iterchildren(ID):
                    keys.setdefault((_oid(c.get("root")), c.get("extension") or ""), "")
                continue
            ids = [
                (_oid(c.get("root")), c.get("extension")) for c in ep if c.tag == ID and c.get("extension")
            ]
            eid = self.local_id(ids[0][1] if ids else None, "ep", used, n)
            for k in ids:
                keys.setdefault(k, eid)  # type: ignore[arg-type]
            f: dict = {"id": eid}
            status = dx = None
            for c in ep:
                tag = c.tag
                if tag == ID and c.get("extension"):
                    self.source_id(self.leaf(c), f)
                elif tag == _t("confidentialityCode") and self.confidentiality(c, f):
                    pass
                elif tag == TEXT and "title" not in f:
                    f["title"] = _text(c)
                elif tag == TIME and "start" not in f:
                    f["start"], f["end"] = self.interval(c)
                elif tag == STATUS and status is None:
                    status = c
                elif tag == _t("reason") and dx is None:
                    dx = self.only(c, _t("ObservationDx"))
                elif tag == _t("component2"):
                    for care in c:
                        if care.tag == _t("episodOfCare"):
                            self.episode_links(care, eid, links)
                        else:
                            self.skip(care)
                else:
                    self.skip(c)
            if status is not None:
                # the end date decides if an episode is active; a status saying otherwise stays in the trace
                agrees = status.get("code") == ("active" if f.get("end") is None else "completed")
                (self.leaf if agrees else self.skip)(status)
            if dx is not None:
                f["icpc"], dx_title = self.diagnosis(dx, title=f.get("title"))
                f["title"] = f.get("title") or dx_title
            if not f.get("title"):
                f["title"] = f.get("icpc") or eid
            out.append((ep, f))
        return out, keys, links

    def episode_links(self, care: etree._Element, eid: str, links: dict) -> None:
        for c in care:
            if c.tag == COMPONENT:
                for ref in c:
                    if ref.tag == _t("actReference"):
                        for i in ref:
                            if i.tag == ID and i.get("extension"):
                                links.setdefault((_oid(i.get("root")), i.get("extension")), eid)
                                self.leaf(i)
                            else:
                                self.skip(i)
                    else:
                        self.skip(ref)
            else:
                self.skip(c)  # the care period (effectiveTime): the episode's own start and end are kept

    def diagnosis(
        self, dx: etree._Element, *, title: str | None = None, author: str | None = None
    ) -> tuple[str | None, str | None]:
        """ObservationDx: the ICPC code (``value``) and its text. ``text`` is read when it gives the title or
        repeats it; an ``author`` is read when it is the contact's own author."""
        icpc = text = None
        for c in dx:
            tag = c.tag
            if tag == VALUE and icpc is None:
                system = _oid(c.get("codeSystem"))
                if system not in (OID_ICPC, None):
                    self.sink.warning(
                        "PS-031", self.where(c, "codeSystem"), f"diagnosis coded in {system}, not ICPC-1-NL"
                    )
                    self.skip(c)
                    continue
                icpc = self.leaf(c).get("code")
                self.check("icpc", icpc, c)
            elif tag == CODE and c.get("code") == "DISDX":
                self.leaf(c)
            elif tag == TEXT and text is None and (title is None or _text(c) == title):
                text = _text(c)
            elif tag == AUTHOR and author is not None and self.same_author(c, author):
                pass  # the contact's own author again
            else:
                self.skip(c)  # the diagnosis' own id, another author
        return icpc, text

    def same_author(self, el: etree._Element, author: str) -> bool:
        people = list(el)
        if len(people) != 1 or people[0].tag != _t("AssignedPerson"):
            return False
        found = self.known(self.person_ids(people[0]))
        return found is not None and found.id == author

    def is_alert(self, comp: etree._Element) -> bool:
        obs = comp.find(_t("observation"))
        code = obs.find(CODE) if obs is not None else None
        return (
            code is not None
            and code.get("code") == LOINC_ALERT
            and _oid(code.get("codeSystem")) in (OID_LOINC, None)
        )

    def attention_flags(self, comps: list[etree._Element], keys: dict) -> set[str]:
        """LOINC 74018-3 "Alert" observations whose ``sourceOf/act/id`` names an episode: attentiewaarde."""
        flagged: set[str] = set()
        for comp in comps:
            obs = self.only(comp, _t("observation"))
            if obs is not None:
                refs = 0
                for c in obs:
                    tag = c.tag
                    if tag == CODE or (tag == STATUS and c.get("code") == "completed"):
                        self.leaf(c)
                    elif tag == _t("sourceOf"):
                        for act in c:
                            if act.tag != _t("act"):
                                self.skip(act)
                                continue
                            for a in act:
                                if a.tag == ID and a.get("extension"):
                                    eid = self.episode_key(a, keys)
                                    if eid == "":
                                        continue  # a withdrawn (nullified) episode
                                    if eid is None:
                                        self.sink.error(
                                            "PS-030",
                                            self.where(a),
                                            "attention flag refers to an episode "
                                            f"({a.get('root')}/{a.get('extension')}) not in the summary",
                                        )
                                    else:
                                        flagged.add(eid)
                                        refs += 1
                                    self.leaf(a)
                                elif a.tag == CODE and a.get("code") == "CONC":
                                    self.leaf(a)
                                else:
                                    self.skip(a)
                    else:
                        self.skip(c)
                if not refs:
                    self.skip(obs)  # an alert about no episode: nothing in the canonical model holds it
        return flagged

    @staticmethod
    def episode_key(el: etree._Element, keys: dict) -> str | None:
        """The episode an id pair names; without a root, the extension alone when it names exactly one."""
        ext, root = el.get("extension"), _oid(el.get("root"))
        if root:
            return keys.get((root, ext))
        hits = {eid for (_, e), eid in keys.items() if e == ext}
        return hits.pop() if len(hits) == 1 else None

    # -- the journal ---------------------------------------------------------------------------------------
    def encounters(
        self, comps: list[etree._Element], links: dict
    ) -> tuple[list[m.Contact], list[m.Medication]]:
        contacts: list[m.Contact] = []
        meds: list[m.Medication] = []
        used: set[str] = set()
        med_used: set[str] = set()
        for n, comp in enumerate(comps, 1):
            enc = self.only(comp, _t("encounter"))
            if enc is None or self.nullified(enc):
                continue
            f: dict = {}
            parts: list[etree._Element] = []
            for c in enc:
                tag = c.tag
                if tag == ID and c.get("extension") and "id" not in f:
                    f["id"] = self.local_id(self.leaf(c).get("extension"), "c", used, n)
                    self.source_id(c, f)
                elif tag == _t("confidentialityCode") and self.confidentiality(c, f):
                    pass
                elif (
                    tag == CODE
                    and "contact_type" not in f
                    and _oid(c.get("codeSystem")) in (OID_TABEL14, None)
                ):
                    f["contact_type"] = self.leaf(c).get("code")
                    self.check("tabel14", f["contact_type"], c)
                elif tag == TIME and "start" not in f:
                    f["start"] = self.moment(c)
                    for t in c:
                        if t.tag == LOW and f["start"] is None:
                            f["start"] = self.moment(self.leaf(t))
                        elif t.tag == HIGH:
                            f["end"] = self.moment(self.leaf(t))
                        else:
                            self.skip(t)
                elif tag == AUTHOR and "author_id" not in f:
                    person = self.only(c, _t("AssignedPerson"))
                    f["author_id"] = self.person_ref(person) if person is not None else None
                elif tag == COMPONENT:
                    parts.append(c)
                else:
                    self.skip(c)
            if "id" not in f:
                f["id"] = self.local_id(None, "c", used, n)
            if f.get("start") is None:
                self.sink.error("PS-041", self.where(enc), "encounter has no effectiveTime (low or value)")
                continue
            dcs = self.deelcontacten(parts, links, f.get("author_id"), meds, med_used)
            contact = self.build(enc, m.Contact, deelcontacten=dcs, **f)
            if contact:
                contacts.append(contact)
        return contacts, meds

    def deelcontacten(
        self,
        parts: list[etree._Element],
        links: dict,
        author: str | None,
        meds: list[m.Medication],
        med_used: set[str],
    ) -> tuple[m.Deelcontact, ...]:
        """The encounter's components grouped by sequenceNumber: one deelcontact per number."""
        groups: dict[str, dict] = {}
        for part in parts:
            seq = ""
            items = []
            for c in part:
                if c.tag == _t("sequenceNumber") and not seq:
                    seq = self.leaf(c).get("value") or ""
                elif c.tag in (_t("JournalEntry"), _t("ObservationDx"), _t("Prescription")):
                    items.append(c)
                else:
                    self.skip(c)
            g = groups.setdefault(seq, {"lines": [], "icpc": None, "episode": None, "ids": [], "rx": []})
            for item in items:
                if item.tag == _t("JournalEntry"):
                    line = self.journal_entry(item, g)
                    if line:
                        g["lines"].append(line)
                elif item.tag == _t("ObservationDx"):
                    if g["icpc"] is not None:
                        self.skip(item)  # one ICPC per deelcontact
                        continue
                    g["icpc"], _ = self.diagnosis(item, title="", author=author)
                else:
                    g["rx"].append(item)
        out = []
        for g in groups.values():
            # the episode: the one an actReference names for any journal line of this deelcontact
            episodes = list(dict.fromkeys(links[k] for k, _ in g["ids"] if k in links))
            for _k, el in g["ids"]:
                self.leaf(el)  # the line's source id; its link to an episode is the deelcontact's
            if len(episodes) > 1:
                self.sink.warning(
                    "PS-032",
                    self.where(g["ids"][0][1]),
                    f"one deelcontact's lines belong to episodes {episodes}; {episodes[0]!r} is kept",
                )
            episode = episodes[0] if episodes else None
            for rx in g["rx"]:
                if self.nullified(rx):
                    continue
                med = self.prescription(rx, med_used, len(meds) + 1, episode, links)
                if med:
                    meds.append(med)
            if g["lines"] or g["icpc"]:
                dc = self.build(
                    g["el"] if "el" in g else parts[0],
                    m.Deelcontact,
                    episode_id=episode,
                    icpc=g["icpc"],
                    lines=tuple(g["lines"]),
                )
                if dc:
                    out.append(dc)
        return tuple(out)

    def journal_entry(self, entry: etree._Element, g: dict) -> m.SoepLine | None:
        kind = text = None
        code_el = None
        f: dict = {}
        for c in entry:
            tag = c.tag
            if tag == ID and c.get("extension"):
                g["ids"].append(((_oid(c.get("root")), c.get("extension")), c))
                self.source_id(c, f)
            elif tag == CODE and code_el is None and _oid(c.get("codeSystem")) in (OID_SOEP, None):
                code_el = self.leaf(c)
                kind = c.get("code")
            elif tag == VALUE and text is None:
                text = "".join(c.itertext())
            else:
                self.skip(c)
        g.setdefault("el", entry)
        if kind not in ("S", "O", "E", "P"):
            self.sink.error(
                "PS-040",
                self.where(code_el if code_el is not None else entry),
                f"journal line type {kind!r} is not S, O, E or P",
            )
            return None
        return self.build(entry, m.SoepLine, type=kind, text=text or "", **f)

    # -- medication --------------------------------------------------------------------------------------
    def prescription(
        self, rx: etree._Element, used: set[str], n: int, episode: str | None, links: dict
    ) -> m.Medication | None:
        f: dict = {"status": "active"}
        pm = status = None
        for c in rx:
            tag = c.tag
            if tag == ID and c.get("extension") and "id" not in f:
                f["id"] = self.local_id(self.leaf(c).get("extension"), "med", used, n)
                self.source_id(c, f)
                episode = links.get((_oid(c.get("root")), c.get("extension")), episode)
            elif tag == _t("confidentialityCode") and self.confidentiality(c, f):
                pass
            elif tag == STATUS and status is None and c.get("code") in RX_STATUS:
                status = self.leaf(c).get("code")
                f["status"] = RX_STATUS[status]
            elif tag == AUTHOR and "prescriber_id" not in f:
                f["prescriber_id"] = None
                for a in c:
                    if a.tag == _t("time") and "prescribed_on" not in f:
                        f["prescribed_on"] = self.date(self.leaf(a))
                    elif a.tag == _t("AssignedPerson") and f["prescriber_id"] is None:
                        f["prescriber_id"] = self.person_ref(a)
                    else:
                        self.skip(a)
            elif tag == _t("directTarget") and pm is None:
                pm = self.only(c, _t("prescribedMedication"))
            else:
                self.skip(c)
        if "id" not in f:
            f["id"] = self.local_id(None, "med", used, n)
        kind = None
        for c in pm if pm is not None else ():
            tag = c.tag
            if tag == _t("MedicationKind") and kind is None:
                kind = c
                for k in c:
                    if k.tag == CODE and "product_name" not in f:
                        self.product(k, f)
                    else:
                        self.skip(k)
            elif tag == _t("productOf"):
                for d in c:
                    if d.tag == _t("medicationDispenseRequest") and "quantity" not in f:
                        self.dispense(d, f)
                    else:
                        self.skip(d)
            elif tag == _t("therapeuticAgentOf"):
                for d in c:
                    if d.tag == _t("medicationAdministrationRequest") and "dosage_text" not in f:
                        self.administration(d, f, status)
                    else:
                        self.skip(d)
            else:
                self.skip(c)
        if "product_name" not in f:
            self.sink.error("PS-050", self.where(rx), "prescription has no MedicationKind/code")
            return None
        return self.build(rx, m.Medication, episode_id=episode, **f)

    def product(self, code: etree._Element, f: dict) -> None:
        system = PRODUCT_SYSTEMS.get(_oid(code.get("codeSystem")) or "")
        f["product_name"] = code.get("displayName") or code.get("code") or "?"
        if system and code.get("code"):
            f["product_system"], f["product_code"] = system, code.get("code")
        else:
            self.sink.warning(
                "PS-051",
                self.where(code, "codeSystem"),
                f"product code system {code.get('codeSystem')!r} is not GPK/HPK/PRK/ZI; name kept",
            )
        for tr in code:
            if tr.tag == _t("translation") and _oid(tr.get("codeSystem")) == OID_ATC and "atc" not in f:
                f["atc"] = self.leaf(tr).get("code")
                self.check("atc", f["atc"], tr)
            else:
                self.skip(tr)

    def dispense(self, d: etree._Element, f: dict) -> None:
        for c in d:
            if c.tag == _t("quantity") and "quantity" not in f:
                f["quantity"] = self.decimal(c)
                unit = c.get("unit") if c.get("unit") not in (None, "1") else None
                for tr in c:
                    # G-Standaard unit (tabel 902.2, "Stuk"): its name is the unit a GP writes
                    if tr.tag == _t("translation") and tr.get("displayName") and unit is None:
                        unit = self.leaf(tr).get("displayName")
                    else:
                        self.skip(tr)
                f["quantity_unit"] = unit if f["quantity"] is not None else None
            else:
                self.skip(c)  # the dispense request's own status (nullFlavor NA), expected use ...

    def administration(self, d: etree._Element, f: dict, rx_status: str | None) -> None:
        f["dosage_text"] = None
        for c in d:
            tag = c.tag
            if tag == TEXT and f["dosage_text"] is None:
                f["dosage_text"] = _text(c)
            elif tag == STATUS and rx_status is not None and c.get("code") == rx_status:
                self.leaf(c)  # repeats the prescription's status
            elif tag == TIME and "start" not in f:
                ivl = c
                if c.get(XSI_TYPE, "").endswith("SXPR_TS"):
                    ivl = None
                    for comp in c:
                        if (
                            comp.tag == _t("comp")
                            and comp.get(XSI_TYPE, "").endswith("IVL_TS")
                            and ivl is None
                        ):
                            ivl = comp
                        elif (
                            comp.tag == _t("comp")
                            and comp.get(XSI_TYPE, "").endswith("PIVL_TS")
                            and "timing_unit" not in f
                        ):
                            self.timing(comp, f)
                        else:
                            self.skip(comp)
                if ivl is not None:
                    f["start"], f["end"] = self.interval(ivl)
            else:
                self.skip(c)  # the administration request's id

    def timing(self, pivl: etree._Element, f: dict) -> None:
        """PIVL_TS ``period`` as a structured schedule: once every 0.5 d is twice per 1 d (FHIR Timing).

        A period below one unit whose reciprocal is whole becomes that many times per unit, as a GP says
        it ("2 maal per dag"); any other period is kept as once per that period."""
        for c in pivl:
            if c.tag != _t("period") or "timing_unit" in f:
                self.skip(c)
                continue
            value, unit = self.decimal(c), TIMING_UNITS.get(c.get("unit") or "")
            if value is None or unit is None or value <= 0:
                self.skip(c)
                continue
            self.leaf(c)
            if value < 1 and (1 / value) == (1 / value).to_integral_value():
                f["timing_frequency"], f["timing_period"] = int(1 / value), Decimal(1)
            else:
                f["timing_frequency"], f["timing_period"] = 1, value
            f["timing_unit"] = unit

    # -- results, warnings, notes ------------------------------------------------------------------------
    def linked(self, el: etree._Element, f: dict, links: dict) -> None:
        """The episode whose episodOfCare names this item's id in an actReference, when one does."""
        eid = links.get((_oid(el.get("root")), el.get("extension")))
        if eid and "episode_id" not in f:
            f["episode_id"] = eid

    def measurements(self, comps: list[etree._Element], links: dict) -> list[m.Measurement]:
        out: list[m.Measurement] = []
        used: set[str] = set()
        for comp in comps:
            obs = self.only(comp, _t("observation"))
            code = obs.find(CODE) if obs is not None else None
            if obs is None or code is None or _oid(code.get("codeSystem")) != OID_TABEL45:
                if obs is not None:
                    self.skip(obs)  # not an NHG Tabel 45 determination
                continue
            if self.nullified(obs):
                continue
            f: dict = {"code": code.get("code", "")}
            for c in obs:
                tag = c.tag
                if c is code:
                    self.leaf(c)
                    self.check("tabel45", f["code"], c)
                elif tag == ID and c.get("extension") and "id" not in f:
                    f["id"] = self.local_id(self.leaf(c).get("extension"), "meas", used, len(out) + 1)
                    self.source_id(c, f)
                    self.linked(c, f, links)
                elif tag == _t("confidentialityCode") and self.confidentiality(c, f):
                    pass
                elif tag == STATUS and c.get("code") == "completed":
                    self.leaf(c)
                elif tag == TIME and "effective" not in f:
                    f["effective"] = self.moment(c)
                    stamp = c
                    for t in c:
                        if t.tag == LOW and f["effective"] is None:
                            f["effective"] = self.moment(self.leaf(t))
                            stamp = t
                        else:
                            self.skip(t)
                    # a TS of 8 digits names a day: the measurement keeps that precision (no invented time)
                    f["date_only"] = len(stamp.get("value") or "") == 8
                elif tag == VALUE and "value" not in f:
                    f["value"] = c
                elif tag == _t("interpretationCode") and "interpretation" not in f:
                    interp = c.get("code")
                    if interp in INTERPRETATIONS:
                        f["interpretation"] = self.leaf(c).get("code")
                    else:
                        self.sink.warning(
                            "PS-062", self.where(c, "code"), f"interpretation {interp!r} is not kept"
                        )
                        self.skip(c)
                elif tag == _t("referenceRange") and "reference_low" not in f:
                    f["reference_low"], f["reference_high"] = self.reference_range(c)
                else:
                    self.skip(c)  # templateId, a second value ...
            value = f.pop("value", None)
            if value is not None and value.get("nullFlavor") is None:
                xtype = value.get(XSI_TYPE, "")
                if xtype.endswith(("PQ", "INT", "REAL")) or value.get("value") is not None:
                    f["value_quantity"] = self.decimal(self.leaf(value))
                    f["unit"] = value.get("unit") if value.get("unit") not in (None, "1") else None
                elif xtype.endswith(("CD", "CE", "CO", "CV")):
                    f["value_text"] = value.get("displayName") or value.get("code")
                    self.leaf(value)
                else:
                    f["value_text"] = _text(value)
            elif value is not None:
                self.leaf(value)  # nullFlavor: no value, like the observation without a value element
            if "id" not in f:
                f["id"] = self.local_id(None, "meas", used, len(out) + 1)
            if f.get("effective") is None:
                self.sink.error("PS-061", self.where(obs), "measurement has no effectiveTime")
                continue
            meas = self.build(obs, m.Measurement, **f)
            if meas:
                out.append(meas)
        return out

    def reference_range(self, rr: etree._Element) -> tuple[Decimal | None, Decimal | None]:
        low = high = None
        for rng in rr:
            if rng.tag != _t("observationRange") or low is not None or high is not None:
                self.skip(rng)
                continue
            for c in rng:
                if c.tag == VALUE:
                    for b in c:
                        if b.tag == LOW and low is None:
                            low = self.decimal(self.leaf(b))
                        elif b.tag == HIGH and high is None:
                            high = self.decimal(self.leaf(b))
                        else:
                            self.skip(b)
                elif c.tag == _t("interpretationCode") and c.get("code") == "N":
                    self.leaf(c)  # "the normal range": what a canonical reference range is
                else:
                    self.skip(c)
        return low, high

    def coded_item(self, el: etree._Element, act_code: str, system: str, table: str, links: dict) -> dict:
        """ContraIndication / ObservationIntolerance: id, fixed act code, text, period, coded value."""
        f: dict = {}
        value = None
        for c in el:
            tag = c.tag
            if tag == ID and c.get("extension") and "ext" not in f:
                f["ext"] = self.leaf(c).get("extension")
                self.source_id(c, f)
                self.linked(c, f, links)
            elif tag == _t("confidentialityCode") and self.confidentiality(c, f):
                pass
            elif tag == CODE and c.get("code") == act_code:
                self.leaf(c)
            elif tag == TEXT and "text" not in f:
                f["text"] = _text(c)
            elif tag == TIME and "start" not in f:
                f["start"], f["end"] = self.interval(c)
            elif tag == STATUS and c.get("code") in ("completed", "active"):
                self.leaf(c)
            elif tag == VALUE and value is None and _oid(c.get("codeSystem")) in (system, None):
                value = self.leaf(c)
                f["code"] = c.get("code")
                self.check(table, f["code"], c)
            else:
                self.skip(c)
        if not f.get("text"):
            f["text"] = (value.get("displayName") if value is not None else None) or f.get("code") or ""
        return f

    def contraindications(self, comps: list[etree._Element], links: dict) -> list[m.ContraIndication]:
        out: list[m.ContraIndication] = []
        used: set[str] = set()
        for n, comp in enumerate(comps, 1):
            for ci in comp:
                if ci.tag != _t("ContraIndication"):
                    self.skip(ci)
                    continue
                if self.nullified(ci):
                    continue
                f = self.coded_item(ci, "CI", OID_THESAURUS40, "thesaurus40", links)
                item = self.build(
                    ci, m.ContraIndication, id=self.local_id(f.pop("ext", None), "ci", used, n), **f
                )
                if item:
                    out.append(item)
        return out

    def intolerances(self, comps: list[etree._Element], links: dict) -> list[m.Intolerance]:
        out: list[m.Intolerance] = []
        used: set[str] = set()
        for n, comp in enumerate(comps, 1):
            for it in comp:
                if it.tag != _t("ObservationIntolerance"):
                    self.skip(it)
                    continue
                if self.nullified(it):
                    continue
                if it.get("negationInd") == "true":
                    self.sink.warning(
                        "PS-070",
                        self.where(it, "negationInd"),
                        "a negated intolerance (none known) is not kept",
                    )
                    continue
                f = self.coded_item(it, "INTLRNC", OID_THESAURUS122, "thesaurus122", links)
                end = f.pop("end", None)
                item = self.build(
                    it,
                    m.Intolerance,
                    id=self.local_id(f.pop("ext", None), "int", used, n),
                    status="inactive" if end else "active",
                    **f,
                )
                if item:
                    out.append(item)
        return out

    def attention_notes(self, infos: list[etree._Element], links: dict) -> list[m.AttentionNote]:
        out: list[m.AttentionNote] = []
        used: set[str] = set()
        for n, info in enumerate(infos, 1):
            for ann in info:
                if ann.tag != _t("pertinentAnnotationObsEvent"):
                    self.skip(ann)
                    continue
                f: dict = {}
                for c in ann:
                    tag = c.tag
                    if tag == ID and c.get("extension") and "ext" not in f:
                        f["ext"] = self.leaf(c).get("extension")
                        self.source_id(c, f)
                        self.linked(c, f, links)
                    elif tag == _t("confidentialityCode") and self.confidentiality(c, f):
                        pass
                    elif tag == CODE and c.get("code") == "ATT":
                        self.leaf(c)
                    elif tag == TEXT and "text" not in f:
                        f["text"] = _text(c)
                    elif tag == TIME and "date" not in f:
                        f["date"] = self.date(c)
                        for t in c:
                            if t.tag == LOW and f["date"] is None:
                                f["date"] = self.date(self.leaf(t))
                            else:
                                self.skip(
                                    t
                                )  # an end of the note's validity: the canonical note has a date only
                    else:
                        self.skip(c)
                if not f.get("text"):
                    self.sink.warning("PS-080", self.where(ann), "empty attention note skipped")
                    continue
                # deterministic: the sender's id when it has one, else the note's position among the notes
                note = self.build(
                    ann, m.AttentionNote, id=self.local_id(f.pop("ext", None), "att", used, n), **f
                )
                if note:
                    out.append(note)
        return out


class PsHl7v3Format(DossierFormat):
    """``ps-hl7v3``: read the HL7v3 professional summary; writing is not offered."""

    name = "ps-hl7v3"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        """Read one QUPC_IN990002NL; ``PS-090`` warnings list every element the dossier does not hold."""
        sink = sink_or_new(sink)
        try:
            tree = parse_xml(data, source)
        except InputError as exc:
            sink.problems.extend(exc.problems)
            raise InputError(sink.problems) from None
        return _Reader(tree, source, sink, code_tables()).read()

    def write(self, dossier: m.Dossier) -> bytes:
        raise InputError(
            [
                Problem(
                    Severity.ERROR,
                    "PS-100",
                    self.name,
                    "ps-hl7v3 is read-only: the gateway does not answer LSP queries",
                )
            ]
        )


FORMAT = PsHl7v3Format()

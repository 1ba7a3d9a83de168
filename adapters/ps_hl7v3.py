"""Reader for the NHG professional summary as HL7v3 ``QUPC_IN990002NL`` (Huisartswaarneming 6.10.1.3).

"Opleveren professionele samenvatting": the GP system's answer to the out-of-hours query
``QUPC_IN990001NL`` over the national LSP/AORTA infrastructure (DOMAIN.md §5). The content sits under
``ControlActProcess/subject/PrimaryCareProvision``:

=============================================================  ===========================================
HL7v3 (relative to PrimaryCareProvision)                        canonical
=============================================================  ===========================================
subject/Patient (id root 2.16.840.1.113883.2.4.6.3 = BSN)       Dossier.patient
author/AssignedEntity (ids AGB 2.16.840.1.113883.2.4.6.1,        Dossier.gp
UZI 2.16.528.1.1007.3.1; code = UZI role)
author/AssignedEntity/Organization (URA .3.3 / AGB)             Dossier.practice
component7/episodeOfCondition (ICPC in reason/ObservationDx)    Episode
component2/observation code LOINC 74018-3 "Alert" -> act id      Episode.attention (attentiewaarde)
component1/encounter (code NHG Tabel 14)                        Contact
encounter/component[sequenceNumber = n]/JournalEntry (S/O/E/P)  Contact.deelcontacten[n].lines
encounter/component/ObservationDx (ICPC)                        Deelcontact.icpc
episodOfCare/component/actReference/id -> JournalEntry id       Deelcontact.episode_id
encounter/component/Prescription                                Medication
component2/observation code system NHG Tabel 45                 Measurement
component3/ContraIndication (G-Standaard thesaurus 40)          ContraIndication
component4/ObservationIntolerance (thesaurus 122)               Intolerance
pertinentInformation/pertinentAnnotationObsEvent                AttentionNote
=============================================================  ===========================================

Every element the reader does not consume is reported as a warning ``PS-090`` with its XPath (the
trace of unused input, pinned by a test for the real Nictiz instance); the transmission wrapper and the
query acknowledgement are among them on purpose: they describe the message, not the patient.
The format is read-only here: the gateway does not answer LSP queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from lxml import etree

from adapters.base import DossierFormat, sink_or_new
from adapters.xmlsafe import element_path, parse_xml
from mappings import model as m
from mappings.codetables import code_tables
from mappings.problems import InputError, ProblemSink

V3 = "{urn:hl7-org:v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
AMS = ZoneInfo("Europe/Amsterdam")

OID_BSN = "2.16.840.1.113883.2.4.6.3"
OID_AGB = "2.16.840.1.113883.2.4.6.1"
OID_UZI_PERSON = "2.16.528.1.1007.3.1"
OID_URA = "2.16.528.1.1007.3.3"
OID_BIG = "2.16.528.1.1007.5.1"
OID_TABEL45 = "2.16.840.1.113883.2.4.4.30.45"
OID_ICPC = "2.16.840.1.113883.2.4.4.31.1"
LOINC_ALERT = "74018-3"
PRODUCT_SYSTEMS = {"2.16.840.1.113883.2.4.4.1": "GPK", "2.16.840.1.113883.2.4.4.7": "HPK",
                   "2.16.840.1.113883.2.4.4.10": "PRK", "2.16.840.1.113883.2.4.4.8": "ZI"}
TELECOM_USE = {"HP": "home", "H": "home", "WP": "work", "MC": "mobile", "TMP": "temp"}
ADDRESS_USE = {"HP": "home", "H": "home", "WP": "work", "TMP": "temp", "PST": "postal"}
GENDER = {"M": "male", "F": "female", "UN": "other", "UNK": "unknown"}


def _oid(root: str | None) -> str | None:
    return root[8:] if root and root.startswith("urn:oid:") else root


class _Reader:
    """One read: the parsed tree, the problems, and the set of consumed elements."""

    def __init__(self, tree: etree._ElementTree, source: str, sink: ProblemSink):
        self.root = tree.getroot()
        self.source = source
        self.sink = sink
        # lxml keeps one proxy per node while a proxy is alive, so holding them here makes identity stable
        self.consumed: set[etree._Element] = set()
        self.tables = code_tables()

    # -- helpers ---------------------------------------------------------------------------------
    def where(self, el: etree._Element, attr: str | None = None) -> str:
        return f"{self.source}:{el.sourceline} {element_path(el)}" + (f"/@{attr}" if attr else "")

    def take(self, el: etree._Element | None) -> etree._Element | None:
        if el is not None:
            self.consumed.add(el)
        return el

    def kids(self, el: etree._Element | None, name: str) -> list[etree._Element]:
        if el is None:
            return []
        return [self.take(c) for c in el if c.tag == V3 + name]  # type: ignore[misc]

    def kid(self, el: etree._Element | None, name: str) -> etree._Element | None:
        found = self.kids(el, name)
        return found[0] if found else None

    def path(self, el: etree._Element | None, *names: str) -> etree._Element | None:
        for n in names:
            el = self.kid(el, n)
        return el

    def text(self, el: etree._Element | None) -> str | None:
        if el is None:
            return None
        t = "".join(el.itertext())
        return t if t.strip() else None

    def moment(self, el: etree._Element | None, attr: str = "value") -> dt.datetime | None:
        if el is None or el.get(attr) is None:
            return None
        raw = el.get(attr, "")
        digits, offset = raw, None
        for sign in ("+", "-"):
            if sign in raw[8:]:
                cut = raw.index(sign, 8)
                digits, offset = raw[:cut], raw[cut:]
        digits = digits.split(".")[0]
        try:
            if len(digits) < 8 or not digits.isdigit() or len(digits) % 2:
                raise ValueError
            padded = (digits + "000000")[:14]
            t = dt.datetime.strptime(padded, "%Y%m%d%H%M%S")
            if offset:
                tz = dt.timezone(dt.timedelta(hours=int(offset[:3]), minutes=int(offset[0] + offset[3:5] or "0")))
                t = t.replace(tzinfo=tz).astimezone(AMS).replace(tzinfo=None)
        except ValueError:
            self.sink.error("PS-010", self.where(el, attr), f"{raw!r} is not an HL7v3 TS (YYYYMMDD[HHMM[SS]][+ZZzz])")
            return None
        return t

    def date(self, el: etree._Element | None, attr: str = "value") -> dt.date | None:
        t = self.moment(el, attr)
        return t.date() if t else None

    def ids(self, el: etree._Element) -> dict[str, str]:
        """The ``id`` children as {root OID: extension}."""
        out: dict[str, str] = {}
        for i in self.kids(el, "id"):
            root, ext = _oid(i.get("root")), i.get("extension")
            if root and ext:
                out[root] = ext
        return out

    def build(self, el: etree._Element, make, *args, **kwargs):
        """Construct a model object; its ValueError becomes a located problem (PS-020)."""
        try:
            return make(*args, **kwargs)
        except ValueError as exc:
            self.sink.error("PS-020", self.where(el), str(exc))
            return None

    def local_id(self, el: etree._Element, ext: str | None, prefix: str, used: set[str], n: int) -> str:
        cand = ext if ext and m._ID_RE.match(ext) else f"{prefix}{n}"
        base, k = cand, 2
        while cand in used:
            cand, k = f"{base}-{k}", k + 1
        used.add(cand)
        return cand

    # -- people and places -----------------------------------------------------------------------
    def name(self, el: etree._Element | None) -> m.PersonName | None:
        if el is None:
            return None
        parts: dict[str, str] = {}
        simple = [t for t in ([el.text] if el.text else []) if t.strip()]
        for part in el:
            if not isinstance(part.tag, str):
                continue
            self.take(part)
            local, q, value = part.tag[len(V3):], part.get("qualifier"), (part.text or "").strip()
            if not value:
                continue
            if local == "given":
                key = "initials" if q == "IN" else "given"
            elif local == "prefix":
                key = {"AC": "title", "VV": "prefix"}.get(q or "", "prefix")
                if q == "VV" and "family" in parts and parts.get("_last") == "partner":
                    key = "partner_prefix"
            elif local == "family":
                key = "partner_family" if q == "SP" else "family"
                if key == "partner_family" and "prefix" in parts and "family" not in parts:
                    parts["partner_prefix"] = parts.pop("prefix")
                parts["_last"] = "partner" if key == "partner_family" else "own"
            else:
                key = "given"
            parts[key] = f"{parts[key]} {value}" if key in parts and key in ("given", "initials") else value
            if part.tail and part.tail.strip():
                simple.append(part.tail)
        parts.pop("_last", None)
        if not parts and simple:
            parts["family"] = " ".join(s.strip() for s in simple)
        return self.build(el, m.PersonName, **parts) if parts else None

    def address(self, el: etree._Element | None) -> m.Address | None:
        if el is None:
            return None
        f = {k: self.text(self.kid(el, k)) for k in ("streetName", "houseNumber", "postalCode", "city", "country")}
        return self.build(el, m.Address, street=f["streetName"], house_number=f["houseNumber"],
                          postal_code=f["postalCode"], city=f["city"], country=f["country"],
                          use=ADDRESS_USE.get(el.get("use", ""), None))

    def telecoms(self, parent: etree._Element) -> tuple[m.Telecom, ...]:
        out = []
        for t in self.kids(parent, "telecom"):
            value = t.get("value", "")
            scheme, _, rest = value.partition(":")
            system = {"tel": "phone", "mailto": "email", "fax": "fax"}.get(scheme)
            if system is None or not rest:
                self.sink.error("PS-011", self.where(t, "value"), f"telecom {value!r} is not tel:, mailto: or fax:")
                continue
            tc = self.build(t, m.Telecom, system=system, value=rest, use=TELECOM_USE.get(t.get("use", "")))
            if tc:
                out.append(tc)
        return tuple(out)

    def organization(self, el: etree._Element, oid: str) -> m.Organization | None:
        ids = self.ids(el)
        return self.build(el, m.Organization, id=oid, name=self.text(self.kid(el, "name")) or "(unnamed)",
                          agb=ids.get(OID_AGB), ura=ids.get(OID_URA), address=self.address(self.kid(el, "addr")),
                          telecom=self.telecoms(el))

    # -- the summary -----------------------------------------------------------------------------
    def read(self) -> m.Dossier:
        root = self.root
        if root.tag != V3 + "QUPC_IN990002NL":
            self.sink.error("PS-001", self.where(root), f"root element is {etree.QName(root).localname}, "
                                                        "not QUPC_IN990002NL")
            raise InputError(self.sink.problems)
        self.take(root)
        interaction = self.kid(root, "interactionId")
        if interaction is not None and interaction.get("extension") != "QUPC_IN990002NL":
            self.sink.error("PS-002", self.where(interaction, "extension"), "interactionId is not QUPC_IN990002NL")
        pcp = self.path(root, "ControlActProcess", "subject", "PrimaryCareProvision")
        if pcp is None:
            self.sink.error("PS-003", self.where(root), "no ControlActProcess/subject/PrimaryCareProvision")
            raise InputError(self.sink.problems)
        self.kids(pcp, "id")  # the provision's own id: the patient's record number at the sending system
        patient_el = self.path(pcp, "subject", "Patient")
        if patient_el is None:
            self.sink.error("PS-004", self.where(pcp), "no subject/Patient")
            raise InputError(self.sink.problems)
        patient = self.patient(patient_el)
        practice, gp = self.author(self.path(pcp, "author", "AssignedEntity"))
        self.pros: list[m.HealthProfessional] = []
        self.orgs: list[m.Organization] = []
        self.gp = gp
        episodes, links = self.episodes(pcp)
        attention = self.attention_flags(pcp)
        episodes = [e if e.id not in attention else self.build_copy(e, attention=True) for e in episodes]
        for eid in sorted(attention - {e.id for e in episodes}):
            self.sink.error("PS-030", self.where(pcp), f"attention flag refers to unknown episode {eid!r}")
        contacts, meds = self.encounters(pcp, links)
        measurements = self.measurements(pcp)
        cis = self.contraindications(pcp)
        intolerances = self.intolerances(pcp)
        notes = self.attention_notes(pcp)
        self.report_unconsumed()
        if self.sink.has_errors or patient is None or practice is None:
            if not self.sink.has_errors:
                self.sink.error("PS-005", self.where(pcp), "no patient or practice could be read")
            raise InputError(self.sink.problems)
        try:
            return m.Dossier(practice=practice, patient=patient, gp=gp, professionals=tuple(self.pros),
                             organizations=tuple(self.orgs), episodes=tuple(episodes), contacts=tuple(contacts),
                             medications=tuple(meds), measurements=tuple(measurements), intolerances=tuple(intolerances),
                             contraindications=tuple(cis), attention_notes=tuple(notes))
        except ValueError as exc:
            self.sink.error("PS-021", self.where(pcp), str(exc))
            raise InputError(self.sink.problems) from None

    def build_copy(self, e: m.Episode, **changes) -> m.Episode:
        import msgspec

        return msgspec.structs.replace(e, **changes)

    def patient(self, el: etree._Element) -> m.Patient | None:
        ids = self.ids(el)
        bsn = ids.get(OID_BSN)
        if bsn is not None and not m.bsn_is_valid(bsn):
            self.sink.error("PS-012", self.where(el) + "/id", f"BSN {bsn!r} fails the 11-test")
            bsn = None
        person = self.kid(el, "Person")
        name = self.name(self.kid(person, "name"))
        gender_el = self.kid(person, "administrativeGenderCode")
        birth = self.date(self.kid(person, "birthTime"))
        if name is None or birth is None:
            self.sink.error("PS-013", self.where(person if person is not None else el),
                            "the patient needs a name and a birth date")
            return None
        deceased = self.kid(person, "deceasedTime")
        return self.build(el, m.Patient, bsn=bsn, name=name, birth_date=birth,
                          gender=GENDER.get(gender_el.get("code", "") if gender_el is not None else "", "unknown"),
                          address=self.address(self.kid(el, "addr")), telecom=self.telecoms(el),
                          deceased_date=self.date(deceased))

    def author(self, el: etree._Element | None) -> tuple[m.Organization | None, m.HealthProfessional | None]:
        if el is None:
            self.sink.error("PS-006", self.where(self.root), "no author/AssignedEntity (the GP)")
            return None, None
        org_el = self.kid(el, "Organization")
        practice = self.organization(org_el, "praktijk") if org_el is not None else None
        if practice is None:
            self.sink.error("PS-007", self.where(el), "the GP's Organization (the practice) is missing")
        gp = self.professional(el, "huisarts", self.kid(self.kid(el, "assignedPerson"), "name"),
                               "praktijk" if practice else None)
        return practice, gp

    def professional(self, el: etree._Element, pid: str, name_el: etree._Element | None,
                     org_id: str | None) -> m.HealthProfessional | None:
        ids = self.ids(el)
        code = self.kid(el, "code")
        return self.build(el, m.HealthProfessional, id=pid, name=self.name(name_el), agb=ids.get(OID_AGB),
                          uzi=ids.get(OID_UZI_PERSON), big=ids.get(OID_BIG),
                          role=code.get("code") if code is not None else None, organization_id=org_id,
                          telecom=self.telecoms(el))

    def person_ref(self, el: etree._Element | None) -> str | None:
        """The local id of the AssignedPerson ``el``: the GP when an identifier matches, else a professional."""
        if el is None:
            return None
        ids = self.ids(el)
        agb, uzi = ids.get(OID_AGB), ids.get(OID_UZI_PERSON)
        for p in ([self.gp] if self.gp else []) + self.pros:
            if (agb and p.agb == agb) or (uzi and p.uzi == uzi):
                self.kids(el, "code")
                self.take(self.kid(el, "assignedPerson")) and self.name(self.kid(self.kid(el, "assignedPerson"), "name"))
                org = self.kid(el, "Organization")
                if org is not None:
                    self.organization(org, "scratch")
                    for d in org.iter():
                        self.take(d)
                return p.id
        org_id = None
        org_el = self.kid(el, "Organization")
        if org_el is not None:
            oids = self.ids(org_el)
            org_id = f"org-{oids.get(OID_AGB) or oids.get(OID_URA) or len(self.orgs) + 1}"
            if not any(o.id == org_id for o in self.orgs):
                org = self.organization(org_el, org_id)
                if org:
                    self.orgs.append(org)
                else:
                    org_id = None
            else:
                for d in org_el.iter():
                    self.take(d)
        pid = f"prof-{uzi or agb or len(self.pros) + 1}"
        pro = self.professional(el, pid, self.kid(self.kid(el, "assignedPerson"), "name"), org_id)
        if pro is None:
            return None
        self.pros.append(pro)
        return pid

    def episodes(self, pcp: etree._Element) -> tuple[list[m.Episode], dict[tuple[str, str], str]]:
        out: list[m.Episode] = []
        links: dict[tuple[str, str], str] = {}
        used: set[str] = set()
        for n, comp in enumerate(self.kids(pcp, "component7"), 1):
            ep = self.kid(comp, "episodeOfCondition")
            if ep is None:
                continue
            ids = self.kids(ep, "id")
            eid = self.local_id(ep, ids[0].get("extension") if ids else None, "ep", used, n)
            self.kid(ep, "statusCode")
            when = self.kid(ep, "effectiveTime")
            dx = self.path(ep, "reason", "ObservationDx")
            icpc = None
            if dx is not None:
                self.kids(dx, "id"), self.kid(dx, "code"), self.kid(dx, "text")
                value = self.kid(dx, "value")
                icpc = value.get("code") if value is not None else None
                if value is not None and _oid(value.get("codeSystem")) not in (OID_ICPC, None):
                    self.sink.warning("PS-031", self.where(value, "codeSystem"), "episode code is not ICPC-1-NL")
                self.tables.check("icpc", icpc, self.where(value) if value is not None else self.where(dx), self.sink)
            care = self.path(ep, "component2", "episodOfCare")
            for ref in self.kids(care, "component"):
                for i in self.kids(self.kid(ref, "actReference"), "id"):
                    links[(_oid(i.get("root")) or "", i.get("extension") or "")] = eid
            title = self.text(self.kid(ep, "text")) or (self.text(self.kid(dx, "text")) if dx is not None else None)
            episode = self.build(ep, m.Episode, id=eid, title=title or icpc or eid, icpc=icpc,
                                 start=self.date(self.kid(when, "low")), end=self.date(self.kid(when, "high")))
            if episode:
                out.append(episode)
        return out, links

    def attention_flags(self, pcp: etree._Element) -> set[str]:
        flagged: set[str] = set()
        for comp in pcp:
            if comp.tag != V3 + "component2":
                continue
            obs = next((c for c in comp if c.tag == V3 + "observation"), None)
            code = next((c for c in obs if c.tag == V3 + "code"), None) if obs is not None else None
            if code is None or code.get("code") != LOINC_ALERT:
                continue
            self.take(comp), self.take(obs), self.take(code), self.kid(obs, "statusCode")
            act = self.path(obs, "sourceOf", "act")
            self.kid(act, "code")
            for i in self.kids(act, "id"):
                if i.get("extension"):
                    flagged.add(i.get("extension"))
        return flagged

    def encounters(self, pcp: etree._Element, links: dict[tuple[str, str], str]):
        contacts: list[m.Contact] = []
        meds: list[m.Medication] = []
        used, med_used = set(), set()
        for n, comp in enumerate(self.kids(pcp, "component1"), 1):
            enc = self.kid(comp, "encounter")
            if enc is None:
                continue
            ids = self.kids(enc, "id")
            cid = self.local_id(enc, ids[0].get("extension") if ids else None, "c", used, n)
            code = self.kid(enc, "code")
            contact_type = code.get("code") if code is not None else None
            self.tables.check("tabel14", contact_type, self.where(enc), self.sink)
            when = self.kid(enc, "effectiveTime")
            start = self.moment(self.kid(when, "low")) or self.moment(when)
            end = self.moment(self.kid(when, "high"))
            author = self.person_ref(self.path(enc, "author", "AssignedPerson"))
            groups: dict[str, dict] = {}
            for part in self.kids(enc, "component"):
                seq_el = self.kid(part, "sequenceNumber")
                seq = seq_el.get("value", "") if seq_el is not None else ""
                g = groups.setdefault(seq, {"lines": [], "icpc": None, "episode": None})
                for entry in self.kids(part, "JournalEntry"):
                    jcode = self.kid(entry, "code")
                    kind = jcode.get("code") if jcode is not None else None
                    for i in self.kids(entry, "id"):
                        g["episode"] = g["episode"] or links.get((_oid(i.get("root")) or "", i.get("extension") or ""))
                    if kind not in ("S", "O", "E", "P"):
                        self.sink.error("PS-040", self.where(entry), f"journal line type {kind!r} is not S, O, E or P")
                        continue
                    line = self.build(entry, m.SoepLine, type=kind, text=self.text(self.kid(entry, "value")) or "")
                    if line:
                        g["lines"].append(line)
                for dx in self.kids(part, "ObservationDx"):
                    self.kids(dx, "id"), self.kid(dx, "code")
                    value = self.kid(dx, "value")
                    g["icpc"] = value.get("code") if value is not None else None
                    self.tables.check("icpc", g["icpc"], self.where(dx), self.sink)
                    dx_author = self.path(dx, "author", "AssignedPerson")
                    if dx_author is not None:
                        self.person_ref(dx_author)
                for rx in self.kids(part, "Prescription"):
                    med = self.prescription(rx, med_used, len(meds) + 1)
                    if med:
                        meds.append(med)
            if start is None:
                self.sink.error("PS-041", self.where(enc), "encounter has no effectiveTime")
                continue
            dcs = [self.build(enc, m.Deelcontact, episode_id=g["episode"], icpc=g["icpc"], lines=tuple(g["lines"]))
                   for g in groups.values() if g["lines"] or g["icpc"]]
            contact = self.build(enc, m.Contact, id=cid, start=start, end=end, contact_type=contact_type,
                                 author_id=author, deelcontacten=tuple(d for d in dcs if d))
            if contact:
                contacts.append(contact)
        return contacts, meds

    def prescription(self, rx: etree._Element, used: set[str], n: int) -> m.Medication | None:
        ids = self.kids(rx, "id")
        mid = self.local_id(rx, ids[0].get("extension") if ids else None, "med", used, n)
        status_el = self.kid(rx, "statusCode")
        status = {"active": "active", "completed": "completed", "aborted": "stopped", "suspended": "stopped"}.get(
            status_el.get("code", "") if status_el is not None else "", "active")
        author = self.kid(rx, "author")
        prescribed = self.date(self.kid(author, "time"))
        person = self.kid(author, "AssignedPerson")
        prescriber = None
        if person is not None:
            self.name(self.path(person, "assignee", "assigneePerson", "name"))
            prescriber = self.person_ref(person)
        pm = self.path(rx, "directTarget", "prescribedMedication")
        code = self.path(pm, "MedicationKind", "code")
        if code is None:
            self.sink.error("PS-050", self.where(rx), "prescription has no MedicationKind/code")
            return None
        system = PRODUCT_SYSTEMS.get(_oid(code.get("codeSystem")) or "")
        quantity, unit = None, None
        qty = self.path(pm, "productOf", "medicationDispenseRequest", "quantity")
        if qty is not None:
            self.kid(self.path(pm, "productOf", "medicationDispenseRequest"), "statusCode")
            quantity = self.decimal(qty, "value")
            tr = self.kid(qty, "translation")
            unit = (tr.get("displayName") if tr is not None else None) or (qty.get("unit") if qty.get("unit") != "1" else None)
        mar = self.path(pm, "therapeuticAgentOf", "medicationAdministrationRequest")
        start = end = None
        dosage = None
        if mar is not None:
            self.kids(mar, "id"), self.kid(mar, "statusCode")
            dosage = self.text(self.kid(mar, "text"))
            when = self.kid(mar, "effectiveTime")
            if when is not None:
                ivl = when
                if when.get(XSI_TYPE) == "SXPR_TS":
                    ivl = next((c for c in self.kids(when, "comp") if c.get(XSI_TYPE) == "IVL_TS"), None)
                start, end = self.date(self.kid(ivl, "low")), self.date(self.kid(ivl, "high"))
        if quantity is None:
            unit = None
        return self.build(rx, m.Medication, id=mid, product_name=code.get("displayName") or code.get("code", "?"),
                          product_system=system, product_code=code.get("code") if system else None,
                          dosage_text=dosage, start=start, end=end, status=status, prescribed_on=prescribed,
                          prescriber_id=prescriber, quantity=quantity, quantity_unit=unit)

    def decimal(self, el: etree._Element | None, attr: str) -> Decimal | None:
        if el is None or el.get(attr) is None:
            return None
        try:
            value = Decimal(el.get(attr, ""))
            if not value.is_finite():
                raise InvalidOperation
            return value
        except InvalidOperation:
            self.sink.error("PS-060", self.where(el, attr), f"{el.get(attr)!r} is not a number")
            return None

    def measurements(self, pcp: etree._Element) -> list[m.Measurement]:
        out: list[m.Measurement] = []
        used: set[str] = set()
        for comp in pcp:
            if comp.tag != V3 + "component2":
                continue
            obs = next((c for c in comp if c.tag == V3 + "observation"), None)
            code = next((c for c in obs if c.tag == V3 + "code"), None) if obs is not None else None
            if code is None or _oid(code.get("codeSystem")) != OID_TABEL45:
                continue
            self.take(comp), self.take(obs), self.take(code), self.kid(obs, "statusCode")
            ids = self.kids(obs, "id")
            mid = self.local_id(obs, ids[0].get("extension") if ids else None, "meas", used, len(out) + 1)
            when = self.kid(obs, "effectiveTime")
            effective = self.moment(when) or self.moment(self.kid(when, "low"))
            if effective is None:
                self.sink.error("PS-061", self.where(obs), "measurement has no effectiveTime")
                continue
            value = self.kid(obs, "value")
            vq = vt = unit = None
            if value is not None:
                if value.get(XSI_TYPE, "").endswith("PQ") or value.get("value") is not None:
                    vq, unit = self.decimal(value, "value"), value.get("unit")
                else:
                    vt = self.text(value)
            low = high = None
            rng = self.path(obs, "referenceRange", "observationRange")
            if rng is not None:
                self.kid(rng, "interpretationCode")
                rv = self.kid(rng, "value")
                low, high = self.decimal(self.kid(rv, "low"), "value"), self.decimal(self.kid(rv, "high"), "value")
            interp = self.kid(obs, "interpretationCode")
            interpretation = interp.get("code") if interp is not None else None
            if interpretation not in (None, "L", "H", "N", "A", "LL", "HH"):
                self.sink.warning("PS-062", self.where(interp, "code"), f"interpretation {interpretation!r} not kept")
                interpretation = None
            self.tables.check("tabel45", code.get("code"), self.where(code), self.sink)
            meas = self.build(obs, m.Measurement, id=mid, code=code.get("code", ""), effective=effective,
                              value_quantity=vq, value_text=vt, unit=unit, reference_low=low, reference_high=high,
                              interpretation=interpretation)
            if meas:
                out.append(meas)
        return out

    def contraindications(self, pcp: etree._Element) -> list[m.ContraIndication]:
        out, used = [], set()
        for n, comp in enumerate(self.kids(pcp, "component3"), 1):
            ci = self.kid(comp, "ContraIndication")
            if ci is None:
                continue
            ids = self.kids(ci, "id")
            self.kid(ci, "code")
            value = self.kid(ci, "value")
            code = value.get("code") if value is not None else None
            self.tables.check("thesaurus40", code, self.where(ci), self.sink)
            when = self.kid(ci, "effectiveTime")
            text = self.text(self.kid(ci, "text")) or (value.get("displayName") if value is not None else None) or code
            item = self.build(ci, m.ContraIndication, id=self.local_id(ci, ids[0].get("extension") if ids else None,
                                                                       "ci", used, n),
                              text=text or "", code=code, start=self.date(self.kid(when, "low")),
                              end=self.date(self.kid(when, "high")))
            if item:
                out.append(item)
        return out

    def intolerances(self, pcp: etree._Element) -> list[m.Intolerance]:
        out, used = [], set()
        for n, comp in enumerate(self.kids(pcp, "component4"), 1):
            it = self.kid(comp, "ObservationIntolerance")
            if it is None:
                continue
            ids = self.kids(it, "id")
            self.kid(it, "code"), self.kid(it, "statusCode")
            if it.get("negationInd") == "true":
                self.sink.warning("PS-070", self.where(it, "negationInd"), "a negated intolerance is not kept")
                continue
            value = self.kid(it, "value")
            code = value.get("code") if value is not None else None
            self.tables.check("thesaurus122", code, self.where(it), self.sink)
            when = self.kid(it, "effectiveTime")
            text = self.text(self.kid(it, "text")) or (value.get("displayName") if value is not None else None) or code
            end = self.date(self.kid(when, "high"))
            item = self.build(it, m.Intolerance, id=self.local_id(it, ids[0].get("extension") if ids else None,
                                                                  "int", used, n),
                              text=text or "", code=code, start=self.date(self.kid(when, "low")),
                              status="inactive" if end else "active")
            if item:
                out.append(item)
        return out

    def attention_notes(self, pcp: etree._Element) -> list[m.AttentionNote]:
        out = []
        for n, info in enumerate(self.kids(pcp, "pertinentInformation"), 1):
            ann = self.kid(info, "pertinentAnnotationObsEvent")
            if ann is None:
                continue
            self.kid(ann, "code")
            text = self.text(self.kid(ann, "text"))
            if text is None:
                self.sink.warning("PS-080", self.where(ann), "empty attention note skipped")
                continue
            note = self.build(ann, m.AttentionNote, id=f"att{n}", text=text,
                              date=self.date(self.kid(self.kid(ann, "effectiveTime"), "low")))
            if note:
                out.append(note)
        return out

    def report_unconsumed(self) -> None:
        for el in self.root.iter():
            if isinstance(el.tag, str) and el not in self.consumed:
                parent = el.getparent()
                if parent is not None and parent not in self.consumed:
                    continue  # report only the top of an unconsumed subtree
                self.sink.warning("PS-090", self.where(el), "element not consumed")

    def unconsumed(self) -> Iterable[str]:
        return [p.location for p in self.sink.problems if p.code == "PS-090"]


class PsHl7v3Format(DossierFormat):
    """``ps-hl7v3``: read the HL7v3 professional summary; writing is not offered."""

    name = "ps-hl7v3"
    media_type = "application/xml"

    def read(self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None) -> m.Dossier:
        sink = sink_or_new(sink)
        try:
            tree = parse_xml(data, source)
        except InputError as exc:
            for p in exc.problems:
                sink.problems.append(p)
            raise InputError(sink.problems) from None
        return _Reader(tree, source, sink).read()

    def write(self, dossier: m.Dossier) -> bytes:
        from mappings.problems import Problem, Severity

        raise InputError([Problem(Severity.ERROR, "PS-100", self.name,
                                  "ps-hl7v3 is read-only: the gateway does not answer LSP queries")])


FORMAT = PsHl7v3Format()

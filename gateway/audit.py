"""The NEN 7513 access log as FHIR AuditEvents: append-only, hash-chained, in the caller's transaction.

NEN 7513 (DOMAIN.md §10) asks for every create, read, update, delete and search, every transfer to or
from another system, and every access to the log itself: the event (id, action, date-time, outcome),
the user (id, name, role, on whose behalf, network access point), the object (patient id) and the
source -- and no clinical content. Each :func:`record` call writes one ``AuditEvent`` (R4):

- ``type`` ``rest`` (or ``transmit`` for MLLP receipt and postbox delivery), ``subtype`` the FHIR
  restful interaction (``read``, ``search-type`` ...) or ``urn:his-gateway:audit`` ``mllp-receipt`` /
  ``postbox-delivery``; ``action`` C/R/U/D/E; ``recorded``; ``outcome`` 0/4/8/12 (+ ``outcomeDesc``:
  a status and problem code, never clinical text);
- ``agent[0]``: who (the client or sending system), its role (UZI role code), ``requestor``, the
  network access point; ``agent[1]``: the organisation on whose behalf (URA/AGB);
- ``source``: the gateway; ``entity``: the patients (role 1 "patient") and the objects touched
  (``Type/id``), plus for searches the names (not the values) of the parameters used.

Integrity: ``audit_log`` refuses UPDATE and DELETE (database triggers) and every record carries
``hash = sha256(prev_hash | seq | event_id | recorded | org | action | outcome | body)``;
:func:`verify` recomputes the chain and names the first record that does not fit
(``hisgw audit verify``). The patient index ``audit_patient`` (what ``AuditEvent?patient=`` and the
privacy officer's view rely on) is derived from the chained bodies: :func:`verify` rebuilds it from
them and reports every missing, extra or re-pointed row (``AUD-006``/``AUD-007``/``AUD-008``).
The chain head row is locked by each writer
(``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so concurrent transactions and
several gateway processes extend one chain. The record is written in the same transaction as the
action it logs: if it cannot be written, the action fails too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, String, literal, or_, select

from gateway import rawsql
from gateway.schema import GENESIS_HASH, audit_head, audit_log, audit_patient, idx_token, participant
from gateway.tenancy import OWNER_SOURCES
from mappings.problems import Problem, Severity

RESTFUL = "http://hl7.org/fhir/restful-interaction"
GATEWAY_EVENTS = "urn:his-gateway:audit"
RESTFUL_CODES = {
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search",
    "search-type",
    "search-system",
    "capabilities",
    "transaction",
    "batch",
    "operation",
}
OUTCOMES = {"0": "success", "4": "minor failure", "8": "serious failure", "12": "major failure"}
CLIENT_SYSTEM = "urn:his-gateway:client-id"


@dataclass(frozen=True, slots=True)
class Agent:
    """Who acts (a client or a sending system), on whose behalf, in which role, from where."""

    id_system: str
    id_value: str
    name: str
    org_key: str
    """Tenant key of the organisation on whose behalf (``ura:<n>`` / ``agb:<n>``); filters log reads."""
    org_identifier: dict[str, str] | None = None
    org_name: str | None = None
    role: tuple[str, str, str | None] | None = None
    """(system, code, display), e.g. UZI role code ``01.015`` huisarts."""
    network: str | None = None
    request_id: str | None = None
    """The HTTP request's ``X-Request-ID`` (an entity of the event: IHE BALP ``XrequestId``)."""

    @classmethod
    def from_principal(cls, principal, network: str | None) -> Agent:
        """The agent of an authenticated API client (``gateway.auth.tokens.Principal``)."""
        org = principal.organization
        role = (
            (principal.role.system, principal.role.code, principal.role.display) if principal.role else None
        )
        return cls(
            CLIENT_SYSTEM,
            principal.client_id,
            principal.client_name,
            principal.orgs[0],
            org.identifier,
            org.name,
            role,
            network,
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_APPLICATION = {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]}
_RESPONSIBLE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "RESP",
            "display": "responsible party",
        }
    ]
}
_PERSON = {"system": ENTITY_TYPE, "code": "1"}
_OBJECT = {"system": ENTITY_TYPE, "code": "2"}
_PATIENT_ROLE = {"system": OBJECT_ROLE, "code": "1"}
_QUERY_ROLE = {"system": OBJECT_ROLE, "code": "24"}
_TYPES = {
    "postbox-delivery": {"system": DCM, "code": "110106", "display": "Export"},
    "mllp-receipt": {"system": DCM, "code": "110107", "display": "Import"},
}
_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_SOURCE = {
    "site": "his-gateway",
    "observer": {"display": "his-gateway"},
    "type": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
            "code": "4",
            "display": "Application Server",
        }
    ],
}
_agent_cache: dict[tuple, list[dict[str, Any]]] = {}


_REQUEST_ID = {
    "system": "http://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
    "code": "XrequestId",
}
"""IHE Basic Audit Log Patterns (BALP) §3.5.1: the request's ``X-Request-Id`` as an entity."""


def _agents(who: Agent) -> list[dict[str, Any]]:
    """``AuditEvent.agent`` of an agent: the same for every event it causes, so built once."""
    key = (
        who.id_system,
        who.id_value,
        who.name,
        who.org_key,
        who.org_name,
        who.role,
        who.network,
        tuple(sorted((who.org_identifier or {}).items())),
    )
    cached = _agent_cache.get(key)
    if cached is not None:
        return cached
    requestor: dict[str, Any] = {
        "type": _APPLICATION,
        "who": {"identifier": {"system": who.id_system, "value": who.id_value}, "display": who.name},
        "requestor": True,
    }
    if who.role:
        coding = {"system": who.role[0], "code": who.role[1]}
        if who.role[2]:
            coding["display"] = who.role[2]
        requestor["role"] = [{"coding": [coding]}]
    if who.network:
        requestor["network"] = {"address": who.network, "type": "2"}
    agents = [requestor]
    if who.org_identifier:
        behalf: dict[str, Any] = {
            "type": _RESPONSIBLE,
            "who": {"identifier": who.org_identifier},
            "requestor": False,
        }
        if who.org_name:
            behalf["who"]["display"] = who.org_name
        agents.append(behalf)
    if len(_agent_cache) > 10_000:
        _agent_cache.clear()
    _agent_cache[key] = agents
    return agents


def _build(
    event_id: str,
    when: dt.datetime,
    who: Agent,
    action: str,
    subtype: str,
    outcome: str,
    outcome_desc: str | None,
    entities: Iterable[str],
    patients: list[str],
    patient_identifiers: Iterable[tuple[str, str]],
    query_params: Iterable[str] | None,
) -> dict:
    recorded = when.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    entity: list[dict[str, Any]] = [
        {"what": {"reference": ref}, "type": _PERSON, "role": _PATIENT_ROLE} for ref in patients
    ]
    entity += [
        {"what": {"identifier": {"system": system, "value": value}}, "type": _PERSON, "role": _PATIENT_ROLE}
        for system, value in patient_identifiers
    ]
    entity += [{"what": {"reference": ref}, "type": _OBJECT} for ref in entities]
    if who.request_id:
        entity.append({"what": {"identifier": {"value": who.request_id}}, "type": _REQUEST_ID})
    if query_params is not None:
        names = ",".join(sorted(set(query_params)))
        entity.append(
            {
                "type": _OBJECT,
                "role": _QUERY_ROLE,
                "query": base64.b64encode(names.encode()).decode() if names else "Kg==",
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "meta": {"versionId": "1", "lastUpdated": recorded},
        "type": _TYPES.get(subtype, _REST),
        "subtype": [{"system": RESTFUL if subtype in RESTFUL_CODES else GATEWAY_EVENTS, "code": subtype}],
        "action": action,
        "recorded": recorded,
        "outcome": outcome,
        "agent": _agents(who),
        "source": _SOURCE,
    }
    if outcome_desc:
        event["outcomeDesc"] = outcome_desc
    if entity:
        event["entity"] = entity
    return event


def chain_hash(
    prev_hash: str, seq: int, event_id: str, recorded: str, org: str, action: str, outcome: str, body: bytes
) -> str:
    """The link of record ``seq``: sha256 over the previous hash and every column of the record, in hex."""
    head = "|".join((prev_hash, str(seq), event_id, recorded, org, action, outcome)).encode()
    return hashlib.sha256(head + b"|" + body).hexdigest()


@dataclass(frozen=True, slots=True)
class Pending:
    """An AuditEvent built and serialised, waiting for its place in the chain."""

    event_id: str
    recorded: str
    org: str
    action: str
    outcome: str
    body: bytes
    patients: tuple[str, ...]


def prepare(
    *,
    who: Agent,
    action: str,
    subtype: str,
    outcome: str = "0",
    outcome_desc: str | None = None,
    entities: Iterable[str] = (),
    patients: Iterable[str] = (),
    patient_identifiers: Iterable[tuple[str, str]] = (),
    query_params: Iterable[str] | None = None,
    when: dt.datetime | None = None,
) -> Pending:
    """Build one AuditEvent (see :func:`record` for the arguments) without writing it."""
    if action not in ("C", "R", "U", "D", "E"):
        raise ValueError(f"action {action!r} is not C, R, U, D or E")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not 0, 4, 8 or 12")
    when = when or _now()
    event_id = str(uuid.uuid4())
    patient_refs = tuple(dict.fromkeys(patients))
    body = orjson.dumps(
        _build(
            event_id,
            when,
            who,
            action,
            subtype,
            outcome,
            outcome_desc,
            entities,
            list(patient_refs),
            patient_identifiers,
            query_params,
        ),
        option=orjson.OPT_SORT_KEYS,
    )
    return Pending(
        event_id,
        when.replace(tzinfo=None).isoformat(timespec="microseconds"),
        who.org_key,
        action,
        outcome,
        body,
        patient_refs,
    )


_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
_INSERT = (
    "INSERT INTO audit_log (seq, event_id, recorded, org, action, outcome, body, prev_hash, hash) "
    "VALUES (:seq, :event_id, :recorded, :org, :action, :outcome, :body, :prev_hash, :hash)"
)
_INSERT_PATIENT = "INSERT INTO audit_patient (seq, patient) VALUES (:seq, :patient)"
_UPDATE_HEAD = "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"


def write(conn: Connection, events: list[Pending]) -> None:
    """Append prepared events to the chain in ``conn``'s open transaction (one head lock for all)."""
    if not events:
        return
    head = rawsql.execute(conn, _HEAD + (" FOR UPDATE" if rawsql.is_pg(conn) else "")).fetchone()
    seq, prev = head[0], head[1]
    rows, patient_rows = [], []
    for e in events:
        seq += 1
        digest = chain_hash(prev, seq, e.event_id, e.recorded, e.org, e.action, e.outcome, e.body)
        rows.append(
            {
                "seq": seq,
                "event_id": e.event_id,
                "recorded": e.recorded,
                "org": e.org,
                "action": e.action,
                "outcome": e.outcome,
                "body": e.body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        patient_rows += [{"seq": seq, "patient": p} for p in e.patients]
        prev = digest
    rawsql.executemany(conn, _INSERT, rows)
    if patient_rows:
        rawsql.executemany(conn, _INSERT_PATIENT, patient_rows)
    rawsql.execute(conn, _UPDATE_HEAD, {"seq": seq, "hash": prev})


def record(
    conn: Connection,
    *,
    who: Agent,
    action: str,
    subtype: str,
    outcome: str = "0",
    outcome_desc: str | None = None,
    entities: Iterable[str] = (),
    patients: Iterable[str] = (),
    patient_identifiers: Iterable[tuple[str, str]] = (),
    query_params: Iterable[str] | None = None,
    when: dt.datetime | None = None,
) -> str:
    """Write one AuditEvent in the caller's open transaction ``conn``; return its id.

    ``action`` is C, R, U, D or E; ``subtype`` a FHIR restful interaction (``read``, ``search-type``,
    ``create`` ...) or ``mllp-receipt`` / ``postbox-delivery``; ``patients`` are ``Patient/<id>``
    references, ``patient_identifiers`` (system, value) pairs (e.g. a BSN from an HL7 v2 message);
    ``entities`` the other objects touched (``Type/id``); ``query_params`` the names of the search
    parameters used (never their values); ``outcome`` 0 (success), 4, 8 or 12 with ``outcome_desc`` a
    status or problem code (never clinical text). Raises whatever the database raises: the caller's
    transaction must then fail as a whole.
    """
    event = prepare(
        who=who,
        action=action,
        subtype=subtype,
        outcome=outcome,
        outcome_desc=outcome_desc,
        entities=entities,
        patients=patients,
        patient_identifiers=patient_identifiers,
        query_params=query_params,
        when=when,
    )
    write(conn, [event])
    return event.event_id


def record_standalone(engine: Engine, **kwargs) -> str:
    """:func:`record` in a transaction of its own (for events with no other database work)."""
    with engine.begin() as conn:
        return record(conn, **kwargs)


def indexed_patients(body: bytes) -> set[str]:
    """The ``Patient/<id>`` rows an event's body asks for in ``audit_patient`` (its patient entities)."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return set()
    out = set()
    for e in event.get("entity") or ():
        ref = (e.get("what") or {}).get("reference") if isinstance(e, dict) else None
        if isinstance(ref, str) and (e.get("role") or {}).get("code") == "1":
            out.add(ref)
    return out


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found: how many records, and the first problem (None: the chain holds)."""

    records: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(engine: Engine, batch: int = 2000) -> VerifyResult:
    """Recompute the hash chain from the first record; report the first record that does not fit."""
    prev_hash, expected_seq, count = GENESIS_HASH, 1, 0

    def broken(code: str, seq: int, message: str) -> VerifyResult:
        return VerifyResult(count, Problem(Severity.ERROR, code, f"audit_log seq {seq}", message))

    with engine.connect() as conn:
        last = 0
        while True:
            rows = conn.execute(
                select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch)
            ).all()
            if not rows:
                break
            for row in rows:
                if row.seq != expected_seq:
                    return broken(
                        "AUD-003", expected_seq, f"record {expected_seq} is missing (next is {row.seq})"
                    )
                if row.prev_hash != prev_hash:
                    return broken("AUD-002", row.seq, "prev_hash does not match the previous record's hash")
                body = bytes(row.body)
                if (
                    chain_hash(
                        prev_hash, row.seq, row.event_id, row.recorded, row.org, row.action, row.outcome, body
                    )
                    != row.hash
                ):
                    return broken(
                        "AUD-001", row.seq, f"content does not match its hash (event {row.event_id})"
                    )
                try:
                    event = orjson.loads(body)
                    consistent = (
                        event["id"] == row.event_id
                        and event["action"] == row.action
                        and event["outcome"] == row.outcome
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    consistent = False
                if not consistent:
                    return broken("AUD-005", row.seq, "the indexed columns do not match the recorded event")
                prev_hash, expected_seq, count, last = row.hash, row.seq + 1, count + 1, row.seq
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        if head.seq != count or head.hash != prev_hash:
            return broken(
                "AUD-004",
                head.seq,
                f"the chain head says {head.seq} records, the log holds {count}"
                " (records removed from the end, or the head was changed)",
            )
        problem = _verify_patient_index(conn, batch)
        if problem is not None:
            return VerifyResult(count, problem)
    return VerifyResult(count, None)


def _verify_patient_index(conn: Connection, batch: int) -> Problem | None:
    """Rebuild ``audit_patient`` from the (verified) bodies and compare it row by row, in seq order."""
    a, ap = audit_log, audit_patient
    last = 0
    while True:
        rows = conn.execute(
            select(a.c.seq, a.c.body).where(a.c.seq > last).order_by(a.c.seq).limit(batch)
        ).all()
        hi = rows[-1].seq if rows else None
        stored: dict[int, set[str]] = {}
        q = select(ap.c.seq, ap.c.patient).where(ap.c.seq > last)
        if hi is not None:
            q = q.where(ap.c.seq <= hi)
        for seq, patient in conn.execute(q.order_by(ap.c.seq, ap.c.patient)):
            stored.setdefault(seq, set()).add(patient)
        expected = {row.seq: indexed_patients(bytes(row.body)) for row in rows}
        for seq in sorted(set(stored) | {s for s, p in expected.items() if p}):
            want, have = expected.get(seq, set()), stored.get(seq, set())
            if want == have:
                continue
            missing, extra = sorted(want - have), sorted(have - want)
            where = f"audit_patient seq {seq}"
            if seq not in expected:
                return Problem(
                    Severity.ERROR,
                    "AUD-007",
                    where,
                    f"index entry {extra[0]} names no audit record (seq {seq} is not in the log)",
                )
            if missing and extra:
                return Problem(
                    Severity.ERROR,
                    "AUD-008",
                    where,
                    f"index entry re-pointed: the record names {missing[0]}, the index says {extra[0]}",
                )
            if missing:
                return Problem(
                    Severity.ERROR, "AUD-006", where, f"index entry {missing[0]} of the record is missing"
                )
            return Problem(
                Severity.ERROR,
                "AUD-007",
                where,
                f"index entry {extra[0]} is not named by the record",
            )
        if hi is None:
            return None
        last = hi


def visible_events(orgs: tuple[str, ...]) -> ColumnElement[bool]:
    """SQL over ``audit_log``: the events an organisation's privacy officer may read -- its own, and every
    access by anyone to a patient it owns (creator or managing organisation; docs/security.md)."""
    p, ap = participant, audit_patient
    owned = select(literal("Patient/", String) + p.c.res_id).where(
        p.c.res_type == "Patient", p.c.org.in_(orgs), p.c.source.in_(OWNER_SOURCES)
    )
    return or_(
        audit_log.c.org.in_(orgs), audit_log.c.seq.in_(select(ap.c.seq).where(ap.c.patient.in_(owned)))
    )


HL7V2_SENDER_SYSTEM = "urn:his-gateway:hl7v2-sender"
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"


def patients_by_bsn(conn: Connection, bsns) -> list[str]:
    """The stored Patients with these BSNs (``Patient/<id>``), so a receipt is found by ``patient=``."""
    if not bsns:
        return []
    t = idx_token
    rows = conn.execute(
        select(t.c.res_id)
        .where(
            t.c.res_type == "Patient",
            t.c.param == "identifier",
            t.c.system.in_((BSN_SYSTEM, "urn:oid:2.16.840.1.113883.2.4.6.3")),
            t.c.code.in_(list(bsns)),
        )
        .distinct()
    )
    return sorted(f"Patient/{r[0]}" for r in rows)


def mllp_receipt(conn: Connection, received, resend: bool) -> None:
    """The AuditEvent of one HL7 v2 message received over MLLP (``gateway.mllp.store.ReceiptHook``);
    :func:`mllp_receipts` for one record."""
    mllp_receipts(conn, [(received, resend)])


def mllp_receipts(conn: Connection, received: Sequence[tuple[Any, bool]]) -> None:
    """The AuditEvents of HL7 v2 messages received over MLLP, one per (record, resend) pair, in that order
    (``gateway.mllp.store.ReceiptsHook``: a batch stored in one transaction, audited in it with one query
    for the patients and one append to the chain).

    Who: the sending system (MSH-3 application, MSH-4 facility) from its network address, on behalf of
    the facility (tenant key ``hl7v2:<MSH-4>``); what: the message (MSH-10 and the ACK code in the outcome
    description, ``resend`` when it was stored before); which patients: the BSNs it names. Outcome 0 for
    AA/CA, 4 for AE/CE, 8 for AR/CR (a conflicting duplicate: 8, ``MLLP-005`` in the description)."""
    found = _patients_by_bsns(conn, {b for r, _ in received for b in r.bsns})
    events = []
    for rec, resend in received:
        application, facility, control_id = rec.key
        who = Agent(
            HL7V2_SENDER_SYSTEM,
            f"{application}|{facility}",
            application or facility or "HL7 v2 sender",
            f"hl7v2:{facility}",
            network=rec.peer or None,
        )
        outcome = {"AA": "0", "CA": "0", "AE": "4", "CE": "4"}.get(rec.ack_code, "8")
        if getattr(rec, "conflict", False):
            note = " MLLP-005 conflicting duplicate, not stored"
        else:
            note = " resend" if resend else ""
        events.append(
            prepare(
                who=who,
                action="C",
                subtype="mllp-receipt",
                outcome=outcome,
                outcome_desc=f"{rec.ack_code} MSH-10 {control_id}{note}",
                patient_identifiers=[(BSN_SYSTEM, bsn) for bsn in rec.bsns],
                patients=sorted({p for bsn in rec.bsns for p in found.get(bsn, ())}),
            )
        )
    write(conn, events)


_BSN_SYSTEMS = (BSN_SYSTEM, "urn:oid:2.16.840.1.113883.2.4.6.3")


def _patients_by_bsns(conn: Connection, bsns: set[str]) -> dict[str, set[str]]:
    """Per BSN, the stored Patients with it (``Patient/<id>``), in one query (as :func:`patients_by_bsn`)."""
    if not bsns:
        return {}
    t = idx_token
    rows = conn.execute(
        select(t.c.code, t.c.res_id)
        .where(
            t.c.res_type == "Patient",
            t.c.param == "identifier",
            t.c.system.in_(_BSN_SYSTEMS),
            t.c.code.in_(sorted(bsns)),
        )
        .distinct()
    )
    out: dict[str, set[str]] = {}
    for code, res_id in rows:
        out.setdefault(code, set()).add(f"Patient/{res_id}")
    return out

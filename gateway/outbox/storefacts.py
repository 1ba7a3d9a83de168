"""Patient facts for auto-filing from the gateway's FHIR store (``gateway/outbox/filing.py``).

What the store holds *for the practice* (its tenant keys: ``agb:<AGB>`` and the URA of the Organization
with that AGB; resources it created or takes part in):

- the Patient(s) with the item's BSN (``identifier`` token, system ``http://fhir.nl/fhir/NamingSystem/bsn``):
  ``birthDate``; deceased when ``deceasedDateTime`` or ``deceasedBoolean: true``; left the practice when
  the deregistration extension (``mappings/fhir/patient.py``) is present or ``active`` is false;
- the patient's EpisodeOfCare resources (``docs/fhir-mapping.md``, ``mappings/fhir/episode.py``): the
  episode id (identifier ``urn:his-gateway:id:episode``), its name, active when ``status`` is
  ``active``, the ICPC of its diagnosis Condition;
- the sender's references the practice knows for the patient: its ServiceRequests, Tasks and Communications
  about that patient, by ``Type/id`` (the consult module's answers and feedback carry ``Task/<id>`` or
  ``Communication/<id>``) and by their identifiers (a referral's own number).
"""

from __future__ import annotations

import datetime as dt

import orjson
from sqlalchemy import Connection, bindparam, select, text

from gateway import tenancy
from gateway.outbox.filing import EpisodeFact, PatientFacts
from gateway.schema import idx_token
from mappings.fhir import codes as c
from mappings.model import PostboxItem

_PATIENTS = """
SELECT DISTINCT r.res_id, r.body FROM idx_token t
JOIN resource r ON r.res_type = t.res_type AND r.res_id = t.res_id
JOIN participant p ON p.res_type = t.res_type AND p.res_id = t.res_id
WHERE t.res_type = 'Patient' AND t.param = 'identifier' AND t.system = :system AND t.code = :bsn
  AND p.org IN :orgs AND r.deleted = :deleted"""

_ABOUT = """
SELECT DISTINCT r.res_type, r.res_id, r.body FROM idx_reference x
JOIN resource r ON r.res_type = x.res_type AND r.res_id = x.res_id
JOIN participant p ON p.res_type = x.res_type AND p.res_id = x.res_id
WHERE x.target_type = 'Patient' AND x.target_id = :pid
  AND x.res_type IN ('EpisodeOfCare', 'ServiceRequest', 'Task', 'Communication')
  AND p.org IN :orgs AND r.deleted = :deleted"""

_PATIENTS_Q = text(_PATIENTS).bindparams(bindparam("orgs", expanding=True))
_ABOUT_Q = text(_ABOUT).bindparams(bindparam("orgs", expanding=True))
_BY_ID = "SELECT body FROM resource WHERE res_type = :t AND res_id = :i AND deleted = :deleted"


def _load(body: bytes | None) -> dict:
    return orjson.loads(body) if body else {}


def _episode(conn: Connection, eoc: dict) -> EpisodeFact:
    eid = next(
        (i.get("value") for i in eoc.get("identifier", []) if i.get("system") == c.LOCAL_ID + "episode"), None
    ) or eoc.get("id", "")
    title = next(
        (x.get("valueString") for x in eoc.get("extension", []) if x.get("url") == c.EXT_EPISODE_NAME), None
    )
    icpc = None
    for diag in eoc.get("diagnosis", []):
        ref = (diag.get("condition") or {}).get("reference", "")
        if ref.startswith("Condition/"):
            row = conn.execute(
                text(_BY_ID), {"t": "Condition", "i": ref.split("/", 1)[1], "deleted": False}
            ).first()
            code = _load(row[0] if row else None).get("code", {})
            icpc = icpc or next(
                (x.get("code") for x in code.get("coding", []) if x.get("system") == c.ICPC), None
            )
            title = title or code.get("text")
    return EpisodeFact(id=eid, title=title or eid, icpc=icpc, active=eoc.get("status") == "active")


def practice_keys(conn: Connection, agb: str) -> tuple[str, ...]:
    """Every tenant key of the practice: ``agb:<AGB>`` and the keys (URA) of the Organization(s)
    carrying it.
    """
    t = idx_token.c
    orgs = (
        select(t.res_id)
        .where(t.res_type == "Organization", t.param == "identifier", t.code == agb)
        .where(t.system.in_([s for s, kind in tenancy.ORG_SYSTEMS.items() if kind == "agb"]))
    )
    rows = conn.execute(
        select(t.system, t.code).where(
            t.res_type == "Organization",
            t.param == "identifier",
            t.res_id.in_(orgs.scalar_subquery()),
            t.system.in_(list(tenancy.ORG_SYSTEMS)),
        )
    ).all()
    return tuple(sorted({f"agb:{agb}"} | {f"{tenancy.ORG_SYSTEMS[s]}:{code}" for s, code in rows}))


def facts_from_store(conn: Connection, item: PostboxItem) -> PatientFacts | None:
    """The facts for ``item``'s patient at ``item``'s practice; None when the item names no BSN."""
    if not item.patient.bsn:
        return None
    orgs = practice_keys(conn, item.practice_agb)
    rows = conn.execute(
        _PATIENTS_Q, {"system": c.BSN, "bsn": item.patient.bsn, "orgs": orgs, "deleted": False}
    ).all()
    if len(rows) != 1:
        return PatientFacts(candidates=len(rows))
    pid, body = rows[0]
    patient = _load(body)
    birth = patient.get("birthDate")
    try:
        birth_date = dt.date.fromisoformat(birth) if isinstance(birth, str) and len(birth) == 10 else None
    except ValueError:
        birth_date = None
    deceased = bool(patient.get("deceasedDateTime")) or patient.get("deceasedBoolean") is True
    moved = patient.get("active") is False or any(
        x.get("url") == c.EXT_DEREGISTERED for x in patient.get("extension", [])
    )
    episodes, refs = [], set()
    for rtype, rid, rbody in conn.execute(_ABOUT_Q, {"pid": pid, "orgs": orgs, "deleted": False}).all():
        res = _load(rbody)
        if rtype == "EpisodeOfCare":
            episodes.append(_episode(conn, res))
        else:
            refs.add(f"{rtype}/{rid}")  # the consult module names its Task or Communication (gateway/consult)
            refs.update(i["value"] for i in res.get("identifier", []) if isinstance(i.get("value"), str))
    return PatientFacts(
        candidates=1,
        birth_date=birth_date,
        deceased=deceased,
        deregistered=moved,
        sender_references=frozenset(refs),
        episodes=tuple(episodes),
    )

"""Tenancy: which organisations take part in a resource (issue 5; DOMAIN.md §1, §8).

An organisation is named by tenant keys ``ura:<URA>`` and ``agb:<AGB-Z>`` (a practice by AGB and/or URA,
a hospital by URA). A resource's participants are stored in ``participant`` when it is written:

- ``creator``: the organisation of the client that created it;
- ``content``: organisations the resource names in the elements its type lists in
  ``gateway/fhir/resources.py`` (``managingOrganization``, ``requester``, ``owner``, ``sender``,
  ``recipient`` ...): an Organization reference by identifier (URA/AGB system) or to a stored Organization
  (its identifiers), a PractitionerRole (its organisation) or a HealthcareService (its ``providedBy``);
  recomputed on every update;
- ``shared``: the participants a resource adds to the patient it is about, when its writer already takes
  part in that patient (a practice's ServiceRequest to a hospital lets the hospital read the patient; a
  stranger cannot gain a patient by writing about it);
- ``public`` (``*``): the directory (Organization, HealthcareService) is readable by every tenant.

Every read, search, ``_include``, ``_history`` and conditional operation filters on these rows in SQL;
a resource of another tenant answers 404.

What each participation allows is the permission model of ``docs/security.md``, kept here and nowhere
else (:data:`MAY`, :func:`sources_for`, :func:`check_sharing`); the store asks before every write:

- read (read, vread, search, ``_history``, ``_include``): any participation;
- update: ``creator`` or ``content`` (the organisations a resource names are parties to it);
- delete: ``creator`` (for a Patient also ``content``: its managing organisation);
- share onward (write a resource about a patient that names organisations not yet taking part in that
  patient): an owner of the *patient* only (``creator``/``content`` of the Patient); a participant through
  a consult or conversation (``shared``) may write about the patient to those already taking part;
- ``shared`` and ``public`` never write. A participant that may read but not write gets 403 (``AUTH-005``),
  a stranger 404 (as for an unknown id).
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, exists, insert, select

from gateway.fhir.index import parse_reference, walk
from gateway.fhir.resources import RESOURCES
from gateway.schema import idx_token, participant
from mappings.problems import GatewayError

PUBLIC = "*"
OWNER_SOURCES = ("creator", "content")
"""Participations that make an organisation an *owner* of a resource (docs/security.md); ``shared`` and
``public`` give read access only."""

MAY: dict[str, tuple[str, ...]] = {
    "read": ("creator", "content", "shared", "public"),
    "update": ("creator", "content"),
    "delete": ("creator",),
}
"""The participations (``participant.source``) that allow each kind of access (docs/security.md)."""


def sources_for(action: str, rtype: str) -> tuple[str, ...]:
    """The participations that allow ``action`` (read, update, delete) on a resource of ``rtype``."""
    if action == "delete" and rtype == "Patient":
        return ("creator", "content")  # the managing organisation owns its patient
    return MAY[action]


ORG_SYSTEMS = {
    "http://fhir.nl/fhir/NamingSystem/ura": "ura",
    "urn:oid:2.16.528.1.1007.3.3": "ura",
    "http://fhir.nl/fhir/NamingSystem/agb-z": "agb",
    "urn:oid:2.16.840.1.113883.2.4.6.1": "agb",
}


def identifier_keys(identifiers) -> set[str]:
    """Tenant keys of a list of Identifiers (URA and AGB ones)."""
    keys = set()
    for ident in identifiers if isinstance(identifiers, list) else [identifiers]:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            kind = ORG_SYSTEMS.get(ident.get("system") or "")
            if kind:
                keys.add(f"{kind}:{ident['value']}")
    return keys


def _stored_org_keys(conn: Connection, org_id: str) -> set[str]:
    rows = conn.execute(
        select(idx_token.c.system, idx_token.c.code).where(
            idx_token.c.res_type == "Organization",
            idx_token.c.res_id == org_id,
            idx_token.c.param == "identifier",
            idx_token.c.system.in_(list(ORG_SYSTEMS)),
        )
    )
    return {f"{ORG_SYSTEMS[s]}:{c}" for s, c in rows}


def _role_org_keys(conn: Connection, role_id: str, rtype: str = "PractitionerRole") -> set[str]:
    """The organisation of a PractitionerRole (or of a HealthcareService: its ``providedBy``)."""
    rows = conn.execute(
        select(participant.c.org).where(
            participant.c.res_type == rtype,
            participant.c.res_id == role_id,
            participant.c.source == "content",
        )
    )
    return {r[0] for r in rows}


def content_orgs(conn: Connection, resource: dict, base_url: str) -> set[str]:
    """The organisations a resource names in its participating elements (tenant keys)."""
    rdef = RESOURCES[resource["resourceType"]]
    keys: set[str] = set()
    for path in rdef.participants:
        if path == "$self":
            keys |= identifier_keys(resource.get("identifier") or [])
            continue
        for ref in walk(resource, path):
            if not isinstance(ref, dict):
                continue
            if isinstance(ref.get("identifier"), dict):
                keys |= identifier_keys(ref["identifier"])
            target = (
                parse_reference(ref["reference"], base_url) if isinstance(ref.get("reference"), str) else None
            )
            if target and target[0] == "Organization":
                keys |= _stored_org_keys(conn, target[1])
            elif target and target[0] == "PractitionerRole":
                keys |= _role_org_keys(conn, target[1])
            elif target and target[0] == "HealthcareService":  # a specialism: its hospital (issue 6)
                keys |= _role_org_keys(conn, target[1], "HealthcareService")
    return keys


def visible(
    res_type_col,
    res_id_col,
    orgs: tuple[str, ...],
    *,
    public: bool = True,
    sources: tuple[str, ...] | None = None,
):
    """SQL: the resource in these columns takes part with one of ``orgs`` (or is public, for reads);
    ``sources``: only through these participations (``MAY[...]``)."""
    conds = [
        participant.c.res_type == res_type_col,
        participant.c.res_id == res_id_col,
        participant.c.org.in_(orgs + ((PUBLIC,) if public else ())),
    ]
    if sources is not None:
        conds.append(participant.c.source.in_(sources))
    return exists().where(*conds)


def set_participants(
    conn: Connection, rtype: str, rid: str, *, creator: str | None, content: set[str], directory: bool
) -> None:
    """Write the participant rows of a resource just created or updated (content rows are replaced)."""
    conn.execute(
        delete(participant).where(
            participant.c.res_type == rtype, participant.c.res_id == rid, participant.c.source == "content"
        )
    )
    rows = [{"res_type": rtype, "res_id": rid, "org": org, "source": "content"} for org in sorted(content)]
    if creator:
        rows.append({"res_type": rtype, "res_id": rid, "org": creator, "source": "creator"})
        if directory:
            rows.append({"res_type": rtype, "res_id": rid, "org": PUBLIC, "source": "public"})
    if rows:
        conn.execute(insert(participant), rows)


class OnwardSharing(GatewayError):
    """A participant that is not the patient's owner named organisations new to the patient."""

    def __init__(self, patient_id: str, orgs: set[str]):
        super().__init__(patient_id)
        self.patient_id, self.orgs = patient_id, orgs


def share_with_patient(
    conn: Connection, patient_id: str, writer_orgs: tuple[str, ...], orgs: set[str]
) -> None:
    """Let ``orgs`` read a patient the writer owns (docs/security.md "share onward").

    A writer that takes part in the patient only through sharing (a consult, a conversation) may name
    organisations that already take part in it; naming a new one raises :class:`OnwardSharing`. A writer
    that does not take part in the patient at all shares nothing (a stranger cannot gain a patient by
    writing about it)."""
    if not orgs:
        return
    rows = conn.execute(
        select(participant.c.org, participant.c.source).where(
            and_(participant.c.res_type == "Patient", participant.c.res_id == patient_id)
        )
    ).all()
    mine = {src for org, src in rows if org in writer_orgs}
    if not mine:
        return
    taking_part = {org for org, _ in rows}
    if not mine & set(OWNER_SOURCES):
        new_orgs = orgs - taking_part
        if new_orgs:
            raise OnwardSharing(patient_id, new_orgs)
        return
    have = {org for org, src in rows if src == "shared"}
    new = [
        {"res_type": "Patient", "res_id": patient_id, "org": o, "source": "shared"}
        for o in sorted(orgs - have)
    ]
    if new:
        conn.execute(insert(participant), new)

"""The resource store: versions, history, search index and tenancy, over SQLAlchemy Core (FHIR R4 http.html).

Every method takes a connection inside an open transaction (the API's request transaction, which also
holds the audit record) and the caller's tenant keys. Rules kept here:

- ids are assigned by the server (UUIDs); ``PUT`` of an unknown id is 404, not an upsert, so an id
  held by another tenant cannot be told apart from one never used;
- every write bumps ``version`` with ``UPDATE ... WHERE version = <read>``: a concurrent writer loses
  with 409, a stale ``If-Match`` gets 412; history keeps every version (vread);
- conditional create (``If-None-Exist``) searches within the tenant, and otherwise claims
  ``conditional_key(type, tenant, sha256(criteria))`` under a savepoint before inserting: when parallel
  requests race, the primary key lets exactly one of them create and the others return its resource;
- search index rows and ``content`` participants are replaced on every write; a delete keeps the
  participants (a deleted resource of another tenant stays 404, one's own answers 410).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import Connection, delete, false, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway import rawsql, tenancy
from gateway.fhir import cursor
from gateway.fhir.index import index_rows, parse_reference, walk
from gateway.fhir.outcome import FhirError, not_found
from gateway.fhir.resources import RESOURCES
from gateway.fhir.search import SearchSpec, base_query, condition_for, split_values
from gateway.schema import (
    conditional_key,
    idx_date,
    idx_reference,
    idx_string,
    idx_token,
    participant,
    resource,
    resource_history,
)

INDEX_TABLES = (idx_token, idx_reference, idx_date, idx_string)
_READ = (
    "SELECT r.version, r.last_updated, r.deleted, r.body FROM resource r "
    "WHERE r.res_type = :t AND r.res_id = :i AND EXISTS (SELECT 1 FROM participant p "
    "WHERE p.res_type = r.res_type AND p.res_id = r.res_id AND p.org IN {orgs})"
)


def now_instant() -> tuple[str, str]:
    """(column value, FHIR instant) for "now" in UTC."""
    t = dt.datetime.now(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f"), t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource version as stored: enough for the response (body, ETag, Last-Modified, Location)."""

    rtype: str
    rid: str
    version: int
    last_updated: str
    body: bytes | None
    deleted: bool = False
    patients: tuple[str, ...] = ()

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass
class SearchResult:
    total: int | None
    matches: list[tuple[str, str, bytes]]  # (type, id, body)
    included: list[tuple[str, str, bytes]]
    patients: list[str]
    next_key: list | None = None
    """The sort key of the last match when more follow (for the ``next`` link's ``_cursor``)."""


def patient_refs(resource_dict: dict, base_url: str) -> tuple[str, ...]:
    """The ``Patient/<id>`` a resource is about (its type's patient elements; itself for a Patient)."""
    rtype = resource_dict.get("resourceType")
    rdef = RESOURCES.get(rtype) if isinstance(rtype, str) else None
    out: list[str] = []
    if rdef is None:
        return ()
    for path in rdef.patient_paths:
        if path == "$self":
            if resource_dict.get("id"):
                out.append(f"Patient/{resource_dict['id']}")
            continue
        for ref in walk(resource_dict, path):
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                target = parse_reference(ref["reference"], base_url)
                if target and target[0] == "Patient":
                    out.append(f"Patient/{target[1]}")
    return tuple(dict.fromkeys(out))


def patients_of_bodies(bodies, base_url: str) -> list[str]:
    """The ``Patient/<id>`` every serialised resource in ``bodies`` is about (None bodies skipped): what a
    history, ``_include`` or operation result returns, for its audit record."""
    out: dict[str, None] = {}
    for body in bodies:
        if not body:
            continue
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            out.update(dict.fromkeys(patient_refs(parsed, base_url)))
    return list(out)


def criteria_key(rtype: str, query: str) -> tuple[list[tuple[str, str]], str]:
    """Parse If-None-Exist criteria (``identifier=sys|val&...``); the normalised key's sha256."""
    from urllib.parse import parse_qsl

    q = query.split("?", 1)[1] if "?" in query else query
    try:
        items = parse_qsl(q, keep_blank_values=True, strict_parsing=True, max_num_fields=50)
    except ValueError:
        raise FhirError(
            400, "invalid", "API-034", "If-None-Exist is not a query string", "If-None-Exist"
        ) from None
    normal = sorted((k, ",".join(sorted(split_values(v)))) for k, v in items)
    digest = hashlib.sha256(f"{rtype}?{urlencode(normal)}".encode()).hexdigest()
    return items, digest


class Store:
    """Resource storage for one database (see the module docstring for the rules)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    # -- reading --------------------------------------------------------------------------------------

    def read(self, conn: Connection, orgs: tuple[str, ...], rtype: str, rid: str) -> Stored:
        """The current version of a resource the caller may see (404 otherwise; 410 when deleted)."""
        in_sql, params = rawsql.in_list("o", orgs + (tenancy.PUBLIC,))
        row = rawsql.execute(conn, _READ.format(orgs=in_sql), {"t": rtype, "i": rid, **params}).fetchone()
        if row is None:
            raise not_found(rtype, rid)
        version, last_updated, deleted, body = row
        if deleted:
            raise FhirError(
                410,
                "deleted",
                "API-012",
                f"{rtype}/{rid} was deleted",
                f"{rtype}/{rid}",
                headers={"ETag": f'W/"{version}"'},
            )
        return Stored(rtype, rid, version, last_updated, bytes(body))

    def vread(self, conn: Connection, orgs: tuple[str, ...], rtype: str, rid: str, vid: int) -> Stored:
        self._visible_or_404(conn, orgs, rtype, rid)
        h = resource_history
        row = conn.execute(
            select(h.c.version, h.c.last_updated, h.c.deleted, h.c.body).where(
                h.c.res_type == rtype, h.c.res_id == rid, h.c.version == vid
            )
        ).first()
        if row is None:
            raise FhirError(
                404,
                "not-found",
                "API-013",
                f"{rtype}/{rid} has no version {vid}",
                f"{rtype}/{rid}/_history/{vid}",
            )
        if row.deleted:
            raise FhirError(
                410,
                "deleted",
                "API-012",
                f"version {vid} of {rtype}/{rid} is a deletion",
                f"{rtype}/{rid}/_history/{vid}",
            )
        return Stored(rtype, rid, row.version, row.last_updated, row.body)

    def _visible_or_404(
        self,
        conn: Connection,
        orgs: tuple[str, ...],
        rtype: str,
        rid: str,
        *,
        write: bool = False,
        lock: bool = False,
        action: str = "update",
    ):
        """The resource's row if the caller may read it (``write``: may ``action`` it, per
        :func:`gateway.tenancy.sources_for`); 404 for a stranger, 403 for a reader that may not write."""
        r = resource
        stmt = select(r.c.version, r.c.deleted, r.c.creator_org).where(
            r.c.res_type == rtype,
            r.c.res_id == rid,
            tenancy.visible(
                r.c.res_type, r.c.res_id, orgs, public=False, sources=tenancy.sources_for(action, rtype)
            )
            if write
            else tenancy.visible(r.c.res_type, r.c.res_id, orgs),
        )
        if lock:
            stmt = stmt.with_for_update(of=r)
        row = conn.execute(stmt).first()
        if row is None:
            if write:
                self._why_not_writable(conn, orgs, rtype, rid, action)
            raise not_found(rtype, rid)
        return row

    def _why_not_writable(
        self, conn: Connection, orgs: tuple[str, ...], rtype: str, rid: str, action: str
    ) -> None:
        """403 for a caller that may read the resource but not ``action`` it; returns for a stranger."""
        p = participant
        sources = {
            row[0]
            for row in conn.execute(
                select(p.c.source).where(
                    p.c.res_type == rtype, p.c.res_id == rid, p.c.org.in_(orgs + (tenancy.PUBLIC,))
                )
            )
        }
        if not sources:
            return
        if sources == {"public"}:
            raise FhirError(
                403,
                "forbidden",
                "AUTH-004",
                f"{rtype}/{rid} is in the public directory; only "
                "the organisations taking part in it may change it",
                f"{rtype}/{rid}",
            )
        why = (
            "it was shared with your organisation for reading"
            if not sources & set(tenancy.OWNER_SOURCES)
            else "only the organisation that created it may delete it"
        )
        raise FhirError(
            403,
            "forbidden",
            "AUTH-005",
            f"{rtype}/{rid} may not be {'deleted' if action == 'delete' else 'changed'} by your"
            f" organisation: {why} (docs/security.md)",
            f"{rtype}/{rid}",
        )

    def history(
        self,
        conn: Connection,
        orgs: tuple[str, ...],
        rtype: str,
        rid: str | None,
        *,
        count: int,
        offset: int,
        since: str | None,
    ) -> tuple[int, Sequence[Any]]:
        """Versions newest first (one resource, or every visible resource of a type)."""
        h = resource_history
        conds = [h.c.res_type == rtype]
        if rid is not None:
            self._visible_or_404(conn, orgs, rtype, rid)
            conds.append(h.c.res_id == rid)
        else:
            conds.append(tenancy.visible(h.c.res_type, h.c.res_id, orgs))
        if since:
            conds.append(h.c.last_updated >= since)
        total = conn.execute(select(func.count()).select_from(h).where(*conds)).scalar_one()
        rows = conn.execute(
            select(h.c.res_id, h.c.version, h.c.last_updated, h.c.method, h.c.deleted, h.c.body)
            .where(*conds)
            .order_by(h.c.last_updated.desc(), h.c.res_id, h.c.version.desc())
            .limit(count)
            .offset(offset)
        ).all()
        return total, rows

    def search(self, conn: Connection, orgs: tuple[str, ...], spec: SearchSpec) -> SearchResult:
        r = resource
        ids = base_query(spec.rtype, orgs, spec.conditions)
        total = None
        if spec.total or spec.count == 0:
            total = conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one()
        matches: list[tuple[str, str, bytes]] = []
        next_key: list | None = None
        if spec.count:
            keys = [expr.label(f"k{i}") for i, (expr, _desc) in enumerate(spec.keys)]
            conds = list(spec.conditions)
            if spec.cursor is not None:
                conds.append(cursor.after(spec.keys, spec.cursor))
            stmt = (
                select(r.c.res_id, r.c.body, *keys)
                .where(
                    r.c.res_type == spec.rtype,
                    r.c.deleted == false(),
                    tenancy.visible(r.c.res_type, r.c.res_id, orgs),
                    *conds,
                )
                .order_by(*[expr.desc() if desc else expr.asc() for expr, desc in spec.keys])
                .limit(spec.count + 1)
            )
            if spec.cursor is None and spec.offset:
                stmt = stmt.offset(spec.offset)
            rows = conn.execute(stmt).all()
            if len(rows) > spec.count:
                rows = rows[: spec.count]
                next_key = list(rows[-1][2:])
            matches = [(spec.rtype, row.res_id, row.body) for row in rows]
        page_ids = [m[1] for m in matches]
        included = self._includes(conn, orgs, spec, page_ids) if page_ids else []
        patients = self._patients_of(conn, spec.rtype, page_ids)
        patients += patients_of_bodies((i[2] for i in included), self.base_url)
        return SearchResult(total, matches, included, list(dict.fromkeys(patients)), next_key)

    def _patients_of(self, conn: Connection, rtype: str, ids: list[str]) -> list[str]:
        if not ids:
            return []
        if rtype == "Patient":
            return [f"Patient/{i}" for i in ids]
        ref = idx_reference
        rows = conn.execute(
            select(ref.c.target_id)
            .where(
                ref.c.res_type == rtype,
                ref.c.res_id.in_(ids),
                ref.c.param.in_(("patient", "subject")),
                ref.c.target_type == "Patient",
            )
            .distinct()
        )
        return sorted(f"Patient/{row[0]}" for row in rows)

    def _includes(self, conn: Connection, orgs: tuple[str, ...], spec: SearchSpec, page_ids: list[str]):
        r, ref = resource, idx_reference
        wanted: set[tuple[str, str]] = set()
        for pname, target in spec.includes:
            conds = [ref.c.res_type == spec.rtype, ref.c.param == pname, ref.c.res_id.in_(page_ids)]
            if target:
                conds.append(ref.c.target_type == target)
            wanted |= {
                (t, i) for t, i in conn.execute(select(ref.c.target_type, ref.c.target_id).where(*conds))
            }
        out: dict[tuple[str, str], bytes] = {}
        by_type: dict[str, set[str]] = {}
        for t, i in wanted:
            by_type.setdefault(t, set()).add(i)
        for t, id_set in sorted(by_type.items()):
            for row in conn.execute(
                select(r.c.res_id, r.c.body).where(
                    r.c.res_type == t,
                    r.c.res_id.in_(sorted(id_set)),
                    r.c.deleted == false(),
                    tenancy.visible(r.c.res_type, r.c.res_id, orgs),
                )
            ):
                out[(t, row.res_id)] = row.body
        for src_type, pname, _target in spec.revincludes:
            src = select(ref.c.res_id).where(
                ref.c.res_type == src_type,
                ref.c.param == pname,
                ref.c.target_type == spec.rtype,
                ref.c.target_id.in_(page_ids),
            )
            for row in conn.execute(
                select(r.c.res_id, r.c.body)
                .where(
                    r.c.res_type == src_type,
                    r.c.res_id.in_(src),
                    r.c.deleted == false(),
                    tenancy.visible(r.c.res_type, r.c.res_id, orgs),
                )
                .order_by(r.c.res_id)
                .limit(1000)
            ):
                out[(src_type, row.res_id)] = row.body
        matched = {(spec.rtype, i) for i in page_ids}
        return [(t, i, b) for (t, i), b in out.items() if (t, i) not in matched]

    def match(
        self,
        conn: Connection,
        orgs: tuple[str, ...],
        rtype: str,
        items: list[tuple[str, str]],
        *,
        write: bool = False,
        limit: int = 2,
    ) -> list[str]:
        """Ids of visible (writable) current resources meeting conditional criteria (at most ``limit``)."""
        conds = condition_for(rtype, items, orgs=orgs, base_url=self.base_url)
        r = resource
        stmt = select(r.c.res_id).where(
            r.c.res_type == rtype,
            r.c.deleted == false(),
            tenancy.visible(r.c.res_type, r.c.res_id, orgs, public=not write),
            *conds,
        )
        return [row[0] for row in conn.execute(stmt.order_by(r.c.res_id).limit(limit))]

    # -- writing --------------------------------------------------------------------------------------

    def _finish(self, body: dict, rid: str, version: int, instant: str) -> bytes:
        """Set id and meta (server-owned); serialise with resourceType, id and meta first."""
        meta = dict(body.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = instant
        rest = [(k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta")]
        rtype = body["resourceType"]
        body.clear()
        body.update({"resourceType": rtype, "id": rid, "meta": meta})
        body.update(rest)
        return orjson.dumps(body)

    def _index(self, conn: Connection, body: dict, rtype: str, rid: str) -> None:
        rows = index_rows(body, self.base_url)
        key = {"res_type": rtype, "res_id": rid}
        if rows.token:
            conn.execute(
                insert(idx_token), [{**key, "param": p, "system": s, "code": c} for p, s, c in rows.token]
            )
        if rows.reference:
            conn.execute(
                insert(idx_reference),
                [{**key, "param": p, "target_type": t, "target_id": i} for p, t, i in rows.reference],
            )
        if rows.date:
            conn.execute(
                insert(idx_date), [{**key, "param": p, "lo": lo, "hi": hi} for p, lo, hi in rows.date]
            )
        if rows.string:
            conn.execute(
                insert(idx_string), [{**key, "param": p, "folded": f, "exact": e} for p, f, e in rows.string]
            )

    def _unindex(self, conn: Connection, rtype: str, rid: str) -> None:
        for table in INDEX_TABLES:
            conn.execute(delete(table).where(table.c.res_type == rtype, table.c.res_id == rid))

    def _participate(
        self, conn: Connection, body: dict, rtype: str, rid: str, creator: str | None, orgs: tuple[str, ...]
    ) -> None:
        content = tenancy.content_orgs(conn, body, self.base_url)
        tenancy.set_participants(
            conn, rtype, rid, creator=creator, content=content, directory=RESOURCES[rtype].directory
        )
        if rtype != "Patient" and content:
            for ref in patient_refs(body, self.base_url):
                try:
                    tenancy.share_with_patient(conn, ref.split("/", 1)[1], orgs, content)
                except tenancy.OnwardSharing as exc:
                    raise FhirError(
                        403,
                        "forbidden",
                        "AUTH-006",
                        f"{ref} was shared with your organisation; only its owner may share it with "
                        f"{len(exc.orgs)} organisation(s) not yet taking part in it (docs/security.md)",
                        f"{rtype}",
                    ) from None

    def create(
        self,
        conn: Connection,
        orgs: tuple[str, ...],
        body: dict,
        *,
        if_none_exist: str | None = None,
        rid: str | None = None,
    ) -> tuple[Stored, bool]:
        """Create a resource; returns (stored, created); with ``if_none_exist`` an existing match instead."""
        rtype = body["resourceType"]
        if if_none_exist is not None:
            items, digest = criteria_key(rtype, if_none_exist)
            existing = self._conditional_existing(conn, orgs, rtype, items)
            if existing is not None:
                return existing, False
        rid = rid or str(uuid.uuid4())
        if if_none_exist is not None:
            claimed = self._claim(conn, orgs, rtype, digest, rid)
            if claimed is not None:
                return claimed, False
        column, instant = now_instant()
        data = self._finish(body, rid, 1, instant)
        conn.execute(
            insert(resource).values(
                res_type=rtype,
                res_id=rid,
                version=1,
                last_updated=column,
                deleted=False,
                creator_org=orgs[0],
                body=data,
            )
        )
        conn.execute(
            insert(resource_history).values(
                res_type=rtype,
                res_id=rid,
                version=1,
                last_updated=column,
                method="POST",
                deleted=False,
                body=data,
            )
        )
        self._index(conn, body, rtype, rid)
        self._participate(conn, body, rtype, rid, orgs[0], orgs)
        return Stored(rtype, rid, 1, column, data, patients=patient_refs(body, self.base_url)), True

    def _conditional_existing(
        self, conn: Connection, orgs: tuple[str, ...], rtype: str, items: list[tuple[str, str]]
    ) -> Stored | None:
        found = self.match(conn, orgs, rtype, items)
        if len(found) > 1:
            raise FhirError(
                412, "duplicate", "API-032", "If-None-Exist matches more than one resource", "If-None-Exist"
            )
        if found:
            return self.read(conn, orgs, rtype, found[0])
        return None

    def _claim(
        self, conn: Connection, orgs: tuple[str, ...], rtype: str, digest: str, rid: str
    ) -> Stored | None:
        """Insert the conditional key; on a race lost, the winner's resource (None: the key is ours)."""
        for _ in range(3):
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(conditional_key).values(
                            res_type=rtype, org=orgs[0], criteria=digest, res_id=rid
                        )
                    )
                return None
            except IntegrityError:
                ck = conditional_key
                holder = conn.execute(
                    select(ck.c.res_id).where(
                        ck.c.res_type == rtype, ck.c.org == orgs[0], ck.c.criteria == digest
                    )
                ).scalar()
                if holder is not None:
                    try:
                        return self.read(conn, orgs, rtype, holder)
                    except FhirError:
                        # the resource the key names is gone: the key is stale, take it over
                        conn.execute(
                            delete(ck).where(
                                ck.c.res_type == rtype, ck.c.org == orgs[0], ck.c.criteria == digest
                            )
                        )
        raise FhirError(
            409, "conflict", "API-031", "conditional create kept conflicting; try again", "If-None-Exist"
        )

    def update(
        self,
        conn: Connection,
        orgs: tuple[str, ...],
        rtype: str,
        rid: str,
        body: dict,
        *,
        if_match: int | None = None,
    ) -> Stored:
        """Store a new version of an existing resource the caller takes part in."""
        current = self._visible_or_404(conn, orgs, rtype, rid, write=True, lock=True)
        if if_match is not None and if_match != current.version:
            raise FhirError(
                412,
                "conflict",
                "API-030",
                f'If-Match W/"{if_match}" does not match the current version {current.version}',
                "If-Match",
                headers={"ETag": f'W/"{current.version}"'},
            )
        column, instant = now_instant()
        data = self._finish(body, rid, current.version + 1, instant)
        version = self._write_version(conn, rtype, rid, current.version, column, data, "PUT")
        self._unindex(conn, rtype, rid)
        self._index(conn, body, rtype, rid)
        self._participate(conn, body, rtype, rid, None, orgs)
        conn.execute(
            delete(conditional_key).where(
                conditional_key.c.res_type == rtype, conditional_key.c.res_id == rid
            )
        )
        return Stored(rtype, rid, version, column, data, patients=patient_refs(body, self.base_url))

    def _write_version(
        self, conn: Connection, rtype: str, rid: str, read: int, column: str, data: bytes | None, method: str
    ) -> int:
        """Write version ``read + 1`` (``data`` None: deleted) if nobody wrote since ``read``, and its history
        row.
        """
        version = read + 1
        done = conn.execute(
            update(resource)
            .where(resource.c.res_type == rtype, resource.c.res_id == rid, resource.c.version == read)
            .values(version=version, last_updated=column, deleted=data is None, body=data)
        )
        if done.rowcount != 1:
            raise FhirError(
                409,
                "conflict",
                "API-031",
                f"{rtype}/{rid} was changed at the same time; try again",
                f"{rtype}/{rid}",
            )
        conn.execute(
            insert(resource_history).values(
                res_type=rtype,
                res_id=rid,
                version=version,
                last_updated=column,
                method=method,
                deleted=data is None,
                body=data,
            )
        )
        return version

    def delete(self, conn: Connection, orgs: tuple[str, ...], rtype: str, rid: str) -> Stored:
        """Delete (a new, empty version); deleting what is already deleted changes nothing."""
        current = self._visible_or_404(conn, orgs, rtype, rid, write=True, lock=True, action="delete")
        old = conn.execute(
            select(resource.c.body).where(resource.c.res_type == rtype, resource.c.res_id == rid)
        ).scalar()
        patients = patient_refs(orjson.loads(old), self.base_url) if old else ()
        if current.deleted:
            return Stored(rtype, rid, current.version, "", None, deleted=True)
        column, _ = now_instant()
        version = self._write_version(conn, rtype, rid, current.version, column, None, "DELETE")
        self._unindex(conn, rtype, rid)
        conn.execute(
            delete(conditional_key).where(
                conditional_key.c.res_type == rtype, conditional_key.c.res_id == rid
            )
        )
        return Stored(rtype, rid, version, column, None, deleted=True, patients=patients)

    def participants(self, conn: Connection, rtype: str, rid: str) -> set[str]:
        """The tenant keys taking part in a resource (tests and administration)."""
        return {
            row[0]
            for row in conn.execute(
                select(participant.c.org).where(participant.c.res_type == rtype, participant.c.res_id == rid)
            )
        }

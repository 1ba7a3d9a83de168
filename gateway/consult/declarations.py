"""Quarterly declaration of consults closed with a declaration (DOMAIN.md §2 "Quarterly batch").

At the start of each quarter the care group declares to each insurer (UZOVI) every consult closed with a
declaration in the previous quarter, for the specialist and for the GP (the two ChargeItems the close
made). ``hisgw declarations --quarter 2026Q3`` and ``POST /ChargeItem/$declarations`` do it:

- a quarter is declared only once it is over (Europe/Amsterdam; ``CON-040`` otherwise): while it runs,
  more consults may close in it;
- the first run of a quarter *seals* it: ``declaration_batch`` gets the quarter and ``consult_declaration``
  one row per consult, whose primary key is the consult: **no consult is ever declared in two quarters**;
  every later run of that quarter returns exactly the sealed set (idempotent, also under concurrent
  runs: the batch row's primary key decides);
- a consult closed in an earlier quarter after that quarter was sealed (a late close, a clock off) is not
  lost: the next quarter's batch takes it;
- output per insurer: CSV (one line per ChargeItem) and a FHIR ``Bundle`` of type ``collection`` with the
  ChargeItems; totals per insurer are the sums of the ChargeItems' ``priceOverride``. Over the API the
  caller gets the ChargeItems it takes part in (tenancy); the CLI, which has the database, gets all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, false, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.consult.calendar import (
    AMSTERDAM,
    column,
    fhir_instant,
    from_column,
    quarter_bounds,
    quarter_of,
)
from gateway.consult.resources import INSURER_EXTENSION, NO_DEDUCTIBLE_EXTENSION
from gateway.consult.schema import consult, consult_declaration, declaration_batch
from gateway.fhir.outcome import FhirError
from gateway.schema import resource

CSV_COLUMNS = (
    "quarter",
    "uzovi",
    "consult",
    "charge_item",
    "party",
    "performer",
    "tariff",
    "amount_eur",
    "closed",
    "deductible",
)
"""``deductible`` is ``no`` for a claim marked not to count towards the patient's eigen risico (every
digital consult, :data:`~gateway.consult.resources.NO_DEDUCTIBLE_EXTENSION`), else ``yes``."""


@dataclass
class InsurerBatch:
    """The ChargeItems declared to one insurer in one quarter."""

    uzovi: str
    charge_items: list[dict] = field(default_factory=list)

    @property
    def consults(self) -> int:
        return len({_task_of(c) for c in self.charge_items})

    @property
    def total(self) -> Decimal:
        return sum((Decimal(str(c["priceOverride"]["value"])) for c in self.charge_items), Decimal("0"))


@dataclass
class Declaration:
    """A quarter's declaration: when it was sealed, its consults, per insurer the ChargeItems."""

    quarter: str
    run_at: dt.datetime
    consult_ids: list[str]
    insurers: dict[str, InsurerBatch]
    patients: list[str]


def _no_deductible(charge: dict) -> bool:
    return any(
        x.get("url") == NO_DEDUCTIBLE_EXTENSION and x.get("valueBoolean") is True
        for x in charge.get("extension", [])
    )


def _task_of(charge: dict) -> str:
    return charge["supportingInformation"][0]["reference"].split("/", 1)[1]


def _uzovi_of(charge: dict) -> str:
    for ext in charge.get("extension", []):
        if ext.get("url") == INSURER_EXTENSION:
            return ext["valueIdentifier"]["value"]
    return "0000"


def parse_quarter(quarter: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of ``YYYYQn`` in UTC; 400 ``CON-041`` for anything else."""
    try:
        return quarter_bounds(quarter)
    except ValueError as exc:
        raise FhirError(400, "invalid", "CON-041", str(exc), "quarter") from None


def seal(
    conn: Connection, quarter: str, now: dt.datetime, tz: ZoneInfo = AMSTERDAM
) -> tuple[dt.datetime, list[str]]:
    """Seal ``quarter`` on its first run; return (when it was sealed, the consult ids it declares)."""
    start, end = parse_quarter(quarter)
    if end > now:
        raise FhirError(
            409,
            "business-rule",
            "CON-040",
            f"{quarter} is not over yet (it ends {end.astimezone(tz):%Y-%m-%d %H:%M} Amsterdam time); "
            "a quarter is declared at the start of the next one",
            "quarter",
        )
    existing = conn.execute(select(declaration_batch).where(declaration_batch.c.quarter == quarter)).first()
    if existing is None:
        try:
            with conn.begin_nested():
                _seal_new(conn, quarter, start, end, now)
        except IntegrityError:  # another run sealed it at the same moment: take theirs
            pass
        existing = conn.execute(
            select(declaration_batch).where(declaration_batch.c.quarter == quarter)
        ).first()
        assert existing is not None
    ids = [
        r[0]
        for r in conn.execute(
            select(consult_declaration.c.consult_id)
            .where(consult_declaration.c.quarter == quarter)
            .order_by(consult_declaration.c.consult_id)
        )
    ]
    return from_column(existing.run_at), ids


def _seal_new(conn: Connection, quarter: str, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> None:
    sealed = {r[0] for r in conn.execute(select(declaration_batch.c.quarter))}
    declared = select(consult_declaration.c.consult_id)
    rows = conn.execute(
        select(consult.c.id, consult.c.closed_at).where(
            consult.c.state == "closed-declared",
            consult.c.closed_at < column(end),
            consult.c.id.not_in(declared),
        )
    ).all()
    chosen = [
        r.id
        for r in rows
        if r.closed_at >= column(start) or quarter_of(from_column(r.closed_at)) in sealed  # late ones
    ]
    conn.execute(insert(declaration_batch).values(quarter=quarter, run_at=column(now), consults=len(chosen)))
    if chosen:
        conn.execute(
            insert(consult_declaration),
            [{"consult_id": c, "quarter": quarter, "declared_at": column(now)} for c in chosen],
        )


def declare(conn: Connection, quarter: str, now: dt.datetime, *, reader=None) -> Declaration:
    """The quarter's declaration (sealing it on the first run). ``reader(conn, charge_item_id)`` returns
    a ChargeItem the caller may see, or None (default: every one: the CLI)."""
    run_at, ids = seal(conn, quarter, now)
    insurers: dict[str, InsurerBatch] = {}
    patients: set[str] = set()
    for tid in ids:
        for party_name in ("specialist", "gp"):
            rid = f"{tid}-{party_name}"
            charge = reader(conn, rid) if reader else _raw_charge(conn, rid)
            if charge is None:
                continue
            insurers.setdefault(_uzovi_of(charge), InsurerBatch(_uzovi_of(charge))).charge_items.append(
                charge
            )
            patients.add(charge["subject"]["reference"])
    return Declaration(quarter, run_at, ids, dict(sorted(insurers.items())), sorted(patients))


def _raw_charge(conn: Connection, rid: str) -> dict | None:
    body = conn.execute(
        select(resource.c.body).where(
            resource.c.res_type == "ChargeItem", resource.c.res_id == rid, resource.c.deleted == false()
        )
    ).scalar()
    return orjson.loads(body) if body else None


def to_csv(quarter: str, batch: InsurerBatch, tz: ZoneInfo = AMSTERDAM) -> str:
    """One insurer's declaration as CSV (:data:`CSV_COLUMNS`, one line per ChargeItem)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in batch.charge_items:
        performer = c["performingOrganization"]["identifier"]
        closed = dt.datetime.fromisoformat(c["occurrenceDateTime"].replace("Z", "+00:00")).astimezone(tz)
        writer.writerow(
            (
                quarter,
                batch.uzovi,
                _task_of(c),
                c["id"],
                c["identifier"][0]["value"].rsplit("-", 1)[1],
                f"{'URA' if performer['system'].endswith('/ura') else 'AGB'} {performer['value']}",
                c["code"]["coding"][0]["code"],
                f"{Decimal(str(c['priceOverride']['value'])):.2f}",
                closed.date().isoformat(),
                "no" if _no_deductible(c) else "yes",
            )
        )
    return out.getvalue()


def to_bundle(quarter: str, run_at: dt.datetime, batch: InsurerBatch, base: str) -> dict:
    """One insurer's declaration as a FHIR ``collection`` Bundle (timestamp: when the quarter was sealed)."""
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:his-gateway:declaration", "value": f"{quarter}-{batch.uzovi}"},
        "type": "collection",
        "timestamp": fhir_instant(run_at),
        "total": len(batch.charge_items),
        "entry": [{"fullUrl": f"{base}/ChargeItem/{c['id']}", "resource": c} for c in batch.charge_items],
    }


def operation(conn: Connection, ctx, env, params) -> object:
    """``POST /ChargeItem/$declarations`` (parameter ``quarter``): Parameters with one ``insurer`` part per
    UZOVI (``uzovi``, ``consults``, ``total``, ``csv``, ``bundle``)."""
    from gateway.api import interactions as ix

    quarter = params.get("quarter", required=True)

    def reader(c: Connection, rid: str) -> dict | None:
        try:
            return orjson.loads(ctx.store.read(c, ctx.orgs, "ChargeItem", rid).body or b"{}")
        except FhirError:
            return None

    decl = declare(conn, quarter, env.clock.now(), reader=reader)
    parts = [{"name": "quarter", "valueString": quarter}]
    for uzovi, batch in decl.insurers.items():
        parts.append(
            {
                "name": "insurer",
                "part": [
                    {
                        "name": "uzovi",
                        "valueIdentifier": {
                            "system": "http://fhir.nl/fhir/NamingSystem/uzovi",
                            "value": uzovi,
                        },
                    },
                    {"name": "consults", "valueInteger": batch.consults},
                    {"name": "total", "valueMoney": {"value": float(batch.total), "currency": "EUR"}},
                    {"name": "csv", "valueString": to_csv(quarter, batch, env.config.timezone)},
                    {"name": "bundle", "resource": to_bundle(quarter, decl.run_at, batch, ctx.base)},
                ],
            }
        )
    body = {"resourceType": "Parameters", "parameter": parts}
    entities = [f"ChargeItem/{c['id']}" for b in decl.insurers.values() for c in b.charge_items]
    return ix.Result(200, orjson.dumps(body), {}, "E", "operation", entities or ["ChargeItem"], decl.patients)


__all__ = ["declare", "seal", "to_csv", "to_bundle", "operation"]

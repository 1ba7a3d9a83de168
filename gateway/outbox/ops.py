"""Operating the outbox: list, requeue dead items, purge delivered ones (``hisgw outbox ...``, the API).

Listing never shows content (the letter, the BSN): id, practice, source, kind, state, attempts, times,
channel, filing (``auto``/``manual``) and the last error. Requeue and purge are audited.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, func, select

from gateway import audit
from gateway.outbox.schema import STATES, outbox_item

OPERATOR_SYSTEM = "urn:his-gateway:operator"
UNKNOWN_ITEM = "OUT-020"
NOT_DEAD = "OUT-021"


@dataclass(frozen=True)
class ItemState:
    id: str
    practice: str
    source: str
    kind: str
    state: str
    attempts: int
    created: str
    due: str | None
    delivered: str | None
    channel: str | None
    filing: str | None
    error_class: str | None
    last_error: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


_COLS = (
    outbox_item.c.id,
    outbox_item.c.practice,
    outbox_item.c.source,
    outbox_item.c.kind,
    outbox_item.c.state,
    outbox_item.c.attempts,
    outbox_item.c.created_ms,
    outbox_item.c.due_ms,
    outbox_item.c.delivered_ms,
    outbox_item.c.channel,
    outbox_item.c.filing,
    outbox_item.c.error_class,
    outbox_item.c.last_error,
)


def _state(r) -> ItemState:
    return ItemState(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        _iso(r[6]),  # type: ignore[arg-type]
        _iso(r[7]) if r[4] in ("queued", "retrying") else None,
        _iso(r[8]),
        r[9],
        r[10],
        r[11],
        r[12],
    )


def list_items(
    engine: Engine,
    *,
    state: str | None = None,
    practice: str | None = None,
    ids: list[str] | None = None,
    limit: int = 100,
    after_seq: int = 0,
) -> list[ItemState]:
    if state is not None and state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    q = select(*_COLS).where(outbox_item.c.seq > after_seq).order_by(outbox_item.c.seq).limit(limit)
    if state:
        q = q.where(outbox_item.c.state == state)
    if practice:
        q = q.where(outbox_item.c.practice == practice)
    if ids:
        q = q.where(outbox_item.c.id.in_(ids))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        conn.rollback()
    return [_state(r) for r in rows]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_item.c.state, func.count()).group_by(outbox_item.c.state)).all()
        conn.rollback()
    return {s: 0 for s in STATES} | {s: n for s, n in rows}


def _operator(who: str, practice: str) -> audit.Agent:
    return audit.Agent(OPERATOR_SYSTEM, who, who, f"agb:{practice}")


def requeue(engine: Engine, ids: list[str], *, who: str = "hisgw outbox retry") -> list[str]:
    """Dead items back to ``queued`` with their attempts reset (same id: the postbox still drops repeats).

    Returns one problem line per id that is unknown (``OUT-020``) or not dead (``OUT-021``)."""
    problems = []
    now = int(time.time() * 1000)
    with engine.begin() as conn:
        for iid in ids:
            row = conn.execute(
                select(outbox_item.c.state, outbox_item.c.practice).where(outbox_item.c.id == iid)
            ).first()
            if row is None:
                problems.append(f"error {UNKNOWN_ITEM} {iid}: no outbox item with this id")
                continue
            if row[0] != "dead":
                problems.append(f"error {NOT_DEAD} {iid}: the item is {row[0]}, only dead items are requeued")
                continue
            conn.execute(
                outbox_item.update()
                .where(outbox_item.c.id == iid)
                .values(state="queued", attempts=0, due_ms=now, error_class=None, last_error=None)
            )
            audit.record(
                conn,
                who=_operator(who, row[1]),
                action="U",
                subtype="postbox-delivery",
                outcome_desc=f"requeued {iid}",
                entities=[f"OutboxItem/{iid}"],
            )
    return problems


def purge(engine: Engine, older_than_seconds: float, *, who: str = "hisgw outbox purge") -> int:
    """Remove delivered items confirmed more than ``older_than_seconds`` ago (their content is already gone);
    the audit log keeps every delivery. Returns how many rows went."""
    cutoff = int((time.time() - older_than_seconds) * 1000)
    cond = (outbox_item.c.state == "delivered") & (outbox_item.c.delivered_ms < cutoff)
    with engine.begin() as conn:
        per = conn.execute(
            select(outbox_item.c.practice, func.count()).where(cond).group_by(outbox_item.c.practice)
        ).all()
        n = conn.execute(outbox_item.delete().where(cond)).rowcount
        for practice, k in per:
            audit.record(
                conn,
                who=_operator(who, practice),
                action="D",
                subtype="postbox-delivery",
                outcome_desc=f"purged {k} delivered item(s)",
            )
    return n

"""The delivery worker: claims outbox items, sends them through the practice's channel, records the outcome
(``docs/postbox-delivery.md`` §2).

One *lane* (a thread with its own channel connection) per routed practice: a practice whose postbox is
down waits in its own lane and never slows another (the per-practice concurrency limit is one lane per
worker process). A lane step is three short steps:

1. **claim** (one transaction): the oldest due items of the practice that are the *head* of their
   patient's queue -- no earlier item of the same practice and patient is ``queued``, ``retrying`` or
   ``sending`` -- are set to ``sending`` with a lease (owner, expiry) and their attempt count raised.
   PostgreSQL: ``SELECT ... FOR UPDATE OF o SKIP LOCKED``, so workers in any number of processes never
   claim the same row; SQLite: the transaction holds the database's single write lock
   (``BEGIN IMMEDIATE``), which serialises claims the same way. A ``sending`` item whose lease ran out
   (its worker died) is claimable again and goes out with the same message id.
2. **send** (no transaction open): the batch through the channel, one outcome per item.
3. **record** (one transaction): delivered (content pruned), retrying (next due time from tenacity's
   exponential backoff with jitter), or dead; only rows this worker still holds are changed, and each
   outcome is written to the audit log (``postbox-delivery``).

A kill between 2 and 3 leaves the item ``sending``; after the lease it is sent again with the same id and
the postbox drops the repeat: at-least-once sending, exactly-once filing.

Fault injection for the kill tests: ``HISGW_OUTBOX_FAULTS="after-send=0.1,after-claim=0.05"`` makes the
process ``os._exit(99)`` at that point with that probability per batch.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from tenacity import RetryCallState, wait_exponential_jitter

from gateway import audit
from gateway.outbox.channels import Channel, Outcome, open_channel
from gateway.outbox.config import NO_ROUTE, Route, Routing
from gateway.outbox.schema import outbox_item
from mappings.model import PostboxItem, postbox_from_json, to_json

if TYPE_CHECKING:
    from gateway.outbox.filing import PatientFacts

log = logging.getLogger("hisgw.outbox")

ACTIVE = ("queued", "retrying", "sending")
"""States that hold the next items of the same patient back. ``delivered`` and ``dead`` do not: a dead
item never blocks the patient's later items (issue 7 acceptance 4); requeued, it goes out after them."""

DEAD_PERMANENT = "OUT-010"
DEAD_ATTEMPTS = "OUT-011"
DEAD_CONTENT = "OUT-012"
OUTBOX_AGENT_SYSTEM = "urn:his-gateway:outbox-worker"

_CLAIM = """
SELECT o.seq, o.id, o.attempts, o.filing, o.body, o.created_ms FROM outbox_item o
WHERE o.practice = :practice AND o.state IN ('queued', 'retrying', 'sending')
  AND ((o.state IN ('queued', 'retrying') AND o.due_ms <= :now)
       OR (o.state = 'sending' AND o.lease_until_ms < :now))
  AND NOT EXISTS (
      SELECT 1 FROM outbox_item e
      WHERE e.practice = o.practice AND e.patient_key = o.patient_key AND e.seq < o.seq
        AND e.state IN ('queued', 'retrying', 'sending'))
ORDER BY o.seq
LIMIT :limit"""


def now_ms() -> int:
    return int(time.time() * 1000)


def backoff_seconds(route: Route, attempts: int) -> float:
    """The wait before attempt ``attempts + 1``: tenacity's exponential backoff with jitter, capped.

    The schedule is stored as the item's due time (not slept in memory), so it survives restarts."""
    wait = wait_exponential_jitter(
        multiplier=route.backoff_initial, max=route.backoff_max, jitter=route.backoff_initial
    )
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempts)
    return min(float(wait(state)), route.backoff_max)


def _faults() -> dict[str, float]:
    spec = os.environ.get("HISGW_OUTBOX_FAULTS", "")
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, prob = part.partition("=")
        out[point] = float(prob or 1)
    return out


@dataclass(slots=True)
class Claimed:
    seq: int
    id: str
    attempts: int
    item: PostboxItem | None
    created_ms: int


FactsLookup = Callable[[Connection, PostboxItem], "PatientFacts | None"]


class Lane:
    """One practice's delivery loop in one worker process."""

    def __init__(self, worker: Worker, practice: str, route: Route):
        self.worker, self.practice, self.route = worker, practice, route
        self.channel: Channel | None = None
        self.agent = audit.Agent(
            OUTBOX_AGENT_SYSTEM, worker.owner, "his-gateway outbox worker", f"agb:{practice}"
        )

    # -- 1. claim
    def claim(self) -> list[Claimed]:
        w, route = self.worker, self.route
        t = now_ms()
        with w.engine.begin() as conn:
            sql = _CLAIM + (" FOR UPDATE OF o SKIP LOCKED" if conn.dialect.name == "postgresql" else "")
            rows = conn.execute(text(sql), {"practice": self.practice, "now": t, "limit": route.batch}).all()
            if not rows:
                return []
            claimed: list[Claimed] = []
            for seq, iid, attempts, filing, body, created in rows:
                item = None
                if body is not None:
                    try:
                        item = postbox_from_json(body)
                    except Exception:  # noqa: BLE001 - stored by enqueue, so only a damaged row
                        item = None
                if item is not None and filing is None:
                    item = w.decide_filing(conn, item, route)
                    conn.execute(
                        text("UPDATE outbox_item SET body = :b, filing = :f WHERE seq = :s"),
                        {"b": to_json(item), "f": "auto" if item.filing else "manual", "s": seq},
                    )
                claimed.append(Claimed(seq, iid, attempts + 1, item, created))
            conn.execute(
                outbox_item.update()
                .where(outbox_item.c.seq.in_([c.seq for c in claimed]))
                .values(
                    state="sending",
                    lease_owner=w.owner,
                    lease_until_ms=t + int(route.lease_seconds * 1000),
                    attempts=outbox_item.c.attempts + 1,
                    channel=route.channel,
                )
            )
        w.fault("after-claim")
        return claimed

    # -- 2. send
    def send(self, claimed: list[Claimed]) -> list[Outcome]:
        sendable = [(c.id, c.item) for c in claimed if c.item is not None]
        if self.channel is None:
            self.channel = open_channel(self.route)
        try:
            results = iter(self.channel.send(sendable)) if sendable else iter(())
        except Exception as exc:  # noqa: BLE001 - a channel bug must not kill the lane
            log.exception("channel failed", extra={"practice": self.practice, "channel": self.route.channel})
            self.channel.close()
            self.channel = None
            results = iter([Outcome("ambiguous", f"channel error: {type(exc).__name__}")] * len(sendable))
        out = [next(results) if c.item is not None else Outcome("permanent", DEAD_CONTENT) for c in claimed]
        self.worker.fault("after-send")
        return out

    # -- 3. record
    def _outcome(self, c: Claimed, o: Outcome, t: int) -> tuple[dict, str, str]:
        """(column values, audit outcome, audit description) of one attempt's outcome."""
        free = {"lease_owner": None, "lease_until_ms": None}
        if o.kind == "delivered":  # content pruned at once: the postbox has it, the audit log the fact
            values = {
                **free,
                "state": "delivered",
                "delivered_ms": t,
                "body": None,
                "error_class": None,
                "last_error": None,
            }
            return values, "0", f"delivered {self.route.channel} {c.id} {o.detail}"
        if o.kind == "permanent" or c.attempts >= self.route.max_attempts:
            if o.detail == DEAD_CONTENT:
                code = DEAD_CONTENT
            else:
                code = DEAD_PERMANENT if o.kind == "permanent" else DEAD_ATTEMPTS
            reason = f"{code} {o.kind} after {c.attempts} attempt(s): {o.detail}"
            values = {**free, "state": "dead", "error_class": o.kind, "last_error": reason[:500]}
            return values, "8", f"dead {self.route.channel} {c.id} {code}"
        due = t + int(backoff_seconds(self.route, c.attempts) * 1000)
        values = {
            **free,
            "state": "retrying",
            "due_ms": due,
            "error_class": o.kind,
            "last_error": o.detail[:500],
        }
        return values, "4", f"{o.kind} {self.route.channel} {c.id} {o.detail}"

    def record(self, claimed: list[Claimed], outcomes: list[Outcome]) -> None:
        w, route = self.worker, self.route
        t = now_ms()
        events = []
        with w.engine.begin() as conn:
            for c, o in zip(claimed, outcomes, strict=True):
                values, outcome, desc = self._outcome(c, o, t)
                held = (  # only a row this worker still holds: a lost lease is another worker's item now
                    (outbox_item.c.seq == c.seq)
                    & (outbox_item.c.lease_owner == w.owner)
                    & (outbox_item.c.state == "sending")
                )
                n = conn.execute(outbox_item.update().where(held).values(**values)).rowcount
                w.metrics.attempt(self.practice, route.channel, o.kind if n else "lost-lease")
                if o.kind == "delivered" and n:
                    w.metrics.delivered(self.practice, (t - c.created_ms) / 1000)
                if c.item is not None:
                    bsn = c.item.patient.bsn
                    events.append(
                        audit.prepare(
                            who=self.agent,
                            action="C",
                            subtype="postbox-delivery",
                            outcome=outcome,
                            outcome_desc=desc[:200],
                            entities=[f"OutboxItem/{c.id}"],
                            patient_identifiers=[(audit.BSN_SYSTEM, bsn)] if bsn else [],
                        )
                    )
            audit.write(conn, events)
        w.fault("after-commit")

    def step(self) -> int:
        claimed = self.claim()
        if not claimed:
            return 0
        self.record(claimed, self.send(claimed))
        return len(claimed)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                n = self.step()
            except Exception:  # noqa: BLE001 - database hiccup: log, wait, go on
                log.exception("lane step failed", extra={"practice": self.practice})
                n = 0
                stop.wait(1.0)
            if n == 0:
                stop.wait(self.route.idle_poll)
        if self.channel is not None:
            self.channel.close()


class Worker:
    """Delivers every routed practice's items; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        engine: Engine,
        routing: Routing,
        *,
        owner: str | None = None,
        metrics=None,
        facts: FactsLookup | None = None,
    ):
        from gateway.outbox.metrics import OutboxMetrics

        self.engine = engine
        self.routing = routing
        self.owner = owner or f"{os.uname().nodename[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.metrics = metrics or OutboxMetrics()
        self.facts = facts
        self.faults = _faults()
        self.lanes = {agb: Lane(self, agb, route) for agb, route in routing.practices.items()}

    def fault(self, point: str) -> None:
        p = self.faults.get(point)
        if p and random.random() < p:
            os.write(2, f"outbox fault injected: exit {point}\n".encode())
            os._exit(99)

    def decide_filing(self, conn: Connection, item: PostboxItem, route: Route) -> PostboxItem:
        """Auto-filing (opt-in per practice): a ready filing only when the match is certain."""
        if not route.auto_filing:
            return item
        from gateway.outbox.filing import auto_file
        from gateway.outbox.storefacts import facts_from_store

        lookup = self.facts or facts_from_store
        try:
            with conn.begin_nested():  # a failed lookup must not abort the claim's transaction
                facts = lookup(conn, item)
        except Exception:  # noqa: BLE001 - no facts is manual filing, never a stuck practice
            log.exception("auto-filing facts lookup failed", extra={"practice": item.practice_agb})
            facts = None
        return auto_file(item, facts)

    def run_once(self) -> int:
        """One step of every lane, one after the other (tests); the number of items handled."""
        return sum(lane.step() for lane in self.lanes.values())

    def drain(self, timeout: float = 30.0) -> None:
        """Steps until every routed practice's items are delivered or dead (tests, ``hisgw worker --drain``),
        waiting out backoffs; closes the channels at the end."""
        end = time.monotonic() + timeout
        practices = ",".join(f"'{p}'" for p in self.lanes)  # AGBs: 8 digits, checked by the routing file
        pending = text(
            f"SELECT COUNT(*) FROM outbox_item WHERE practice IN ({practices}) "
            "AND state IN ('queued', 'retrying', 'sending')"
        )
        try:
            while time.monotonic() < end:
                if self.run_once() == 0:
                    with self.engine.connect() as conn:
                        left = conn.execute(pending).scalar_one() if self.lanes else 0
                        conn.rollback()
                    if not left:
                        return
                    time.sleep(min(r.idle_poll for r in self.routing.practices.values()))
            raise TimeoutError("outbox not drained")
        finally:
            self.close()

    def close(self) -> None:
        for lane in self.lanes.values():
            if lane.channel is not None:
                lane.channel.close()
                lane.channel = None

    def unrouted(self) -> dict[str, int]:
        """Practices with waiting items that the routing file does not name (they stay queued,
        ``OUT-002``).
        """
        counts = self.metrics.sample(self.engine)
        out: dict[str, int] = {}
        for (practice, state), n in counts.items():
            if practice not in self.lanes and state == "queued":
                out[practice] = n
        return out

    def sample_loop(self, stop: threading.Event) -> None:
        """Metrics every ``sample_every`` seconds; a warning for items no route can deliver."""
        warned: set[str] = set()
        while not stop.wait(self.metrics.sample_every):
            try:
                for practice, n in self.unrouted().items():
                    if practice not in warned:
                        warned.add(practice)
                        log.warning("no route", extra={"code": NO_ROUTE, "practice": practice, "items": n})
            except Exception:  # noqa: BLE001 - metrics never stop delivery
                continue

    def run(self, stop: threading.Event) -> None:
        threads = [
            threading.Thread(target=lane.run, args=(stop,), name=f"outbox-{agb}", daemon=True)
            for agb, lane in self.lanes.items()
        ]
        sampler = threading.Thread(target=self.sample_loop, args=(stop,), name="outbox-metrics", daemon=True)
        for t in [*threads, sampler]:
            t.start()
        for t in [*threads, sampler]:
            t.join()

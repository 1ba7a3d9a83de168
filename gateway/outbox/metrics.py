"""Outbox metrics (Prometheus, own registry like ``gateway/obs.py``):

- ``hisgw_outbox_items{practice,state}``: items not yet delivered, per state (the queue depth);
- ``hisgw_outbox_oldest_age_seconds{practice}``: age of the oldest undelivered, not dead item;
- ``hisgw_outbox_attempts_total{practice,channel,outcome}``: delivery attempts by outcome
  (delivered, transient, ambiguous, permanent, lost-lease);
- ``hisgw_outbox_delivery_seconds{channel}``: from the item's creation (the answer) to confirmed delivery.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Engine, text


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, sample_every: float = 5.0):
        self.registry = registry or CollectorRegistry()
        self.sample_every = sample_every
        self.items = Gauge(
            "hisgw_outbox_items",
            "Outbox items not delivered, by state",
            ["practice", "state"],
            registry=self.registry,
        )
        self.oldest = Gauge(
            "hisgw_outbox_oldest_age_seconds",
            "Age of the oldest waiting outbox item",
            ["practice"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "hisgw_outbox_attempts",
            "Delivery attempts by outcome",
            ["practice", "channel", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hisgw_outbox_delivery_seconds",
            "Item creation to confirmed delivery",
            ["practice"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 86400),
        )
        self._lock = threading.Lock()

    def attempt(self, practice: str, channel: str, outcome: str) -> None:
        self.attempts.labels(practice, channel, outcome).inc()

    def delivered(self, practice: str, seconds: float) -> None:
        self.latency.labels(practice).observe(seconds)

    def sample(self, engine: Engine) -> dict[tuple[str, str], int]:
        """Read queue depth and oldest age from the database into the gauges; returns the counts."""
        now = int(time.time() * 1000)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT practice, state, COUNT(*), MIN(created_ms) FROM outbox_item "
                    "WHERE state IN ('queued', 'sending', 'retrying', 'dead') GROUP BY practice, state"
                )
            ).all()
            conn.rollback()
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, int] = {}
        for practice, state, n, first in rows:
            counts[(practice, state)] = n
            if state != "dead":
                oldest[practice] = min(oldest.get(practice, first), first)
        with self._lock:
            self.items.clear()
            self.oldest.clear()
            for (practice, state), n in counts.items():
                self.items.labels(practice, state).set(n)
            for practice, first in oldest.items():
                self.oldest.labels(practice).set((now - first) / 1000)
        return counts

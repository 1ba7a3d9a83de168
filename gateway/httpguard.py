"""Listeners no one can starve: HTTP read timeouts, a connection cap per client and request rates (issue 14).

h11, the HTTP/1.1 parser under ``hisgw serve`` (uvicorn), has no timeout of its own for a request whose
headers or body never finish, and uvicorn's keep-alive timer is cancelled by the first byte of the next
request: a peer that sends half a request line holds its socket for ever (slowloris). Two parts close that:

- :class:`GuardedH11Protocol`: uvicorn's h11 protocol with a deadline per phase -- ``header_timeout``
  seconds from the connection (or from the first byte of a next request on a kept-alive connection) until
  the headers are complete, then ``body_timeout`` seconds until the body is complete. A connection past
  its deadline is closed (``408`` when no response has started) and counted, not logged as an incident.
  At most ``per_client`` connections from one address: a new one closes that address's oldest connection
  that is not being answered (waiting for headers or kept alive idle), and is refused when there is none.
- :class:`RateLimit` (ASGI): token buckets -- the token endpoint per client address (``token_rate`` per
  second, bursts of ``token_burst``), the API per bearer token (``api_rate``/``api_burst``; requests
  without one per address). Over the limit: ``429`` with ``Retry-After`` (seconds), an OAuth error body
  at the token endpoint, an OperationOutcome ``API-060`` elsewhere. Nothing is parsed before the bucket
  is taken, so a burst costs a dictionary lookup per request.

A client that disconnects in the middle of its body is answered (to nobody) ``400`` ``API-008`` by the
API, never ``500``; ``docs/security.md`` lists the limits and their settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("hisgw.http")

_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Guard:
    """The limits and counters of one listener, shared by its connections."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    per_client: int = 256
    by_host: dict[str, set[GuardedH11Protocol]] = field(default_factory=dict)
    timed_out: int = 0
    """Connections closed because their headers or body did not arrive in time."""
    evicted: int = 0
    refused: int = 0

    def protocol(self) -> type[GuardedH11Protocol]:
        """A protocol class for ``uvicorn.Config(http=...)`` bound to this guard."""
        return type("GuardedH11ProtocolBound", (GuardedH11Protocol,), {"guard": self})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a per-address connection cap."""

    guard: Guard

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._phase = ""
        self._since = self.loop.time()
        self._host = self.client[0] if self.client else "?"
        peers = self.guard.by_host.setdefault(self._host, set())
        if len(peers) >= self.guard.per_client:
            waiting = [p for p in peers if p._waiting]
            if not waiting:
                self.guard.refused += 1
                log.info("connection refused: %d open from one address, all busy", len(peers))
                transport.abort()
                return
            victim = min(waiting, key=lambda p: p._since)
            self.guard.evicted += 1
            victim._close("made room for a new connection of the same address")
        peers.add(self)
        self._arm("headers", self.guard.header_timeout)

    @property
    def _waiting(self) -> bool:
        """Not being answered: waiting for (the rest of) request headers, or kept alive idle."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._since = self.loop.time()
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = ""

    def _expired(self) -> None:
        self._timer = None
        self.guard.timed_out += 1
        started = self.cycle is not None and getattr(self.cycle, "response_started", False)
        if self._phase == "headers" and not started and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_408)
        self._close(f"{self._phase} not complete within the timeout")

    def _close(self, why: str) -> None:
        log.info("closed a connection: %s", why)
        self._disarm()
        self._forget()
        self.transport.abort()

    def _forget(self) -> None:
        peers = self.guard.by_host.get(self._host)
        if peers is not None:
            peers.discard(self)
            if not peers:
                self.guard.by_host.pop(self._host, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase != "headers":
                self._arm("headers", self.guard.header_timeout)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body", self.guard.body_timeout)
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()
        if (
            not self.transport.is_closing()
            and self.conn.their_state is h11.IDLE
            and self.conn.trailing_data[0]
            and self._phase == ""
        ):
            self._arm("headers", self.guard.header_timeout)


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, burst: float, now: float):
        self.tokens = burst
        self.stamp = now


class Buckets:
    """Token buckets by key (at most ``max_keys``, the least recently used dropped first)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000):
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._b: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go; otherwise the seconds until it may."""
        now = time.monotonic() if now is None else now
        b = self._b.get(key)
        if b is None:
            b = self._b[key] = _Bucket(self.burst, now)
            if len(self._b) > self.max_keys:
                self._b.popitem(last=False)
        else:
            self._b.move_to_end(key)
            b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
        if b.tokens >= 1:
            b.tokens -= 1
            return 0.0
        return (1 - b.tokens) / self.rate if self.rate > 0 else 3600.0


class RateLimit:
    """ASGI middleware: 429 with Retry-After over the token-endpoint and per-client API rates."""

    def __init__(
        self,
        app: Any,
        *,
        token_rate: float,
        token_burst: int,
        api_rate: float,
        api_burst: int,
        token_path: str = "/auth/token",
    ):
        self.app = app
        self.token = Buckets(token_rate, token_burst)
        self.api = Buckets(api_rate, api_burst)
        self.token_path = token_path
        self.limited = 0

    def __getattr__(self, name: str) -> Any:  # ``.state`` and friends of the wrapped application
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = client[0] if client else "?"
        if scope["path"] == self.token_path:
            wait = self.token.take(host)
        else:
            wait = self.api.take(_api_key(scope, host))
        if not wait:
            await self.app(scope, receive, send)
            return
        self.limited += 1
        retry = max(1, math.ceil(wait))
        if scope["path"] == self.token_path:
            body = orjson.dumps(
                {
                    "error": "invalid_request",
                    "error_description": f"too many token requests; retry after {retry} s",
                }
            )
            ctype = b"application/json"
        else:
            body = orjson.dumps(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "throttled",
                            "details": {
                                "coding": [{"system": "urn:his-gateway:problem", "code": "API-060"}],
                                "text": f"too many requests; retry after {retry} s",
                            },
                        }
                    ],
                }
            )
            ctype = b"application/fhir+json"
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", ctype),
                    (b"retry-after", str(retry).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def hardened(app: Any, settings: Any) -> tuple[Any, Guard]:
    """The application behind :class:`RateLimit` and a :class:`Guard` for its listener, from the
    settings (``HISGW_HTTP_*``, ``HISGW_TOKEN_*``, ``HISGW_API_*``); pass ``guard.protocol()`` as
    uvicorn's ``http``."""
    guard = Guard(
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        per_client=settings.http_max_connections_per_client,
    )
    limited = RateLimit(
        app,
        token_rate=settings.token_rate,
        token_burst=settings.token_burst,
        api_rate=settings.api_rate,
        api_burst=settings.api_burst,
    )
    return limited, guard


def _api_key(scope, host: str) -> str:
    """The bucket of an API request: its bearer token (a client's tokens are its own), else its address."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            if value[:7].lower() == b"bearer " and len(value) > 7:
                return "t:" + hashlib.blake2b(value[7:], digest_size=12).hexdigest()
            break
    return "a:" + host

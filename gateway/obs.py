"""Observability: structured JSON logs without patient data, and Prometheus metrics.

Log lines are one JSON object each (``ts``, ``level``, ``logger``, ``msg`` and fields). A request is
logged by its route *template* (``/{type}/{id}``), resource type, status, duration and client id: never
the path with ids, the query string (it may hold a BSN or a name) or a body. Uvicorn's own access log,
which prints paths and queries, is switched off by ``hisgw serve``.

Metrics (own registry per app, served on a separate loopback listener by ``hisgw serve``):
``hisgw_requests_total{method,route,status}``, ``hisgw_request_seconds{method,route}``,
``hisgw_audit_events_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import logging
import sys

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given with ``logger.info(msg, extra={...})`` are included."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_") and key != "color_message":
                out[key] = value
        if record.exc_info and record.exc_info[0]:
            # the type and where it was raised; never the message or locals (they may hold patient data)
            out["error"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            frames = []
            while tb is not None:
                frames.append(f"{tb.tb_frame.f_code.co_filename.rsplit('/', 2)[-1]}:{tb.tb_lineno}")
                tb = tb.tb_next
            out["where"] = " < ".join(reversed(frames[-6:]))
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "INFO") -> None:
    """JSON lines on standard error for the gateway's and uvicorn's loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("hisgw", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


class Metrics:
    """The gateway's metrics, in a registry of its own (several apps may live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hisgw_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "hisgw_request_seconds",
            "time to answer a request",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.audit = Counter("hisgw_audit_events", "AuditEvents written", ["outcome"], registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class RequestLog:
    """Per-request log lines (the ``hisgw.access`` logger's format) written without the logging machinery.

    One line per request costs a LogRecord and a formatter otherwise, a noticeable share of a fast read;
    here it is one orjson call into a buffer that is flushed within a second (and at exit). Lines go to
    the handler of the ``hisgw`` logger's stream when that is a plain stream, else to standard error.
    """

    def __init__(self, stream=None) -> None:
        self._stream = stream
        self._buffer: list[bytes] = []
        self._size = 0
        self._flush_scheduled = False
        atexit.register(self.flush)

    def _target(self):
        if self._stream is None:
            handlers = logging.getLogger("hisgw").handlers
            stream = getattr(handlers[0], "stream", None) if handlers else None
            self._stream = stream if stream is not None else sys.stderr
        return self._stream

    def write(self, fields: dict) -> None:
        now = dt.datetime.now(dt.UTC)
        line = (
            orjson.dumps(
                {
                    "ts": now.isoformat(timespec="milliseconds"),
                    "level": "info",
                    "logger": "hisgw.access",
                    **fields,
                }
            )
            + b"\n"
        )
        self._buffer.append(line)
        self._size += len(line)
        if self._size > 65536:
            self.flush()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_scheduled = True
            loop.call_later(0.5, self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._buffer:
            return
        data, self._buffer, self._size = b"".join(self._buffer), [], 0
        stream = self._target()
        try:
            binary = getattr(stream, "buffer", None)
            if binary is not None:
                stream.flush()
                binary.write(data)
                binary.flush()
            else:
                stream.write(data.decode("utf-8"))
                stream.flush()
        except (OSError, ValueError):  # a closed stream at exit: nothing left to tell
            pass

"""MLLP receivers for the suites' self-tests: one correct, two broken in one way each.

They are the gateway's own MLLP listener (:class:`gateway.mllp.server.MllpServer`: framing, ACK modes,
character sets, limits) in front of a small store of their own, a SQLite table
``received(control_id, raw)``, so that everything but the storing is right:

- ``correct``: stores each (MSH-3, MSH-4, MSH-10) once, then acknowledges; a resend gets the first ACK;
- ``ack-before-store``: acknowledges at once and stores three seconds later (a crash in between loses an
  acknowledged message);
- ``files-twice``: stores every message it receives, a resend as a second copy.

The observer for the suites: ``sql:sqlite:///<db>::SELECT count(*) FROM received WHERE control_id = :id``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from gateway.mllp.server import MllpServer
from gateway.mllp.store import InboundRecord, StoreResult

BEHAVIOURS = ("correct", "ack-before-store", "files-twice")


class _Store:
    def __init__(self, db: Path, behaviour: str, delay: float = 3.0):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour {behaviour!r} is not one of {BEHAVIOURS}")
        self.behaviour = behaviour
        self.delay = delay
        self.conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        self.conn.execute("CREATE TABLE IF NOT EXISTS received (control_id TEXT, sender TEXT, raw BLOB)")
        self.lock = threading.Lock()
        self.first: dict[tuple[str, str, str], StoreResult] = {}
        self.timers: list[threading.Timer] = []

    def _insert(self, r: InboundRecord) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT INTO received VALUES (?, ?, ?)", (r.key[2], f"{r.key[0]}|{r.key[1]}", r.raw)
            )

    def store_many(self, records: Sequence[InboundRecord]) -> list[StoreResult]:
        out = []
        for r in records:
            if r.key in self.first and self.behaviour != "files-twice":
                first = self.first[r.key]
                out.append(StoreResult(first.ack, first.ack_code, True, first.app_ack))
                continue
            result = StoreResult(r.ack, r.ack_code, False, r.app_ack)
            self.first.setdefault(r.key, result)
            if self.behaviour == "ack-before-store":
                t = threading.Timer(self.delay, self._insert, (r,))
                t.daemon = True
                self.timers.append(t)
                t.start()
            else:
                self._insert(r)
            out.append(result)
        return out

    def close(self) -> None:
        for t in self.timers:
            t.cancel()
        self.conn.close()


class Receiver:
    """An MLLP receiver on 127.0.0.1 in a thread of its own (``start``, ``port``, ``observer``, ``stop``)."""

    def __init__(self, db: Path, behaviour: str = "correct"):
        self.db = db
        self.store = _Store(db, behaviour)
        self.loop = asyncio.new_event_loop()
        self.server = MllpServer(self.store, idle_timeout=30)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    @property
    def observer(self) -> str:
        return f"sql:sqlite:///{self.db}::SELECT count(*) FROM received WHERE control_id = :id"

    def start(self) -> Receiver:
        self.thread.start()
        _host, self.port = asyncio.run_coroutine_threadsafe(
            self.server.start("127.0.0.1", 0), self.loop
        ).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.store.close()


class FilesTwiceInbox:
    """An HTTP postbox inbox (``POST /inbox``, OmniHIS postbox JSON, ``Idempotency-Key``) that is right in
    everything but one: it files a repeat of a message id again. Its filing log has one line per filed
    item, ``<message id>\\t<practice AGB>`` (observer ``lines:<log>``)."""

    def __init__(self, log: Path):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.log = log
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                from gateway.outbox.simulators import http_form

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key")
                fmt = http_form(self.path)  # /inbox: the OmniHIS postbox JSON
                try:
                    item = fmt.postbox_codec().read_postbox(body) if key and fmt else None
                except Exception:  # noqa: BLE001 - unreadable: refused
                    item = None
                if item is None:
                    self.send_response(422)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with outer.log.open("a", encoding="utf-8") as f:
                    f.write(f"{key}\t{item.practice_agb}\n")  # the breakage: no look at what was filed
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/inbox"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FilesTwiceInbox:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

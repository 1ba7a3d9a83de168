"""The asyncio MLLP listener: receive, store durably, then acknowledge (never the other way round).

Per connection one reader loop decodes frames (:mod:`gateway.mllp.framing`) and hands each to
:func:`gateway.mllp.handler.decide`; a writer task sends the acknowledgements in the order the messages
arrived, each only after the store has committed it (in enhanced mode the accept ACK, then the
application ACK, both as the message's MSH-15 and MSH-16 ask). Frames of all connections that arrive while a
commit runs are committed together (group commit, one worker thread), so a pipelining sender or many
connections get far more than one fsync per message. Limits: ``max_frame`` bytes per frame (bigger
frames are answered AR and not kept), ``idle_timeout`` seconds without a byte closes the connection,
``first_frame_timeout`` seconds for a new connection (and its TLS handshake) to deliver its first
complete frame, ``pipeline`` unacknowledged frames per connection before the listener stops reading
from it.

Idle connections cannot lock a sender out: at most ``max_connections`` at once and ``max_per_peer``
from one network address; a connection that would go over either limit closes the *oldest idle*
connection (no frame in progress, no acknowledgement owed) -- of its own address when that address is
at its limit, otherwise of the address holding the most connections -- and is refused only when every
connection is busy. ``ssl`` takes a server :class:`ssl.SSLContext`;
with ``verify_mode = CERT_REQUIRED`` and a CA loaded, only clients with a certificate of that CA get in
(NEN 7512 mutual TLS).

Problem codes of the transport: ``MLLP-001`` frame over the size cap, ``MLLP-002`` garbage outside
frames (connection closed), ``MLLP-003`` not stored (AE/CE, resend), ``MLLP-004`` MSH-3/4/10 unusable as
the message key, ``MLLP-005`` a conflicting duplicate (MSH-3/4/10 of a stored message with other
content: AR/CR with an ERR naming MSH-10, audited, not stored). Logs carry no patient data: peer,
MSH-10 and the acknowledgement code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gateway.mllp import handler
from gateway.mllp.framing import FrameDecoder, FramingError, frame
from gateway.mllp.store import InboundRecord, MessageStore, StoreResult
from mappings.hl7v2.er7 import MAX_MESSAGE_BYTES

log = logging.getLogger("hisgw.mllp")

MAX_BATCH = 256


class StoreWorker:
    """Group commit: records submitted while a batch commits go into the next batch (one thread)."""

    def __init__(self, store: MessageStore):
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-store")
        self._pending: list[tuple[InboundRecord, asyncio.Future[StoreResult]]] = []
        self._busy = False

    async def submit(self, record: InboundRecord) -> StoreResult:
        fut: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        self._pending.append((record, fut))
        if not self._busy:
            self._kick()
        return await fut

    def _kick(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._busy = True
        done = asyncio.get_running_loop().run_in_executor(
            self._executor, self.store.store_many, [r for r, _ in batch]
        )
        done.add_done_callback(lambda f: self._finish(f, batch))

    def _finish(self, f: asyncio.Future, batch: list) -> None:
        self._busy = False
        exc = f.exception()
        for i, (_, fut) in enumerate(batch):
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(f.result()[i])
        if self._pending:
            self._kick()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


@dataclass(eq=False)
class _Conn:
    """One open connection, as the connection limits see it."""

    writer: asyncio.StreamWriter
    host: str
    last_active: float = field(default_factory=time.monotonic)
    owed: int = 0
    """Frames received and not yet acknowledged."""
    in_frame: bool = False

    @property
    def idle(self) -> bool:
        return self.owed == 0 and not self.in_frame


class MllpServer:
    """An MLLP listener in front of a :class:`~gateway.mllp.store.MessageStore`."""

    def __init__(
        self,
        store: MessageStore,
        *,
        max_frame: int = MAX_MESSAGE_BYTES,
        idle_timeout: float = 60.0,
        max_connections: int = 200,
        max_per_peer: int = 50,
        first_frame_timeout: float = 10.0,
        pipeline: int = 64,
        ssl: _ssl.SSLContext | None = None,
        default_charset: str = "",
        after_store_delay: float = 0.0,
        decide: Callable[..., handler.Decision] = handler.decide,
    ):
        self.store = store
        self.max_frame = max_frame
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.first_frame_timeout = first_frame_timeout
        self.evicted = 0
        """Idle connections closed to make room for a new one (since start)."""
        self.pipeline = pipeline
        self.ssl = ssl
        self.default_charset = default_charset
        self.after_store_delay = after_store_delay
        """Test hook only (``HISGW_MLLP_TEST_DELAY_AFTER_STORE``): sleep between commit and ACK."""
        self._decide = decide
        if getattr(store, "on_conflict", handler.conflicting) is None:
            store.on_conflict = handler.conflicting
        self._worker = StoreWorker(store)
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task, _Conn] = {}
        self._per_peer: dict[str, int] = {}

    @property
    def active(self) -> int:
        """Connections open now."""
        return len(self._connections)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; returns the bound address (``port=0`` picks a free port)."""
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=self.ssl,
            ssl_handshake_timeout=self.first_frame_timeout if self.ssl else None,
            backlog=1024,
        )
        sock = self._server.sockets[0].getsockname()
        return sock[0], sock[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Close the sockets rather than cancel the tasks: a reader sees EOF, and every frame already
        # received is still stored and acknowledged (as far as the peer still listens).
        for conn in list(self._connections.values()):
            conn.writer.transport.abort()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=30)
        await asyncio.get_running_loop().run_in_executor(None, self._worker.close)

    def _make_room(self, host: str) -> bool:
        """Close the oldest idle connection when ``host`` or the listener is at its limit; False when
        there is no room and nothing idle to close."""
        if self._per_peer.get(host, 0) >= self.max_per_peer:
            pool = [c for c in self._connections.values() if c.host == host]
        elif len(self._connections) >= self.max_connections:
            crowded = max(self._per_peer, key=lambda h: self._per_peer[h])
            pool = [c for c in self._connections.values() if c.host == crowded]
            if not any(c.idle for c in pool):
                pool = list(self._connections.values())
        else:
            return True
        idle = [c for c in pool if c.idle]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_active)
        victim.writer.transport.abort()
        self._forget(victim)
        self.evicted += 1
        log.info("%s: oldest idle connection closed to make room for a new one", victim.host)
        return True

    def _forget(self, conn: _Conn) -> None:
        for task, c in list(self._connections.items()):
            if c is conn:
                del self._connections[task]
                left = self._per_peer.get(conn.host, 1) - 1
                if left > 0:
                    self._per_peer[conn.host] = left
                else:
                    self._per_peer.pop(conn.host, None)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername")
        host = str(peername[0]) if isinstance(peername, tuple) else str(peername)
        if not self._make_room(host):
            log.warning("connection refused: %d connections open, none idle", self.active)
            writer.transport.abort()
            return
        conn = _Conn(writer, host)
        self._connections[task] = conn
        self._per_peer[host] = self._per_peer.get(host, 0) + 1
        try:
            await self._connection(reader, writer, conn)
        finally:
            self._forget(conn)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn
    ) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        decoder = FrameDecoder(self.max_frame)
        queue: asyncio.Queue[asyncio.Task | None] = asyncio.Queue(maxsize=self.pipeline)
        sender = asyncio.create_task(self._send_acks(queue, writer, conn))
        loop = asyncio.get_running_loop()
        first_deadline: float | None = loop.time() + self.first_frame_timeout
        try:
            while not sender.done():
                timeout = self.idle_timeout
                if first_deadline is not None:
                    timeout = min(timeout, first_deadline - loop.time())
                try:
                    if timeout <= 0:
                        raise TimeoutError
                    data = await asyncio.wait_for(reader.read(65536), timeout)
                except TimeoutError:
                    log.info(
                        "%s %s: closed%s",
                        peer,
                        f"no frame within {self.first_frame_timeout}s"
                        if first_deadline is not None
                        else f"idle for {self.idle_timeout}s",
                        " inside an unfinished frame" if decoder.in_frame else "",
                    )
                    break
                except (ConnectionError, _ssl.SSLError, OSError):
                    break
                if not data:
                    break
                conn.last_active = time.monotonic()
                try:
                    frames = decoder.feed(data)
                except FramingError as exc:
                    log.warning("%s MLLP-002 %s: closed", peer, exc)
                    break
                conn.in_frame = decoder.in_frame
                if frames:
                    first_deadline = None
                for f in frames:
                    conn.owed += 1
                    await queue.put(asyncio.create_task(self._process(f.data, f.oversize, f.size, peer)))
        finally:
            await queue.put(None)
            with contextlib.suppress(Exception):
                await sender
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _process(self, data: bytes, oversize: bool, size: int, peer: str) -> tuple[bytes, ...]:
        """The acknowledgements of one frame, in the order they are sent: the ACK (original mode) or the
        accept ACK (enhanced mode, as MSH-15 asks), then the application ACK (enhanced mode, as MSH-16
        asks; sent on the same connection once the message is stored)."""
        if oversize:
            d = handler.reject_unframed(
                data, f"frame of {size} bytes is over the limit of {self.max_frame} bytes"
            )
            log.warning("%s MLLP-001 frame of %d bytes refused", peer, size)
            return (d.ack,) if d.ack else ()
        d = self._decide(data, peer=peer, default_charset=self.default_charset)
        if d.record is None:
            log.info("%s %s not stored (%s)", peer, d.code, ", ".join(p.code for p in d.problems[:3]))
            return (d.ack,) if d.ack else ()
        try:
            result = await self._worker.submit(d.record)
        except Exception as exc:  # the database said no: tell the sender to keep the message
            log.error("%s MLLP-003 store failed: %s", peer, type(exc).__name__)
            failed = handler.store_failed(data, type(exc).__name__)
            return (failed,) if failed else ()
        if self.after_store_delay:
            await asyncio.sleep(self.after_store_delay)
        if result.conflict:
            log.warning("%s MLLP-005 conflicting duplicate of MSH-10 %s refused", peer, d.record.key[2])
        log.debug(
            "%s %s %s%s", peer, d.record.key[2], result.ack_code, " (resent)" if result.duplicate else ""
        )
        return tuple(a for a in (result.ack, result.app_ack) if a)

    async def _send_acks(
        self, queue: asyncio.Queue[asyncio.Task | None], writer: asyncio.StreamWriter, conn: _Conn
    ) -> None:
        broken = False
        while True:
            task = await queue.get()
            if task is None:
                return
            try:
                acks = await task
            except Exception:  # a bug, not bad input: no ACK, so the sender resends; the log says why
                log.exception("processing a frame failed")
                continue
            finally:
                conn.owed -= 1
                conn.last_active = time.monotonic()
            if not acks or broken:
                continue
            try:
                for ack in acks:
                    writer.write(frame(ack))
                await writer.drain()
            except (ConnectionError, OSError):
                broken = True  # keep awaiting: every received frame is still processed and stored

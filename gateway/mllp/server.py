"""The asyncio MLLP listener: receive, store durably, then acknowledge (never the other way round).

Per connection one reader loop decodes frames (:mod:`gateway.mllp.framing`) and hands each to
:func:`gateway.mllp.handler.decide`; a writer task sends the acknowledgements in the order the messages
arrived, each only after the store has committed it (in enhanced mode the accept ACK, then the
application ACK, both as the message's MSH-15 and MSH-16 ask). Frames of all connections that arrive while a
commit runs are committed together (group commit, one worker thread), so a pipelining sender or many
connections get far more than one fsync per message. Limits: ``max_frame`` bytes per frame (bigger
frames are answered AR and not kept), ``idle_timeout`` seconds without a byte closes the connection,
``max_connections`` at once (more are closed at accept), ``pipeline`` unacknowledged frames per
connection before the listener stops reading from it. ``ssl`` takes a server :class:`ssl.SSLContext`;
with ``verify_mode = CERT_REQUIRED`` and a CA loaded, only clients with a certificate of that CA get in
(NEN 7512 mutual TLS).

Problem codes of the transport: ``MLLP-001`` frame over the size cap, ``MLLP-002`` garbage outside
frames (connection closed), ``MLLP-003`` not stored (AE/CE, resend), ``MLLP-004`` MSH-3/4/10 unusable as
the message key. Logs carry no patient data: peer, MSH-10 and the acknowledgement code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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


class MllpServer:
    """An MLLP listener in front of a :class:`~gateway.mllp.store.MessageStore`."""

    def __init__(
        self,
        store: MessageStore,
        *,
        max_frame: int = MAX_MESSAGE_BYTES,
        idle_timeout: float = 60.0,
        max_connections: int = 50,
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
        self.pipeline = pipeline
        self.ssl = ssl
        self.default_charset = default_charset
        self.after_store_delay = after_store_delay
        """Test hook only (``HISGW_MLLP_TEST_DELAY_AFTER_STORE``): sleep between commit and ACK."""
        self._decide = decide
        self._worker = StoreWorker(store)
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self.active = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; returns the bound address (``port=0`` picks a free port)."""
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=self.ssl,
            ssl_handshake_timeout=self.idle_timeout if self.ssl else None,
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
        for writer in list(self._connections.values()):
            writer.transport.abort()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=30)
        await asyncio.get_running_loop().run_in_executor(None, self._worker.close)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self.active >= self.max_connections:
            log.warning("connection refused: %d connections open", self.active)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        self.active += 1
        self._connections[task] = writer
        try:
            await self._connection(reader, writer)
        finally:
            self.active -= 1
            self._connections.pop(task, None)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        decoder = FrameDecoder(self.max_frame)
        queue: asyncio.Queue[asyncio.Task | None] = asyncio.Queue(maxsize=self.pipeline)
        sender = asyncio.create_task(self._send_acks(queue, writer))
        try:
            while not sender.done():
                try:
                    data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                except TimeoutError:
                    log.info(
                        "%s idle for %ss: closed%s",
                        peer,
                        self.idle_timeout,
                        " inside an unfinished frame" if decoder.in_frame else "",
                    )
                    break
                except (ConnectionError, _ssl.SSLError, OSError):
                    break
                if not data:
                    break
                try:
                    frames = decoder.feed(data)
                except FramingError as exc:
                    log.warning("%s MLLP-002 %s: closed", peer, exc)
                    break
                for f in frames:
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
        log.debug(
            "%s %s %s%s", peer, d.record.key[2], result.ack_code, " (resent)" if result.duplicate else ""
        )
        return tuple(a for a in (result.ack, result.app_ack) if a)

    async def _send_acks(
        self, queue: asyncio.Queue[asyncio.Task | None], writer: asyncio.StreamWriter
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
            if not acks or broken:
                continue
            try:
                for ack in acks:
                    writer.write(frame(ack))
                await writer.drain()
            except (ConnectionError, OSError):
                broken = True  # keep awaiting: every received frame is still processed and stored

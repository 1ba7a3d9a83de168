"""An asyncio MLLP client: send messages, read their acknowledgements (used by tests, the benchmark and
outbound delivery). :meth:`MllpClient.send_many` pipelines: up to ``window`` messages in flight, ACKs read
in order (MLLP keeps order on one connection)."""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import Sequence

from gateway.mllp.framing import FrameDecoder, frame
from mappings.hl7v2.er7 import MAX_MESSAGE_BYTES


class MllpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float):
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(MAX_MESSAGE_BYTES)
        self._frames: list[bytes] = []
        self.timeout = timeout

    @classmethod
    async def connect(
        cls, host: str, port: int, *, ssl: _ssl.SSLContext | None = None, timeout: float = 30.0
    ) -> MllpClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl), timeout)
        return cls(reader, writer, timeout)

    async def __aenter__(self) -> MllpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError, _ssl.SSLError):
            pass

    async def write(self, message: bytes) -> None:
        self._writer.write(frame(message))
        await self._writer.drain()

    async def write_raw(self, data: bytes) -> None:
        """Bytes as they are (no framing): for tests of hostile peers."""
        self._writer.write(data)
        await self._writer.drain()

    async def read_ack(self) -> bytes:
        """The next acknowledgement; ``ConnectionError`` when the peer closed first."""
        while not self._frames:
            data = await asyncio.wait_for(self._reader.read(65536), self.timeout)
            if not data:
                raise ConnectionError("connection closed before an acknowledgement arrived")
            self._frames.extend(f.data for f in self._decoder.feed(data))
        return self._frames.pop(0)

    async def send(self, message: bytes) -> bytes:
        await self.write(message)
        return await self.read_ack()

    async def send_many(self, messages: Sequence[bytes], window: int = 32) -> list[bytes]:
        acks: list[bytes] = []
        sent = 0
        while len(acks) < len(messages):
            while sent < len(messages) and sent - len(acks) < window:
                self._writer.write(frame(messages[sent]))
                sent += 1
            await self._writer.drain()
            acks.append(await self.read_ack())
        return acks

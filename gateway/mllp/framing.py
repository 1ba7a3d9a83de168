"""MLLP framing (HL7 v2 MLLP, HL7 Transport Specification MLLP release 2): ``<SB> message <EB><CR>``.

``SB`` = 0x0B, ``EB`` = 0x1C, ``CR`` = 0x0D. :class:`FrameDecoder` turns a byte stream into frames with
bounded memory: a frame over ``max_frame`` bytes is not kept (only its first 64 KiB, enough for the MSH
an ACK needs) and is reported ``oversize`` when its end block arrives; bytes outside a frame other than
whitespace are garbage, and more than ``max_garbage`` of them is a :class:`FramingError` (the listener
closes the connection). A CR after EB is optional on input and always written.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings.problems import GatewayError

SB = b"\x0b"
EB = b"\x1c"
CR = b"\x0d"
HEAD_BYTES = 65536


class FramingError(GatewayError):
    """Too much data outside any frame: not an MLLP peer (code ``MLLP-002``)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame: the message bytes, or (``oversize``) only its head."""

    data: bytes
    oversize: bool = False
    size: int = 0


def frame(message: bytes) -> bytes:
    return SB + message + EB + CR


class FrameDecoder:
    """Incremental MLLP decoder; :meth:`feed` returns the frames completed by a chunk."""

    __slots__ = ("max_frame", "max_garbage", "_buf", "_inside", "_oversize", "_size", "_garbage")

    def __init__(self, max_frame: int, max_garbage: int = 4096):
        self.max_frame = max_frame
        self.max_garbage = max_garbage
        self._buf = bytearray()
        self._inside = False
        self._oversize = False
        self._size = 0
        self._garbage = 0

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and its end block has not arrived."""
        return self._inside

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        i, n = 0, len(data)
        while i < n:
            if not self._inside:
                j = data.find(SB, i)
                junk = data[i : n if j == -1 else j]
                if junk:
                    self._garbage += len(junk.strip())
                    if self._garbage > self.max_garbage:
                        raise FramingError(f"more than {self.max_garbage} bytes outside any MLLP frame")
                if j == -1:
                    break
                i = j + 1
                self._inside, self._oversize, self._size = True, False, 0
                self._buf = bytearray()
                continue
            j = data.find(EB, i)
            end = n if j == -1 else j
            chunk = end - i
            self._size += chunk
            if not self._oversize:
                if self._size > self.max_frame:
                    self._oversize = True
                    keep = HEAD_BYTES - len(self._buf)
                    if keep > 0:
                        self._buf += data[i : i + min(keep, chunk)]
                else:
                    self._buf += data[i:end]
            if j == -1:
                break
            out.append(Frame(bytes(self._buf), self._oversize, self._size))
            self._buf = bytearray()
            self._inside = False
            i = j + 1
            if i < n and data[i] == 0x0D:
                i += 1
        return out

"""The four ways into a practice's postbox, each with a stable message id (``docs/postbox-delivery.md`` §4).

Every channel sends a batch of items (different patients of one practice) and answers one
:class:`Outcome` per item:

- ``delivered``: the postbox confirmed it (MLLP ``AA``/``CA``, HTTP 2xx, the file renamed into place);
- ``transient``: it did not arrive and may next time (connection refused, ``AE``/``CE``, HTTP 408/425/429/5xx,
  the drop directory absent);
- ``ambiguous``: it was sent but no answer came (timeout, connection lost after the write): it may have
  been filed, so the retry carries the *same* message id and the postbox drops the repeat;
- ``permanent``: the postbox refused it for good (``AR``/``CR``, any other HTTP 4xx, content the dialect
  cannot carry): retrying cannot help; the item goes to dead letter.

The message id is the outbox item id in every channel: MSH-10 (MLLP), the file name (drop directory),
the ``Idempotency-Key`` header (HTTP inbox, FHIR).

Which channels there are follows from the formats' postbox forms (:class:`formats.PostboxForm`): ``drop``
writes the file of any format that has a drop form; every other channel carries one format over its
transport (``mllp``: :class:`MllpChannel`; ``http``: :class:`HttpChannel`, POSTed to url + path).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.outbox.config import DROP, Route
from mappings.model import PostboxItem

OutcomeKind = Literal["delivered", "transient", "ambiguous", "permanent"]

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    detail: str = ""
    """Why (a status, an ACK code, an exception class): never patient data or letter text."""


class Channel:
    name = ""

    def send(self, batch: list[tuple[str, PostboxItem]]) -> list[Outcome]:
        """Deliver ``(message id, item)`` pairs in order; one outcome each."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _all(batch: list, kind: OutcomeKind, detail: str) -> list[Outcome]:
    return [Outcome(kind, detail)] * len(batch)


# --------------------------------------------------------------------------- MLLP (HL7 v2 MDM^T02)


def mdm_bytes(message_id: str, item: PostboxItem, now: dt.datetime | None = None) -> bytes:
    """The MDM^T02 of one postbox item (HL7 v2.5 §9.5.2 via :mod:`mappings.hl7v2.mdm`), MSH-10 =
    message id.
    """
    from mappings.hl7v2 import messages
    from mappings.hl7v2.canonical import Hd, MdmMessage, MessageHeader, Visit

    header = MessageHeader(
        message_type="MDM",
        trigger_event="T02",
        message_structure="MDM_T02",
        control_id=message_id,
        sending_application=Hd(namespace="HISGW"),
        sending_facility=Hd(namespace=item.sender_organization) if item.sender_organization else None,
        receiving_facility=Hd(namespace=item.practice_agb),
        timestamp=(now or dt.datetime.now()).replace(microsecond=0),
        charset="UNICODE UTF-8",
    )
    return messages.write(MdmMessage(header=header, item=item, visit=Visit(patient_class="N"))).to_bytes()


def ack_fields(data: bytes) -> tuple[str, str]:
    """(MSA-1 code, MSA-2 control id) of an ACK; ("", "") when there is no MSA."""
    text = data.decode("latin-1")
    sep = text[3] if text.startswith("MSH") and len(text) > 3 else "|"
    for seg in text.replace("\n", "\r").split("\r"):
        if seg.startswith("MSA" + sep):
            f = seg.split(sep)
            return (f[1] if len(f) > 1 else ""), (f[2] if len(f) > 2 else "")
    return "", ""


ACK_OUTCOME: dict[str, OutcomeKind] = {
    "AA": "delivered",
    "CA": "delivered",
    "AE": "transient",
    "CE": "transient",
    "AR": "permanent",
    "CR": "permanent",
}
"""How an ACK code classifies a delivery. ``AE`` says the HIS understood the message but could not take it
now (its database, a lock, a full postbox): retried, and dead after ``max_attempts``. ``AR`` says it will
never take it (syntax, type, version): dead at once."""


class MllpChannel(Channel):
    """One persistent MLLP connection; a batch is pipelined and its ACKs read in order."""

    name = "mllp"

    def __init__(self, route: Route):
        self.host, self.port, self.timeout = route.host, route.port, route.timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            s = socket.create_connection((self.host, self.port), timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.buf = s, b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def _read_frame(self, s: socket.socket) -> bytes:
        while True:
            start = self.buf.find(SB)
            end = self.buf.find(EB, start + 1) if start != -1 else -1
            if end != -1:
                frame, self.buf = self.buf[start + 1 : end], self.buf[end + 1 :].lstrip(CR)
                return frame
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("peer closed the connection")
            self.buf += chunk

    def send(self, batch: list[tuple[str, PostboxItem]]) -> list[Outcome]:
        try:
            frames = [SB + mdm_bytes(mid, item) + EB + CR for mid, item in batch]
        except Exception as exc:  # noqa: BLE001 - the item cannot be written as HL7 v2: never will be
            return _all(batch, "permanent", f"HL7 v2 writer: {type(exc).__name__}")
        try:
            s = self._connect()
        except OSError as exc:
            self.close()
            return _all(batch, "transient", f"connect: {type(exc).__name__}")
        try:
            s.sendall(b"".join(frames))
        except OSError as exc:
            self.close()
            return _all(batch, "ambiguous", f"write: {type(exc).__name__}")
        out: list[Outcome] = []
        for mid, _ in batch:
            try:
                code, control = ack_fields(self._read_frame(s))
            except (OSError, ConnectionError) as exc:
                self.close()
                out += _all(batch[len(out) :], "ambiguous", f"no ACK: {type(exc).__name__}")
                return out
            if control != mid:
                self.close()  # out of step: trust nothing more on this connection
                out += _all(batch[len(out) :], "ambiguous", "ACK for another message")
                return out
            kind = ACK_OUTCOME.get(code, "ambiguous")
            out.append(Outcome(kind, f"ACK {code or '?'}"))
        return out


# --------------------------------------------------------------------------- drop directory


class DropChannel(Channel):
    """The dialect's postbox file, written atomically: ``.<id><ext>.tmp``, fsync, rename to ``<id><ext>``,
    fsync dir.

    The directory must exist (a missing one is a share not mounted: transient, never created here).
    A file of that name already there means an earlier attempt delivered it: delivered."""

    name = "drop"

    def __init__(self, route: Route):
        fmt = route.postbox_format()
        self.dir = Path(route.dir)  # type: ignore[arg-type]
        self.fmt = fmt.postbox_codec()
        self.ext = fmt.extension

    def file_name(self, message_id: str) -> str:
        return message_id + self.ext

    def send(self, batch: list[tuple[str, PostboxItem]]) -> list[Outcome]:
        out: list[Outcome] = []
        written = False
        for mid, item in batch:
            try:
                data = self.fmt.write_postbox(item)
            except Exception as exc:  # noqa: BLE001 - the dialect cannot carry it
                out.append(Outcome("permanent", f"{self.fmt.name} writer: {type(exc).__name__}"))
                continue
            final = self.dir / self.file_name(mid)
            tmp = self.dir / f".{self.file_name(mid)}.{os.getpid()}.tmp"
            try:
                if not self.dir.is_dir():
                    raise FileNotFoundError("drop directory absent")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, final)
                written = True
                out.append(Outcome("delivered", "renamed"))
            except OSError as exc:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                out.append(Outcome("transient", f"write: {type(exc).__name__}"))
        if written:
            try:
                fd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass  # the directory went away after the rename: the files were renamed in it
        return out


# --------------------------------------------------------------------------- HTTP inbox and FHIR


def classify_status(status: int) -> OutcomeKind:
    if 200 <= status < 300:
        return "delivered"
    if status in (408, 425, 429) or status >= 500:
        return "transient"
    return "permanent"


class HttpChannel(Channel):
    """A format's postbox form POSTed to the route's url plus the form's path, with its media type and an
    ``Idempotency-Key``: OmniHIS-style postbox JSON to an inbox (``http``), a FHIR Communication to
    ``<url>/Communication`` (``fhir``)."""

    def __init__(self, route: Route):
        import httpx

        fmt = route.postbox_format()
        self.name = route.channel
        self.httpx = httpx
        self.url = route.url.rstrip("/")  # type: ignore[union-attr]
        self.path = fmt.postbox.path if fmt.postbox is not None else ""
        self.content_type = fmt.media_type
        self.codec = fmt.postbox_codec()
        self.client = httpx.Client(timeout=route.timeout, headers={"User-Agent": "his-gateway-outbox"})

    def target(self) -> str:
        return self.url + self.path

    def body(self, item: PostboxItem) -> bytes:
        return self.codec.write_postbox(item)

    def close(self) -> None:
        self.client.close()

    def send(self, batch: list[tuple[str, PostboxItem]]) -> list[Outcome]:
        httpx = self.httpx
        out: list[Outcome] = []
        for mid, item in batch:
            try:
                body = self.body(item)
            except Exception as exc:  # noqa: BLE001
                out.append(Outcome("permanent", f"writer: {type(exc).__name__}"))
                continue
            try:
                r = self.client.post(
                    self.target(),
                    content=body,
                    headers={"Idempotency-Key": mid, "Content-Type": self.content_type},
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                out.append(Outcome("transient", f"connect: {type(exc).__name__}"))
                continue
            except httpx.HTTPError as exc:
                out.append(Outcome("ambiguous", f"no answer: {type(exc).__name__}"))
                continue
            out.append(Outcome(classify_status(r.status_code), f"HTTP {r.status_code}"))
        return out


HttpInboxChannel = HttpChannel
"""The earlier name of :class:`HttpChannel` (then only the OmniHIS inbox)."""


class NumberedDropChannel(Channel):
    """Transport ``numbered-files``: each item as ``<number><extension>`` into ``route.dir``, the number
    kept per message id in the directory's journal (``gateway/outbox/numbered_drop.py``,
    ``docs/postbox-delivery.md`` §4.5)."""

    def __init__(self, route: Route) -> None:
        from gateway.outbox.numbered_drop import DEFAULT_SENDER

        fmt = route.postbox_format()
        self.name = route.channel
        self.dir = Path(route.dir)  # type: ignore[arg-type]
        self.sender = route.sender or DEFAULT_SENDER
        self.codec = fmt.postbox_codec()
        self.ext = fmt.extension

    def close(self) -> None:
        pass

    def send(self, batch: list[tuple[str, PostboxItem]]) -> list[Outcome]:
        from gateway.outbox.numbered_drop import file_name, number_for

        out: list[Outcome] = []
        written = False
        for mid, item in batch:
            if not self.dir.is_dir():  # a share not mounted: never created here
                out.append(Outcome("transient", "drop directory absent"))
                continue
            try:
                number = number_for(self.dir, mid)
            except OSError as exc:
                out.append(Outcome("transient", f"journal: {type(exc).__name__}"))
                continue
            try:
                data = self.codec.write_numbered(item, number, self.sender)
            except Exception as exc:  # noqa: BLE001 - the format cannot carry it (a character outside ISO 8859-1)
                out.append(Outcome("permanent", f"writer: {type(exc).__name__}"))
                continue
            final = self.dir / file_name(number, self.ext)
            if final.exists():
                out.append(Outcome("delivered", "already there"))
                continue
            tmp = self.dir / f".{file_name(number, self.ext)}.{os.getpid()}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, final)
                written = True
                out.append(Outcome("delivered", "renamed"))
            except OSError as exc:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                out.append(Outcome("transient", f"write: {type(exc).__name__}"))
        if written:
            try:
                fd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass
        return out


TRANSPORTS: dict[str, Callable[[Route], Channel]] = {
    "mllp": MllpChannel,
    "http": HttpChannel,
    "numbered-files": NumberedDropChannel,  # a mail client's directory of numbered interchanges
}
"""The channel class of each transport a postbox form names (:attr:`formats.PostboxForm.transport`)."""


def open_channel(route: Route) -> Channel:
    """The channel that delivers over ``route``."""
    if route.channel == DROP:
        return DropChannel(route)
    form = route.postbox_format().postbox
    assert form is not None and form.transport is not None, route.channel  # the routing file checked it
    return TRANSPORTS[form.transport](route)

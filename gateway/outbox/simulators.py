"""Test postboxes, one per channel: they file each message once by its message id and count what they filed
(``docs/postbox-delivery.md`` §6; the tests, the benchmark, the demo and the conformance suite use them)::

    python -m gateway.outbox.simulators mllp --port 2575 --filed-log filed.log [options]
    python -m gateway.outbox.simulators http --port 8081 --filed-log filed.log [options]
    python -m gateway.outbox.simulators drop --dir DIR --dialect DIALECT --filed-log filed.log [options]
    python -m gateway.outbox.simulators numbered --dir DIR --dialect FORMAT --filed-log filed.log [options]

Common options: ``--fail-rate F`` (0..1) fails that fraction of attempts at random; ``--outage START:SECONDS``
(repeatable) goes fully down for that stretch, START seconds after the start; ``--reject-file PATH``
rejects for good (``AR``, HTTP 422) the message ids listed in that file, read again whenever it changes;
``--stats PATH`` writes the counters as JSON every half second and at the end; ``--seed N``.
``SIGUSR1`` takes the postbox down, ``SIGUSR2`` brings it up; ``SIGTERM`` stops it.

Filing: the message is read with the channel's own reader (MDM^T02 via ``mappings.hl7v2``, the dialect's
``read_postbox``, OmniHIS JSON, the FHIR Communication mapping); a message that does not read is rejected
(``AR`` / 422). A message id already filed is acknowledged again and counted as a ``duplicate``, never
filed twice. Each filed item is one line
``<message id>\\t<practice AGB>\\t<filing>\\t<filed at>`` in the filed
log, in filing order (``filing`` is ``auto`` for a ready filing, ``manual`` otherwise; ``filed at`` in
milliseconds since the epoch).

Failures (``--fail-rate``), chosen at random among: refuse before filing (``AE`` / HTTP 503), drop the
connection before filing, and file then drop the connection without an answer (the *ambiguous* case the
sender must retry with the same id). Down means: the MLLP and HTTP listeners close (connection refused);
the drop directory is renamed to ``DIR.offline`` (a share not mounted). For the drop directory a
fail-rate F takes the directory away for 100 ms before a scan with probability F.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import orjson

import formats
from gateway.mllp.framing import EB, SB, FrameDecoder
from mappings.hl7v2.er7 import MAX_MESSAGE_BYTES
from mappings.model import PostboxItem


class Postbox:
    """What every simulator shares: the filed set and log, counters, failures, outages, reject list."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = random.Random(args.seed)
        self.filed: set[str] = set()
        self.log_path = Path(args.filed_log)
        if self.log_path.exists():  # a restarted postbox still knows what it filed
            for line in self.log_path.read_text("utf-8").splitlines():
                if line:
                    self.filed.add(line.split("\t")[0])
        self.log = self.log_path.open("a", encoding="utf-8")
        self.counts = {
            "filed": len(self.filed),
            "duplicates": 0,
            "attempts": 0,
            "failed": 0,
            "rejected": 0,
            "invalid": 0,
            "down": 0,
        }
        self.started = time.monotonic()
        self.forced_down = False
        self.rejects: set[str] = set()
        self._reject_mtime = 0.0

    # -- state
    def is_down(self) -> bool:
        if self.forced_down:
            return True
        t = time.monotonic() - self.started
        return any(start <= t < start + length for start, length in self.args.outage)

    def rejected(self, mid: str) -> bool:
        path = self.args.reject_file
        if path is None:
            return False
        try:
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            self.rejects, self._reject_mtime = set(), 0.0
            return False
        if mtime != self._reject_mtime:
            self._reject_mtime = mtime
            self.rejects = {x.strip() for x in Path(path).read_text("utf-8").split() if x.strip()}
        return mid in self.rejects

    def failure(self) -> str | None:
        """None (go on) or one of ``refuse``, ``drop``, ``file-then-drop``."""
        if self.args.fail_rate and self.rng.random() < self.args.fail_rate:
            self.counts["failed"] += 1
            return self.rng.choice(("refuse", "drop", "file-then-drop"))
        return None

    def file(self, mid: str, practice: str, filing: str) -> bool:
        """File once; False for a repeat."""
        if mid in self.filed:
            self.counts["duplicates"] += 1
            return False
        self.filed.add(mid)
        self.log.write(f"{mid}\t{practice}\t{filing}\t{int(time.time() * 1000)}\n")
        self.log.flush()
        self.counts["filed"] += 1
        return True

    def write_stats(self) -> None:
        if self.args.stats:
            tmp = Path(self.args.stats + ".tmp")
            tmp.write_text(json.dumps(self.counts), "utf-8")
            os.replace(tmp, self.args.stats)

    async def stats_loop(self) -> None:
        while True:
            self.write_stats()
            await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- MLLP HIS simulator


def _ack(msg: bytes, code: str, text: str = "") -> bytes:
    """A minimal original-mode ACK for ``msg`` (MSH-10 echoed in MSA-2)."""
    head = msg.split(b"\r", 1)[0].decode("latin-1")
    sep = head[3] if len(head) > 3 else "|"
    f = head.split(sep)
    control = f[9] if len(f) > 9 else ""
    now = dt.datetime.now().strftime("%Y%m%d%H%M%S")
    msh = sep.join(
        [
            "MSH",
            "^~\\&",
            "HISSIM",
            f[5] if len(f) > 5 else "",
            f[2] if len(f) > 2 else "",
            f[3] if len(f) > 3 else "",
            now,
            "",
            "ACK^T02^ACK",
            f"A{control}"[:199],
            "P",
            "2.5",
        ]
    )
    msa = sep.join(["MSA", code, control] + ([text] if text else []))
    return (msh + "\r" + msa + "\r").encode("utf-8")


def _read_mdm(msg: bytes) -> tuple[str, str, str] | None:
    """(message id, practice, filing) of a readable MDM^T02; None if it does not read."""
    from mappings.hl7v2 import messages
    from mappings.hl7v2.canonical import MdmMessage

    try:
        m = messages.read_bytes(msg)
    except Exception:  # noqa: BLE001 - anything unreadable is rejected
        return None
    if not isinstance(m, MdmMessage):
        return None
    return m.header.control_id, m.item.practice_agb, "auto" if m.item.filing else "manual"


class MllpPostbox(Postbox):
    def __init__(self, args: argparse.Namespace):
        super().__init__(args)
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns.add(writer)
        dec = FrameDecoder(MAX_MESSAGE_BYTES)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                out: list[bytes] = []
                for fr in dec.feed(data):
                    self.counts["attempts"] += 1
                    msg = fr.data
                    fail = self.failure()
                    if fail == "drop":
                        if out:
                            writer.write(b"".join(out))
                        return
                    if fail == "refuse":
                        out.append(SB + _ack(msg, "AE", "postbox busy") + EB + b"\r")
                        continue
                    read = _read_mdm(msg)
                    if read is None:
                        self.counts["invalid"] += 1
                        out.append(SB + _ack(msg, "AR", "not a readable MDM^T02") + EB + b"\r")
                        continue
                    mid, practice, filing = read
                    if self.rejected(mid):
                        self.counts["rejected"] += 1
                        out.append(SB + _ack(msg, "AR", "rejected") + EB + b"\r")
                        continue
                    self.file(mid, practice, filing)
                    if fail == "file-then-drop":
                        if out:
                            writer.write(b"".join(out))
                        return
                    out.append(SB + _ack(msg, "AA") + EB + b"\r")
                if out:
                    writer.write(b"".join(out))
                    await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            self.conns.discard(writer)
            writer.close()

    async def listen(self) -> None:
        self.server = await asyncio.start_server(
            self.handle, self.args.host, self.args.port, reuse_address=True
        )

    async def go_down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
            for w in list(self.conns):
                w.close()
            self.counts["down"] += 1

    async def supervise(self) -> None:
        while True:
            down = self.is_down()
            if down and self.server is not None:
                await self.go_down()
            elif not down and self.server is None:
                try:
                    await self.listen()
                except OSError:
                    pass
            await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- HTTP inbox (OmniHIS JSON and
# FHIR)


def http_form(path: str) -> formats.Format | None:
    """The format POSTed to ``path``: ``/inbox`` takes the form whose channel adds no path (OmniHIS JSON),
    ``.../Communication`` the one that adds it (FHIR); ``None`` for any other path."""
    for fmt in formats.channels().values():
        form = fmt.postbox
        if form is None or form.transport != "http":
            continue
        if (form.path and path.endswith(form.path)) or (not form.path and path == "/inbox"):
            return fmt
    return None


class HttpPostbox(MllpPostbox):
    """``POST /inbox`` (OmniHIS postbox JSON) and ``POST /fhir/Communication`` (FHIR), ``Idempotency-Key``
    required.
    """

    def _read(self, path: str, body: bytes) -> tuple[str, str] | None:
        item: PostboxItem | None
        fmt = http_form(path)
        if fmt is None:
            return None
        try:
            item = fmt.postbox_codec().read_postbox(body)
        except Exception:  # noqa: BLE001
            return None
        if item is None:
            return None
        return item.practice_agb, "auto" if item.filing else "manual"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns.add(writer)

        def answer(status: int, reason: str, body: bytes = b"") -> None:
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: application/json\r\n\r\n".encode()
                + body
            )

        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.counts["attempts"] += 1
                key = headers.get("idempotency-key")
                if method != "POST" or path not in ("/inbox", "/fhir/Communication"):
                    answer(404, "Not Found")
                    continue
                if not key:
                    self.counts["invalid"] += 1
                    answer(400, "Bad Request", b'{"error":"Idempotency-Key required"}')
                    continue
                fail = self.failure()
                if fail == "drop":
                    return
                if fail == "refuse":
                    answer(503, "Service Unavailable")
                    await writer.drain()
                    continue
                read = self._read(path, body)
                if read is None:
                    self.counts["invalid"] += 1
                    answer(422, "Unprocessable Entity", b'{"error":"not a readable postbox item"}')
                    continue
                if self.rejected(key):
                    self.counts["rejected"] += 1
                    answer(422, "Unprocessable Entity", b'{"error":"rejected"}')
                    continue
                new = self.file(key, *read)
                if fail == "file-then-drop":
                    return
                answer(201 if new else 200, "Created" if new else "OK", orjson.dumps({"id": key}))
                await writer.drain()
        except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError):
            return
        finally:
            self.conns.discard(writer)
            writer.close()


# --------------------------------------------------------------------------- drop-directory reader


class DropPostbox(Postbox):
    """Reads ``<id><ext>`` files from the drop directory with the dialect's reader, files them,
    removes them.
    """

    def __init__(self, args: argparse.Namespace):
        super().__init__(args)
        fmt = formats.get(args.dialect)
        self.fmt = fmt.postbox_codec()
        self.ext = fmt.extension
        self.dir = Path(args.dir)
        self.offline = self.dir.with_name(self.dir.name + ".offline")
        self.keep = Path(args.keep) if args.keep else None
        if not self.dir.exists() and not self.offline.exists():
            self.dir.mkdir(parents=True)

    def set_online(self, online: bool) -> None:
        try:
            if online and self.offline.exists() and not self.dir.exists():
                os.rename(self.offline, self.dir)
            elif not online and self.dir.exists():
                os.rename(self.dir, self.offline)
                self.counts["down"] += 1
        except OSError:
            pass

    def scan(self) -> None:
        for folder in (self.dir, self.offline):
            try:
                names = sorted(os.listdir(folder))
            except FileNotFoundError:
                continue
            for name in names:
                path = folder / name
                if name.startswith("."):
                    try:
                        if time.time() - path.stat().st_mtime > 30:
                            path.unlink()  # a sender's temporary file left behind
                    except OSError:
                        pass
                    continue
                if not name.endswith(self.ext):
                    continue
                mid = name[: -len(self.ext)]
                self.counts["attempts"] += 1
                try:
                    data = path.read_bytes()
                    item = self.fmt.read_postbox(data, source=name)
                except FileNotFoundError:
                    continue
                except Exception:  # noqa: BLE001 - unreadable: set aside, never filed
                    self.counts["invalid"] += 1
                    os.replace(path, folder / f".invalid-{name}")
                    continue
                self.file(mid, item.practice_agb, "auto" if item.filing else "manual")
                if self.keep is not None:
                    self.keep.mkdir(parents=True, exist_ok=True)
                    os.replace(path, self.keep / name)
                else:
                    path.unlink(missing_ok=True)

    async def run(self) -> None:
        while True:
            down = self.is_down()
            if not down and self.args.fail_rate and self.rng.random() < self.args.fail_rate:
                down = True
                self.counts["failed"] += 1
            self.set_online(not down)
            self.scan()
            await asyncio.sleep(0.1 if down else self.args.poll)


class NumberedPostbox(DropPostbox):
    """A practice's medical-mail client: takes ``<number><ext>`` interchanges of a ``numbered-files``
    postbox form (``--dialect``, e.g. the MEDVRI one) from the directory, reads them with the format's
    postbox reader and files each interchange number once (a repeated number from the same sender is
    dropped, ISO 9735 duplicate detection). The message id of a number is the one in the sender's journal
    (``gateway/outbox/numbered_drop.py``)."""

    def scan(self) -> None:
        from gateway.outbox.numbered_drop import number_of, read_journal

        for folder in (self.dir, self.offline):
            try:
                names = sorted(n for n in os.listdir(folder) if number_of(n, self.ext) is not None)
            except FileNotFoundError:
                continue
            journal = read_journal(folder) if names else {}
            for name in names:
                path = folder / name
                self.counts["attempts"] += 1
                try:
                    item = self.fmt.read_postbox(path.read_bytes(), source=name)
                    mid = journal[number_of(name, self.ext)]  # type: ignore[index]
                except FileNotFoundError:
                    continue
                except Exception:  # noqa: BLE001 - unreadable: set aside, never filed
                    self.counts["invalid"] += 1
                    os.replace(path, folder / f".invalid-{name}")
                    continue
                self.file(mid, item.practice_agb, "auto" if item.filing else "manual")
                if self.keep is not None:
                    self.keep.mkdir(parents=True, exist_ok=True)
                    os.replace(path, self.keep / name)
                else:
                    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- command line


def _outage(spec: str) -> tuple[float, float]:
    start, _, length = spec.partition(":")
    return float(start), float(length)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m gateway.outbox.simulators", description=__doc__.split("\n")[0]
    )
    p.add_argument("kind", choices=("mllp", "http", "drop", "numbered"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", help="drop directory (drop)")
    drops = [f.name for f in formats.drop_formats()]
    numbered = [
        f.name for f in formats.channels().values() if f.postbox and f.postbox.transport == "numbered-files"
    ]
    p.add_argument("--dialect", choices=drops + numbered, default=drops[0])
    p.add_argument("--keep", help="drop: move filed files here instead of removing them")
    p.add_argument("--poll", type=float, default=0.05, help="drop: seconds between scans")
    p.add_argument("--filed-log", required=True)
    p.add_argument("--stats")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--outage", type=_outage, action="append", default=[], metavar="START:SECONDS")
    p.add_argument("--reject-file")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    if a.kind in ("drop", "numbered") and not a.dir:
        p.error(f"{a.kind} needs --dir")
    if a.kind not in ("drop", "numbered") and not a.port:
        p.error(f"{a.kind} needs --port")
    return a


async def _main(args: argparse.Namespace) -> None:
    box: Postbox
    if args.kind in ("drop", "numbered"):
        box = NumberedPostbox(args) if args.kind == "numbered" else DropPostbox(args)
        tasks = [box.run()]
    else:
        box = MllpPostbox(args) if args.kind == "mllp" else HttpPostbox(args)
        await box.listen()
        tasks = [box.supervise()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(box, "forced_down", True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(box, "forced_down", False))
    print(f"ready {args.kind} {args.port or args.dir}", flush=True)
    running = [asyncio.ensure_future(t) for t in [*tasks, box.stats_loop()]]
    await stop.wait()
    for t in running:
        t.cancel()
    if isinstance(box, DropPostbox):
        box.set_online(True)
        box.scan()
    box.write_stats()
    box.log.close()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_main(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

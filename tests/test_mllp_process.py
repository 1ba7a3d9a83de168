"""The listener as a process (``python -m gateway.mllp``): python-hl7's real ``mllp_send`` delivers a file of
messages; kill -9 between storing and acknowledging loses nothing and stores nothing twice; a 20 MB frame
and a frame that never ends leave the listener's memory bounded."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from gateway.mllp import MessageStore
from gateway.mllp.framing import SB, FrameDecoder, frame

GOLDEN = Path(__file__).parent / "golden" / "hl7v2"
ROOT = Path(__file__).resolve().parent.parent


class Listener:
    """``python -m gateway.mllp`` in a subprocess on a free port."""

    def __init__(self, db: str, *args: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.mllp", "--port", "0", "--db", db, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening on ([\d.]+):(\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(
                f"listener did not start: {line!r} {self.proc.stderr.read().decode()[-2000:]}"
            )
        self.port = int(m.group(2))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _acks(raw: bytes) -> list[tuple[str, str]]:
    return [
        (m.group(1).decode(), (m.group(2) or b"").decode())
        for m in re.finditer(rb"\rMSA\|([A-Z]{2})(?:\|([^|\r]*))?", raw)
    ]


def _golden(rel: str) -> bytes:
    return (GOLDEN / rel / "message.hl7").read_bytes()


def test_mllp_send_delivers_a_file_of_messages_and_gets_aa_ae_ar(tmp_path):
    good = [
        _golden("adt-a04/minimal-bsn-name-and-birth-date"),
        _golden("oru-r01/numbers-units-ranges-and-flags"),
        _golden("mdm-t02/consult-answer-auto-filed-with-e-and-p-lines"),
        _golden("ref-i12/e-consult-to-a-vakgroep"),
    ]
    bad_bsn = good[0].replace(b"A04-0001", b"BAD-1").replace(b"123456782^", b"123456789^")
    unsupported = good[0].replace(b"A04-0001", b"BAD-2").replace(b"ADT^A04", b"ADT^A99")
    broken_escape = good[0].replace(b"A04-0001", b"BAD-3").replace(b"Berg^Jan", b"Berg\\Q^Jan")
    # --loose: newline-separated messages as many files hold them (mllp_send turns newlines into \r)
    loose = tmp_path / "loose.hl7"
    loose.write_bytes(
        b"\n".join(m.replace(b"\r", b"\n") for m in [*good, bad_bsn, unsupported, broken_escape])
    )
    # framed: what mllp_send reads without --loose, including a frame without any MSH
    framed = tmp_path / "framed.hl7"
    framed.write_bytes(
        frame(good[0].replace(b"A04-0001", b"F-1"))
        + frame(b"this is not HL7 at all")
        + frame(good[1].replace(b"LAB-0001", b"F-2"))
    )
    listener = Listener(f"sqlite:///{tmp_path / 'in.db'}")
    try:
        mllp_send = [sys.executable, "-m", "hl7.client", "--port", str(listener.port)]
        first = subprocess.run(
            [*mllp_send, "--loose", "--file", str(loose), "127.0.0.1"],
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout
        assert _acks(first) == [
            ("AA", "A04-0001"),
            ("AA", "LAB-0001"),
            ("AA", "MDM-0001"),
            ("AA", "REF-0001"),
            ("AE", "BAD-1"),
            ("AR", "BAD-2"),
            ("AR", "BAD-3"),
        ]
        out = subprocess.run(
            [*mllp_send, "--file", str(framed), "127.0.0.1"], capture_output=True, timeout=120, check=True
        ).stdout
        assert _acks(out) == [("AA", "F-1"), ("AR", ""), ("AA", "F-2")]
        again = subprocess.run(
            [*mllp_send, "--loose", "--file", str(loose), "127.0.0.1"],
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout
        assert again == first  # every resent message gets its original ACK, byte for byte
    finally:
        listener.stop()
    store = MessageStore(f"sqlite:///{tmp_path / 'in.db'}")
    try:
        assert (
            store.count() == 9
        )  # 7 + 2: the frame without MSH has no key and is not stored; resends add nothing
    finally:
        store.close()


def _send_and_wait(port: int, message: bytes, timeout: float) -> bytes | None:
    """Send one framed message; the ACK, or None when the listener died or did not answer in time."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(frame(message))
        decoder = FrameDecoder(1 << 20)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    return None
                frames = decoder.feed(data)
                if frames:
                    return frames[0].data
        except (TimeoutError, ConnectionError):
            return None


def test_kill_9_between_store_and_ack_then_resend_stores_exactly_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    message = _golden("oru-r01/two-orders-with-own-times-and-ordering-gp")
    listener = Listener(db, env={"HISGW_MLLP_TEST_DELAY_AFTER_STORE": "60"})
    store = MessageStore(db)
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as s:
            s.sendall(frame(message))
            deadline = time.monotonic() + 30
            while store.count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.count() == 1  # durably stored ...
            s.settimeout(0.3)
            with pytest.raises(TimeoutError):
                s.recv(100)  # ... and not yet acknowledged
            listener.proc.kill()  # SIGKILL: no cleanup, no ACK
            listener.proc.wait(10)
            s.settimeout(5)
            try:
                assert s.recv(100) == b""
            except ConnectionError:
                pass
        listener.stop()
        listener = Listener(db)
        ack = _send_and_wait(listener.port, message, timeout=30)  # the sender resends after its timeout
        assert ack is not None and _acks(b"\r" + ack.split(b"\r", 1)[1]) == [("AA", "LAB-0003")]
        rows = store.rows()
        assert len(rows) == 1 and rows[0].raw == message and rows[0].ack == ack
        assert _send_and_wait(listener.port, message, timeout=30) == ack
    finally:
        listener.stop()
        store.close()


def test_twenty_megabyte_frame_and_endless_frame_keep_memory_bounded(tmp_path):
    listener = Listener(
        f"sqlite:///{tmp_path / 'big.db'}", "--max-frame", str(1 << 20), "--idle-timeout", "2"
    )
    try:
        proc = psutil.Process(listener.proc.pid)
        assert _send_and_wait(listener.port, _golden("adt-a04/minimal-bsn-name-and-birth-date"), 30)
        before = proc.memory_info().rss
        huge = _golden("adt-a04/minimal-bsn-name-and-birth-date").replace(
            b"PV1|1|O", b"PV1|1|O\rOBX|1|TX|x||" + b"A" * (20 * 1024 * 1024)
        )
        ack = _send_and_wait(listener.port, huge, timeout=60)
        assert ack is not None and b"MSA|AR|A04-0001" in ack and b"MLLP-001" in ack
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as s:
            s.sendall(SB + b"MSH|^~\\&|" + b"B" * (5 * 1024 * 1024))  # never an end block
            t0 = time.monotonic()
            assert s.recv(100) == b""  # closed by the idle timeout, no ACK for a frame that never ended
            assert time.monotonic() - t0 < 20
        grown = proc.memory_info().rss - before
        assert grown < 15 * 1024 * 1024, f"listener grew by {grown} bytes for 25 MB of hostile frames"
    finally:
        listener.stop()

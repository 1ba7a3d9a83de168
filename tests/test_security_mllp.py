"""Security regression (issue 14): MLLP listeners no one can starve, and a reused message key that is
refused rather than silently dropped. Real loopback sockets, the real store and audit log."""

from __future__ import annotations

import asyncio
import re
import resource
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from gateway.audit import mllp_receipt
from gateway.db import make_engine
from gateway.mllp import MessageStore, MllpClient, MllpServer
from gateway.schema import audit_log, metadata

GOLDEN = Path(__file__).parent / "golden" / "hl7v2"
ADT = (GOLDEN / "adt-a04" / "minimal-bsn-name-and-birth-date" / "message.hl7").read_bytes()
IDLE = 500


def _msa(ack: bytes) -> tuple[str, str]:
    m = re.search(rb"(?:^|\r)MSA\|([A-Z]{2})(?:\|([^|\r]*))?", ack)
    assert m, ack
    return m.group(1).decode(), (m.group(2) or b"").decode()


def _err_locations(ack: bytes) -> list[tuple[str, str]]:
    return [
        (m.group(1).decode(), m.group(2).decode())
        for m in re.finditer(rb"\rERR\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|([^|^]*)\^[^|]*\|[^|]*\|([^|]*)\|", ack)
    ]


def _enough_descriptors(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n:
        pytest.fail(f"needs {n} file descriptors (ulimit -n)")


@pytest.fixture
def audited_store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    from gateway.schema import GENESIS_HASH, audit_head

    with engine.begin() as conn:
        conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS_HASH))
    store = MessageStore(url, on_receipt=mllp_receipt)
    yield store, engine
    store.close()
    engine.dispose()


def test_500_idle_connections_do_not_lock_a_sender_out(audited_store):
    """Issue 14 #4: idle connections used to hold every slot for 60 s. Now the oldest idle connection
    makes room, so a real sender gets its ACK within 2 s with 500 idle sockets open against the listener."""
    store, _ = audited_store
    _enough_descriptors(4 * IDLE)

    async def run():
        server = MllpServer(store, idle_timeout=60, first_frame_timeout=30)
        host, port = await server.start()
        idle = []
        try:
            for _ in range(IDLE):
                idle.append(await asyncio.open_connection(host, port))
            await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            async with await MllpClient.connect(host, port, timeout=5) as c:
                ack = await c.send(ADT)
            took = time.perf_counter() - t0
            return ack, took, server.evicted, server.active
        finally:
            for _, w in idle:
                w.transport.abort()
            await server.close()

    ack, took, evicted, active = asyncio.run(run())
    assert _msa(ack) == ("AA", "A04-0001")
    assert took < 2.0, f"ACK after {took:.2f}s"
    assert evicted >= IDLE - 50 and active <= 200


def test_a_silent_connection_is_closed_before_its_first_frame(audited_store):
    store, _ = audited_store

    async def run():
        server = MllpServer(store, idle_timeout=60, first_frame_timeout=0.3)
        host, port = await server.start()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            t0 = time.perf_counter()
            data = await asyncio.wait_for(reader.read(10), 5)
            writer.close()
            return data, time.perf_counter() - t0
        finally:
            await server.close()

    data, took = asyncio.run(run())
    assert data == b"" and 0.25 < took < 2


def test_a_conflicting_duplicate_gets_ar_naming_msh_10_and_is_audited(audited_store):
    """Issue 14 #5: the same MSH-3/4/10 with other content used to get AA and vanish."""
    store, engine = audited_store
    other = ADT.replace(b"Berg^Jan", b"Bergh^Jan")
    restamped = re.sub(rb"^(MSH\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|)[^|]*", rb"\g<1>20991231235959", ADT)
    assert other != ADT and restamped != ADT

    async def run():
        server = MllpServer(store)
        host, port = await server.start()
        try:
            async with await MllpClient.connect(host, port) as c:
                return await c.send(ADT), await c.send(other), await c.send(restamped)
        finally:
            await server.close()

    first, conflict, resend = asyncio.run(run())
    assert _msa(first) == ("AA", "A04-0001")
    assert _msa(conflict) == ("AR", "A04-0001")
    assert _err_locations(conflict) == [("MLLP-005", "MSH-10")] and b"|MSH^1^10^1|" in conflict
    assert resend == first  # a resend restamped in MSH-7 is still a resend
    assert [bytes(r.raw) for r in store.rows()] == [ADT]
    with engine.connect() as conn:
        descs = [orjson.loads(b)["outcomeDesc"] for (b,) in conn.execute(select(audit_log.c.body))]
    assert descs == [
        "AA MSH-10 A04-0001",
        "AR MSH-10 A04-0001 MLLP-005 conflicting duplicate, not stored",
        "AA MSH-10 A04-0001 resend",
    ]

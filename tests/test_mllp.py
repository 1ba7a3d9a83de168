"""The MLLP listener (gateway/mllp, docs/hl7v2.md §7): ACK only after the message is durably stored, a resent
message gets its original ACK byte for byte, original and enhanced acknowledgement modes, hostile peers,
limits, TLS with client certificates, and the store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import ssl
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from gateway.mllp import MessageStore, MllpClient, MllpServer
from gateway.mllp.framing import EB, SB, FrameDecoder, FramingError, frame
from gateway.mllp.handler import decide
from gateway.mllp.store import InboundRecord

GOLDEN = Path(__file__).parent / "golden" / "hl7v2"
ADT = (GOLDEN / "adt-a04" / "minimal-bsn-name-and-birth-date" / "message.hl7").read_bytes()
ORU = (GOLDEN / "oru-r01" / "numbers-units-ranges-and-flags" / "message.hl7").read_bytes()


def with_id(msg: bytes, control_id: str) -> bytes:
    return re.sub(
        rb"(\|[A-Z]{3}\^[A-Z0-9]{3}(?:\^[A-Z0-9_]+)?\|)[^|]*\|",
        rb"\g<1>" + control_id.encode() + b"|",
        msg,
        count=1,
    )


def msa(ack: bytes) -> tuple[str, str]:
    m = re.search(rb"(?:^|\r)MSA\|([A-Z]{2})(?:\|([^|\r]*))?", ack)
    assert m, ack
    return m.group(1).decode(), (m.group(2) or b"").decode()


def errs(ack: bytes) -> list[tuple[str, str]]:
    """(problem code, location) of every ERR segment."""
    return [
        (m.group(1).decode(), m.group(2).decode())
        for m in re.finditer(rb"\rERR\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|([^|^]*)\^[^|]*\|[^|]*\|([^|]*)\|", ack)
    ]


@contextlib.asynccontextmanager
async def listening(store: MessageStore, **kw):
    server = MllpServer(store, **kw)
    host, port = await server.start()
    try:
        yield server, host, port
    finally:
        await server.close()


@pytest.fixture
def store(tmp_path: Path):
    s = MessageStore(f"sqlite:///{tmp_path / 'mllp.db'}")
    yield s
    s.close()


# --------------------------------------------------------------------------- acknowledgement and durability


def test_aa_after_storing_and_a_resend_gets_the_original_ack_byte_for_byte(store):
    async def run():
        async with listening(store) as (_, host, port), await MllpClient.connect(host, port) as c:
            first = await c.send(ADT)
            again = await c.send(ADT)
        return first, again

    first, again = asyncio.run(run())
    assert msa(first) == ("AA", "A04-0001") and again == first
    rows = store.rows()
    assert len(rows) == 1 and rows[0].raw == ADT and rows[0].ack == first and rows[0].ack_code == "AA"


def test_a_thousand_resends_over_four_connections_are_stored_once_with_one_ack(store):
    async def run():
        async with listening(store) as (_, host, port):

            async def one() -> list[bytes]:
                async with await MllpClient.connect(host, port) as c:
                    return await c.send_many([ORU] * 250, window=50)

            return [a for acks in await asyncio.gather(*(one() for _ in range(4))) for a in acks]

    acks = asyncio.run(run())
    assert len(acks) == 1000 and len(set(acks)) == 1 and msa(acks[0]) == ("AA", "LAB-0001")
    assert store.count() == 1 and store.rows()[0].ack == acks[0]


def test_no_ack_before_the_commit(store):
    release = threading.Event()
    real = store.store_many

    def slow(records, now=None):
        assert release.wait(10)
        return real(records, now)

    store.store_many = slow  # type: ignore[method-assign]

    async def run():
        async with (
            listening(store) as (_, host, port),
            await MllpClient.connect(host, port, timeout=0.5) as c,
        ):
            await c.write(ADT)
            with pytest.raises(TimeoutError):
                await c.read_ack()
            assert store.count() == 0
            release.set()
            c.timeout = 10
            return await c.read_ack()

    assert msa(asyncio.run(run()))[0] == "AA" and store.count() == 1


def test_store_failure_answers_ae_and_the_resend_is_accepted(store):
    calls = {"n": 0}
    real = store.store_many

    def flaky(records, now=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real(records, now)

    store.store_many = flaky  # type: ignore[method-assign]

    async def run():
        async with listening(store) as (_, host, port), await MllpClient.connect(host, port) as c:
            return await c.send(ADT), await c.send(ADT)

    failed, ok = asyncio.run(run())
    assert msa(failed) == ("AE", "A04-0001") and errs(failed) == [("MLLP-003", "message")]
    assert msa(ok) == ("AA", "A04-0001") and store.count() == 1


# --------------------------------------------------------------------------- AE / AR with ERR


def test_content_errors_are_ae_with_err_naming_segment_and_field(store):
    bad = with_id(ADT, "BAD-1").replace(b"123456782^", b"123456789^").replace(b"|19800101|", b"|19801301|")
    ack = decide(bad).ack
    assert msa(ack) == ("AE", "BAD-1")
    assert errs(ack) == [("HL7-021", "PID-3.1"), ("HL7-011", "PID-7")]
    assert b"\rERR||PID^1^3^1^1|102^Data type error^HL70357|E|" in ack


def test_unsupported_type_event_version_and_syntax_errors_are_ar():
    cases = {
        b"ADT^A04^ADT_A01": (b"QRY^A19", "HL7-012"),
        b"|2.5|": (b"|3.0|", "HL7-013"),
        b"ADT^A04": (b"ADT^A99", "HL7-014"),
        b"Berg^Jan": (b"Berg\\F^Jan", "HL7-006"),
        b"UNICODE UTF-8": (b"UNICODE UTF-16", "HL7-004"),
    }
    for old, (new, code) in cases.items():
        d = decide(ADT.replace(old, new))
        assert d.code == "AR" and code in [p.code for p in d.problems], (old, d.problems)
        assert d.record is not None and d.record.ack == d.ack  # stored with its AR: a resend gets the same
    garbage = decide(b"\x00\xff garbage without MSH")
    assert garbage.code == "AR" and garbage.record is None and msa(garbage.ack) == ("AR", "")
    assert errs(garbage.ack) == [("HL7-002", "segment 1")]
    no_id = decide(with_id(ADT, ""))
    assert no_id.code == "AR" and no_id.record is None and errs(no_id.ack) == [("MLLP-004", "MSH-10")]


def test_warnings_travel_as_err_with_severity_w_next_to_aa():
    d = decide(ADT.replace(b"PV1|1|O", b"PV1|1|O\rZPI|x"))
    assert d.code == "AA" and b"\rERR||ZPI^1|0^Message accepted^HL70357|W|HL7-054^^HISGW||ZPI|" in d.ack


def test_ack_for_version_2_3_uses_err_1_and_the_senders_charset():
    v23 = (GOLDEN / "adt-a04" / "version-2-3-ascii-without-msh-18" / "message.hl7").read_bytes()
    d = decide(v23.replace(b"123456782^", b"123456789^"))
    assert d.code == "AE" and b"|2.3\r" in d.ack and b"\rERR|PID^1^3^102&Data type error&HL70357\r" in d.ack
    latin = (GOLDEN / "adt-a04" / "crlf-terminators-and-latin1-diacritics" / "message.hl7").read_bytes()
    d = decide(latin.replace(b"19800101", b"1980"))
    assert d.code == "AE" and d.ack.startswith(b"MSH|") and b"|8859/1\r" in d.ack


# --------------------------------------------------------------------------- enhanced mode


def enhanced(msg: bytes, accept: str, app: str) -> bytes:
    return msg.replace(b"|P|2.5|||||NLD|", f"|P|2.5|||{accept}|{app}|NLD|".encode())


def test_enhanced_mode_accept_ack_then_application_ack_on_the_same_connection(store):
    """MSH-15 decides the accept ACK (CA/CR), MSH-16 the application ACK (AA/AE), which follows it on the
    same connection once the message is stored; a resend gets both again, byte for byte."""

    async def run():
        async with listening(store) as (_, host, port), await MllpClient.connect(host, port, timeout=5) as c:
            e1 = enhanced(with_id(ADT, "E1"), "AL", "AL")
            ca, aa = await c.send(e1), await c.read_ack()
            bad = enhanced(with_id(ADT, "E2"), "AL", "ER").replace(b"123456782^", b"123456789^")
            ca_bad, ae = await c.send(bad), await c.read_ack()
            cr = await c.send(enhanced(with_id(ADT, "E3"), "ER", "NE").replace(b"ADT^A04", b"ADT^A99"))
            only_app = await c.send(enhanced(with_id(ADT, "E4"), "NE", "AL"))  # no accept ACK asked
            ca_su = await c.send(enhanced(with_id(ADT, "E5"), "SU", "NE"))  # no application ACK asked
            again = await c.send(e1), await c.read_ack()
            original = await c.send(with_id(ADT, "E6"))  # the next frame is E6's: nothing else came between
            return ca, aa, ca_bad, ae, cr, only_app, ca_su, again, original

    ca, aa, ca_bad, ae, cr, only_app, ca_su, again, original = asyncio.run(run())
    assert msa(ca) == ("CA", "E1") and msa(aa) == ("AA", "E1")
    assert msa(ca_bad) == ("CA", "E2") and msa(ae) == ("AE", "E2") and errs(ae)[0] == ("HL7-021", "PID-3.1")
    assert msa(cr) == ("CR", "E3") and errs(cr)[0][0] == "HL7-014"
    assert msa(only_app) == ("AA", "E4") and msa(ca_su) == ("CA", "E5")
    assert again == (ca, aa)
    assert msa(original) == ("AA", "E6")
    rows = {r.control_id: r for r in store.rows()}
    assert set(rows) == {"E1", "E2", "E3", "E4", "E5", "E6"}
    assert rows["E1"].app_ack == aa and rows["E2"].app_ack == ae and rows["E4"].app_ack == only_app
    assert rows["E4"].ack is None and rows["E3"].app_ack is None and rows["E5"].app_ack is None


# --------------------------------------------------------------------------- hostile peers and limits


def test_frame_decoder_keeps_bounded_memory_and_reports_oversize():
    d = FrameDecoder(max_frame=1000)
    frames = d.feed(SB + b"MSH|^~\\&|A|B|||x||ADT^A04|C1|P|2.5\r" + b"A" * 5000)
    assert frames == [] and d.in_frame and len(d._buf) <= 65536
    for _ in range(100):
        d.feed(b"B" * 100_000)
    assert len(d._buf) <= 65536
    [f] = d.feed(EB + b"\r")
    assert f.oversize and f.size > 10_000_000 and f.data.startswith(b"MSH|")
    with pytest.raises(FramingError):
        FrameDecoder(1000).feed(b"x" * 5000)
    assert [x.data for x in FrameDecoder(100).feed(b"\r\n " + frame(b"a") + frame(b"b")[:-1] + b"\n")] == [
        b"a",
        b"b",
    ]


def test_hostile_frames_get_ar_or_a_closed_connection(store):
    huge = ADT.replace(b"PV1|1|O", b"PV1|1|O\rOBX|1|TX|x||" + b"A" * (20 * 1024 * 1024))

    async def run():
        async with listening(store, idle_timeout=1.0) as (_, host, port):
            async with await MllpClient.connect(host, port, timeout=30) as c:
                too_big = await c.send(huge)
                no_msh = await c.send(b"\x00\x01\x02 binary \xff\xfe")
                bad_charset = await c.send(with_id(ADT, "H3").replace(b"UNICODE UTF-8", b"EBCDIC"))
                broken = await c.send(with_id(ADT, "H4").replace(b"Berg^Jan", b"Berg\\X4^Jan"))
                still_fine = await c.send(with_id(ADT, "H5"))
            async with await MllpClient.connect(host, port, timeout=10) as c:
                await c.write_raw(
                    bytes(range(256)).replace(SB, b"").replace(EB, b"") * 40
                )  # garbage, no frame
                with pytest.raises(ConnectionError):
                    await c.read_ack()
            async with await MllpClient.connect(host, port, timeout=10) as c:
                await c.write_raw(SB + b"MSH|^~\\&|never ends")  # no end block: the idle timeout closes it
                with pytest.raises(ConnectionError):
                    await c.read_ack()
            return too_big, no_msh, bad_charset, broken, still_fine

    too_big, no_msh, bad_charset, broken, still_fine = asyncio.run(run())
    assert msa(too_big) == ("AR", "A04-0001") and errs(too_big) == [("MLLP-001", "message")]
    assert (
        msa(no_msh) == ("AR", "")
        and msa(bad_charset) == ("AR", "H3")
        and errs(bad_charset)[0][0] == "HL7-004"
    )
    assert msa(broken) == ("AR", "H4") and errs(broken)[0] == ("HL7-006", "PID-5.1")
    assert msa(still_fine) == ("AA", "H5")
    assert sorted(r.control_id for r in store.rows()) == ["H3", "H4", "H5"]


def test_connection_limit_closes_the_oldest_idle_connection_and_idle_timeout(store):
    async def run():
        async with listening(store, max_connections=2, idle_timeout=0.5) as (server, host, port):
            t0 = asyncio.get_running_loop().time()
            a = await MllpClient.connect(host, port)
            await asyncio.sleep(0.05)
            b = await MllpClient.connect(host, port)
            deadline = asyncio.get_running_loop().time() + 5
            while server.active < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.005)  # the listener registers both connections
            assert server.active == 2
            third = await MllpClient.connect(host, port, timeout=5)
            with pytest.raises(ConnectionError):  # the oldest idle one made room for the third
                await a.read_ack()
            assert msa(await third.send(ADT)) == ("AA", "A04-0001")
            with pytest.raises(ConnectionError):  # idle: closed by the listener
                await b.read_ack()
            waited = asyncio.get_running_loop().time() - t0
            for c in (a, b, third):
                await c.close()
            return waited, server.evicted

    waited, evicted = asyncio.run(run())
    assert 0.45 < waited < 5 and evicted == 1


# --------------------------------------------------------------------------- TLS with client certificates


def _pki(tmp: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (cryptography)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, key, issuer_name, issuer_key, *, ca: bool = False, san=None):
        b = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    out: dict[str, Path] = {}

    def save(label: str, key, crt) -> None:
        out[label + ".key"] = tmp / f"{label}.key"
        out[label + ".key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[label + ".crt"] = tmp / f"{label}.crt"
        out[label + ".crt"].write_bytes(crt.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("his-gateway test CA", ca_key, name("his-gateway test CA"), ca_key, ca=True)
    save("ca", ca_key, ca)
    for label, san in (("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        save(label, key, cert(f"{label}.test", key, ca.subject, ca_key, san=san))
    return out


def test_tls_with_client_certificates(store, tmp_path):
    from gateway.mllp.__main__ import server_context

    pki = _pki(tmp_path)
    server_ctx = server_context(str(pki["server.crt"]), str(pki["server.key"]), str(pki["ca.crt"]))

    def client_ctx(with_cert: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki["ca.crt"]))
        if with_cert:
            ctx.load_cert_chain(str(pki["client.crt"]), str(pki["client.key"]))
        return ctx

    async def run():
        async with listening(store, ssl=server_ctx, idle_timeout=5) as (_, host, port):
            async with await MllpClient.connect(host, port, ssl=client_ctx(True)) as c:
                ok = await c.send(ADT)
            refused = None
            try:
                async with await MllpClient.connect(host, port, ssl=client_ctx(False), timeout=5) as c:
                    refused = await c.send(with_id(ADT, "NOCERT"))
            except (ssl.SSLError, ConnectionError, OSError):
                pass
            return ok, refused

    ok, refused = asyncio.run(run())
    assert msa(ok) == ("AA", "A04-0001") and refused is None
    assert [r.control_id for r in store.rows()] == ["A04-0001"]


# --------------------------------------------------------------------------- the store itself


def _record(control_id: str, ack: bytes) -> InboundRecord:
    return InboundRecord(
        key=("ZIS", "Martini", control_id), message_type="ADT^A04", raw=b"MSH|...", ack_code="AA", ack=ack
    )


def test_the_database_enforces_one_row_per_sender_and_control_id(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    a, b = MessageStore(url), MessageStore(url)  # two listeners on one database
    try:
        first = a.store(_record("X1", b"ack-1"))
        second = b.store(_record("X1", b"ack-2"))
        batch = b.store_many([_record("X2", b"ack-3"), _record("X2", b"ack-4"), _record("X1", b"ack-5")])
        assert not first.duplicate and second.duplicate and second.ack == b"ack-1"
        assert [(r.ack, r.duplicate) for r in batch] == [
            (b"ack-3", False),
            (b"ack-3", True),
            (b"ack-1", True),
        ]
        assert a.count() == 2
    finally:
        a.close()
        b.close()


def test_postgresql_store_behaves_the_same(pg_url):
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    a, b = MessageStore(url), MessageStore(url)
    try:
        results: list = []

        def race(s: MessageStore) -> None:
            results.extend(s.store_many([_record(f"P{i}", f"ack-{id(s)}-{i}".encode()) for i in range(50)]))

        threads = [threading.Thread(target=race, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert a.count() == 50 and sum(not r.duplicate for r in results) == 50
        rows = {r.control_id: r.ack for r in a.rows()}
        for chunk in (results[:50], results[50:]):  # each thread's answers, in its order P0 .. P49
            assert [r.ack for r in chunk] == [rows[f"P{i}"] for i in range(50)]
    finally:
        a.close()
        b.close()


def test_receipt_hook_runs_in_the_storing_transaction(tmp_path):
    """`hisgw serve` audits each receipt through `on_receipt`: called for new and resent messages in the
    storing transaction; when it fails, nothing of the batch is stored (the sender gets AE and resends)."""
    from sqlalchemy import text

    seen: list[tuple[str, bool]] = []

    def hook(conn, record, resend):
        conn.execute(text("SELECT 1"))
        seen.append((record.key[2], resend))

    url = f"sqlite:///{tmp_path / 'hook.db'}"
    store = MessageStore(url, on_receipt=hook)
    try:
        store.store_many([_record("H1", b"a1"), _record("H2", b"a2")])
        store.store_many([_record("H1", b"a3"), _record("H3", b"a4")])
        assert seen == [("H1", False), ("H2", False), ("H1", True), ("H3", False)]

        def failing(conn, record, resend):
            raise OperationalError("INSERT INTO audit_log", {}, Exception("audit write failed"))

        store.on_receipt = failing
        with pytest.raises(OperationalError):
            store.store_many([_record("H4", b"a5"), _record("H1", b"a6")])
        assert sorted(r.control_id for r in store.rows()) == ["H1", "H2", "H3"]
    finally:
        store.close()

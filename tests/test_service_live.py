"""The gateway as it runs (issue 5, acceptance 1, 2 and 5): `hisgw serve --demo` and the README's first call,
a FHIR client nobody here wrote (fhirpy), two gateway processes on one PostgreSQL, mutual TLS, metrics and
structured logs without patient data."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.auth.keys import token_request
from tests.conftest import ROOT, TEST_CLIENTS, ServerProcess, Service, free_port

PS_BSN = "555555914"  # the patient of the real Nictiz professional summary
PS_FAMILY = "Direnç"


def _demo_token(
    server: ServerProcess, workdir: Path, client: str = "demo-praktijk-1", scope: str = "system/*.rs"
) -> str:
    keys = workdir / "var" / "demo-clients"
    jwk = json.loads((keys / f"{client}.jwks.json").read_text())["keys"][0]
    form = token_request(
        client,
        (keys / f"{client}.private.pem").read_bytes(),
        jwk["kid"],
        server.base_url + "/auth/token",
        scope,
        alg=jwk["alg"],
    )
    r = httpx.post(server.base_url + "/auth/token", data=form)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    metrics, mllp = free_port(), free_port()
    server = ServerProcess(
        ["--demo", "--metrics-port", str(metrics), "--mllp-port", str(mllp)], workdir
    ).wait_ready()
    server.metrics_port = metrics
    server.mllp_port = mllp
    try:
        yield server, workdir
    finally:
        server.stop()


def test_first_call_as_written(demo):
    """The README's flow: the demo prints the first call; the script signs, gets a token and searches."""
    server, workdir = demo
    printed = server.out.read_text()
    assert "scripts/first-call.py" in printed and server.base_url in printed
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "first-call.py"),
            "--base-url",
            server.base_url,
            "--bsn",
            PS_BSN,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "access token" in r.stdout and "1 match(es)" in r.stdout and "1950-05-20" in r.stdout


def test_demo_data_and_directory(demo):
    server, workdir = demo
    token = _demo_token(server, workdir)
    h = {"Authorization": f"Bearer {token}"}
    orgs = httpx.get(server.base_url + "/Organization?_count=100", headers=h).json()
    names = {e["resource"]["name"] for e in orgs["entry"]}
    assert {"Martini Ziekenhuis", "UMCG", "Treant", "Wilhelmina Ziekenhuis Assen (WZA)"} <= names
    umcg = next(e["resource"]["id"] for e in orgs["entry"] if e["resource"]["name"] == "UMCG")
    services = httpx.get(
        server.base_url + f"/HealthcareService?organization={umcg}&_count=100", headers=h
    ).json()
    assert "Klinische Genetica" in {e["resource"]["name"] for e in services["entry"]}
    assert services["total"] == 12  # 8 specialisms + 4 clinical genetics vakgroep/subspecialisms (issue 6)
    other = _demo_token(server, workdir, "demo-praktijk-2")
    r = httpx.get(
        server.base_url + f"/Patient?identifier={PS_BSN}", headers={"Authorization": f"Bearer {other}"}
    )
    assert r.json()["total"] == 0  # the patient belongs to practice 1


def test_fhirpy_reads_and_searches_with_a_token(demo):
    from fhirpy import SyncFHIRClient

    server, workdir = demo
    client = SyncFHIRClient(server.base_url, authorization=f"Bearer {_demo_token(server, workdir)}")
    patients = (
        client.resources("Patient")
        .search(identifier=f"http://fhir.nl/fhir/NamingSystem/bsn|{PS_BSN}")
        .fetch()
    )
    assert len(patients) == 1 and patients[0]["birthDate"] == "1950-05-20"
    same = client.reference("Patient", patients[0]["id"]).to_resource()
    assert same["id"] == patients[0]["id"]
    assert client.resources("HealthcareService").search(name="cardio").count() >= 4
    assert len(client.resources("Organization").limit(3).fetch_all()) >= 7  # follows next links
    with pytest.raises(Exception):  # noqa: B017 - fhirpy's own error type: what matters is the refusal
        SyncFHIRClient(server.base_url).resources("Patient").fetch()


def test_mllp_listener_runs_beside_the_api(demo):
    """`hisgw serve` starts the MLLP listener of gateway.mllp next to the API: a message gets an ACK."""
    import socket

    server, workdir = demo
    message = (
        b"MSH|^~\\&|LAB|ZH|HISGW|PRAKTIJK|20240101120000||ADT^A08|MSG-LIVE-1|P|2.5\r"
        b"EVN|A08|20240101120000\rPID|1||555555914^^^NLMINBIZA^NNNLD||Direnc^A||19500520|F\rPV1|1|O\r"
    )
    replies = []
    for _ in range(2):  # the second is a resend: stored once, audited as a receipt again
        with socket.create_connection(("127.0.0.1", server.mllp_port), timeout=30) as s:
            s.sendall(b"\x0b" + message + b"\x1c\r")
            reply = b""
            while not reply.endswith(b"\x1c\r"):
                chunk = s.recv(4096)
                assert chunk, reply
                reply += chunk
        replies.append(reply)
    assert replies[0].startswith(b"\x0bMSH|") and b"\rMSA|AA|MSG-LIVE-1" in replies[0]
    assert replies[1] == replies[0]

    # NEN 7513: each receipt left exactly one AuditEvent in the gateway's hash chain, naming the patient by
    # BSN
    import sqlite3

    with sqlite3.connect(workdir / "var" / "hisgw.db") as db:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM audit_log ORDER BY seq")]
    receipts = [
        e for e in bodies if e["subtype"][0]["code"] == "mllp-receipt" and "MSG-LIVE-1" in e["outcomeDesc"]
    ]
    assert [e["outcomeDesc"] for e in receipts] == ["AA MSH-10 MSG-LIVE-1", "AA MSH-10 MSG-LIVE-1 resend"]
    for e in receipts:
        assert e["action"] == "C" and e["outcome"] == "0"
        assert e["agent"][0]["who"]["identifier"]["value"] == "LAB|ZH"
        idents = [x["what"].get("identifier") for x in e["entity"]]
        assert {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": PS_BSN} in idents


def test_health_metrics_and_logs_without_patient_data(demo):
    server, workdir = demo
    assert httpx.get(server.base_url + "/health").json() == {"status": "pass"}
    token = _demo_token(server, workdir)
    httpx.get(
        server.base_url + f"/Patient?identifier={PS_BSN}&family={PS_FAMILY}",
        headers={"Authorization": f"Bearer {token}"},
    )
    metrics = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics").text
    assert 'hisgw_requests_total{method="GET",route="/{type}",status="200"}' in metrics
    assert "hisgw_audit_events_total" in metrics
    assert httpx.get(server.base_url + "/metrics").status_code in (401, 404)  # not on the public API
    server.stop()  # flushes the request log
    log = server.log.read_text("utf-8")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(x.get("route") == "/{type}" and x.get("type") == "Patient" for x in lines)
    assert PS_BSN not in log and PS_FAMILY not in log and "Fleurop" not in log


@pytest.fixture
def two_gateways(tmp_path, pg_url):
    """Two `hisgw serve` processes on one PostgreSQL database, sharing clients and signing key."""
    svc = Service(tmp_path, pg_url)  # writes the clients, migrates, creates the signing key
    env = {"HISGW_SIGNING_KEY_FILE": str(svc.settings.signing_key_file)}
    args = [
        "--db",
        pg_url,
        "--clients",
        str(svc.settings.clients_file),
        "--metrics-port",
        "0",
        "--mllp-port",
        "0",
    ]
    servers = [ServerProcess(args, tmp_path, env) for _ in range(2)]
    try:
        for s in servers:
            s.wait_ready()
        yield svc, servers
    finally:
        for s in servers:
            s.stop()
        svc.close()


def _token(svc: Service, server: ServerProcess, client: str = "practice-a") -> str:
    k = svc.keys[client]
    form = token_request(
        client, k.pem, k.kid, server.base_url + "/auth/token", " ".join(TEST_CLIENTS[client][4]), alg=k.alg
    )
    r = httpx.post(server.base_url + "/auth/token", data=form)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_two_processes_on_one_postgresql(two_gateways):
    from gateway.audit import verify

    svc, (one, two) = two_gateways
    # each process only accepts tokens for its own URL (aud); the key is shared
    h1 = {"Authorization": f"Bearer {_token(svc, one)}", "Content-Type": "application/fhir+json"}
    h2 = {"Authorization": f"Bearer {_token(svc, two)}", "Content-Type": "application/fhir+json"}
    assert httpx.get(two.base_url + "/Patient", headers=h1).status_code == 401
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "123456782"}],
        "gender": "female",
    }
    created = httpx.post(one.base_url + "/Patient", json=body, headers=h1)
    pid = created.json()["id"]
    read = httpx.get(two.base_url + f"/Patient/{pid}", headers=h2)
    assert read.status_code == 200 and read.json() == created.json() and read.headers["etag"] == 'W/"1"'
    upd = httpx.put(
        two.base_url + f"/Patient/{pid}",
        json={**body, "id": pid, "gender": "male"},
        headers={**h2, "If-Match": 'W/"1"'},
    )
    assert upd.status_code == 200 and upd.headers["etag"] == 'W/"2"'
    stale = httpx.put(
        one.base_url + f"/Patient/{pid}", json={**body, "id": pid}, headers={**h1, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert httpx.get(one.base_url + f"/Patient/{pid}", headers=h1).json()["gender"] == "male"

    # eight parallel identical conditional creates, spread over both processes: one resource
    cond = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "race-1"}]}

    def create(i: int):
        server, h = (one, h1) if i % 2 else (two, h2)
        return httpx.post(
            server.base_url + "/Patient",
            json=cond,
            headers={**h, "If-None-Exist": "identifier=urn:test|race-1"},
            timeout=60,
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    assert {r.status_code for r in answers} <= {200, 201}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.status_code == 201 for r in answers) == 1
    for server, h in ((one, h1), (two, h2)):
        assert (
            httpx.get(server.base_url + "/Patient?identifier=urn:test|race-1", headers=h).json()["total"] == 1
        )

    # concurrent reads and writes through both: one intact audit chain, an event per request
    before = svc.audit_count()

    def mixed(i: int):
        server, h = (one, h1) if i % 2 else (two, h2)
        if i % 3:
            return httpx.get(server.base_url + f"/Patient/{pid}", headers=h, timeout=60).status_code
        return httpx.post(
            server.base_url + "/Observation",
            headers=h,
            timeout=60,
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": f"Patient/{pid}"},
            },
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(mixed, range(64)))
    assert set(statuses) <= {200, 201}
    assert svc.audit_count() == before + 64
    assert verify(svc.engine).ok


def test_eight_parallel_conditional_creates_over_http_on_sqlite(tmp_path):
    svc = Service(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}")
    server = ServerProcess(
        [
            "--db",
            svc.settings.db_url,
            "--clients",
            str(svc.settings.clients_file),
            "--metrics-port",
            "0",
            "--mllp-port",
            "0",
        ],
        tmp_path,
        {"HISGW_SIGNING_KEY_FILE": str(svc.settings.signing_key_file)},
    ).wait_ready()
    try:
        h = {"Authorization": f"Bearer {_token(svc, server)}", "If-None-Exist": "identifier=urn:test|race-2"}
        body = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "race-2"}]}
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(server.base_url + "/Patient", json=body, headers=h, timeout=60),
                    range(8),
                )
            )
        assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
        assert len({r.json()["id"] for r in answers}) == 1
    finally:
        server.stop()
        svc.close()


def _certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (UZI-style PKI)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def make(name: str, issuer_key=None, issuer_name=None, *, ca=False, server=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        elif not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        return key, cert

    ca_key, ca_cert = make("test CA", ca=True)
    out = {}
    for name, kind in (("server", True), ("client", False)):
        key, cert = make(name, ca_key, ca_cert.subject, server=kind)
        out[f"{name}_key"] = directory / f"{name}.key"
        out[f"{name}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[f"{name}_cert"] = directory / f"{name}.pem"
        out[f"{name}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out["ca"] = directory / "ca.pem"
    out["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return out


def test_mutual_tls(tmp_path):
    svc = Service(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}")
    certs = _certificates(tmp_path)
    port = free_port()
    server = ServerProcess(
        [
            "--db",
            svc.settings.db_url,
            "--clients",
            str(svc.settings.clients_file),
            "--metrics-port",
            "0",
            "--mllp-port",
            "0",
            "--ssl-certfile",
            str(certs["server_cert"]),
            "--ssl-keyfile",
            str(certs["server_key"]),
            "--ssl-ca-certs",
            str(certs["ca"]),
            "--require-client-cert",
        ],
        tmp_path,
        port=port,
    )
    base = f"https://127.0.0.1:{port}"
    try:
        with_cert = ssl.create_default_context(cafile=str(certs["ca"]))
        with_cert.load_cert_chain(str(certs["client_cert"]), str(certs["client_key"]))
        without = ssl.create_default_context(cafile=str(certs["ca"]))
        for _ in range(200):
            try:
                r = httpx.get(base + "/metadata", verify=with_cert, timeout=5)
                break
            except httpx.ConnectError:
                if server.proc.poll() is not None:
                    raise
                import time

                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["implementation"]["url"] == base
        with pytest.raises(httpx.HTTPError):
            httpx.get(base + "/metadata", verify=without, timeout=5).raise_for_status()
    finally:
        server.stop()
        svc.close()

"""Security soak (issue 14, acceptance 6): a real `hisgw serve` under everything hostile at once.

    uv run python -m bench.bench_soak [--seconds 600] [--no-write]

Starts ``hisgw serve`` (API, MLLP listener, metrics) on a fresh SQLite database with two registered
clients and, for ``--seconds``, runs together:

- **schemathesis** stateful runs (``--phases stateful``, the served OpenAPI document, SMART tokens from an
  auth hook), one after the other;
- **MLLP garbage**: random bytes, unframed text, frames cut off, oversized frames, idle and silent
  connections, valid messages and conflicting duplicates (each answer checked: AA for a new message, AR with
  ``MLLP-005`` for a conflicting duplicate);
- the **hostile corpus** of ``tests/test_hostile_corpus.py`` as request bodies (FHIR create, transaction)
  and as MLLP frames, plus stalled HTTP requests (half headers, half bodies) and token-endpoint bursts;
- a steady authenticated read/search/create load whose latency is recorded.

Measured: every 5xx anywhere (the gateway's own ``hisgw_requests_total`` by status, and every answer the
load generators saw), the server's resident memory every 5 s (flat: the largest value after warm-up -- the
first fifth of the run -- at most 10 % above the value at the end of warm-up), the machine's load average.
Results go to ``docs/performance.md`` section "Security soak".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
CLIENT, SCOPE = "soak", "system/*.cruds system/AuditEvent.read"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ADT = (ROOT / "tests/golden/hl7v2/adt-a04/minimal-bsn-name-and-birth-date/message.hl7").read_bytes()

HOOKS = """
import httpx
import schemathesis

from gateway.auth.keys import token_request


@schemathesis.auth(refresh_interval=200, retry_on=[])
class SmartBackendServices:
    def get(self, case, ctx):
        import time

        for _ in range(30):  # a well-behaved client waits when told to (429 Retry-After)
            form = token_request({client!r}, {pem!r}, {kid!r}, {token_url!r}, {scope!r}, alg="ES384")
            r = httpx.post({token_url!r}, data=form, timeout=30)
            if r.status_code != 429:
                return r.json()["access_token"]
            time.sleep(int(r.headers.get("Retry-After", "1")))
        raise RuntimeError("no token")

    def set(self, case, data, ctx):
        case.headers = {{**(case.headers or {{}}), "Authorization": "Bearer " + data}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, workdir: Path, seconds: float):
        self.workdir = workdir
        self.seconds = seconds
        self.fivexx = 0
        self.counts: dict[str, int] = {}
        self.read_ms: list[float] = []
        self.mllp_problems: list[str] = []

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    # -- the server --------------------------------------------------------------------------------------

    def start(self) -> None:
        from gateway.auth.keys import write_client_keys

        keys = self.workdir / "clients"
        private, _, self.kid = write_client_keys(keys, CLIENT, "ES384")
        self.pem = private.read_bytes()
        (keys / "clients.toml").write_text(
            f'[[client]]\nid = "{CLIENT}"\nname = "soak HIS"\n'
            'scopes = ["system/*.cruds", "system/AuditEvent.read"]\n'
            f'jwks_file = "{CLIENT}.jwks.json"\n'
            '[client.organization]\nname = "Soak practice"\nkind = "practice"\nagb = "01099001"\n',
            "utf-8",
        )
        self.port, self.mllp_port, self.metrics_port = _free_port(), _free_port(), _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HISGW_SIGNING_KEY_FILE": str(self.workdir / "signing.pem"),
            "HISGW_LOG_REQUESTS": "false",
            "HISGW_HTTP_HEADER_TIMEOUT": "5",
            "HISGW_HTTP_BODY_TIMEOUT": "5",
        }
        self.log = self.workdir / "serve.log"
        cmd = [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--port",
            str(self.port),
            "--mllp-port",
            str(self.mllp_port),
            "--metrics-port",
            str(self.metrics_port),
            "--db",
            f"sqlite:///{self.workdir / 'gw.db'}",
            "--clients",
            str(keys / "clients.toml"),
        ]
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("hisgw serve did not come up: " + self.log.read_text()[-2000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def token(self) -> str:
        from gateway.auth.keys import token_request

        url = self.base + "/auth/token"
        for _ in range(30):  # a well-behaved client waits when told to (429 Retry-After)
            r = httpx.post(url, data=token_request(CLIENT, self.pem, self.kid, url, SCOPE), timeout=30)
            if r.status_code != 429:
                r.raise_for_status()
                return r.json()["access_token"]
            self.count("own token request told to wait")
            time.sleep(int(r.headers.get("Retry-After", "1")))
        raise RuntimeError("no token after 30 tries")

    def server_5xx(self) -> int:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        return sum(
            int(float(m.group(1)))
            for m in re.finditer(r'hisgw_requests_total\{[^}]*status="5\d\d"[^}]*\} (\S+)', text)
        )

    def seen(self, status: int, what: str) -> None:
        self.count(what)
        if status >= 500:
            self.fivexx += 1
            self.count(f"5xx {what}")

    # -- the load ----------------------------------------------------------------------------------------

    async def steady(self, until: float) -> None:
        token = self.token()
        refreshed = time.monotonic()
        headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as c:
            body = {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:soak", "value": "steady"}],
                "name": [{"family": "Soak"}],
            }
            r = await c.post(
                "/Patient",
                content=orjson.dumps(body),
                headers={**headers, "Authorization": f"Bearer {token}"},
            )
            pid = r.json()["id"]
            while time.monotonic() < until:
                if time.monotonic() - refreshed > 200:
                    token, refreshed = await asyncio.to_thread(self.token), time.monotonic()
                auth = {**headers, "Authorization": f"Bearer {token}"}
                t0 = time.perf_counter()
                r = await c.get(f"/Patient/{pid}", headers=auth)
                self.read_ms.append((time.perf_counter() - t0) * 1000)
                self.seen(r.status_code, "steady read")
                r = await c.get("/Patient?identifier=urn:soak|steady&_count=5", headers=auth)
                self.seen(r.status_code, "steady search")
                new = {**body, "identifier": [{"system": "urn:soak", "value": uuid.uuid4().hex}]}
                r = await c.post("/Patient", content=orjson.dumps(new), headers=auth)
                self.seen(r.status_code, "steady create")
                await asyncio.sleep(0.05)

    async def hostile_http(self, until: float) -> None:
        from tests.test_hostile_corpus import CORPUS

        token = self.token()
        refreshed = time.monotonic()
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as c:
            while time.monotonic() < until:
                if time.monotonic() - refreshed > 200:
                    token, refreshed = await asyncio.to_thread(self.token), time.monotonic()
                auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
                for name, data in CORPUS.items():
                    if time.monotonic() >= until:
                        return
                    r = await c.post("/Patient", content=data, headers=auth)
                    self.seen(r.status_code, "hostile body")
                    bundle = orjson.dumps(
                        {
                            "resourceType": "Bundle",
                            "type": "transaction",
                            "entry": [
                                {
                                    "request": {"method": "POST", "url": "DocumentReference"},
                                    "resource": {
                                        "resourceType": "DocumentReference",
                                        "status": "current",
                                        "description": name,
                                        "content": [
                                            {"attachment": {"data": base64.b64encode(data[:4096]).decode()}}
                                        ],
                                    },
                                }
                            ],
                        }
                    )
                    r = await c.post("/", content=bundle, headers=auth)
                    self.seen(r.status_code, "hostile transaction")
                # token-endpoint burst with garbage assertions: 401 then 429, never 5xx
                answers = await asyncio.gather(
                    *[
                        c.post(
                            "/auth/token",
                            data={
                                "grant_type": "client_credentials",
                                "scope": "system/*.rs",
                                "client_assertion_type": JWT_BEARER,
                                "client_assertion": "e30.e30." + uuid.uuid4().hex,
                            },
                        )
                        for _ in range(100)
                    ]
                )
                for r in answers:
                    self.seen(r.status_code, "token burst")
                    if r.status_code == 429:
                        self.count("token burst 429")
                # stalled requests: half headers and half bodies, closed by the gateway
                socks = []
                for i in range(100):
                    try:
                        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                        s.sendall(
                            b"GET /metadata HTTP/1.1\r\nHost: x\r\n"
                            if i % 2
                            else b"POST /Patient HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n{"
                        )
                        socks.append(s)
                    except OSError:
                        self.count("stalled connect failed")
                await asyncio.sleep(7)
                closed = 0
                for s in socks:
                    s.setblocking(False)
                    try:
                        closed += s.recv(4096) is not None
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed += 1
                    s.close()
                self.count("stalled opened", len(socks))
                self.count("stalled closed by the gateway", closed)

    async def mllp(self, until: float) -> None:
        from gateway.mllp import MllpClient
        from gateway.mllp.framing import EB, SB
        from tests.test_hostile_corpus import CORPUS

        rng = random.Random(14)
        n = 0
        while time.monotonic() < until:
            n += 1
            kind = n % 6
            try:
                if kind == 0:  # a valid message, then the same id with other content
                    cid = f"SOAK{n}"
                    msg = re.sub(rb"\|A04-0001\|", f"|{cid}|".encode(), ADT)
                    async with await MllpClient.connect("127.0.0.1", self.mllp_port, timeout=10) as c:
                        first = await c.send(msg)
                        other = await c.send(msg.replace(b"Berg^Jan", b"Bergh^Jan"))
                    if b"MSA|AA|" not in first or b"MSA|AR|" not in other or b"MLLP-005" not in other:
                        self.mllp_problems.append(f"{cid}: {first[:60]!r} / {other[:80]!r}")
                    self.count("mllp valid + conflicting duplicate")
                elif kind == 1:  # random bytes
                    _, w = await asyncio.open_connection("127.0.0.1", self.mllp_port)
                    w.write(rng.randbytes(rng.randrange(1, 20000)))
                    await w.drain()
                    w.close()
                    self.count("mllp random bytes")
                elif kind == 2:  # hostile corpus as frames
                    async with await MllpClient.connect("127.0.0.1", self.mllp_port, timeout=10) as c:
                        for data in list(CORPUS.values())[:5]:
                            await c.write_raw(SB + data[:200_000].replace(bytes([EB[0]]), b"") + EB)
                    self.count("mllp hostile frames")
                elif kind == 3:  # a frame cut off
                    _, w = await asyncio.open_connection("127.0.0.1", self.mllp_port)
                    w.write(SB + ADT[: rng.randrange(1, len(ADT))])
                    await w.drain()
                    w.close()
                    self.count("mllp cut frames")
                elif kind == 4:  # idle connections (the listener makes room for the next sender)
                    idle = [await asyncio.open_connection("127.0.0.1", self.mllp_port) for _ in range(60)]
                    async with await MllpClient.connect("127.0.0.1", self.mllp_port, timeout=10) as c:
                        ack = await c.send(re.sub(rb"\|A04-0001\|", f"|IDLE{n}|".encode(), ADT))
                    if b"MSA|AA|" not in ack:
                        self.mllp_problems.append(f"IDLE{n}: {ack[:80]!r}")
                    for _, w in idle:
                        w.close()
                    self.count("mllp idle crowd")
                else:  # an oversized frame
                    async with await MllpClient.connect("127.0.0.1", self.mllp_port, timeout=30) as c:
                        ack = await c.send(ADT + b"NTE|1||" + b"x" * (11 * 1024 * 1024) + b"\r")
                    if b"MSA|AR|" not in ack:
                        self.mllp_problems.append(f"oversize: {ack[:80]!r}")
                    self.count("mllp oversized")
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.count(f"mllp {type(exc).__name__}")
            await asyncio.sleep(0.05)

    def schemathesis(self, until: float) -> None:
        url = self.base + "/auth/token"
        (self.workdir / "soak_hooks.py").write_text(
            HOOKS.format(client=CLIENT, pem=self.pem, kid=self.kid, token_url=url, scope=SCOPE), "utf-8"
        )
        schema = httpx.get(self.base + "/openapi.json", headers={"Authorization": f"Bearer {self.token()}"})
        (self.workdir / "openapi.json").write_bytes(schema.content)
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "soak_hooks",
            "PYTHONPATH": os.pathsep.join([str(self.workdir), str(ROOT)]),
        }
        seed = 0
        while time.monotonic() < until - 20:
            seed += 1
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "schemathesis.cli",
                    "run",
                    str(self.workdir / "openapi.json"),
                    "--url",
                    self.base,
                    "--phases",
                    "stateful",
                    "--checks",
                    "not_a_server_error",
                    "--max-examples",
                    "20",
                    "--seed",
                    str(seed),
                    "--no-color",
                ],
                cwd=self.workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                out, _ = proc.communicate(timeout=max(10, until - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            text = out.decode("utf-8", "replace")
            self.count("schemathesis runs")
            if "not_a_server_error" in text and "FAILED" in text.upper() and "Server error" in text:
                self.count("schemathesis server errors")
                (self.workdir / f"schemathesis-{seed}.txt").write_text(text, "utf-8")

    # -- the run -----------------------------------------------------------------------------------------

    def run(self) -> dict:
        self.start()
        load_start = os.getloadavg()
        t0 = time.monotonic()
        until = t0 + self.seconds
        rss: list[tuple[float, int]] = []

        async def sample():
            while time.monotonic() < until:
                rss.append((time.monotonic() - t0, _rss_kib(self.proc.pid)))
                await asyncio.sleep(5)

        async def everything():
            await asyncio.gather(
                self.steady(until),
                self.hostile_http(until),
                self.mllp(until),
                asyncio.to_thread(self.schemathesis, until),
                sample(),
            )

        try:
            asyncio.run(everything())
            rss.append((time.monotonic() - t0, _rss_kib(self.proc.pid)))
            server_5xx = self.server_5xx()
        finally:
            load_end = os.getloadavg()
            self.stop()
        warm = [kib for t, kib in rss if t <= self.seconds / 5]
        after = [kib for t, kib in rss if t > self.seconds / 5]
        base = warm[-1] if warm else rss[0][1]
        errors = [
            line for line in self.log.read_text("utf-8", "replace").splitlines() if '"level":"error"' in line
        ]
        return {
            "seconds": round(time.monotonic() - t0),
            "server_5xx": server_5xx,
            "client_5xx": self.fivexx,
            "rss_warm_mib": base / 1024,
            "rss_max_after_mib": max(after) / 1024 if after else 0,
            "rss_end_mib": rss[-1][1] / 1024,
            "growth": (max(after) / base - 1) if after else 0.0,
            "counts": dict(sorted(self.counts.items())),
            "read_p50": statistics.median(self.read_ms) if self.read_ms else 0,
            "read_p99": statistics.quantiles(self.read_ms, n=100)[98] if len(self.read_ms) > 100 else 0,
            "mllp_problems": self.mllp_problems[:5],
            "error_log_lines": len(errors),
            "load": (load_start, load_end),
        }


def _report(r: dict) -> str:
    from bench._report import machine

    ok = r["server_5xx"] == 0 and r["client_5xx"] == 0 and r["growth"] <= 0.10 and not r["mllp_problems"]
    counts = "\n".join(f"| {k} | {v} |" for k, v in r["counts"].items())
    (a1, a5, a15), (b1, b5, b15) = r["load"]
    rss = f"{r['rss_max_after_mib']:.1f} / {r['rss_end_mib']:.1f} MiB"
    rows = [
        ("5xx counted by the gateway (`hisgw_requests_total`)", r["server_5xx"], "0"),
        ("5xx seen by the load generators", r["client_5xx"], "0"),
        ("server memory (RSS) at the end of warm-up (first fifth)", f"{r['rss_warm_mib']:.1f} MiB", ""),
        ("largest RSS after warm-up / at the end", rss, "within 10 %"),
        ("growth after warm-up", f"{r['growth'] * 100:.1f} %", "at most 10 %"),
        ("steady read under all that: p50 / p99", f"{r['read_p50']:.1f} / {r['read_p99']:.1f} ms", ""),
        ("MLLP answers not as expected", len(r["mllp_problems"]), "0"),
        ("error lines in the gateway's log", r["error_log_lines"], ""),
        ("verdict", "holds" if ok else "FAILS", ""),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return (
        f"{machine()}; load average (1/5/15 min) {a1:.1f} / {a5:.1f} / {a15:.1f} at the start, "
        f"{b1:.1f} / {b5:.1f} / {b15:.1f} at the end: 2 cores shared with other work while measured.\n"
        f"`uv run python -m bench.bench_soak --seconds {r['seconds']}`: one `hisgw serve` (SQLite) under "
        "schemathesis stateful runs, MLLP garbage, the hostile corpus, stalled requests and token bursts "
        f"at once, for {r['seconds']} s.\n\n"
        "| measure | result | target |\n|---|---|---|\n"
        f"{table}\n\n| traffic | count |\n|---|---|\n{counts}\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_soak")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hisgw-soak-") as tmp:
        result = Soak(Path(tmp), args.seconds).run()
    text = _report(result)
    print(text)
    if not args.no_write:
        from bench._report import write_section

        write_section("Security soak", text)
    ok = result["server_5xx"] == 0 and result["client_5xx"] == 0 and result["growth"] <= 0.10
    return 0 if ok and not result["mllp_problems"] else 1


if __name__ == "__main__":
    sys.exit(main())

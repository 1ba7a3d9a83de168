"""What a suite is and how a run of it is asked: the suite's declaration (``suite.toml``), the tester's
options, and the usage error (exit 2). The runner (``conformance/runner.py``) finds suites and hands each
to its executor (``fhir_suite``, ``mllp_suite``, ``export_suite``, ``postbox_suite``), which read these.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from conformance.model import RunnerError


class UsageError(RunnerError):
    """The run was asked wrongly (unknown suite, target of the wrong form, missing option): exit 2."""

    code = "CONF-001"


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    role: str
    kind: str
    target: str
    description: str
    folder: Path
    capabilities: dict[str, str]
    params: dict[str, str]


@dataclass
class RunOptions:
    """What the tester gives besides the suite and the target (``hisgw conformance run --help``)."""

    target: str
    token_url: str | None = None
    client_id: str | None = None
    private_key: Path | None = None
    key_id: str | None = None
    alg: str | None = None
    scope: str | None = None
    client2_id: str | None = None
    private_key2: Path | None = None
    bearer: str | None = None
    capabilities: list[str] = field(default_factory=list)
    assume_all: bool = False
    params: dict[str, str] = field(default_factory=dict)
    observe: str | None = None
    only: list[str] = field(default_factory=list)
    timeout: float = 30.0


def selected(test_id: str, only: list[str]) -> bool:
    """Whether ``--only`` patterns (glob, or a suffix after ``/``) select the test; all if none."""
    return not only or any(fnmatch.fnmatchcase(test_id, p) or test_id.endswith("/" + p) for p in only)

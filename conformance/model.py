"""What a conformance run produces: suites of tests, each test a list of assertions with a verdict.

The shape follows FHIR R4 TestReport (testreport.html): a test passes when every assertion passes, fails
when one fails, is *skipped* when the endpoint does not declare what the test needs (the reason is kept),
and is an *error* when the runner could not carry it out (connection refused, fixture missing). The
captured exchanges (request and response, patient data masked by :mod:`conformance.mask`) go into the
reports so a tester can see what was sent and what came back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from mappings.problems import GatewayError


class RunnerError(GatewayError):
    """The runner could not do what a test asks; its stable code leads the message (docs/problem-codes.md):

    ``CONF-001`` usage (unknown suite, target of the wrong form, options that go together), exit 2;
    ``CONF-002`` the suite cannot be carried out as written (fixture, variable, step, operator);
    ``CONF-003`` the target could not be reached (connect, send, token endpoint);
    ``CONF-004`` the observer (``--observe``) failed.
    A test that meets CONF-002 .. CONF-004 ends as *error*, not *fail*: the endpoint was not judged."""

    code = "CONF-002"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code} {self.args[0]}"


class Verdict(StrEnum):
    """TestReport ``result`` / action ``result`` codes (report-action-result-codes)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"
    WARNING = "warning"


@dataclass
class Exchange:
    """One captured request and its response (already masked; bodies cut at 64 KiB)."""

    label: str
    request: str
    response: str


@dataclass
class AssertResult:
    label: str
    verdict: Verdict
    message: str


@dataclass
class TestResult:
    """One test of a suite: ``requirement`` names the contract clause it checks."""

    id: str
    name: str
    requirement: str
    source: str = ""
    verdict: Verdict = Verdict.PASS
    reason: str = ""
    asserts: list[AssertResult] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, label: str, message: str, warning_only: bool = False) -> bool:
        """Record one assertion; a failed one fails the test (unless ``warning_only``). The message is
        masked (:func:`conformance.mask.mask_text`): it may quote a value the endpoint sent."""
        from conformance.mask import mask_text

        message = mask_text(message)
        if ok:
            self.asserts.append(AssertResult(label, Verdict.PASS, message))
        elif warning_only:
            self.asserts.append(AssertResult(label, Verdict.WARNING, message))
        else:
            self.asserts.append(AssertResult(label, Verdict.FAIL, message))
            if self.verdict is Verdict.PASS:
                self.verdict = Verdict.FAIL
                self.reason = f"{label}: {message}"
        return ok

    def skip(self, reason: str) -> None:
        self.verdict = Verdict.SKIP
        self.reason = reason

    def error(self, reason: str) -> None:
        from conformance.mask import mask_text

        reason = mask_text(reason)
        self.asserts.append(AssertResult("runner", Verdict.ERROR, reason))
        if self.verdict in (Verdict.PASS, Verdict.SKIP):
            self.verdict = Verdict.ERROR
            self.reason = reason


@dataclass
class SuiteResult:
    suite: str
    title: str
    role: str
    target: str
    started: dt.datetime
    tests: list[TestResult] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for t in self.tests if t.verdict is verdict)

    @property
    def failed(self) -> bool:
        return any(t.verdict in (Verdict.FAIL, Verdict.ERROR) for t in self.tests)

    def summary_line(self) -> str:
        """E.g. ``conformance fhir-server against URL: 40 passed, 1 failed, 3 skipped, 0 errors (2.1 s)``."""
        return (
            f"conformance {self.suite} against {self.target}: {self.count(Verdict.PASS)} passed, "
            f"{self.count(Verdict.FAIL)} failed, {self.count(Verdict.SKIP)} skipped, "
            f"{self.count(Verdict.ERROR)} errors ({self.seconds:.1f} s)"
        )

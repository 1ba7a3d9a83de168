"""One issue type for every layer, rendered three ways.

A :class:`Problem` has a severity, a stable code, a precise location and a message. The API renders it as
a FHIR ``OperationOutcome.issue``, the MLLP listener as an ``ERR`` segment with AE/AR, the command line as
one line (``render_line``). Readers collect problems in a :class:`ProblemSink`: in *strict* mode the first
error raises :class:`InputError`; in *lenient* mode every problem is collected and the caller decides.

Exception tree: every exception the project raises on purpose (never for bugs), drawn here only::

    GatewayError                    mappings/problems.py
    ├── InputError                  mappings/problems.py: input refused (.problems, one an error at least)
    │   └── Hl7ParseError           mappings/hl7v2/er7.py: ER7 that cannot be tokenised
    ├── FhirError                   gateway/fhir/outcome.py: an HTTP error answer (OperationOutcome)
    ├── NotServed                   gateway/api/requests.py: no such method on the path (405, 404)
    ├── AuthError                   gateway/auth/tokens.py: no valid access token (401)
    ├── OAuthError                  gateway/auth/tokens.py: the token endpoint's refusal (RFC 6749 §5.2)
    ├── ScopeError                  gateway/auth/scopes.py: not a SMART system scope (also a ValueError)
    ├── FramingError                gateway/mllp/framing.py: not an MLLP peer (MLLP-002)
    ├── OnwardSharing               gateway/tenancy.py: only a patient's owner shares it onward (AUTH-006)
    ├── RoutingError                gateway/outbox/config.py: unusable routing file (also a ValueError)
    ├── LineBreakInData             mappings/edifact/syntax.py: a line break where Edifact holds one line
    ├── _Failed                     gateway/cli.py: the input had errors; the command exits 1
    ├── RunnerError                 conformance/model.py: a test in error (.code CONF-002 .. CONF-004)
    │   ├── UsageError              conformance/suite.py: the run asked wrongly (CONF-001, exit 2)
    │   ├── StepError               conformance/mllp_suite.py: a declared step cannot be carried out
    │   └── ScriptError             conformance/testscript.py: a TestScript cannot be carried out
    ├── TokenError                  conformance/smart.py: the tested token endpoint refused the client
    ├── ObserverError               conformance/observe.py: the tester's ``--observe`` cannot be used
    └── Unavailable                 conformance/thirdparty: a third-party server cannot be started

``except GatewayError`` therefore never hides a bug (``KeyError``, ``TypeError`` ...);
``tests/test_exceptions.py`` keeps this drawing and the code in step.

Stable codes are ``<AREA>-<NNN>`` (``XML-001``, ``MHS-012``, ``PS-003`` ...) and are listed in
``docs/problem-codes.md``; a code never changes meaning once released.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """Severity as FHIR IssueSeverity spells it (``fatal`` is not used: errors stop or collect)."""

    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about input: where, what, how bad, and a stable code.

    ``location`` is precise and human readable, e.g.
    ``export.xml:212 /MedicomExport/Patient/Episode[3]/@icpc``,
    ``line 88 record MED field 6`` or ``Bundle.entry[2].resource.subject``.
    """

    severity: Severity
    code: str
    location: str
    message: str

    def render_line(self) -> str:
        """The one-line CLI form: ``error XML-001 export.xml:3 /a/b: message``."""
        return f"{self.severity.value} {self.code} {self.location}: {self.message}"

    def to_operation_outcome_issue(self) -> dict:
        """The FHIR ``OperationOutcome.issue`` form (location as ``expression``)."""
        return {
            "severity": self.severity.value,
            "code": "invalid" if self.severity is Severity.ERROR else "informational",
            "details": {
                "coding": [{"system": "urn:his-gateway:problem", "code": self.code}],
                "text": self.message,
            },
            "expression": [self.location],
        }


class GatewayError(Exception):
    """Root of every exception this project raises on purpose (the tree: this module's docstring)."""


class InputError(GatewayError):
    """Input could not be accepted; ``problems`` says every reason found (at least one error)."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: tuple[Problem, ...] = tuple(problems)
        first = self.problems[0].render_line() if self.problems else "invalid input"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


@dataclass
class ProblemSink:
    """Collects problems while reading. ``strict=True`` raises on the first error.

    Warnings (for example an unknown code that is kept) never raise.
    """

    strict: bool = False
    problems: list[Problem] = field(default_factory=list)
    max_errors: int = 100
    """Lenient mode gives up after this many errors (``IO-003``): garbage input must not make a
    problem list as large as itself."""
    max_warnings: int = 1000
    """Warnings beyond this many are counted, not kept (one ``IO-004`` line says how many were dropped)."""
    _errors: int = 0
    _warnings: int = 0

    def error(self, code: str, location: str, message: str) -> None:
        p = Problem(Severity.ERROR, code, location, message)
        self.problems.append(p)
        self._errors += 1
        if self.strict:
            raise InputError([p])
        if self._errors >= self.max_errors:
            self.problems.append(
                Problem(Severity.ERROR, "IO-003", location, f"stopped after {self._errors} errors")
            )
            raise InputError(self.problems)

    def warning(self, code: str, location: str, message: str) -> None:
        self._note(Severity.WARNING, code, location, message)

    def info(self, code: str, location: str, message: str) -> None:
        """Nothing wrong with the input, but worth knowing (e.g. a message envelope a reader leaves);
        counted with the warnings against ``max_warnings``."""
        self._note(Severity.INFORMATION, code, location, message)

    def _note(self, severity: Severity, code: str, location: str, message: str) -> None:
        self._warnings += 1
        if self._warnings <= self.max_warnings:
            self.problems.append(Problem(severity, code, location, message))
        elif self._warnings == self.max_warnings + 1:
            self.problems.append(
                Problem(
                    Severity.WARNING,
                    "IO-004",
                    location,
                    f"more than {self.max_warnings} warnings; the rest are not listed",
                )
            )

    @property
    def has_errors(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.problems)

    def raise_if_errors(self) -> None:
        """Raise :class:`InputError` with every problem if any of them is an error."""
        if self.has_errors:
            raise InputError(self.problems)

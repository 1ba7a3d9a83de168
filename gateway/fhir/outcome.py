"""Errors as FHIR OperationOutcome with the right HTTP status (FHIR R4 http.html §3.1.0.4 and §3.1.0.5).

Every error the API answers is an OperationOutcome. An issue names a stable problem code
(``details.coding`` system ``urn:his-gateway:problem``, listed in ``docs/problem-codes.md``), the FHIR
issue type, and where it is (``expression``: a JSON path such as ``Patient.identifier[0].system``, or a
search parameter / header name).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import orjson

from mappings.problems import GatewayError, Problem, Severity

FHIR_JSON = "application/fhir+json"
PROBLEM_SYSTEM = "urn:his-gateway:problem"


class FhirError(GatewayError):
    """An error answer: status, FHIR issue type, problem code, message and location."""

    def __init__(
        self,
        status: int,
        issue_type: str,
        code: str,
        message: str,
        location: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        issues: list[dict] | None = None,
    ):
        super().__init__(message)
        self.status, self.issue_type, self.code = status, issue_type, code
        self.message, self.location = message, location
        self.headers = headers or {}
        self.extra_issues = issues or []

    def outcome(self) -> dict[str, Any]:
        """The OperationOutcome of this error."""
        issue = {
            "severity": "error",
            "code": self.issue_type,
            "details": {"coding": [{"system": PROBLEM_SYSTEM, "code": self.code}], "text": self.message},
        }
        if self.location:
            issue["expression"] = [self.location]
        return {"resourceType": "OperationOutcome", "issue": [issue, *self.extra_issues]}

    def body(self) -> bytes:
        return orjson.dumps(self.outcome())


def outcome_of(problems: list[Problem] | tuple[Problem, ...]) -> dict[str, Any]:
    """An OperationOutcome listing problems (validator results); all-clear when there are none.

    The project validator's own rendering (``mappings.fhir.validator.operation_outcome``) is used when
    it is installed, so ``$validate`` answers as the validator documents.
    """
    if importlib.util.find_spec("mappings.fhir.validator") is not None:
        return importlib.import_module("mappings.fhir.validator").operation_outcome(list(problems))
    if not problems:
        return {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "information", "code": "informational", "details": {"text": "no problems found"}}
            ],
        }
    return {"resourceType": "OperationOutcome", "issue": [p.to_operation_outcome_issue() for p in problems]}


def problems_error(problems: list[Problem] | tuple[Problem, ...], status: int = 422) -> FhirError:
    """A FhirError carrying every problem of a rejected resource (the first one leads)."""
    errors = [p for p in problems if p.severity is Severity.ERROR] or list(problems)
    first = errors[0]
    rest = [p.to_operation_outcome_issue() for p in problems if p is not first]
    return FhirError(
        status,
        "invalid" if status != 422 else "processing",
        first.code,
        first.message,
        first.location,
        issues=rest,
    )


def not_found(rtype: str, rid: str) -> FhirError:
    return FhirError(404, "not-found", "API-011", f"{rtype}/{rid} is not known", f"{rtype}/{rid}")

"""Checking a resource before it is stored, and ``$validate`` (FHIR R4 resource-operation-validate).

Two layers:

1. An object with a ``resourceType`` the gateway serves (and the one the URL names) and a valid ``id``
   (``API-004``, ``API-005``).
2. Structure: the project's FHIR R4 validator ``mappings.fhir.validator.validate`` (element names, types,
   cardinality, required bindings, Dutch identifiers; its ``FHIRV-0xx`` codes). Where that module is not
   installed: the JSON rules of FHIR R4 json.html (no ``null``, no empty object, array or string, at most
   64 levels; ``API-006``) and the fhir.resources R4B model classes (``API-007``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
from typing import Any

from gateway.fhir.resources import RESOURCES
from mappings.problems import Problem, Severity

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_DEPTH = 64


def _json_rules(node: Any, path: str, depth: int, out: list[Problem]) -> None:
    if depth > MAX_DEPTH:
        out.append(Problem(Severity.ERROR, "API-006", path, f"nested deeper than {MAX_DEPTH} levels"))
        return
    if node is None:
        out.append(Problem(Severity.ERROR, "API-006", path, "null is not allowed in FHIR JSON"))
    elif isinstance(node, dict):
        if not node:
            out.append(
                Problem(Severity.ERROR, "API-006", path, "an empty object is not allowed in FHIR JSON")
            )
        for key, value in node.items():
            _json_rules(value, f"{path}.{key}", depth + 1, out)
    elif isinstance(node, list):
        if not node:
            out.append(Problem(Severity.ERROR, "API-006", path, "an empty array is not allowed in FHIR JSON"))
        for i, value in enumerate(node):
            _json_rules(value, f"{path}[{i}]", depth + 1, out)
    elif isinstance(node, str) and not node.strip():
        out.append(Problem(Severity.ERROR, "API-006", path, "an empty or blank string is not allowed"))


def check_shape(resource: Any, expected_type: str | None = None, *, json_rules: bool = True) -> list[Problem]:
    """Layer 1: the resource is a JSON object of a served type (and follows the FHIR JSON rules)."""
    if not isinstance(resource, dict):
        return [Problem(Severity.ERROR, "API-004", "$", "the body is not a JSON object (a FHIR resource)")]
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or rtype not in RESOURCES:
        return [
            Problem(
                Severity.ERROR,
                "API-004",
                "resourceType",
                f"resourceType {rtype!r} is not a type this gateway serves",
            )
        ]
    if expected_type is not None and rtype != expected_type:
        return [
            Problem(
                Severity.ERROR,
                "API-004",
                "resourceType",
                f"resourceType {rtype} does not match the URL ({expected_type})",
            )
        ]
    out: list[Problem] = []
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID_RE.match(rid)):
        out.append(Problem(Severity.ERROR, "API-005", f"{rtype}.id", "id must match [A-Za-z0-9-.]{1,64}"))
    if json_rules:
        for key, value in resource.items():
            _json_rules(value, f"{rtype}.{key}", 1, out)
    return out


def _structure_with_models(resource: dict) -> list[Problem]:
    from pydantic import ValidationError

    from mappings.fhir.r4b import validate_with_models

    try:
        validate_with_models(resource)
    except ValidationError as exc:
        out = []
        for err in exc.errors()[:50]:
            loc = resource["resourceType"]
            for part in err["loc"]:
                loc += f"[{part}]" if isinstance(part, int) else f".{part}"
            out.append(Problem(Severity.ERROR, "API-007", loc, err["msg"]))
        return out
    except (ValueError, TypeError, RecursionError) as exc:  # model construction refused the input
        return [Problem(Severity.ERROR, "API-007", resource["resourceType"], str(exc)[:300])]
    return []


@functools.cache
def _project_validator():
    if importlib.util.find_spec("mappings.fhir.validator") is None:
        return None
    module = importlib.import_module("mappings.fhir.validator")
    return getattr(module, "validate", None)


def validate(resource: Any, expected_type: str | None = None) -> list[Problem]:
    """Every problem of a resource (errors and warnings); empty when it is fine."""
    project = _project_validator()
    problems = check_shape(resource, expected_type, json_rules=project is None)
    if any(p.severity is Severity.ERROR for p in problems):
        return problems
    if project is not None:
        return problems + _from_project(project, resource)
    return problems + _structure_with_models(resource)


def _from_project(project, resource: dict) -> list[Problem]:
    """Adapt the project validator's answer (problems, a sink, or an OperationOutcome) to problems."""
    result = project(resource)
    if result is None:
        return []
    if isinstance(result, dict) and result.get("resourceType") == "OperationOutcome":
        out = []
        for issue in result.get("issue", []):
            sev = issue.get("severity")
            if sev in ("error", "fatal", "warning"):
                code = ((issue.get("details") or {}).get("coding") or [{}])[0].get("code") or "API-007"
                out.append(
                    Problem(
                        Severity.ERROR if sev != "warning" else Severity.WARNING,
                        code,
                        (issue.get("expression") or [resource["resourceType"]])[0],
                        (issue.get("details") or {}).get("text") or issue.get("diagnostics") or "",
                    )
                )
        return out
    problems = getattr(result, "problems", result)
    return [p for p in problems if isinstance(p, Problem)]


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity is Severity.ERROR for p in problems)

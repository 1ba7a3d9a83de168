"""The one seam to the FHIR model classes (fhir.resources). Nothing else imports ``fhir.resources``.

The gateway speaks FHIR R4 (4.0.1). fhir.resources 8.x ships R5 (the default package) and R4B
(``fhir.resources.R4B``), no R4. R4B is R4 plus a few backported changes; for the resources we use it is
wire-compatible except where ``docs/fhir-r4-vs-r4b.md`` says otherwise. Inside the gateway FHIR is
built as plain dicts and serialised with orjson (validating a 100-Observation Bundle with the model
classes costs about 60 ms); the model classes are used only where a second, independent opinion on
structure is wanted: tests, the conformance suites and the benchmarks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

FHIR_VERSION = "4.0.1"


def model_class(resource_type: str) -> type[BaseModel]:
    """The fhir.resources R4B model class for a resource type (``"Patient"`` -> ``R4B.patient.Patient``)."""
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def validate_with_models(resource: dict[str, Any]) -> Any:
    """Validate a resource dict with fhir.resources R4B; raises ``pydantic.ValidationError`` if invalid."""
    return model_class(resource["resourceType"]).model_validate(resource)


def dump_json_with_models(model: Any) -> bytes:
    """Serialise a validated model the way fhir.resources does (for like-for-like benchmarks)."""
    out = model.model_dump_json(by_alias=True, exclude_none=True)
    return out.encode("utf-8") if isinstance(out, str) else out

"""Operation input: a FHIR ``Parameters`` resource read into named values (FHIR R4 parameters.html).

Each consult operation takes ``Parameters`` (``application/fhir+json``); a value is whichever
``value[x]`` or ``resource`` a parameter carries. Problems are ``CON-001`` (not Parameters) and
``CON-002`` (a parameter missing or of the wrong kind), with the parameter named.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from gateway.fhir.outcome import FhirError


class Params:
    """The parameters of one operation call, by name (repeatable)."""

    def __init__(self, body: object, operation: str):
        self.operation = operation
        self.values: dict[str, list[Any]] = {}
        if body is None:
            return
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError(400, "invalid", "CON-001", f"{operation} takes a Parameters resource", "body")
        items = body.get("parameter", [])
        if not isinstance(items, list):
            raise FhirError(400, "invalid", "CON-001", "Parameters.parameter must be a list", "Parameters")
        for i, p in enumerate(items):
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                raise FhirError(
                    400, "invalid", "CON-001", "a parameter needs a name", f"Parameters.parameter[{i}]"
                )
            value = p.get("resource")
            if value is None:
                value = next((v for k, v in p.items() if k.startswith("value")), None)
            self.values.setdefault(p["name"], []).append(value)

    def _error(self, name: str, message: str) -> FhirError:
        return FhirError(400, "invalid", "CON-002", f"{self.operation}: {message}", f"Parameters.{name}")

    def get(self, name: str, kind: type | tuple[type, ...] = str, *, required: bool = False) -> Any:
        """The first value of ``name`` if it is of ``kind`` (None when absent); ``CON-002`` otherwise."""
        found = self.values.get(name) or [None]
        value = found[0]
        if value is None:
            if required:
                raise self._error(name, f"parameter {name!r} is required")
            return None
        if isinstance(value, bool) and kind in (int, str):
            raise self._error(name, f"parameter {name!r} has the wrong kind of value")
        if not isinstance(value, kind):
            raise self._error(name, f"parameter {name!r} has the wrong kind of value")
        if isinstance(value, str) and not value.strip():
            raise self._error(name, f"parameter {name!r} is empty")
        return value

    def all(self, name: str) -> list[str]:
        """Every string value of a repeatable parameter."""
        out = []
        for value in self.values.get(name, []):
            if not isinstance(value, str) or not value:
                raise self._error(name, f"every {name!r} is a non-empty string")
            out.append(value)
        return out

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter (``default`` when absent)."""
        value = self.get(name, bool)
        return default if value is None else value

    def reference(
        self, name: str, rtype: str | tuple[str, ...], *, required: bool = False
    ) -> tuple[str, str] | None:
        """A ``Type/id`` reference (valueReference or valueString)."""
        value = self.get(name, (dict, str), required=required)
        if value is None:
            return None
        ref = value.get("reference") if isinstance(value, dict) else value
        types = (rtype,) if isinstance(rtype, str) else rtype
        if not isinstance(ref, str) or "/" not in ref:
            raise self._error(name, f"{name!r} must be a reference {' or '.join(t + '/<id>' for t in types)}")
        t, _, rid = ref.rstrip("/").rpartition("/")
        t = t.rsplit("/", 1)[-1]
        if t not in types or not rid:
            raise self._error(name, f"{name!r} must be a reference {' or '.join(t + '/<id>' for t in types)}")
        return t, rid

    def binary(self, name: str) -> bytes | None:
        """A base64Binary value, decoded."""
        value = self.get(name)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self._error(name, f"{name!r} is not valid base64") from None

    def reference_all(self, name: str, rtype: str) -> list[tuple[str, str]]:
        """Every value of a repeatable reference parameter."""
        out = []
        for value in self.values.get(name, []):
            one = Params(
                {"resourceType": "Parameters", "parameter": [{"name": name, "valueString": value}]}
                if isinstance(value, str)
                else {"resourceType": "Parameters", "parameter": [{"name": name, "valueReference": value}]},
                self.operation,
            )
            found = one.reference(name, rtype, required=True)
            assert found is not None
            out.append(found)
        return out

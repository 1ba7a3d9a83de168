"""The CapabilityStatement of ``/metadata``, generated from the routes the application actually serves.

FHIR R4 capabilitystatement.html; security per SMART (``oauth-uris`` extension, ``SMART-on-FHIR``
service). Interactions per type come from the registered routes and the types each route serves; search
parameters, ``_include`` and ``_revinclude`` from ``gateway/fhir/resources.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from gateway.fhir.resources import RESOURCES
from mappings.fhir.r4b import FHIR_VERSION

INSTANCE_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance")
TYPE_INTERACTIONS = ("create", "search-type", "history-type")
PARAM_TYPE = {"token": "token", "reference": "reference", "date": "date", "string": "string"}


def _definition(name: str) -> str:
    """The OperationDefinition of an operation: FHIR's own for ``$validate``, the gateway's for its consult
    operations (``docs/consult.md``; they are not published as resources)."""
    if name == "validate":
        return "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    return f"urn:his-gateway:fhir:OperationDefinition:{name}"


def capability_statement(served: Iterable[tuple[str, str, Any]], settings) -> dict:
    """The CapabilityStatement of the served routes: (method, path, route definition) as
    ``gateway.api.app.served_routes`` lists them."""
    per_type: dict[str, set[str]] = {t: set() for t in RESOURCES}
    conditional: dict[str, set[str]] = {t: set() for t in RESOURCES}
    operations: dict[str, set[str]] = {t: set() for t in RESOURCES}
    system: set[str] = set()
    for method, _path, rd in served:
        if rd.path == "/" and method == "POST":
            system |= {"transaction", "batch"}
        types = rd.types
        if rd.interaction == "operation" and not types:  # one type's operation: /Task/{id}/$pickup
            types = tuple(t for t in rd.path.split("/")[1:2] if t in operations)
        for t in types:
            if rd.name in ("conditional_update", "conditional_delete"):
                conditional[t].add(rd.name)
            elif rd.interaction == "operation":
                operations[t].add(rd.path.rsplit("/$", 1)[-1])  # the operation's name
            elif rd.interaction in INSTANCE_INTERACTIONS + TYPE_INTERACTIONS:
                per_type[t].add(rd.interaction)
    resources = []
    for t, rdef in RESOURCES.items():
        if not per_type[t]:
            continue
        order = INSTANCE_INTERACTIONS + TYPE_INTERACTIONS
        entry: dict = {
            "type": t,
            "interaction": [{"code": c} for c in order if c in per_type[t]],
            "versioning": "versioned-update" if "update" in per_type[t] else "versioned",
            "readHistory": "vread" in per_type[t],
            "updateCreate": False,
            "conditionalCreate": "create" in per_type[t],
            "conditionalUpdate": "conditional_update" in conditional[t],
            "conditionalDelete": "single" if "conditional_delete" in conditional[t] else "not-supported",
            "searchInclude": [f"{t}:{p.name}" for p in rdef.params.values() if p.kind == "reference"],
            "searchRevInclude": sorted(
                f"{src}:{p.name}"
                for src, d in RESOURCES.items()
                for p in d.params.values()
                if p.kind == "reference" and t in p.targets and src != "AuditEvent"
            ),
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
                *({"name": p.name, "type": PARAM_TYPE[p.kind]} for p in rdef.params.values()),
            ],
        }
        if operations[t]:
            entry["operation"] = [{"name": n, "definition": _definition(n)} for n in sorted(operations[t])]
        if not entry["searchInclude"]:
            del entry["searchInclude"]
        if not entry["searchRevInclude"]:
            del entry["searchRevInclude"]
        resources.append(entry)
    rest: dict = {
        "mode": "server",
        "security": {
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": settings.token_url}],
                }
            ],
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "description": "SMART Backend Services: client_credentials with private_key_jwt (RS384/ES384); "
            "access tokens live at most 300 s. Every access is logged (NEN 7513).",
        },
        "resource": resources,
    }
    if system:
        rest["interaction"] = [{"code": c} for c in ("transaction", "batch") if c in system]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": dt.date.today().isoformat(),
        "publisher": "his-gateway",
        "kind": "instance",
        "software": {"name": "his-gateway"},
        "implementation": {"description": "his-gateway FHIR R4 facade", "url": settings.fhir_base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [rest],
    }

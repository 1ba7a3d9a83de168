"""Generate the structure data files of :mod:`mappings.fhir.validator` from the FHIR R4 definitions.

Input: the official FHIR R4 (4.0.1) definitions in JSON (``profiles-types.json``,
``profiles-resources.json``, ``valuesets.json`` and ``v3-codesystems.json`` as published in the R4
"Definitions JSON" download, build 9346c8cc45). Output, in this folder:

- ``types.json``        every R4 complex data type: its elements (snapshot), backbone parts such as
                        ``Timing.repeat`` flattened to their own entries;
- ``<Resource>.json``   one file per resource type the gateway handles: *all* R4 elements of the
                        resource (so unknown-element detection is exact) and its backbone elements;
- ``valuesets.json``    the expansion of every value set that one of those elements binds with
                        strength *required* (codes per system), or the reason it cannot be checked
                        (a code system defined outside FHIR such as BCP-13 mime types).

An element is ``{"t": type, "min": n, "max": "1"|"*"|"0", "vs": value set, "to": [targets]}`` with the
defaults ``min 0``, ``max "1"`` left out; ``t`` is a list for a choice element (``value[x]``), the
name of a backbone entry (``"Observation.component"``) for a backbone element, ``SimpleQuantity`` for
a Quantity constrained to that profile, ``Resource`` for a nested resource; ``to`` lists the resource
types a Reference may point at (left out when any resource is allowed).

Run: ``uv run python -m mappings.fhir.structure.generate /path/to/r4-definitions`` (nothing at run time
needs these inputs or the network).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RESOURCES = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "HealthcareService",
    "EpisodeOfCare",
    "Condition",
    "Encounter",
    "Composition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Medication",
    "AllergyIntolerance",
    "Flag",
    "Communication",
    "DocumentReference",
    "Binary",
    "Task",
    "ServiceRequest",
    "ChargeItem",
    "AuditEvent",
    "Provenance",
    "OperationOutcome",
    "Bundle",
    "MessageHeader",
    "Coverage",
)
"""The resource types of the gateway (issue "FHIR R4 mappings" plus the companions its Bundles carry:
Medication for ``medicationReference``, MessageHeader for message Bundles, Provenance)."""

NOT_IN_R4 = {
    "Binary.url",
    "Meta.project",
    "Meta.author",
    "Meta.onBehalfOf",
    "Meta.account",
    "Meta.accounts",
    "Meta.compartment",
}
"""Elements some redistributions of the R4 definitions add for their own server; not R4, dropped. The
output was checked element by element (names, cardinality, types, Reference targets) against an
independent generation from the same R4 4.0.1 build (fhir.resources 6.4.0); these were the only
differences, together with the extra Reference targets and the narrowed type below."""
NOT_R4_TARGETS = {"Bot", "ClientApplication"}
R4_TYPES = {"Bundle.entry.response.outcome": "Resource"}
R4_TARGETS = {
    "AuditEvent.source.observer": [
        "Device",
        "Organization",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "RelatedPerson",
    ]
}

SD = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
QUANTITY_PROFILES = {SD + "SimpleQuantity": "SimpleQuantity", SD + "MoneyQuantity": "Quantity"}


def _load(folder: Path, name: str) -> list[dict]:
    return [e["resource"] for e in json.loads((folder / name).read_text("utf-8"))["entry"]]


def _type_code(t: dict) -> str:
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # id, Element.id and Extension.url are FHIRPath strings with their FHIR type in an extension
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        return "string"
    if code == "Quantity":
        for profile in t.get("profile", []):
            if profile in QUANTITY_PROFILES:
                return QUANTITY_PROFILES[profile]
    return code


def _element(el: dict, path: str, backbones: set[str]) -> dict:
    spec: dict = {}
    if "contentReference" in el:
        spec["t"] = el["contentReference"].lstrip("#")
    elif path in backbones:
        spec["t"] = path
    else:
        types = [_type_code(t) for t in el["type"]]
        spec["t"] = types if el["path"].endswith("[x]") else R4_TYPES.get(path, types[0])
    if el["min"]:
        spec["min"] = el["min"]
    if el["max"] != "1":
        spec["max"] = el["max"]
    binding = el.get("binding")
    if binding and binding["strength"] == "required" and "valueSet" in binding:
        spec["vs"] = binding["valueSet"].split("|")[0]
    targets: list[str] = []
    for t in el.get("type", []):
        if t["code"] == "Reference":
            targets += [p.rsplit("/", 1)[1] for p in t.get("targetProfile", [])]
    if targets and "Resource" not in targets:
        spec["to"] = R4_TARGETS.get(path) or sorted(set(targets) - NOT_R4_TARGETS)
    return spec


def structure(sd: dict) -> dict[str, dict[str, dict]]:
    """The element tables of one StructureDefinition, keyed by owner (type or backbone path)."""
    elements = sd["snapshot"]["element"]
    root = elements[0]["path"]
    name = sd["id"]  # SimpleQuantity's snapshot paths say "Quantity"
    paths = [el["path"] for el in elements]
    # a backbone element is one with children of its own
    backbones = {p for p in paths if any(q.startswith(p + ".") for q in paths) and p != root}
    out: dict[str, dict[str, dict]] = {name: {}}
    for el in elements[1:]:
        path = el["path"]
        if path in NOT_IN_R4:
            continue
        owner, _, key = path.rpartition(".")
        owner = name if owner == root else name + owner[len(root) :]
        full = name + path[len(root) :]
        spec = _element(el, full, {name + b[len(root) :] for b in backbones})
        if sd["kind"] == "resource" and path == root + ".id":
            # Resource.id is of type id (resource.html); the 4.0.1 snapshot marks it a plain string
            spec["t"] = "id"
        out.setdefault(owner, {})[key] = spec
    return out


def _concepts(concepts: list[dict], into: list[str]) -> None:
    for c in concepts:
        into.append(c["code"])
        _concepts(c.get("concept", []), into)


def expand(url: str, valuesets: dict[str, dict], codesystems: dict[str, dict]) -> dict:
    """``{"codes": {system: [code, ...]}}`` or ``{"unchecked": reason}`` for a required value set."""
    vs = valuesets.get(url)
    if vs is None:
        return {"unchecked": "value set not in the R4 definitions"}
    codes: dict[str, list[str]] = {}
    for inc in vs.get("compose", {}).get("include", []):
        if "filter" in inc:
            return {"unchecked": "defined by a filter"}
        for sub in inc.get("valueSet", []):
            inner = expand(sub.split("|")[0], valuesets, codesystems)
            if "unchecked" in inner:
                return inner
            for system, cs in inner["codes"].items():
                codes.setdefault(system, []).extend(cs)
        system = inc.get("system")
        if system is None:
            continue
        if "concept" in inc:
            codes.setdefault(system, []).extend(c["code"] for c in inc["concept"])
            continue
        cs = codesystems.get(system)
        if cs is None or not cs.get("concept"):
            return {"unchecked": f"all codes of {system}, a code system defined outside FHIR"}
        _concepts(cs["concept"], codes.setdefault(system, []))
    for exc in vs.get("compose", {}).get("exclude", []):
        drop = {c["code"] for c in exc.get("concept", [])}
        if exc.get("system") in codes:
            codes[exc["system"]] = [c for c in codes[exc["system"]] if c not in drop]
    return {"codes": {s: sorted(set(c)) for s, c in codes.items()}}


def _dump(data: dict) -> str:
    """One owner per block, one element per line: compact, yet diffs read well."""
    lines = ["{"]
    owners = list(data.items())
    for i, (owner, elements) in enumerate(owners):
        if not isinstance(elements, dict) or not all(isinstance(v, dict) for v in elements.values()):
            lines.append(
                f"  {json.dumps(owner)}: {json.dumps(elements, ensure_ascii=False)}"
                + ("," if i < len(owners) - 1 else "")
            )
            continue
        lines.append(f"  {json.dumps(owner)}: {{")
        items = list(elements.items())
        for j, (key, spec) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            lines.append(f"    {json.dumps(key)}: {json.dumps(spec, ensure_ascii=False)}{comma}")
        lines.append("  }" + ("," if i < len(owners) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(folder: Path) -> None:
    types = {
        r["id"]: r for r in _load(folder, "profiles-types.json") if r["resourceType"] == "StructureDefinition"
    }
    resources = {
        r["id"]: r
        for r in _load(folder, "profiles-resources.json")
        if r["resourceType"] == "StructureDefinition"
    }
    terminology = _load(folder, "valuesets.json") + _load(folder, "v3-codesystems.json")
    valuesets = {r["url"]: r for r in terminology if r["resourceType"] == "ValueSet"}
    codesystems = {r["url"]: r for r in terminology if r["resourceType"] == "CodeSystem"}

    bound: set[str] = set()
    complex_types: dict = {
        "_source": f"FHIR R4 {types['Element']['fhirVersion']} profiles-types.json",
        "_primitives": sorted(n for n, sd in types.items() if sd["kind"] == "primitive-type"),
    }
    for name, sd in sorted(types.items()):
        if sd["kind"] != "complex-type" or name in ("Element", "BackboneElement", "ElementDefinition"):
            continue
        for owner, elements in structure(sd).items():
            complex_types[owner] = elements
            bound.update(e["vs"] for e in elements.values() if "vs" in e)
    (HERE / "types.json").write_text(_dump(complex_types), "utf-8")

    for name in RESOURCES:
        sd = resources[name]
        tables = structure(sd)
        for elements in tables.values():
            bound.update(e["vs"] for e in elements.values() if "vs" in e)
        data = {"_source": f"{sd['url']} {sd['fhirVersion']}", **tables}
        (HERE / f"{name}.json").write_text(_dump(data), "utf-8")

    expanded = {url: expand(url, valuesets, codesystems) for url in sorted(bound)}
    lines = ["{"]
    for i, (url, body) in enumerate(expanded.items()):
        comma = "," if i < len(expanded) - 1 else ""
        lines.append(f"  {json.dumps(url)}: {json.dumps(body, ensure_ascii=False)}{comma}")
    lines.append("}")
    (HERE / "valuesets.json").write_text("\n".join(lines) + "\n", "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

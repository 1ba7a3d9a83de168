"""The consult directory: hospitals (Organization), specialisms (HealthcareService) and specialists
(PractitionerRole) that answer digital consultation questions (DOMAIN.md §1, §2; issue 6).

The directory is data. ``hisgw serve --demo`` builds it from the real GHC page (``seeds/000_*.txt``,
:func:`gateway.demo.parse_directory`: Martini, UMCG, Treant, OZG, WZA and their specialisms) and adds here
what that page says further on: clinical genetics at the UMCG answers general questions as the vakgroep
"Algemene Genetica" and specific ones as the subspecialisms Cardiogenetica, Oncogenetica and
Neurogenetica, which need the patient's family form as an attachment (``config.toml``
``requires_attachment``). A HealthcareService of a subspecialism carries both specialties
(Klinische Genetica, the subspecialism). The page also names the care group's **kaderhuisarts Astma/COPD**
(a GP with a special interest) as a consult target since August 2022: the demo adds the care group as an
organisation (type Zorggroep) whose HealthcareService "Kaderhuisarts Astma/COPD" takes consults like a
specialism (:func:`kaderhuisarts_targets`). A few demo specialists (fictional names) make a named consult
possible in the demo.

Another region loads its own directory from a configuration file (:data:`DIRECTORY_EXAMPLE`) with
``hisgw directory load FILE [--db URL]``: the directory is ordinary FHIR data in the store (Organization,
HealthcareService, PractitionerRole), written idempotently (conditional creates on identifiers) and audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

Agent = TypeVar("Agent")
"""Who writes the demo directory (``gateway/demo.py`` passes its audit agents through)."""

GENETICS = "Klinische Genetica"
SPECIALISM_SYSTEM = "urn:his-gateway:demo:specialism"
SPECIALIST_SYSTEM = "urn:his-gateway:demo:specialist"
DEMO_SPECIALISTS = (  # (hospital index, name, specialism): fictional people for the demo
    (0, "dr. M. Hartman", "Cardiologie"),
    (0, "dr. L. Zenuwe", "Neurologie"),
)


def genetics_subspecialisms(text: str) -> list[str]:
    """The clinical genetics vakgroep and subspecialisms named on the GHC page (seeds/000)."""
    out: list[str] = []
    general = re.search(r"vakgroep\s+[‘'\"]([^’'\"]+)[’'\"]", text)
    if general:
        out.append(general.group(1).strip())
    block = re.search(r"subspecialismen:\s*\n((?:\s*•[^\n]*\n)+)", text)
    if block:
        out += [line.strip().lstrip("•").strip() for line in block.group(1).splitlines() if line.strip()]
    return out


def kaderhuisarts_targets(text: str) -> list[str]:
    """The kaderhuisartsen the GHC page (seeds/000) offers digital consultation with, as service names:
    "Digitale consultatie met kaderhuisarts Astma/COPD" gives ``["Kaderhuisarts Astma/COPD"]``."""
    found = re.findall(r"consultatie met (?:onze |de )?kaderhuisarts\s+([^\n.,]+)", text, re.IGNORECASE)
    return list(dict.fromkeys(f"Kaderhuisarts {t.strip()}" for t in found))


CARE_GROUP = "GHC (zorggroep)"
"""The care group of the demo region, whose page seeds/000 is: it offers the kaderhuisarts."""


def hospital(ura: str, name: str, kind: str = "Ziekenhuis") -> tuple[dict, str]:
    """A hospital (or another consultant organisation, ``kind``) as an Organization, and the criteria that
    find it again (its URA)."""
    from gateway.clients import URA_SYSTEM

    res = {
        "resourceType": "Organization",
        "identifier": [{"system": URA_SYSTEM, "value": ura}],
        "active": True,
        "name": name,
        "type": [{"text": kind}],
    }
    return res, f"identifier={URA_SYSTEM}|{ura}"


def specialism(value: str, org_id: str, name: str, specialties: list[str]) -> tuple[dict, str]:
    """A specialism (or subspecialism: its parent first in ``specialties``) of a hospital as the
    HealthcareService consults are sent to, and the criteria that find it again."""
    res = {
        "resourceType": "HealthcareService",
        "identifier": [{"system": SPECIALISM_SYSTEM, "value": value}],
        "active": True,
        "providedBy": {"reference": f"Organization/{org_id}"},
        "type": [{"text": "Digitale consultatie"}],
        "specialty": [{"text": s} for s in specialties],
        "name": name,
    }
    return res, f"identifier={SPECIALISM_SYSTEM}|{value}"


def specialist(value: str, name: str, org_id: str, service_id: str, specialism_name: str) -> tuple[dict, str]:
    """A specialist as a PractitionerRole of a hospital's specialism, and the criteria that find it again."""
    res = {
        "resourceType": "PractitionerRole",
        "identifier": [{"system": SPECIALIST_SYSTEM, "value": value}],
        "active": True,
        "practitioner": {"display": name},
        "organization": {"reference": f"Organization/{org_id}"},
        "healthcareService": [{"reference": f"HealthcareService/{service_id}"}],
        "specialty": [{"text": specialism_name}],
    }
    return res, f"identifier={SPECIALIST_SYSTEM}|{value}"


def seed_demo(
    put: Callable[[tuple[str, ...], Agent, dict, str], str],
    hospitals: dict[str, list[str]],
    ura_of: Callable[[int], str],
    agent_of: Callable[[str, str], Agent],
    seed_text: str,
) -> dict[str, str]:
    """Add the clinical genetics subspecialisms and the demo specialists (idempotent). The hospitals and
    their specialisms are the ones ``gateway/demo.py`` wrote (the same conditional creates find them)."""
    out: dict[str, str] = {}
    subs = genetics_subspecialisms(seed_text)
    for i, (name, specialisms) in enumerate(hospitals.items()):
        ura = ura_of(i)
        keys, who = (f"ura:{ura}",), agent_of(ura, name)
        org_id = put(keys, who, *hospital(ura, name))
        service_ids: dict[str, str] = {}
        if GENETICS in specialisms:
            for sub in subs:
                value = f"{ura}-genetica-{sub.lower().replace(' ', '-')}"
                service_ids[sub] = put(keys, who, *specialism(value, org_id, sub, [GENETICS, sub]))
        for j, spec in enumerate(specialisms):
            if spec not in service_ids:
                service_ids[spec] = put(keys, who, *specialism(f"{ura}-{j + 1}", org_id, spec, [spec]))
        for h, person, spec in DEMO_SPECIALISTS:
            if h != i or spec not in service_ids:
                continue
            value = f"{ura}-{person.lower().replace(' ', '').replace('.', '')}"
            out[f"specialist:{person}"] = put(
                keys, who, *specialist(value, person, org_id, service_ids[spec], spec)
            )
            out[f"specialism:{name}:{spec}"] = service_ids[spec]
    targets = kaderhuisarts_targets(seed_text)
    if targets:  # the care group's kaderhuisartsen: consult targets like a specialism
        ura = ura_of(len(hospitals))
        keys, who = (f"ura:{ura}",), agent_of(ura, CARE_GROUP)
        org_id = put(keys, who, *hospital(ura, CARE_GROUP, "Zorggroep"))
        for target in targets:
            value = f"{ura}-{target.lower().replace(' ', '-').replace('/', '-')}"
            out[f"specialism:{CARE_GROUP}:{target}"] = put(
                keys, who, *specialism(value, org_id, target, ["Kaderhuisarts", target.split(" ", 1)[1]])
            )
    return out


# -- a region's directory from a configuration file ---------------------------------------------------------

DIRECTORY_EXAMPLE = """\
# hisgw directory load FILE: the hospitals, specialisms and specialists that answer consults
[[hospital]]
name = "Martini Ziekenhuis"
ura = "99990001"                      # the hospital's URA (8 digits)
specialisms = ["Cardiologie", "Neurologie"]

[[hospital.subspecialism]]            # optional: a subspecialism under one of the specialisms
name = "Cardiogenetica"
parent = "Klinische Genetica"

[[hospital.specialist]]               # optional: specialists who answer by name
name = "dr. M. Hartman"
specialism = "Cardiologie"
"""


def parse_config(text: str, source: str = "<directory>") -> list[dict]:
    """Read and check a directory file (TOML, :data:`DIRECTORY_EXAMPLE`); ValueError names what is wrong."""
    import tomllib

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    hospitals = raw.get("hospital")
    if not isinstance(hospitals, list) or not hospitals:
        raise ValueError(f"{source}: no [[hospital]] tables")
    for i, h in enumerate(hospitals):
        where = f"{source} hospital[{i}]"
        if not isinstance(h.get("name"), str) or not h["name"].strip():
            raise ValueError(f"{where}: name is required")
        if not (isinstance(h.get("ura"), str) and re.fullmatch(r"\d{8}", h["ura"])):
            raise ValueError(f"{where}: ura must be 8 digits")
        specs = h.get("specialisms", [])
        if not isinstance(specs, list) or not all(isinstance(s, str) and s.strip() for s in specs):
            raise ValueError(f"{where}: specialisms must be a list of names")
        names = set(specs) | {s.get("name") for s in h.get("subspecialism", [])}
        for j, s in enumerate(h.get("subspecialism", [])):
            if not isinstance(s.get("name"), str) or not isinstance(s.get("parent"), str):
                raise ValueError(f"{where} subspecialism[{j}]: name and parent are required")
        for j, p in enumerate(h.get("specialist", [])):
            if not isinstance(p.get("name"), str) or p.get("specialism") not in names:
                raise ValueError(
                    f"{where} specialist[{j}]: name and one of the hospital's specialisms required"
                )
    return hospitals


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"


def load_config(
    engine, store, hospitals: list[dict], agent_of: Callable[[str, str], object]
) -> dict[str, int]:
    """Write a checked directory (:func:`parse_config`) into the store, idempotently; the number of
    organisations, specialisms and specialists it holds."""
    from gateway import audit
    from gateway.fhir.validation import has_errors, validate
    from mappings.problems import InputError

    counts = {"organizations": 0, "specialisms": 0, "specialists": 0}

    def put(keys: tuple[str, ...], who, res: dict, criteria: str) -> str:
        problems = validate(res)
        if has_errors(problems):
            raise InputError(problems)
        with engine.begin() as conn:
            stored, created = store.create(conn, keys, res, if_none_exist=criteria)
            if created:
                audit.record(
                    conn, who=who, action="C", subtype="create", entities=[f"{stored.rtype}/{stored.rid}"]
                )
        return stored.rid

    for h in hospitals:
        ura, keys = h["ura"], (f"ura:{h['ura']}",)
        who = agent_of(ura, h["name"])
        org_id = put(keys, who, *hospital(ura, h["name"]))
        counts["organizations"] += 1
        ids: dict[str, str] = {}
        entries = [(s, [s]) for s in h.get("specialisms", [])]
        entries += [(s["name"], [s["parent"], s["name"]]) for s in h.get("subspecialism", [])]
        for name, specialties in entries:
            ids[name] = put(keys, who, *specialism(f"{ura}-{_slug(name)}", org_id, name, specialties))
            counts["specialisms"] += 1
        for p in h.get("specialist", []):
            value = f"{ura}-{_slug(p['name'])}"
            put(keys, who, *specialist(value, p["name"], org_id, ids[p["specialism"]], p["specialism"]))
            counts["specialists"] += 1
    return counts

"""``hisgw serve --demo``: demo practices, the hospital directory, the real PS patient, clients with keys.

- Two practices (AGB; the first is the practice of the real Nictiz professional summary, with its URA).
- The hospitals and their specialisms for digital consultation from ``seeds/000_*.txt`` (the GHC page
  listing Martini, UMCG, Treant, OZG and WZA): an Organization per hospital, a HealthcareService per
  specialism (DOMAIN.md §1, §2). Their URAs are demo numbers (``9999xxxx``), not the real ones.
- The patient of the real professional summary (``external/nictiz-huisartswaarneming``), read by
  ``adapters.ps_hl7v3``; its FHIR form comes from ``mappings.fhir`` when that offers a dossier-to-Bundle
  mapping, else from a minimal Patient mapping here (BSN, name, birth date, gender, address, telecom).
- Clients (``var/demo-clients/``): a key pair per client (private key 0600), their JWKS and
  ``clients.toml``; kept across restarts so a first call keeps working.

Seeding is idempotent (conditional creates on identifiers) and audited like any other write.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from gateway import audit
from gateway.auth.keys import write_client_keys
from gateway.clients import AGB_SYSTEM, URA_SYSTEM
from gateway.consult import directory
from gateway.fhir.patient import BSN_SYSTEM, patient_fhir
from gateway.fhir.validation import has_errors, validate
from gateway.store import Store
from mappings import model as m
from mappings.problems import InputError

log = logging.getLogger("hisgw.demo")

PRACTICES = (("01099001", "90000388", None), ("01099002", None, "Huisartsenpraktijk De Demo"))
SEEDER = audit.CLIENT_SYSTEM


@dataclass(frozen=True)
class DemoClient:
    id: str
    name: str
    kind: str
    agb: str | None
    ura: str | None
    org_name: str
    scopes: tuple[str, ...]
    alg: str


def shared_dir(explicit: Path | None) -> Path:
    """The checkout's ``tests/data`` (``seeds/``, ``external/``; see its README) unless configured."""
    return explicit or Path(__file__).resolve().parent.parent / "tests" / "data"


def parse_directory(text: str) -> dict[str, list[str]]:
    """Hospitals and their specialisms from the GHC page (``seeds/000``): the block after "Voor wie"."""
    hospitals: dict[str, list[str]] = {}
    current = None
    started = False
    for line in text.splitlines():
        stripped = line.strip()
        if not started:
            started = stripped == "Voor wie"
            continue
        if line.startswith(" • "):  # the next top-level item ends the block
            break
        if stripped.endswith(":") and "." not in stripped:
            current = stripped[:-1].strip()
            hospitals[current] = []
        elif current and stripped.startswith("•"):
            name = re.sub(r"\s+", " ", stripped.lstrip("•").strip())
            if name:
                hospitals[current].append(name)
    return {h: s for h, s in hospitals.items() if s}


def _practice_names(ps_practice: m.Organization | None) -> list[str]:
    return [ps_practice.name if ps_practice else "Huisartsenpraktijk De Linde", PRACTICES[1][2] or ""]


def demo_clients(hospitals: list[str], ps_practice: m.Organization | None) -> list[DemoClient]:
    names = _practice_names(ps_practice)
    ura1 = ps_practice.ura if ps_practice and ps_practice.ura else PRACTICES[0][1]
    out = [
        DemoClient(
            "demo-praktijk-1",
            f"HIS of {names[0]}",
            "practice",
            PRACTICES[0][0],
            ura1,
            names[0],
            ("system/*.cruds",),
            "ES384",
        ),
        DemoClient(
            "demo-praktijk-2",
            f"HIS of {names[1]}",
            "practice",
            PRACTICES[1][0],
            None,
            names[1],
            ("system/*.cruds",),
            "RS384",
        ),
        DemoClient(
            "demo-audit-praktijk-1",
            f"Privacy officer of {names[0]}",
            "practice",
            PRACTICES[0][0],
            ura1,
            names[0],
            ("system/AuditEvent.read",),
            "ES384",
        ),
    ]
    if hospitals:
        out.append(
            DemoClient(
                "demo-ziekenhuis-1",
                f"EHR of {hospitals[0]}",
                "hospital",
                None,
                _ura(0),
                hospitals[0],
                ("system/*.cruds",),
                "ES384",
            )
        )
    return out


def _ura(i: int) -> str:
    return f"9999{i + 1:04d}"


def write_clients(directory: Path, clients: list[DemoClient]) -> Path:
    """Key pairs and ``clients.toml`` (only when missing: existing demo keys are kept)."""
    toml = directory / "clients.toml"
    if toml.exists():
        return toml
    lines = ["# Demo clients of `hisgw serve --demo` (gateway/demo.py). Private keys: <client>.private.pem"]
    for c in clients:
        write_client_keys(directory, c.id, c.alg)
        lines += [
            "",
            "[[client]]",
            f'id = "{c.id}"',
            f'name = "{c.name}"',
            "scopes = [" + ", ".join(f'"{s}"' for s in c.scopes) + "]",
            f'jwks_file = "{c.id}.jwks.json"',
        ]
        if c.kind == "practice" and "AuditEvent" not in c.scopes[0]:
            lines.append('role = { code = "01.015", display = "Huisarts" }')
        lines += ["", "[client.organization]", f'name = "{c.org_name}"', f'kind = "{c.kind}"']
        lines += [f'agb = "{c.agb}"'] if c.agb else []
        lines += [f'ura = "{c.ura}"'] if c.ura else []
    toml.write_text("\n".join(lines) + "\n", "utf-8")
    return toml


def read_ps(shared: Path) -> m.Dossier | None:
    """The dossier of the real professional summary (None when the file is not there)."""
    from adapters.ps_hl7v3 import FORMAT
    from mappings.problems import ProblemSink

    path = shared / "external" / "nictiz-huisartswaarneming" / "QUPC_IN990002NL_01.hl7v3.xml"
    if not path.exists():
        return None
    return FORMAT.read(path.read_bytes(), source=path.name, sink=ProblemSink())


def _org(name: str, agb: str | None, ura: str | None, type_text: str) -> dict:
    ids = [{"system": URA_SYSTEM, "value": ura}] if ura else []
    ids += [{"system": AGB_SYSTEM, "value": agb}] if agb else []
    return {
        "resourceType": "Organization",
        "identifier": ids,
        "active": True,
        "name": name,
        "type": [{"text": type_text}],
    }


def _mapped_patient(dossier: m.Dossier) -> dict | None:
    """The project's FHIR Patient mapping, when installed (``mappings.fhir.patient.to_fhir``)."""
    if importlib.util.find_spec("mappings.fhir.patient") is None:
        return None
    module = importlib.import_module("mappings.fhir.patient")
    to_fhir = getattr(module, "to_fhir", None)
    if to_fhir is None:
        return None
    try:
        res = to_fhir(dossier.patient)
    except Exception:  # noqa: BLE001 - another signature or a failure: the minimal mapping below serves
        log.warning("mappings.fhir.patient.to_fhir unusable for the demo; using the minimal Patient mapping")
        return None
    if not isinstance(res, dict) or res.get("resourceType") != "Patient" or has_errors(validate(dict(res))):
        return None
    return dict(res)


def seed(
    engine: Engine,
    store: Store,
    clients: list[DemoClient],
    hospitals: dict[str, list[str]],
    dossier: m.Dossier | None,
    *,
    seed_text: str | None = None,
) -> dict[str, str]:
    """Write the demo data (idempotent); returns a few ids worth printing. ``seed_text`` (the GHC page of
    ``seeds/000``) adds what the consult directory reads further on it (``gateway/consult/directory.py``)."""
    out: dict[str, str] = {}
    names = _practice_names(dossier.practice if dossier else None)

    def put(orgs: tuple[str, ...], who: audit.Agent, res: dict, criteria: str) -> str:
        problems = validate(res)
        if has_errors(problems):  # demo data is held to the rules every client is held to
            raise InputError(problems)
        with engine.begin() as conn:
            stored, created = store.create(conn, orgs, res, if_none_exist=criteria)
            if created:
                audit.record(
                    conn,
                    who=who,
                    action="C",
                    subtype="create",
                    entities=[f"{stored.rtype}/{stored.rid}"],
                    patients=list(stored.patients),
                )
        return stored.rid

    for i, (agb, ura, _) in enumerate(PRACTICES):
        if i == 0 and dossier and dossier.practice.ura:
            ura = dossier.practice.ura
        keys = tuple(k for k in (f"ura:{ura}" if ura else None, f"agb:{agb}") if k)
        who = audit.Agent(
            SEEDER,
            "hisgw-demo",
            "hisgw serve --demo",
            keys[0],
            {"system": URA_SYSTEM if ura else AGB_SYSTEM, "value": ura or agb},
            names[i],
        )
        out[f"practice{i + 1}"] = put(
            keys, who, _org(names[i], agb, ura, "Huisartsenpraktijk"), f"identifier={AGB_SYSTEM}|{agb}"
        )
        if i == 0 and dossier is not None:
            res = _mapped_patient(dossier) or patient_fhir(
                dossier.patient, f"Organization/{out['practice1']}"
            )
            res["managingOrganization"] = {"reference": f"Organization/{out['practice1']}"}
            crit = f"identifier={BSN_SYSTEM}|{dossier.patient.bsn}"
            out["patient"] = put(keys, who, res, crit)
            out["bsn"] = dossier.patient.bsn or ""
    for i, (hospital, specialisms) in enumerate(hospitals.items()):
        ura = _ura(i)
        keys = (f"ura:{ura}",)
        who = _hospital_agent(ura, hospital)
        org_id = put(keys, who, *directory.hospital(ura, hospital))
        for j, spec in enumerate(specialisms):
            put(keys, who, *directory.specialism(f"{ura}-{j + 1}", org_id, spec, [spec]))
    if seed_text is not None:  # issue 6: the genetics subspecialisms and the demo specialists
        out.update(directory.seed_demo(put, hospitals, _ura, _hospital_agent, seed_text))
    return out


def _hospital_agent(ura: str, name: str) -> audit.Agent:
    """The demo seeder acting for a hospital (audit agent)."""
    ident = {"system": URA_SYSTEM, "value": ura}
    return audit.Agent(SEEDER, "hisgw-demo", "hisgw serve --demo", f"ura:{ura}", ident, name)

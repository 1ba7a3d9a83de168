"""Walkthrough: a digital consult against `hisgw serve --demo` (issue 6; docs/consult.md).

    uv run python scripts/consult-walkthrough.py [--base-url http://127.0.0.1:8080] [--keys var/demo-clients]
                                                 [--db sqlite:///./var/hisgw.db] [--out-dir var/declarations]

The GP practice (client demo-praktijk-1) and the hospital (demo-ziekenhuis-1, Martini Ziekenhuis) of the
demo, each with its own token:

1. the practice sends a consult to Cardiologie with its HIS export attached (the real NHG professional
   summary, HL7v3), narrowed to episode 525 "Hartkloppingen" (POST /Task/$send-consult);
2. specialist dr. M. Hartman picks it up, answers and closes it with a declaration
   ($pickup, $answer, $close);
3. the answer is in the outbox, queued for the practice's HIS postbox;
4. the declaration: `hisgw declarations` for this quarter, as a rehearsal on a copy of the database
   (`--as-of` the first day of the next quarter: a quarter is declared once it is over).

Prints each step; exits 1 when a step fails.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
PS = ROOT / "tests" / "data" / "external" / "nictiz-huisartswaarneming" / "QUPC_IN990002NL_01.hl7v3.xml"
AMS = ZoneInfo("Europe/Amsterdam")


class Failed(Exception):
    pass


def token(http: httpx.Client, keys: Path, client: str) -> str:
    jwk = json.loads((keys / f"{client}.jwks.json").read_text())["keys"][0]
    key = serialization.load_pem_private_key((keys / f"{client}.private.pem").read_bytes(), None)
    token_url = http.get("/.well-known/smart-configuration").json()["token_endpoint"]
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": client,
            "sub": client,
            "aud": token_url,
            "iat": now,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        },
        key,  # type: ignore[arg-type]
        algorithm=jwk["alg"],
        headers={"kid": jwk["kid"], "typ": "JWT"},
    )
    r = http.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "scope": "system/*.cruds",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    if r.status_code != 200:
        raise Failed(f"token for {client}: {r.status_code} {r.text}")
    return r.json()["access_token"]


def call(
    http: httpx.Client, tok: str, method: str, path: str, body: dict | None = None, ok=(200, 201)
) -> dict:
    headers = {"Authorization": f"Bearer {tok}", "Accept": "application/fhir+json"}
    if body is not None:
        headers["Content-Type"] = "application/fhir+json"
    r = http.request(method, path, headers=headers, content=json.dumps(body) if body is not None else None)
    if r.status_code not in ok:
        raise Failed(f"{method} {path}: {r.status_code} {r.text}")
    return r.json()


def parameters(**values) -> dict:
    items = []
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            kind = "valueBoolean" if isinstance(v, bool) else "valueString"
            items.append({"name": name, kind: v})
    return {"resourceType": "Parameters", "parameter": items}


def walkthrough(args) -> None:
    keys = Path(args.keys)
    with httpx.Client(base_url=args.base_url, timeout=60) as http:
        gp = token(http, keys, "demo-praktijk-1")
        hospital = token(http, keys, "demo-ziekenhuis-1")
        orgs = call(http, hospital, "GET", "/Organization?name=Martini")
        martini = orgs["entry"][0]["resource"]["id"]
        services = call(http, gp, "GET", f"/HealthcareService?organization={martini}&name:exact=Cardiologie")
        cardiology = services["entry"][0]["resource"]["id"]
        roles = call(http, hospital, "GET", f"/PractitionerRole?organization={martini}&_count=50")
        specialist = next(
            e["resource"]["id"]
            for e in roles["entry"]
            if e["resource"].get("practitioner", {}).get("display") == "dr. M. Hartman"
        )
        print(
            f"0. tokens for demo-praktijk-1 and demo-ziekenhuis-1; Martini Ziekenhuis, Cardiologie, "
            f"specialist PractitionerRole/{specialist}"
        )

        export = base64.b64encode(PS.read_bytes()).decode("ascii")
        send = parameters(
            question="Paroxysmaal AF, CHA2DS2-VASc 2: antistolling starten?",
            specialism=f"HealthcareService/{cardiology}",
            format="ps-hl7v3",
            episode="525",
            asOf="2017-06-21",
            insurer="3311",
        )
        send["parameter"].append({"name": "export", "valueBase64Binary": export})
        task = call(http, gp, "POST", "/Task/$send-consult", send)
        tid = task["id"]
        due = task["restriction"]["period"]["end"]
        doc = task["input"][0]["valueReference"]["reference"]
        print(
            f"1. consult Task/{tid} sent ({task['businessStatus']['text']}), answer due {due}; "
            f"summary attached as {doc}"
        )

        me = f"PractitionerRole/{specialist}"
        call(http, hospital, "GET", f"/{doc}")
        for op, values in (
            ("pickup", {}),
            ("answer", {"text": "Start een DOAC; controle nierfunctie na 3 maanden."}),
            ("close", {"declaration": True, "newTreatmentQuestion": True, "noOpenDbc": True}),
        ):
            task = call(http, hospital, "POST", f"/Task/{tid}/${op}", parameters(specialist=me, **values))
            print(f"2. ${op}: {task['businessStatus']['text']}")
        charges = call(http, hospital, "GET", f"/ChargeItem?patient={task['for']['reference']}&_count=50")
        mine = [
            e["resource"]
            for e in charges.get("entry", [])
            if e["resource"]["supportingInformation"][0]["reference"] == f"Task/{tid}"
        ]
        print(
            f"   declared: {len(mine)} ChargeItems "
            f"({', '.join(c['code']['coding'][0]['code'] for c in mine)})"
        )
        if len(mine) != 2:
            raise Failed("closing with a declaration should have made two ChargeItems")

    answer_source = _queued(args.db, tid)
    print(f"3. the answer ({answer_source}) is queued for the practice's HIS postbox")

    _declare(args, tid)


def _sqlite_path(db: str) -> Path:
    if not db.startswith("sqlite:///"):
        raise Failed("the walkthrough reads the demo's SQLite database (--db sqlite:///...)")
    return Path(db[len("sqlite:///") :]).resolve()


def _queued(db: str, tid: str) -> str:
    with sqlite3.connect(f"file:{_sqlite_path(db)}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT source, kind, state FROM outbox_item WHERE kind = 'consult-answer'"
        ).fetchall()
        comms = {r[0]: r for r in rows}
        found = [
            s
            for s in comms
            if conn.execute(
                "SELECT 1 FROM idx_reference WHERE res_type = 'Communication' AND res_id = ? "
                "AND param = 'part-of' AND target_id = ?",
                (s.split("/", 1)[1], tid),
            ).fetchone()
        ]
    if not found:
        raise Failed(f"no postbox item for the answer of Task/{tid}")
    return found[0]


def _declare(args, tid: str) -> None:
    now = dt.datetime.now(AMS)
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    q = (now.month - 1) // 3 + 1
    next_start = dt.datetime(now.year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, 9, 0, tzinfo=AMS)
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    copy = out / "rehearsal.db"
    copy.unlink(missing_ok=True)
    with sqlite3.connect(_sqlite_path(args.db)) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # a consistent copy while the gateway runs
    cmd = [
        sys.executable,
        "-m",
        "gateway.cli",
        "declarations",
        "--quarter",
        quarter,
        "--db",
        f"sqlite:///{copy}",
        "--out-dir",
        str(out),
        "--as-of",
        next_start.isoformat(),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if r.returncode != 0:
        raise Failed(f"hisgw declarations: {r.stderr}")
    csv = (out / f"declarations-{quarter}-3311.csv").read_text("utf-8")
    lines = [line for line in csv.splitlines() if f",{tid}," in line]
    print(f"4. hisgw declarations --quarter {quarter} (rehearsal on a copy, as of {next_start:%Y-%m-%d}):")
    for line in r.stdout.splitlines():
        print(f"   {line}")
    print(
        f"   {out / f'declarations-{quarter}-3311.csv'}: {len(lines)} lines for this consult "
        "(GP and specialist)"
    )
    if len(lines) != 2:
        raise Failed("the consult should be declared for the GP and the specialist")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8080")
    ap.add_argument("--keys", default="var/demo-clients")
    ap.add_argument("--db", default="sqlite:///./var/hisgw.db")
    ap.add_argument("--out-dir", default="var/declarations")
    args = ap.parse_args()
    try:
        walkthrough(args)
    except Failed as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(
        "ok: export in, consult sent with the summary, picked up, answered, closed with a declaration, "
        "declared, answer queued for the postbox"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

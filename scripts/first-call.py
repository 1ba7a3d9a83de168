"""The first authenticated FHIR call against `hisgw serve --demo` (SMART Backend Services).

    uv run python scripts/first-call.py [--base-url http://127.0.0.1:8080] [--client demo-praktijk-1]
                                        [--keys var/demo-clients] [--bsn 555555914]

1. sign a client assertion with the client's private key (ES384/RS384; iss = sub = client id,
   aud = the token URL, exp 4 minutes ahead, a fresh jti);
2. POST it to the token endpoint (grant_type=client_credentials) for `system/Patient.rs`;
3. GET Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|<bsn> with the access token.

Prints each step; exits 1 when a step fails. Only httpx and PyJWT are needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8080")
    ap.add_argument("--client", default="demo-praktijk-1")
    ap.add_argument(
        "--keys", default="var/demo-clients", help="directory with <client>.private.pem and .jwks.json"
    )
    ap.add_argument("--bsn", default="555555914")
    args = ap.parse_args()
    keys = Path(args.keys)
    jwk = json.loads((keys / f"{args.client}.jwks.json").read_text())["keys"][0]
    private_key = serialization.load_pem_private_key((keys / f"{args.client}.private.pem").read_bytes(), None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)

    with httpx.Client(base_url=args.base_url, timeout=30) as http:
        smart = http.get("/.well-known/smart-configuration").json()
        token_url = smart["token_endpoint"]
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": args.client,
                "sub": args.client,
                "aud": token_url,
                "iat": now,
                "exp": now + 240,
                "jti": uuid.uuid4().hex,
            },
            private_key,
            algorithm=jwk["alg"],
            headers={"kid": jwk["kid"], "typ": "JWT"},
        )
        print(f"1. client assertion signed with {jwk['alg']} key {jwk['kid']}")
        r = http.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "scope": "system/Patient.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
        if r.status_code != 200:
            print(f"token request failed: {r.status_code} {r.text}", file=sys.stderr)
            return 1
        token = r.json()
        print(f"2. access token for scope {token['scope']!r}, valid {token['expires_in']} s")
        r = http.get(
            "/Patient",
            params={"identifier": f"http://fhir.nl/fhir/NamingSystem/bsn|{args.bsn}"},
            headers={"Authorization": f"Bearer {token['access_token']}", "Accept": "application/fhir+json"},
        )
        if r.status_code != 200:
            print(f"search failed: {r.status_code} {r.text}", file=sys.stderr)
            return 1
        bundle = r.json()
        print(f"3. GET Patient?identifier=...bsn|{args.bsn}: {bundle['total']} match(es)")
        for entry in bundle.get("entry", []):
            p = entry["resource"]
            name = " ".join(
                [*p.get("name", [{}])[0].get("given", []), p.get("name", [{}])[0].get("family", "")]
            )
            print(f"   {entry['fullUrl']}  {name.strip()}  born {p.get('birthDate')}")
        return 0 if bundle["total"] >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())

"""SMART Backend Services authentication (issue 5, acceptance 4): the auth matrix generated from the served
routes, the token endpoint's checks on client assertions, scopes, and the validated clients file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.api.app import served_routes
from gateway.auth.keys import ASSERTION_TYPE, generate_private_key
from gateway.clients import Registry
from gateway.fhir.examples import minimal
from mappings.problems import InputError

# Every route the gateway serves, and whether it needs a token. A route added to the app without an entry
# here fails test_matrix_covers_exactly_the_served_routes: new routes are public only by decision.
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/metadata"): "public",
    ("GET", "/.well-known/smart-configuration"): "public",
    ("GET", "/health"): "public",
    ("POST", "/auth/token"): "public",  # authenticates by client assertion, tested below
    ("GET", "/openapi.json"): "token",
    ("POST", "/"): "token",
    ("GET", "/{type}"): "token",
    ("POST", "/{type}/_search"): "token",
    ("POST", "/{type}"): "token",
    ("PUT", "/{type}"): "token",
    ("DELETE", "/{type}"): "token",
    ("GET", "/{type}/_history"): "token",
    ("POST", "/{type}/$validate"): "token",
    ("GET", "/{type}/{id}"): "token",
    ("PUT", "/{type}/{id}"): "token",
    ("DELETE", "/{type}/{id}"): "token",
    ("GET", "/{type}/{id}/_history"): "token",
    ("GET", "/{type}/{id}/_history/{vid}"): "token",
    # the consult operations (issue 6, gateway/api/consult.py)
    ("POST", "/Task/$send-consult"): "token",
    ("GET", "/Task/$worklist"): "token",
    ("GET", "/Task/$overdue"): "token",
    ("POST", "/Task/{id}/$pickup"): "token",
    ("POST", "/Task/{id}/$answer"): "token",
    ("POST", "/Task/{id}/$follow-up"): "token",
    ("POST", "/Task/{id}/$close"): "token",
    ("POST", "/Task/{id}/$cancel"): "token",
    ("POST", "/ChargeItem/$declarations"): "token",
    ("POST", "/Communication/$converse"): "token",
    ("GET", "/Communication/$overdue-replies"): "token",
    # postbox delivery state (issue 7, gateway/api/outbox.py)
    ("GET", "/outbox"): "token",
    ("GET", "/outbox/{id}"): "token",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(service, **over) -> dict:
    now = int(time.time())
    base = service.settings.fhir_base
    return {
        "iss": base,
        "sub": "practice-a",
        "aud": base,
        "iat": now,
        "exp": now + 120,
        "jti": "j",
        "scope": "system/*.cruds",
        **over,
    }


def bad_tokens(service) -> dict[str, str | None]:
    """The tokens every protected route must refuse with 401."""
    key = service.signing_key
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = _claims(service)
    head_none = _b64(b'{"alg":"none","typ":"JWT"}')
    head_hs = _b64(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64(orjson.dumps(claims))
    hs_sig = _b64(hmac.new(public_pem, f"{head_hs}.{body}".encode(), hashlib.sha256).digest())
    good = jwt.encode(claims, key, algorithm="ES384")
    h, p, s = good.split(".")
    tampered_body = _b64(orjson.dumps({**claims, "sub": "practice-b"}))
    return {
        "missing": None,
        "expired": jwt.encode(
            _claims(service, iat=int(time.time()) - 900, exp=int(time.time()) - 600), key, algorithm="ES384"
        ),
        "wrong-audience": jwt.encode(
            _claims(service, aud="https://other.example/fhir"), key, algorithm="ES384"
        ),
        "wrong-issuer": jwt.encode(_claims(service, iss="https://other.example"), key, algorithm="ES384"),
        "alg-none": f"{head_none}.{body}.",
        "hs256-with-public-key": f"{head_hs}.{body}.{hs_sig}",
        "signed-by-another-key": jwt.encode(claims, generate_private_key("ES384"), algorithm="ES384"),
        "tampered-payload": f"{h}.{tampered_body}.{s}",
        "garbage": "not-a-jwt",
    }


def _requests_for(method: str, path: str, rd) -> list[tuple[str, str, bytes | None]]:
    out = []
    for rtype in rd.types or (None,):
        concrete = path.replace("{type}", rtype or "").replace("{id}", "x").replace("{vid}", "1")
        body = None
        if path.endswith("/_search"):
            body = b"_count=1"
        elif method in ("POST", "PUT"):
            body = orjson.dumps(minimal(rtype) if rtype else {"resourceType": "Bundle", "type": "batch"})
        out.append((method, concrete, body))
    return out


def test_matrix_covers_exactly_the_served_routes(service):
    served = {(m, p) for m, p, _ in served_routes(service.app)}
    assert served == set(MATRIX), (
        "routes without a matrix entry",
        served - set(MATRIX),
        "matrix entries no route serves",
        set(MATRIX) - served,
    )
    for method, path, rd in served_routes(service.app):
        assert rd.public == (MATRIX[(method, path)] == "public"), (method, path)


def test_every_protected_route_refuses_every_bad_token(service):
    tokens = bad_tokens(service)
    checked = 0
    for method, path, rd in served_routes(service.app):
        if MATRIX[(method, path)] != "token":
            continue
        for m, url, body in _requests_for(method, path, rd):
            for name, token in tokens.items():
                headers = {"Content-Type": "application/fhir+json"}
                if token is not None:
                    headers["Authorization"] = f"Bearer {token}"
                r = service.http.request(m, url, content=body, headers=headers)
                assert r.status_code == 401, (m, url, name, r.status_code, r.text)
                assert r.json()["resourceType"] == "OperationOutcome"
                assert r.headers["www-authenticate"].startswith("Bearer")
                checked += 1
            # and the same request with a valid token gets past authentication
            ok = service.request(m, url, content=body, headers={"Content-Type": "application/fhir+json"})
            assert ok.status_code != 401, (m, url, ok.text)
    assert checked > 1000
    assert service.audit_count() > 0  # the valid requests were audited; the refused ones could not be


def test_public_routes_need_no_token(service):
    for method, path, _rd in served_routes(service.app):
        if MATRIX[(method, path)] == "public" and method == "GET":
            assert service.http.get(path).status_code == 200, path


def _token_request(service, assertion: str, scope: str = "system/*.cruds"):
    return service.http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def test_token_endpoint_issues_short_tokens(service):
    r = _token_request(service, service.assertion("practice-b"))  # an RS384 client
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["token_type"] == "bearer" and answer["expires_in"] <= 300
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 300 and claims["sub"] == "practice-b"
    assert jwt.get_unverified_header(answer["access_token"])["alg"] == "ES384"
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "case",
    [
        "replay",
        "exp-too-far",
        "expired",
        "wrong-aud",
        "hs256",
        "none",
        "rs256",
        "unknown-kid",
        "unknown-client",
        "sub-differs",
        "other-clients-key",
        "no-jti",
    ],
)
def test_token_endpoint_refuses_bad_assertions(service, case):
    k = service.keys["practice-a"]
    key = serialization.load_pem_private_key(k.pem, None)
    now = int(time.time())
    claims = {
        "iss": "practice-a",
        "sub": "practice-a",
        "aud": service.settings.token_url,
        "exp": now + 120,
        "iat": now,
        "jti": f"jti-{case}",
    }
    headers = {"kid": k.kid}
    if case == "replay":
        first = jwt.encode(claims, key, algorithm="ES384", headers=headers)
        assert _token_request(service, first).status_code == 200
        assertion = first
    elif case == "exp-too-far":
        assertion = jwt.encode({**claims, "exp": now + 600}, key, algorithm="ES384", headers=headers)
    elif case == "expired":
        assertion = jwt.encode({**claims, "exp": now - 120}, key, algorithm="ES384", headers=headers)
    elif case == "wrong-aud":
        assertion = jwt.encode(
            {**claims, "aud": "http://testserver/token"}, key, algorithm="ES384", headers=headers
        )
    elif case == "hs256":
        assertion = jwt.encode(
            claims, "a-shared-secret-of-enough-length-32b", algorithm="HS256", headers=headers
        )
    elif case == "none":
        assertion = (
            _b64(json.dumps({"alg": "none", "kid": k.kid}).encode())
            + "."
            + _b64(json.dumps(claims).encode())
            + "."
        )
    elif case == "rs256":
        rsa = serialization.load_pem_private_key(service.keys["practice-b"].pem, None)
        assertion = jwt.encode(
            {**claims, "iss": "practice-b", "sub": "practice-b"},
            rsa,
            algorithm="RS256",
            headers={"kid": service.keys["practice-b"].kid},
        )
    elif case == "unknown-kid":
        assertion = jwt.encode(claims, key, algorithm="ES384", headers={"kid": "nope"})
    elif case == "unknown-client":
        assertion = jwt.encode(
            {**claims, "iss": "stranger", "sub": "stranger"}, key, algorithm="ES384", headers=headers
        )
    elif case == "sub-differs":
        assertion = jwt.encode({**claims, "sub": "practice-b"}, key, algorithm="ES384", headers=headers)
    elif case == "other-clients-key":
        other = serialization.load_pem_private_key(service.keys["hospital-h"].pem, None)
        assertion = jwt.encode(claims, other, algorithm="ES384", headers=headers)
    else:
        assertion = jwt.encode(
            {k2: v for k2, v in claims.items() if k2 != "jti"}, key, algorithm="ES384", headers=headers
        )
    r = _token_request(service, assertion)
    assert r.status_code == 401, (case, r.text)
    assert r.json()["error"] == "invalid_client"


def test_token_request_form_errors(service):
    good = service.assertion("practice-a")
    # SMART lets the server grant a subset: scopes it does not serve are left out, not a refusal
    assert (
        _token_request(service, good, scope="system/Patient.read patient/Patient.read").json()["scope"]
        == "system/Patient.read"
    )
    only_other = _token_request(
        service, service.assertion("practice-a"), scope="launch/patient patient/*.read"
    )
    assert only_other.status_code == 400 and only_other.json()["error"] == "invalid_scope"
    assert (
        _token_request(service, service.assertion("practice-a"), scope="").json()["error"] == "invalid_scope"
    )
    r = service.http.post("/auth/token", data={"grant_type": "password", "client_assertion": good})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = service.http.post("/auth/token", content=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 415


def test_scopes_are_granted_within_the_clients_allowance(service):
    r = _token_request(service, service.assertion("reader-a"), scope="system/Patient.rs system/Patient.cruds")
    assert r.json()["scope"] == "system/Patient.rs"
    r = _token_request(service, service.assertion("reader-a"), scope="system/Observation.write")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = _token_request(service, service.assertion("practice-a"), scope="system/AuditEvent.read")
    assert r.json()["error"] == "invalid_scope"  # a wildcard never covers the audit log
    # a scope allowed in part is granted as its allowed part (SMART: the server may grant a subset)
    r = _token_request(
        service,
        service.assertion("reader-a"),
        scope="launch/patient openid system/*.cruds system/Patient.cruds",
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "system/*.rs system/Patient.rs"
    token = r.json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert service.http.get("/Patient", headers=h).status_code == 200
    assert (
        service.http.post(
            "/Patient", content=b"{}", headers={**h, "Content-Type": "application/fhir+json"}
        ).status_code
        == 403
    )
    r = _token_request(service, service.assertion("practice-a"), scope="system/*.cruds system/*.read")
    assert r.json()["scope"] == "system/*.cruds system/*.read"


def test_insufficient_scope_is_403(service):
    created = service.request("POST", "/Patient", json=minimal("Patient"))
    r = service.request("POST", "/Patient", as_="reader-a", json=minimal("Patient"))
    assert r.status_code == 403 and r.json()["issue"][0]["details"]["coding"][0]["code"] == "AUTH-003"
    assert service.request("GET", f"/Patient/{created.json()['id']}", as_="reader-a").status_code == 200
    assert service.request("GET", "/AuditEvent", as_="practice-a").status_code == 403
    assert service.request("GET", "/Observation", as_="auditor-a").status_code == 403


def test_a_removed_client_loses_its_tokens(service):
    """A token outlives nothing: once the client is gone from the registry, its token is refused. The client
    is removed from clients.toml as an operator does (removing it from memory alone raced the registry's
    reload of the unchanged file, which put it back)."""
    from tests.test_security_clients import _without, _write

    assert service.request("GET", "/Patient", as_="practice-b").status_code == 200  # token issued, used
    path = service.settings.clients_file
    _write(path, _without(path.read_text("utf-8"), "practice-b"))
    deadline = time.monotonic() + 5
    while (r := service.request("GET", "/Patient", as_="practice-b")).status_code != 401:
        assert time.monotonic() < deadline, r.status_code
        time.sleep(0.02)
    assert "practice-b" not in service.registry.clients


def _clients_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "clients.toml"
    p.write_text(text, "utf-8")
    return p


def test_clients_file_is_validated_as_a_whole(tmp_path):
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": "x", "y": "y"}]}
    path = _clients_file(
        tmp_path,
        f"""
[[client]]
id = "a"
name = "A"
scopes = ["system/Patient.read", "system/Nonsense.read"]
jwks = {json.dumps(jwks).replace('":', '" =').replace('{"', '{ "')}
[client.organization]
name = "Ziekenhuis"
kind = "hospital"
agb = "01000001"
""",
    )
    with pytest.raises(InputError) as err:
        Registry.load(path)
    messages = " | ".join(p.render_line() for p in err.value.problems)
    assert "AUTH-001" in messages and "scopes" in messages and "URA" in messages and str(path) in messages
    with pytest.raises(InputError):
        Registry.load(tmp_path / "missing.toml")
    with pytest.raises(InputError):
        Registry.load(_clients_file(tmp_path, "[[client]\n"))


def test_weak_or_wrong_keys_are_refused(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from gateway.auth.keys import public_jwk

    small = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "k", "RS384")
    p256 = public_jwk(generate_private_key("ES384"), "k", "ES384") | {"crv": "P-256"}
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(generate_private_key("ES384"))) | {"kid": "k"}
    for jwk, why in (
        (small, "2048"),
        (p256, "P-384"),
        (private, "private"),
        ({**small, "alg": "RS256"}, "alg"),
    ):
        data = {
            "client": [
                {
                    "id": "a",
                    "name": "A",
                    "scopes": ["system/*.read"],
                    "jwks": {"keys": [jwk]},
                    "organization": {"name": "P", "kind": "practice", "agb": "01000001"},
                }
            ]
        }
        with pytest.raises(InputError) as err:
            Registry.from_config(data, base=tmp_path)
        assert why in err.value.problems[0].message, (why, err.value.problems)

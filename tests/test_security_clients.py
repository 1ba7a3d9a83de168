"""Security regression (issue 14): the client registry follows clients.toml without a restart (a removed
client is refused within a second), and SMART Backend Services clients registered by `jwks_uri` keep
working across a key rotation (the JWKS served from 127.0.0.1)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway import clients as clients_mod
from gateway.auth.keys import ASSERTION_TYPE, client_assertion, generate_private_key, public_jwk
from gateway.fhir.examples import minimal


def _without(toml: str, client_id: str) -> str:
    blocks = toml.split("[[client]]")
    return "[[client]]".join(b for b in blocks if f'id = "{client_id}"' not in b)


def _write(path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)  # as an editor or a deployment does: the new file in one step


def test_a_removed_client_is_refused_within_a_second_without_restart(service):
    """Issue 14 #7: removing a client from clients.toml had no effect until restart."""
    path = service.settings.clients_file
    pid = service.request("POST", "/Patient", as_="practice-b", json=minimal("Patient")).json()["id"]
    assert service.request("GET", f"/Patient/{pid}", as_="practice-b").status_code == 200
    original = path.read_text("utf-8")

    _write(path, "[[client]]\nthis is = not valid")  # a broken edit is not taken: nobody is locked out
    time.sleep(clients_mod.RELOAD_INTERVAL * 2)
    assert service.request("GET", f"/Patient/{pid}", as_="practice-b").status_code == 200

    _write(path, _without(original, "practice-b"))
    removed = time.perf_counter()
    while True:
        r = service.request("GET", f"/Patient/{pid}", as_="practice-b")
        if r.status_code == 401:
            break
        assert time.perf_counter() - removed < 1.0, "still served a second after the removal"
        time.sleep(0.02)
    assert time.perf_counter() - removed < 1.0
    assert "no longer registered" in r.text or "not registered" in r.text
    assert service.request("GET", "/Patient?_count=1", as_="practice-a").status_code == 200
    # nor can it get a new token
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": service.assertion("practice-b"),
    }
    assert service.http.post("/auth/token", data=form).status_code == 401


def test_narrowed_scopes_take_effect_for_tokens_already_issued(service):
    path = service.settings.clients_file
    assert service.request("GET", "/Patient?_count=1", as_="practice-b").status_code == 200
    text = path.read_text("utf-8")
    block = next(b for b in text.split("[[client]]") if 'id = "practice-b"' in b)
    _write(path, text.replace(block, block.replace('"system/*.cruds"', '"system/Observation.rs"')))
    time.sleep(clients_mod.RELOAD_INTERVAL * 3)
    r = service.request("GET", "/Patient?_count=1", as_="practice-b")
    assert r.status_code == 401 and "no longer allows" in r.text


class _Jwks:
    """A JWKS endpoint on 127.0.0.1 that counts its fetches."""

    def __init__(self):
        self.jwks: dict = {"keys": []}
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                outer.fetches += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server():
    s = _Jwks()
    yield s
    s.close()


def test_a_jwks_uri_client_keeps_working_across_a_key_rotation(service, jwks_server, monkeypatch):
    monkeypatch.setattr(clients_mod, "JWKS_REFETCH", 0.2)
    old_key, new_key = generate_private_key("ES384"), generate_private_key("RS384")
    jwks_server.jwks = {"keys": [public_jwk(old_key, "k-2026-1", "ES384")]}
    path = service.settings.clients_file
    _write(
        path,
        path.read_text("utf-8")
        + "\n".join(
            [
                "[[client]]",
                'id = "remote-c"',
                'name = "remote-c EHR"',
                'scopes = ["system/*.rs"]',
                f'jwks_uri = "{jwks_server.url}"',
                "[client.organization]",
                'name = "Ziekenhuis C"',
                'kind = "hospital"',
                'ura = "90000011"',
            ]
        )
        + "\n",
    )
    time.sleep(clients_mod.RELOAD_INTERVAL * 2)

    def token(key, kid: str, alg: str) -> tuple[int, dict]:
        pem = _pem(key)
        form = {
            "grant_type": "client_credentials",
            "scope": "system/Patient.rs",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion("remote-c", pem, kid, service.settings.token_url, alg=alg),
        }
        r = service.http.post("/auth/token", data=form)
        return r.status_code, r.json()

    for _ in range(3):
        status, body = token(old_key, "k-2026-1", "ES384")
        assert status == 200, body
    assert jwks_server.fetches == 1  # cached
    # rotation: the client publishes its new key beside the old one and signs with it
    jwks_server.jwks = {
        "keys": [public_jwk(old_key, "k-2026-1", "ES384"), public_jwk(new_key, "k-2026-2", "RS384")]
    }
    time.sleep(0.25)
    status, body = token(new_key, "k-2026-2", "RS384")
    assert status == 200, body
    assert jwks_server.fetches == 2
    r = service.http.get(
        "/Patient?_count=1",
        headers={"Authorization": f"Bearer {body['access_token']}", "Accept": "application/fhir+json"},
    )
    assert r.status_code == 200
    # a key that was never published is refused, and does not make the gateway fetch in a loop
    stranger = generate_private_key("ES384")
    for _ in range(5):
        status, body = token(stranger, "k-unknown", "ES384")
        assert status == 401 and body["error"] == "invalid_client"
    assert jwks_server.fetches <= 4


def test_jwks_uri_must_be_https_except_to_loopback(tmp_path):
    from mappings.problems import InputError

    base = {
        "id": "c",
        "name": "c",
        "scopes": ["system/*.rs"],
        "organization": {"name": "H", "kind": "hospital", "ura": "90000012"},
    }
    clients_mod.Registry.from_config(
        {"client": [{**base, "jwks_uri": "https://keys.example.org/jwks.json"}]}, base=tmp_path
    )
    with pytest.raises(InputError, match="https"):
        clients_mod.Registry.from_config(
            {"client": [{**base, "jwks_uri": "http://keys.example.org/jwks.json"}]}, base=tmp_path
        )


def _pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

"""SMART Backend Services client credentials for the ``fhir-server`` suite (SMART App Launch 2.x,
"Backend Services": client_credentials with a ``private_key_jwt`` client assertion, RFC 7523).

A tester gives the token URL (or lets it be read from ``/.well-known/smart-configuration``), the client
id and the client's private key (PEM; the key id from ``--key-id`` or the ``<client>.jwks.json`` beside
the key, as ``hisgw serve --demo`` writes them). Tokens are cached per scope.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mappings.problems import GatewayError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenError(GatewayError):
    """The token endpoint could not be reached or refused the client."""


@dataclass
class Credentials:
    """One client of the endpoint: id, private key (PEM), key id and algorithm, scope to ask for."""

    client_id: str
    private_key: bytes
    kid: str | None = None
    alg: str | None = None
    scope: str = "system/*.cruds"
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_files(
        cls,
        client_id: str,
        key_file: Path,
        kid: str | None = None,
        alg: str | None = None,
        scope: str | None = None,
    ) -> Credentials:
        pem = key_file.read_bytes()
        if kid is None or alg is None:
            name = key_file.name.removesuffix(".private.pem").removesuffix(".pem")
            jwks = key_file.with_name(f"{name}.jwks.json")
            if jwks.is_file():
                jwk = json.loads(jwks.read_text("utf-8"))["keys"][0]
                kid = kid or jwk.get("kid")
                alg = alg or jwk.get("alg")
        return cls(client_id, pem, kid, alg, scope or "system/*.cruds")

    def algorithm(self) -> str:
        if self.alg:
            return self.alg
        key = serialization.load_pem_private_key(self.private_key, None)
        return "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"

    def assertion(self, token_url: str, *, foreign_key: bool = False) -> str:
        """A signed client assertion (iss = sub = client id, aud = token URL, 4 minutes, fresh jti).

        ``foreign_key``: signed with a freshly made key the endpoint cannot know (a test of refusal)."""
        alg = self.algorithm()
        key: object
        if foreign_key:
            key = (
                ec.generate_private_key(ec.SECP384R1())
                if alg.startswith("ES")
                else rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )
        else:
            key = serialization.load_pem_private_key(self.private_key, None)
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        }
        headers = {"typ": "JWT", **({"kid": self.kid} if self.kid else {})}
        return jwt.encode(claims, key, algorithm=alg, headers=headers)  # type: ignore[arg-type]

    def token_form(self, token_url: str, scope: str | None = None, *, foreign_key: bool = False) -> dict:
        return {
            "grant_type": "client_credentials",
            "scope": scope or self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(token_url, foreign_key=foreign_key),
        }

    def token(self, http: httpx.Client, token_url: str, scope: str | None = None) -> str:
        scope = scope or self.scope
        if scope not in self._tokens:
            try:
                r = http.post(token_url, data=self.token_form(token_url, scope))
            except httpx.HTTPError as exc:
                raise TokenError(f"token endpoint {token_url}: {type(exc).__name__}") from None
            if r.status_code != 200:
                raise TokenError(
                    f"token endpoint {token_url} answered {r.status_code} for client "
                    f"{self.client_id!r}: {r.text[:200]}"
                )
            self._tokens[scope] = r.json()["access_token"]
        return self._tokens[scope]


def discover_token_url(http: httpx.Client, base_url: str) -> str | None:
    """``token_endpoint`` of ``{base}/.well-known/smart-configuration``, else the CapabilityStatement's
    ``oauth-uris`` extension; ``None`` when neither says."""
    try:
        r = http.get(base_url.rstrip("/") + "/.well-known/smart-configuration")
        if r.status_code == 200 and isinstance(r.json(), dict) and r.json().get("token_endpoint"):
            return str(r.json()["token_endpoint"])
    except (httpx.HTTPError, ValueError):
        pass
    return None

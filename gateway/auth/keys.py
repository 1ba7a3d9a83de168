"""Keys: the gateway's token signing key, client key pairs, and the client side of a client assertion.

The client side (:func:`client_assertion`) is what a HIS does before asking for a token (SMART Backend
Services, "Authenticating to the token endpoint"); the demo, ``scripts/first-call.py``, the tests and
the benchmark use it, so it is one small, dependency-light function.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_ALG = "ES384"


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_private_key(alg: str = "ES384"):
    """A fresh private key for ``alg`` (ES384: EC P-384; RS384: RSA 3072)."""
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unsupported algorithm {alg}")


def public_jwk(private_key, kid: str, alg: str) -> dict[str, Any]:
    """The public JWK of a private key, with ``kid`` and ``alg``."""
    algo = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
    jwk = json.loads(algo.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def write_client_keys(directory: Path, client_id: str, alg: str = "ES384") -> tuple[Path, Path, str]:
    """Write ``<client>.private.pem`` (0600) and ``<client>.jwks.json``; return the paths and the kid."""
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_private_key(alg)
    kid = f"{client_id}-{uuid.uuid4().hex[:8]}"
    private = directory / f"{client_id}.private.pem"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_pem(key))
    jwks = directory / f"{client_id}.jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(key, kid, alg)]}, indent=2), "utf-8")
    return private, jwks, kid


def load_or_create_signing_key(path: Path):
    """The gateway's own EC P-384 signing key; created (0600) when the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = generate_private_key("ES384")
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_pem(key))
        try:
            os.link(tmp, path)  # atomic and never overwrites: two processes starting at once agree on one key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    return key


def client_assertion(
    client_id: str,
    private_key_pem: bytes,
    kid: str,
    token_url: str,
    *,
    alg: str = "ES384",
    lifetime: int = 240,
    jti: str | None = None,
    now: float | None = None,
) -> str:
    """A signed client assertion JWT for the token endpoint (iss = sub = client_id, aud = token URL)."""
    now = time.time() if now is None else now
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("a client key is an EC or RSA private key")
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": int(now) + lifetime,
        "iat": int(now),
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def token_request(
    client_id: str, private_key_pem: bytes, kid: str, token_url: str, scope: str, *, alg: str = "ES384"
) -> dict[str, str]:
    """The form fields of a client-credentials token request with a fresh assertion."""
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(client_id, private_key_pem, kid, token_url, alg=alg),
    }

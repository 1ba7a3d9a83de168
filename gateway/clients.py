"""The registered clients: who may ask for tokens, for which organisation, with which keys (validated TOML).

::

    [[client]]
    id = "praktijk-de-linde"                 # the client_id (iss and sub of its assertions)
    name = "HIS of Huisartsenpraktijk De Linde"
    scopes = ["system/*.cruds"]              # the most it may be granted (gateway/auth/scopes.py)
    role = { code = "01.015", display = "Huisarts" }     # optional: UZI role code for the audit log
    jwks_file = "praktijk-de-linde.jwks.json"          # relative to this file; or an inline `jwks = {...}`

    [client.organization]                    # the tenant: every client belongs to one organisation
    name = "Huisartsenpraktijk De Linde"
    kind = "practice"                        # practice (AGB and/or URA) | hospital (URA) | other
    agb = "01234567"
    ura = "12345678"

Keys (SMART Backend Services): RSA of at least 2048 bits for RS384, EC P-384 for ES384; every key has a
``kid``; a key's ``alg``, when given, must be RS384 or ES384. A broken file is refused as a whole with
every problem listed (``AUTH-001``), the path given.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.auth.scopes import Permissions, ScopeError, parse_scope
from mappings.problems import InputError, Problem, Severity

ALLOWED_ALGS = ("RS384", "ES384")
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
UZI_ROLE_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-rolcode"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationConfig(_Model):
    """The organisation a client acts for (its tenant)."""

    name: str = Field(min_length=1)
    kind: Literal["practice", "hospital", "other"]
    agb: str | None = Field(None, pattern=r"^\d{8}$")
    ura: str | None = Field(None, pattern=r"^\d{8}$")

    @model_validator(mode="after")
    def _identified(self) -> OrganizationConfig:
        if self.kind == "hospital" and not self.ura:
            raise ValueError("a hospital is identified by its URA")
        if not (self.agb or self.ura):
            raise ValueError("an organisation needs an AGB or a URA")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        """Tenant keys (``ura:<n>``, ``agb:<n>``) under which resources name this organisation."""
        return tuple(
            k for k in (f"ura:{self.ura}" if self.ura else None, f"agb:{self.agb}" if self.agb else None) if k
        )

    @property
    def identifier(self) -> dict[str, str]:
        """Its FHIR identifier (URA first)."""
        return (
            {"system": URA_SYSTEM, "value": self.ura}
            if self.ura
            else {"system": AGB_SYSTEM, "value": self.agb or ""}
        )


class RoleConfig(_Model):
    code: str
    display: str | None = None
    system: str = UZI_ROLE_SYSTEM


class ClientConfig(_Model):
    """One registered client."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")
    name: str = Field(min_length=1)
    organization: OrganizationConfig
    scopes: tuple[str, ...] = Field(min_length=1)
    role: RoleConfig | None = None
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for s in value:
            try:
                parse_scope(s)
            except ScopeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> ClientConfig:
        if (self.jwks is None) == (self.jwks_file is None):
            raise ValueError("give exactly one of jwks and jwks_file")
        return self


class ClientsFile(_Model):
    client: tuple[ClientConfig, ...] = ()


@dataclass(frozen=True)
class Client:
    """A client ready for use: its configuration, its permissions and its verification keys by kid."""

    config: ClientConfig
    keys: dict[str, jwt.PyJWK]

    @property
    def id(self) -> str:
        return self.config.id

    @cached_property
    def allowed(self) -> Permissions:
        return Permissions(tuple(parse_scope(s) for s in self.config.scopes))


def _load_jwks(jwks: Any, where: str) -> dict[str, jwt.PyJWK]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError(f"{where}: a JWKS is an object with a non-empty 'keys' list")
    keys: dict[str, jwt.PyJWK] = {}
    for i, jwk in enumerate(jwks["keys"]):
        loc = f"{where}.keys[{i}]"
        if not isinstance(jwk, dict) or not jwk.get("kid"):
            raise ValueError(f"{loc}: every key needs a 'kid'")
        if "d" in jwk or "p" in jwk:
            raise ValueError(f"{loc}: a private key; register the public key only")
        kty, alg = jwk.get("kty"), jwk.get("alg")
        if alg is not None and alg not in ALLOWED_ALGS:
            raise ValueError(f"{loc}: alg {alg!r} is not allowed (RS384 or ES384)")
        if kty == "RSA":
            key = jwt.PyJWK(jwk, algorithm="RS384")
            if key.key.key_size < 2048:
                raise ValueError(f"{loc}: RSA keys need at least 2048 bits")
        elif kty == "EC" and jwk.get("crv") == "P-384":
            key = jwt.PyJWK(jwk, algorithm="ES384")
        else:
            raise ValueError(f"{loc}: only RSA (RS384) and EC P-384 (ES384) keys are accepted")
        if jwk["kid"] in keys:
            raise ValueError(f"{loc}: kid {jwk['kid']!r} occurs twice")
        keys[jwk["kid"]] = key
    return keys


class Registry:
    """The clients by id."""

    def __init__(self, clients: dict[str, Client]):
        self.clients = clients

    def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    @classmethod
    def from_config(cls, data: dict[str, Any], *, base: Path, source: str = "<clients>") -> Registry:
        """Validate a parsed clients file; raise InputError (``AUTH-001``) listing every problem."""
        problems: list[Problem] = []
        try:
            parsed = ClientsFile.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(Severity.ERROR, "AUTH-001", f"{source} {loc}", err["msg"]))
            raise InputError(problems) from None
        clients: dict[str, Client] = {}
        for i, cfg in enumerate(parsed.client):
            where = f"{source} client[{i}]"
            if cfg.id in clients:
                problems.append(
                    Problem(Severity.ERROR, "AUTH-001", where, f"client id {cfg.id!r} occurs twice")
                )
                continue
            try:
                if cfg.jwks_file is not None:
                    path = cfg.jwks_file if cfg.jwks_file.is_absolute() else base / cfg.jwks_file
                    jwks = json.loads(path.read_text("utf-8"))
                else:
                    jwks = cfg.jwks
                clients[cfg.id] = Client(cfg, _load_jwks(jwks, f"{where} jwks"))
            except (OSError, ValueError, jwt.exceptions.PyJWTError) as exc:
                problems.append(Problem(Severity.ERROR, "AUTH-001", where, str(exc)))
        if problems:
            raise InputError(problems)
        return cls(clients)

    @classmethod
    def load(cls, path: Path) -> Registry:
        """Read and validate the clients file at ``path``."""
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise InputError(
                [Problem(Severity.ERROR, "AUTH-001", str(path), f"cannot read: {exc}")]
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(
                [Problem(Severity.ERROR, "AUTH-001", str(path), f"not valid TOML: {exc}")]
            ) from None
        return cls.from_config(data, base=path.parent, source=str(path))

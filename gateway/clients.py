"""The registered clients: who may ask for tokens, for which organisation, with which keys (validated TOML).

::

    [[client]]
    id = "praktijk-de-linde"                 # the client_id (iss and sub of its assertions)
    name = "HIS of Huisartsenpraktijk De Linde"
    scopes = ["system/*.cruds"]              # the most it may be granted (gateway/auth/scopes.py)
    role = { code = "01.015", display = "Huisarts" }     # optional: UZI role code for the audit log
    jwks_file = "praktijk-de-linde.jwks.json"          # relative to this file; or an inline `jwks = {...}`
                                             # or `jwks_uri = "https://..."` (fetched, cached, rotated)

    [client.organization]                    # the tenant: every client belongs to one organisation
    name = "Huisartsenpraktijk De Linde"
    kind = "practice"                        # practice (AGB and/or URA) | hospital (URA) | other
    agb = "01234567"
    ura = "12345678"

Keys (SMART Backend Services): RSA of at least 2048 bits for RS384, EC P-384 for ES384; every key has a
``kid``; a key's ``alg``, when given, must be RS384 or ES384. A broken file is refused as a whole with
every problem listed (``AUTH-001``), the path given.

The registry follows its file: :meth:`Registry.get` looks at the file (and the JWKS files it names) at
most every ``RELOAD_INTERVAL`` seconds and, when one changed, loads it again -- a client removed is
unknown from then on, so its tokens are refused at its next request. A changed file that does not
validate is not taken: the previous registry stays in force and the problems are logged (``AUTH-001``).

``jwks_uri`` (SMART Backend Services, "registering a client": the client publishes its public keys): the
JWKS is fetched when first needed and kept for ``JWKS_TTL`` seconds (or the ``max-age`` the answer gives,
within bounds); an assertion with a ``kid`` that is not in the cached set fetches the set again (at most
once per ``JWKS_REFETCH`` seconds per client), so a client rotates by publishing its new key next to the
old one and signing with it. ``https`` only, except to a loopback address. A fetch that fails keeps the
keys cached before (until they expire) and otherwise refuses the assertion (``invalid_client``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import time
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.auth.scopes import Permissions, ScopeError, parse_scope
from mappings.problems import InputError, Problem, Severity

ALLOWED_ALGS = ("RS384", "ES384")
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
UZI_ROLE_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-rolcode"
RELOAD_INTERVAL = 0.2
"""Seconds between looks at the clients file (a change takes effect well within a second)."""
JWKS_TTL = 300.0
JWKS_MAX_TTL = 3600.0
JWKS_REFETCH = 10.0
JWKS_MAX_BYTES = 64 * 1024
JWKS_TIMEOUT = 3.0

log = logging.getLogger("hisgw.clients")


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
    jwks_uri: str | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for s in value:
            try:
                parse_scope(s)
            except ScopeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("jwks_uri must be an https URL")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("jwks_uri must be https (http only to a loopback address)")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> ClientConfig:
        if sum(x is not None for x in (self.jwks, self.jwks_file, self.jwks_uri)) != 1:
            raise ValueError("give exactly one of jwks, jwks_file and jwks_uri")
        return self


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ClientsFile(_Model):
    client: tuple[ClientConfig, ...] = ()


@dataclass
class RemoteJwks:
    """The keys a client publishes at its ``jwks_uri``: fetched when needed, cached, refetched for a new
    ``kid`` (key rotation)."""

    uri: str
    where: str
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    expires: float = 0.0
    fetched: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, kid: str, now: float | None = None) -> jwt.PyJWK | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if now >= self.expires:
                self.keys = {}
            if kid not in self.keys and now - self.fetched >= JWKS_REFETCH:
                self._fetch(now)
            return self.keys.get(kid)

    def _fetch(self, now: float) -> None:
        self.fetched = now
        try:
            with httpx.Client(timeout=JWKS_TIMEOUT, follow_redirects=False) as http:
                with http.stream("GET", self.uri, headers={"Accept": "application/json"}) as r:
                    if r.status_code != 200:
                        raise ValueError(f"HTTP {r.status_code}")
                    body = b""
                    for chunk in r.iter_bytes():
                        body += chunk
                        if len(body) > JWKS_MAX_BYTES:
                            raise ValueError(f"the JWKS is over {JWKS_MAX_BYTES} bytes")
                    ttl = _max_age(r.headers.get("cache-control"))
            keys = _load_jwks(json.loads(body), self.where)
        except (httpx.HTTPError, ValueError, jwt.exceptions.PyJWTError) as exc:
            log.warning("jwks_uri fetch failed", extra={"where": self.where, "error": str(exc)[:200]})
            return
        self.keys = keys
        self.expires = now + ttl


def _max_age(cache_control: str | None) -> float:
    m = re.search(r"max-age=(\d+)", cache_control or "")
    return min(max(float(m.group(1)), JWKS_REFETCH), JWKS_MAX_TTL) if m else JWKS_TTL


@dataclass(frozen=True)
class Client:
    """A client ready for use: its configuration, its permissions and its verification keys by kid."""

    config: ClientConfig
    keys: dict[str, jwt.PyJWK]
    remote: RemoteJwks | None = None

    @property
    def id(self) -> str:
        return self.config.id

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The registered (or published, for ``jwks_uri``) verification key ``kid``."""
        if self.remote is not None:
            return self.remote.key(kid)
        return self.keys.get(kid)

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
    """The clients by id; loaded from a file (:meth:`load`), it follows that file's changes."""

    def __init__(self, clients: dict[str, Client], path: Path | None = None):
        self.clients = clients
        self.path = path
        self.generation = 0
        """Bumped on every reload (token checks made under an older registry are redone)."""
        self._stamp = _stamp(path, clients) if path is not None else None
        self._looked = time.monotonic()
        self._lock = threading.Lock()

    def get(self, client_id: str) -> Client | None:
        self.poll()
        return self.clients.get(client_id)

    def poll(self) -> None:
        """Look at the file if ``RELOAD_INTERVAL`` has passed since the last look (cheap otherwise)."""
        if self.path is not None and time.monotonic() - self._looked >= RELOAD_INTERVAL:
            self.refresh()

    def refresh(self) -> bool:
        """Load the file again if it (or a JWKS file it names) changed; True when the registry changed."""
        assert self.path is not None
        with self._lock:
            self._looked = time.monotonic()
            stamp = _stamp(self.path, self.clients)
            if stamp == self._stamp:
                return False
            try:
                fresh = Registry.load(self.path, follow=False)
            except InputError as exc:
                for p in exc.problems:
                    log.error("clients file not reloaded", extra={"problem": p.render_line()})
                self._stamp = stamp  # report once per change
                return False
            old = self.clients
            self.clients = {
                cid: (old[cid] if cid in old and old[cid].config == c.config and c.remote else c)
                for cid, c in fresh.clients.items()
            }
            self._stamp = _stamp(self.path, self.clients)
            self.generation += 1
            log.info("clients file reloaded", extra={"clients": len(self.clients)})
            return True

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
                if cfg.jwks_uri is not None:
                    clients[cfg.id] = Client(cfg, {}, RemoteJwks(cfg.jwks_uri, f"{where} jwks_uri"))
                    continue
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
    def load(cls, path: Path, *, follow: bool = True) -> Registry:
        """Read and validate the clients file at ``path`` (``follow``: and keep following it)."""
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
        loaded = cls.from_config(data, base=path.parent, source=str(path))
        return cls(loaded.clients, path) if follow else loaded


def _stamp(path: Path, clients: dict[str, Client]) -> tuple:
    """What identifies the file's version (and its JWKS files'): change time, size, inode."""
    files = [path] + [
        (c.config.jwks_file if c.config.jwks_file.is_absolute() else path.parent / c.config.jwks_file)
        for c in clients.values()
        if c.config.jwks_file is not None
    ]
    out: list[tuple] = []
    for f in files:
        try:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((str(f), None))
    return tuple(out)

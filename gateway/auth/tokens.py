"""SMART Backend Services on the server side: client assertions in, short access tokens out, tokens checked.

Token endpoint (https://hl7.org/fhir/smart-app-launch/backend-services.html, RFC 7523, RFC 6749 §4.4):
``grant_type=client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
jwt-bearer``, ``client_assertion`` signed RS384 or ES384 with a key in the client's registered JWKS
(``kid``), ``iss == sub == client_id``, ``aud`` = the token URL, ``exp`` in the future and at most five
minutes ahead, a ``jti`` never seen before (stored until it expires: replay protection that holds across
gateway processes), and ``scope``. Anything else: an OAuth error (``invalid_client`` and friends).

Access tokens are JWTs signed by the gateway's own EC P-384 key (ES384), at most 300 s long, carrying
the client, its organisation (tenant) and the granted scopes. Only ES384 and only the gateway's key are
accepted when checking them: ``alg=none``, HS256 "signed" with the public key, other keys, expired or
foreign-audience tokens are 401. A checked token is remembered (by its exact text, until it expires) so
that the signature is verified once, not on every request.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.auth.keys import ASSERTION_TYPE, TOKEN_ALG
from gateway.auth.scopes import Permissions, ScopeError, grant, permissions
from gateway.clients import ALLOWED_ALGS, Client, OrganizationConfig, Registry, RoleConfig
from gateway.schema import token_jti
from mappings.problems import GatewayError


class OAuthError(GatewayError):
    """An error answer of the token endpoint (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class AuthError(GatewayError):
    """A request without a valid access token (401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the client, its organisation (tenant) and what it was granted."""

    client_id: str
    client_name: str
    organization: OrganizationConfig
    role: RoleConfig | None
    scope: str
    perms: Permissions
    exp: int
    orgs: tuple[str, ...]
    """The tenant keys of the caller's organisation (``ura:<n>``, ``agb:<n>``)."""


class TokenService:
    """Issues and checks access tokens; checks client assertions."""

    def __init__(
        self,
        *,
        registry: Registry,
        signing_key,
        issuer: str,
        token_url: str,
        engine: Engine,
        lifetime: int,
        assertion_max_lifetime: int,
        skew: int,
    ):
        self.registry = registry
        self._key = signing_key
        self._public = signing_key.public_key()
        self.issuer = issuer
        self.token_url = token_url
        self.engine = engine
        self.lifetime = lifetime
        self.assertion_max_lifetime = assertion_max_lifetime
        self.skew = skew
        self._cache: dict[str, Principal] = {}
        self._generation = registry.generation

    # -- token endpoint ---------------------------------------------------------------------------------

    def token(self, form: dict[str, str], now: float | None = None) -> dict[str, object]:
        """Answer a token request (form fields) with an access token response, or raise OAuthError."""
        now = time.time() if now is None else now
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion") or ""
        scope = (form.get("scope") or "").strip()
        if not assertion:
            raise OAuthError("invalid_request", "client_assertion is missing")
        if not scope:
            raise OAuthError("invalid_scope", "scope is missing")
        client, claims = self._verify_assertion(assertion, now)
        try:
            granted = grant(scope, client.allowed)
        except ScopeError as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this client")
        self._remember_jti(client.id, str(claims["jti"]), int(claims["exp"]), now)
        exp = int(now) + self.lifetime
        token = jwt.encode(
            {
                "iss": self.issuer,
                "sub": client.id,
                "aud": self.issuer,
                "iat": int(now),
                "exp": exp,
                "jti": uuid.uuid4().hex,
                "scope": granted,
            },
            self._key,
            algorithm=TOKEN_ALG,
            headers={"typ": "at+jwt"},
        )
        return {"access_token": token, "token_type": "bearer", "expires_in": self.lifetime, "scope": granted}

    def _verify_assertion(self, assertion: str, now: float) -> tuple[Client, dict]:
        def bad(why: str) -> OAuthError:
            return OAuthError("invalid_client", why, 401)

        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise bad("client_assertion is not a JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise bad("client_assertion must be signed with RS384 or ES384")
        client_id = unverified.get("iss")
        client = self.registry.get(client_id) if isinstance(client_id, str) else None
        if client is None:
            raise bad("unknown client (iss)")
        key = client.key(header.get("kid") or "")
        if key is None:
            raise bad("kid does not name a registered key of this client")
        if key.algorithm_name != alg:
            raise bad("alg does not match the registered key")
        try:
            claims = jwt.decode(
                assertion,
                key.key,
                algorithms=[alg],
                audience=self.token_url,
                issuer=client.id,
                leeway=self.skew,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise bad("client_assertion has expired") from None
        except jwt.InvalidAudienceError:
            raise bad("client_assertion aud must be the token URL") from None
        except jwt.PyJWTError as exc:
            raise bad(f"client_assertion rejected: {exc}") from None
        if claims.get("sub") != client.id:
            raise bad("client_assertion sub must equal iss (the client_id)")
        if (
            not isinstance(claims["exp"], int)
            or claims["exp"] > now + self.assertion_max_lifetime + self.skew
        ):
            raise bad("client_assertion exp lies more than five minutes ahead")
        if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 255:
            raise bad("client_assertion jti must be a non-empty string")
        return client, claims

    def _remember_jti(self, client_id: str, jti: str, exp: int, now: float) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(token_jti).where(token_jti.c.exp < int(now) - self.skew))
                conn.execute(insert(token_jti).values(client_id=client_id, jti=jti, exp=exp))
        except IntegrityError:
            raise OAuthError("invalid_client", "client_assertion jti was used before (replay)", 401) from None

    # -- resource requests ------------------------------------------------------------------------------

    def check(self, authorization: str | None, now: float | None = None) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header, or AuthError."""
        if not authorization or authorization[:7].lower() != "bearer ":
            raise AuthError("a bearer access token is required")
        token = authorization[7:].strip()
        now = time.time() if now is None else now
        self.registry.poll()
        if self.registry.generation != self._generation:  # the clients file changed: check tokens anew
            self._cache, self._generation = {}, self.registry.generation
        principal = self._cache.get(token)
        if principal is None:
            principal = self._decode(token)
            if len(self._cache) > 10_000:
                self._cache = {t: p for t, p in self._cache.items() if p.exp > now}
            self._cache[token] = principal
        if principal.exp <= now:
            raise AuthError("the access token has expired")
        if self.registry.get(principal.client_id) is None:
            raise AuthError("the client is no longer registered")
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[TOKEN_ALG],
                audience=self.issuer,
                issuer=self.issuer,
                options={"require": ["iss", "sub", "aud", "exp", "scope"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the access token has expired") from None
        except jwt.PyJWTError:
            raise AuthError("the access token is not valid") from None
        client = self.registry.get(claims["sub"])
        if client is None:
            raise AuthError("the client is not registered")
        try:
            perms = permissions(claims["scope"])
            still = grant(claims["scope"], client.allowed)
        except (ScopeError, AttributeError):
            raise AuthError("the access token carries unsupported scopes") from None
        if set(still.split()) != set(claims["scope"].split()):
            raise AuthError("the client's registration no longer allows this token's scopes")
        org = client.config.organization
        return Principal(
            client.id,
            client.config.name,
            org,
            client.config.role,
            claims["scope"],
            perms,
            int(claims["exp"]),
            org.keys,
        )

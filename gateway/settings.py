"""The gateway's settings: one typed object, read from ``HISGW_*`` environment variables when asked for.

Nothing reads configuration at import time: :func:`load_settings` is called by ``hisgw serve`` (and by
tests, with explicit values). The clients and their keys live in a separate, validated file
(``clients_file``, ``gateway/clients.py``).

=============================  =====================================================================
``HISGW_DB_URL``               ``sqlite:///./var/hisgw.db`` (default) or ``postgresql://user@host/db``
``HISGW_BASE_URL``             the public base URL clients use (token ``aud``, links); default
                               ``http://<host>:<port>`` of ``hisgw serve``
``HISGW_CLIENTS_FILE``         TOML file with the clients, their organisations, scopes and JWKS
``HISGW_SIGNING_KEY_FILE``     PEM private key (EC P-384) the gateway signs access tokens with;
                               created on first start; every process of one gateway shares it
``HISGW_TOKEN_LIFETIME``       access token lifetime in seconds (at most 300)
``HISGW_MAX_BODY_BYTES``       largest request body accepted (413 above it)
``HISGW_PAGE_SIZE`` / ``HISGW_MAX_PAGE_SIZE``   search paging
``HISGW_METRICS_PORT``         Prometheus ``/metrics`` listener on ``HISGW_METRICS_HOST`` (0 = off)
``HISGW_SSL_*``                TLS and mutual TLS for ``hisgw serve`` (``docs/auth.md``)
``HISGW_HTTP_HEADER_TIMEOUT``   seconds for a request's headers to arrive (then 408 and closed)
``HISGW_HTTP_BODY_TIMEOUT``     seconds for a request's body to arrive once its headers have
``HISGW_HTTP_MAX_CONNECTIONS_PER_CLIENT``   connections from one address at once
``HISGW_TOKEN_RATE`` / ``_BURST``  token endpoint requests per second and burst, per address (429 above)
``HISGW_API_RATE`` / ``_BURST``    API requests per second and burst, per bearer token (429 above)
``HISGW_OUTBOX_ROUTING_FILE``  postbox delivery routing (``docs/postbox-delivery.md``); ``hisgw serve`` then
                               runs the delivery worker too
=============================  =====================================================================
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_TOKEN_LIFETIME = 300
"""SMART Backend Services: access tokens live at most five minutes."""


class Settings(BaseSettings):
    """Every setting of the gateway service."""

    model_config = SettingsConfigDict(env_prefix="HISGW_", extra="forbid", frozen=True)

    db_url: str = "sqlite:///./var/hisgw.db"
    base_url: str = "http://127.0.0.1:8080"
    clients_file: Path = Path("var/clients.toml")
    signing_key_file: Path = Path("var/gateway-signing-key.pem")
    token_lifetime: int = Field(default=MAX_TOKEN_LIFETIME, ge=30, le=MAX_TOKEN_LIFETIME)
    assertion_max_lifetime: int = Field(default=300, ge=30, le=300)
    """A client assertion's ``exp`` may lie at most this far ahead (SMART: five minutes)."""
    clock_skew: int = Field(default=30, ge=0, le=120)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    page_size: int = Field(default=50, ge=1, le=1000)
    max_page_size: int = Field(default=500, ge=1, le=5000)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_level: str = "INFO"
    log_requests: bool = True
    validate_on_write: bool = True
    """Run the FHIR validator (``$validate``'s) on every create and update."""
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_ca_certs: Path | None = None
    """CA bundle client certificates must chain to; with ``ssl_require_client_cert``: mutual TLS."""
    ssl_require_client_cert: bool = False
    http_header_timeout: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout: float = Field(default=60.0, gt=0, le=3600)
    http_max_connections_per_client: int = Field(default=256, ge=1)
    token_rate: float = Field(default=5.0, gt=0)
    token_burst: int = Field(default=50, ge=1)
    api_rate: float = Field(default=1000.0, gt=0)
    api_burst: int = Field(default=2000, ge=1)
    shared_dir: Path | None = None
    outbox_routing_file: Path | None = None
    """Postbox delivery routing (TOML, ``docs/postbox-delivery.md``); when set, ``hisgw serve`` runs the
    worker.
    """
    """Where ``seeds/`` and ``external/`` live for ``--demo`` (default: the checkout's ``tests/data``)."""

    @property
    def token_url(self) -> str:
        """The token endpoint; a client assertion's ``aud`` must be exactly this."""
        return self.base_url.rstrip("/") + "/auth/token"

    @property
    def fhir_base(self) -> str:
        """The FHIR base URL (the service root is the FHIR base)."""
        return self.base_url.rstrip("/")


def load_settings(**overrides) -> Settings:
    """Settings from the environment (``HISGW_*``), with explicit overrides taking precedence."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})

"""The routing file: which channel reaches each practice's postbox, and how hard to try
(``docs/postbox-delivery.md`` §3).

A TOML file, validated as a whole before the worker starts (``OUT-001`` names the key and the fault)::

    [defaults]                 # every practice inherits these; each may override them
    max_attempts = 12          # after this many failed attempts an item goes to dead letter
    # seconds; exponential backoff with full jitter (tenacity), doubled each attempt
    backoff_initial = 1.0
    backoff_max = 300.0        # cap of one wait
    lease_seconds = 60         # a worker that dies holding an item loses it after this long
    timeout = 10.0             # connect / answer timeout of one attempt
    batch = 50                 # items one claim takes for one practice (different patients)

    [practice.01000001]        # the practice's AGB
    channel = "mllp"           # mllp | drop | http | fhir
    host = "127.0.0.1"
    port = 2575
    message = "MDM^T02"        # MDM^T02 (ORU^R01 carries results, not letters: not offered)
    auto_filing = true         # opt-in: certain matches arrive ready-filed (DOMAIN.md §6)

    [practice.01000002]
    channel = "drop"
    dir = "/srv/medicom/postbus"
    dialect = "medicom"        # medicom | microhis | omnihis

    [practice.01000003]
    channel = "http"           # OmniHIS-style JSON, POSTed to url with an Idempotency-Key header
    url = "http://127.0.0.1:8081/inbox"

    [practice.01000004]
    channel = "fhir"           # FHIR Communication POSTed to <url>/Communication, Idempotency-Key
    url = "http://127.0.0.1:8081/fhir"

A practice that is not in the file keeps its items queued (``OUT-002`` in ``hisgw outbox list``): nothing is
lost, nothing is sent to a guess.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mappings.problems import GatewayError

CONFIG_INVALID = "OUT-001"
NO_ROUTE = "OUT-002"


class RoutingError(GatewayError, ValueError):
    """The routing file cannot be used; the message names the file, the key and the fault (``OUT-001``)."""

    code = CONFIG_INVALID


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=12, ge=1, le=1000)
    backoff_initial: float = Field(default=1.0, gt=0, le=3600)
    backoff_max: float = Field(default=300.0, gt=0, le=86400)
    lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    timeout: float = Field(default=10.0, gt=0, le=600)
    batch: int = Field(default=50, ge=1, le=1000)
    idle_poll: float = Field(default=0.2, gt=0, le=60)
    """How often an idle lane looks for new work (seconds)."""


class Route(Limits):
    """One practice's channel and limits."""

    channel: Literal["mllp", "drop", "http", "fhir"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    message: Literal["MDM^T02"] = "MDM^T02"
    dir: Path | None = None
    dialect: Literal["medicom", "microhis", "omnihis"] | None = None
    url: str | None = None
    auto_filing: bool = False

    @model_validator(mode="after")
    def _channel_fields(self) -> Route:
        need = {"mllp": ("host", "port"), "drop": ("dir", "dialect"), "http": ("url",), "fhir": ("url",)}
        missing = [k for k in need[self.channel] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"channel {self.channel!r} needs {', '.join(missing)}")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} is not http(s)")
        return self


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    practices: dict[str, Route]

    def route(self, practice: str) -> Route | None:
        return self.practices.get(practice)


def parse_routing(data: dict, source: str = "<routing>") -> Routing:
    """Validate a routing document (the parsed TOML); :class:`RoutingError` names every fault."""
    if not isinstance(data, dict):
        raise RoutingError(f"{CONFIG_INVALID} {source}: not a TOML table")
    unknown = set(data) - {"defaults", "practice"}
    if unknown:
        raise RoutingError(
            f"{CONFIG_INVALID} {source}: unknown top-level key(s) {', '.join(sorted(unknown))}"
        )
    try:
        defaults = Limits(**data.get("defaults", {})).model_dump()
    except ValidationError as exc:
        raise RoutingError(_render(exc, source, "defaults")) from None
    practices = data.get("practice", {})
    out: dict[str, Route] = {}
    for agb, table in practices.items():
        where = f"practice.{agb}"
        if not (len(agb) == 8 and agb.isdigit()):
            raise RoutingError(
                f"{CONFIG_INVALID} {source}: [{where}]: the key must be the practice's AGB (8 digits)"
            )
        if not isinstance(table, dict):
            raise RoutingError(f"{CONFIG_INVALID} {source}: [{where}] is not a table")
        try:
            out[agb] = Route(**{**defaults, **table})
        except ValidationError as exc:
            raise RoutingError(_render(exc, source, where)) from None
    return Routing(practices=out)


def _render(exc: ValidationError, source: str, where: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"[{where}]{'.' + loc if loc else ''}: {err['msg']}")
    return f"{CONFIG_INVALID} {source}: " + "; ".join(parts)


def load_routing(path: str | Path) -> Routing:
    """Read and validate the routing file at ``path``."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise RoutingError(f"{CONFIG_INVALID} {p}: no such routing file") from None
    except tomllib.TOMLDecodeError as exc:
        raise RoutingError(f"{CONFIG_INVALID} {p}: not valid TOML: {exc}") from None
    return parse_routing(data, str(p))

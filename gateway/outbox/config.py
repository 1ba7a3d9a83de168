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
    channel = "mllp"           # drop, or a channel a format's postbox form names: mllp | http | fhir
    host = "127.0.0.1"
    port = 2575
    message = "MDM^T02"        # MDM^T02 (ORU^R01 carries results, not letters: not offered)
    auto_filing = true         # opt-in: certain matches arrive ready-filed (DOMAIN.md §6)

    [practice.01000002]
    channel = "drop"
    dir = "/srv/medicom/postbus"
    dialect = "medicom"        # a format whose postbox form is a drop file: medicom | microhis | omnihis

    [practice.01000003]
    channel = "http"           # OmniHIS-style JSON, POSTed to url with an Idempotency-Key header
    url = "http://127.0.0.1:8081/inbox"

    [practice.01000004]
    channel = "fhir"           # FHIR Communication POSTed to <url>/Communication, Idempotency-Key
    url = "http://127.0.0.1:8081/fhir"

    [practice.01000005]
    channel = "edifact"        # MEDVRI interchanges <number>.edi for the practice's mail client
    dir = "/srv/zorgmail/uit"
    sender = "HISGW"           # UNB-2, the gateway's mail address (default HISGW)

A practice that is not in the file keeps its items queued (``OUT-002`` in ``hisgw outbox list``): nothing is
lost, nothing is sent to a guess.

The channels and dialects are those of the format registry (:mod:`formats`): ``drop`` takes any format
whose postbox form is a drop file, and every other channel is the one a format's postbox form names.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import formats
from mappings.problems import GatewayError

CONFIG_INVALID = "OUT-001"
NO_ROUTE = "OUT-002"
DROP = "drop"
"""The channel that writes a format's postbox file into a directory (``dir``, ``dialect``)."""


def channel_names() -> list[str]:
    """Every channel a route may name: ``drop`` and the channels of the formats' postbox forms."""
    return [DROP, *formats.channels()]


def drop_dialects() -> list[str]:
    """Every format a drop directory may be written in."""
    return [f.name for f in formats.drop_formats()]


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

    channel: str
    """``drop`` or a channel a format's postbox form names (:func:`channel_names`)."""
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    message: Literal["MDM^T02"] = "MDM^T02"
    dir: Path | None = None
    dialect: str | None = None
    """The format of the files of a drop directory (:func:`drop_dialects`)."""
    url: str | None = None
    sender: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,35}$")
    """Who the interchanges of a ``numbered-files`` channel come from (Edifact UNB-2: the gateway's mail
    address; default ``HISGW``)."""
    auto_filing: bool = False

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in channel_names():
            raise ValueError(f"Input should be one of {', '.join(map(repr, channel_names()))}")
        return value

    @field_validator("dialect")
    @classmethod
    def _drop_dialect(cls, value: str | None) -> str | None:
        if value is not None and value not in drop_dialects():
            raise ValueError(f"Input should be one of {', '.join(map(repr, drop_dialects()))}")
        return value

    def postbox_format(self) -> formats.Format:
        """The format this route delivers in: the drop dialect, or the format the channel carries."""
        return formats.get(self.dialect) if self.channel == DROP else formats.channels()[self.channel]  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _channel_fields(self) -> Route:
        if self.channel == DROP:
            need: tuple[str, ...] = ("dir", "dialect")
        else:
            form = formats.channels()[self.channel].postbox
            transport = form.transport if form is not None else None
            need = {"mllp": ("host", "port"), "numbered-files": ("dir",)}.get(transport or "", ("url",))
        missing = [k for k in need if getattr(self, k) is None]
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

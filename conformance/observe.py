"""Observers: how a suite counts what an endpoint *stored*, which no acknowledgement can show.

An acknowledgement says "received"; whether the message is stored before it was sent, and stored once
when it is sent twice, only the endpoint's store can tell. The tester says how to look with ``--observe``:

- ``hisgw-mllp:DB_URL``: the gateway's MLLP store (table ``hl7v2_inbound``, docs/hl7v2.md §7), by MSH-10;
- ``sql:DB_URL::QUERY``: any SQLAlchemy URL and a query with ``:id`` that returns one count;
- ``dir:PATH``: the number of files in a folder (recursively) whose bytes contain the id;
- ``lines:PATH``: the number of lines of a file (a filing log) that start with the id and a tab or space;
- ``cmd:COMMAND``: a shell command with ``{id}`` that prints the count;
- ``http://...{id}...``: a URL whose answer (text) is the count.

Tests that need an observer are skipped, with the reason, when none is given.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from mappings.problems import GatewayError

Observer = Callable[[str], int]


class ObserverError(GatewayError):
    """The tester's observer (``--observe``) is not one that can be used, or it failed."""


def _sql(url: str, query: str) -> Observer:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, future=True)

    def count(item: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(query), {"id": item}).scalar_one())

    count.close = engine.dispose  # type: ignore[attr-defined]
    return count


def _dir(path: Path) -> Observer:
    def count(item: str) -> int:
        needle = item.encode()
        return sum(1 for p in path.rglob("*") if p.is_file() and needle in p.read_bytes())

    return count


def _lines(path: Path) -> Observer:
    def count(item: str) -> int:
        if not path.is_file():
            return 0
        return sum(
            1
            for line in path.read_text("utf-8", "replace").splitlines()
            if line == item or line.startswith((item + "\t", item + " "))
        )

    return count


def _cmd(template: str) -> Observer:
    def count(item: str) -> int:
        p = subprocess.run(
            template.replace("{id}", shlex.quote(item)),
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if p.returncode != 0:
            raise ObserverError(f"observer command exited {p.returncode}: {p.stderr.strip()[:200]}")
        return int(p.stdout.strip().split()[-1])

    return count


def _http(template: str) -> Observer:
    import httpx

    def count(item: str) -> int:
        r = httpx.get(template.replace("{id}", item), timeout=30)
        r.raise_for_status()
        return int(r.text.strip())

    return count


def make_observer(spec: str) -> Observer:
    if spec.startswith("hisgw-mllp:"):
        return _sql(
            spec.removeprefix("hisgw-mllp:"), "SELECT count(*) FROM hl7v2_inbound WHERE control_id = :id"
        )
    if spec.startswith("sql:"):
        url, _, query = spec.removeprefix("sql:").partition("::")
        if not query:
            raise ObserverError("sql:URL::QUERY needs a query after '::'")
        return _sql(url, query)
    if spec.startswith("dir:"):
        return _dir(Path(spec.removeprefix("dir:")))
    if spec.startswith("lines:"):
        return _lines(Path(spec.removeprefix("lines:")))
    if spec.startswith("cmd:"):
        return _cmd(spec.removeprefix("cmd:"))
    if spec.startswith(("http://", "https://")):
        return _http(spec)
    raise ObserverError(
        f"--observe {spec!r}: use hisgw-mllp:URL, sql:URL::QUERY, dir:PATH, lines:PATH, cmd:COMMAND or a URL"
    )


def close(observer: Observer | None) -> None:
    closer = getattr(observer, "close", None)
    if closer is not None:
        closer()

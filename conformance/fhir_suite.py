"""The executor of ``testscript`` suites: reads the target's CapabilityStatement, then runs every
``*.testscript.json`` of the suite folder in name order (``conformance/testscript.py``).

What the endpoint declares decides what runs: a test whose ``requires`` names a capability the
CapabilityStatement does not declare is skipped with the reason. ``--capability X`` adds a declaration
the CapabilityStatement cannot make (``credentials`` and ``second-client`` follow from the options,
``param:NAME`` from ``--param NAME=...``); ``--assume-all`` runs everything.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from conformance.model import TestResult
from conformance.smart import Credentials, discover_token_url
from conformance.suite import RunOptions, Suite, UsageError, selected
from conformance.testscript import FhirTarget, ScriptRun, capabilities_of

RUNNER_FACTS = ("credentials", "second-client", "param:")
"""Requirements about what the tester gave the runner, not what the endpoint declares: never assumed."""


class _Everything(set):
    """``--assume-all``: every capability of the endpoint counts as declared (what the tester gave the
    runner -- credentials, a second client, parameters -- still has to be given)."""

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str) and item.startswith(RUNNER_FACTS):
            return super().__contains__(item)
        return True


def _credentials(options: RunOptions) -> tuple[Credentials | None, Credentials | None]:
    primary = second = None
    if options.client_id or options.private_key:
        if not (options.client_id and options.private_key):
            raise UsageError("--client-id and --private-key go together")
        if not options.private_key.is_file():
            raise UsageError(f"--private-key {options.private_key}: no such file")
        primary = Credentials.from_files(
            options.client_id, options.private_key, options.key_id, options.alg, options.scope
        )
    if options.client2_id or options.private_key2:
        if not (options.client2_id and options.private_key2 and options.private_key2.is_file()):
            raise UsageError("--client2-id and --private-key2 (an existing file) go together")
        second = Credentials.from_files(options.client2_id, options.private_key2, None, None, options.scope)
    return primary, second


def execute(suite: Suite, options: RunOptions) -> tuple[list[TestResult], list[str]]:
    base = options.target.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"suite {suite.name} needs --target URL (the FHIR base), not {options.target!r}")
    primary, second = _credentials(options)
    notes: list[str] = []
    with httpx.Client(timeout=options.timeout, follow_redirects=False) as http:
        cs = None
        try:
            r = http.get(base + "/metadata", headers={"Accept": "application/fhir+json"})
            cs = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            notes.append(f"GET /metadata: {type(exc).__name__}")
        caps: set[str] = _Everything() if options.assume_all else capabilities_of(cs)
        if options.assume_all:
            notes.append("--assume-all: every test ran, whatever the endpoint declares")
        if not options.assume_all and not caps:
            notes.append(
                "no CapabilityStatement at /metadata: every test that needs a declared capability "
                "is skipped (--assume-all runs them anyway)"
            )
        caps |= set(options.capabilities)
        if primary or options.bearer:
            caps.add("credentials")
        if second:
            caps.add("second-client")
        params = {**suite.params, **options.params}
        caps |= {f"param:{k}" for k, v in params.items() if v}
        token_url = options.token_url or (discover_token_url(http, base) if primary else None)
        if primary and not token_url:
            notes.append("no token URL given or discoverable: authenticated tests will error")
        target = FhirTarget(
            base,
            http,
            token_url,
            primary,
            second,
            options.bearer,
            {f"param.{k}": v for k, v in params.items()},
        )
        results: list[TestResult] = []
        for path in sorted(suite.folder.glob("*.testscript.json")):
            script = orjson.loads(path.read_bytes())
            ids = [f"{script.get('id')}/{t.get('id')}" for t in script.get("test", [])]
            if not any(selected(i, options.only) for i in ids):
                continue
            rel = str(Path(suite.folder.name) / path.name)
            results += ScriptRun(script, path.parent, target, caps, rel).run()
    return results, notes

"""The executor of ``postbox`` suites (``postbox-receiver``): a HIS postbox endpoint receiving the gateway's
deliveries (docs/postbox-delivery.md §4), by the channel the target names:

- ``HOST:PORT`` or ``mllp://HOST:PORT``: an HL7 v2 MDM^T02 per item over MLLP, MSH-10 = the message id;
  acknowledged = ``AA``/``CA`` for that MSH-10;
- ``http(s)://...``: the OmniHIS postbox JSON POSTed with ``Idempotency-Key`` = the message id
  (``--param channel=fhir``: a FHIR Communication POSTed to ``<url>/Communication``; the channels are
  those of the formats' postbox forms, :mod:`formats`); acknowledged = 2xx;
- a folder: the dialect's postbox file (``--param dialect=`` a format with a drop form) written as
  ``<id><ext>`` (temporary name, then rename); acknowledged = the file picked up (gone from the folder)
  within ``pickup-timeout`` seconds;
- a folder with ``--param channel=<a numbered-files channel>`` (the Edifact MEDVRI one): an interchange
  ``<number><ext>`` as that channel writes it (``gateway/outbox/numbered_drop.py``: the number from the
  folder's journal, the same number for a repeat of a message id); acknowledged = picked up.

Items are built from the fixtures (OmniHIS postbox JSON, or any postbox form :func:`formats.sniff` recognises,
read into the canonical :class:`PostboxItem`) with
the gateway's own writers, so the receiver sees exactly what the gateway delivers. Steps:
``{"deliver": FIXTURE, "as": NAME, "id": NAME}`` (``id`` reuses a message id: a repeat),
``{"deliver_unreadable": true, "as": NAME}``, ``{"expect": {"acknowledged": BOOL}}``, ``{"observe": ...}``
as in the MLLP suite (:mod:`conformance.observe`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import formats
from conformance.mask import mask_body
from conformance.mllp_suite import Connection, StepError, declared_of, field, run_declared
from conformance.model import Exchange, TestResult
from conformance.observe import Observer, ObserverError, close, make_observer
from conformance.suite import RunOptions, Suite, UsageError


def _numbered_channels() -> dict[str, formats.Format]:
    return {
        c: f
        for c, f in formats.channels().items()
        if f.postbox is not None and f.postbox.transport == "numbered-files"
    }


def _http_channels() -> dict[str, formats.Format]:
    return {
        c: f for c, f in formats.channels().items() if f.postbox is not None and f.postbox.transport == "http"
    }


class Delivery:
    """One channel to the target; :meth:`deliver` answers (acknowledged, detail, request, answer shown).

    ``kind`` is the transport: ``mllp``, ``http`` (the channel ``--param channel=...`` names, by default
    the first HTTP channel of the registry) or ``drop`` (``--param dialect=...``, by default the first
    drop form); ``fmt`` is the format delivered."""

    def __init__(self, target: str, params: dict[str, str], timeout: float):
        self.timeout = timeout
        self.params = params
        self.kind: str
        self.fmt: formats.Format | None = None
        if target.startswith(("http://", "https://")):
            http = _http_channels()
            channel = params.get("channel") or next(iter(http))
            if channel not in http:
                raise UsageError(f"--param channel={channel!r}: one of {', '.join(http)}")
            self.kind, self.fmt = "http", http[channel]
            self.url = target.rstrip("/")
        elif target.startswith("mllp://") or (":" in target and not Path(target).exists()):
            host, _, port = target.removeprefix("mllp://").rpartition(":")
            if not port.isdigit():
                raise UsageError(f"an MLLP postbox target is HOST:PORT, not {target!r}")
            self.kind, self.host, self.port = "mllp", host or "127.0.0.1", int(port)
        elif params.get("channel") in _numbered_channels():
            self.kind, self.dir = "numbered", Path(target)
            self.fmt = _numbered_channels()[params["channel"]]
            self.numbers: dict[str, int] = {}
            if not self.dir.is_dir():
                raise UsageError(f"drop folder {target!r} does not exist")
        else:
            self.kind, self.dir = "drop", Path(target)
            drops = {f.name: f for f in formats.drop_formats()}
            dialect = params.get("dialect") or next(iter(drops))
            if dialect not in drops:
                raise UsageError(f"--param dialect={dialect!r}: one of {', '.join(drops)}")
            self.fmt = drops[dialect]
            if not self.dir.is_dir():
                raise UsageError(f"drop folder {target!r} does not exist")

    def body(self, mid: str, item) -> bytes:
        if self.kind == "mllp":
            from gateway.outbox.channels import mdm_bytes

            return mdm_bytes(mid, item)
        assert self.fmt is not None
        if self.kind == "numbered":
            from gateway.outbox.numbered_drop import DEFAULT_SENDER, number_for

            self.numbers[mid] = number_for(self.dir, mid)
            return self.fmt.postbox_codec().write_numbered(item, self.numbers[mid], DEFAULT_SENDER)
        return self.fmt.postbox_codec().write_postbox(item)

    def unreadable(self, mid: str) -> bytes:
        if self.kind == "mllp":
            return (
                f"MSH|^~\\&|HISGW||CONFORMANCE|00000000|20260101120000||MDM^T02^MDM_T02|{mid}|P|2.5\r"
                "ZZZ|1|this is not an MDM^T02 a postbox can file\r"
            ).encode()
        if self.kind == "numbered":
            from gateway.outbox.numbered_drop import number_for

            self.numbers[mid] = number_for(self.dir, mid)
        if self.kind in ("drop", "numbered"):
            return b"\x00not a postbox file\x00"
        return b'{"this is": "not a postbox item"'

    def deliver(self, mid: str, data: bytes) -> tuple[bool, str, str, str]:
        if self.kind == "mllp":
            try:
                conn = Connection(self.host, self.port, self.timeout)
            except OSError as exc:
                raise StepError(f"connect {self.host}:{self.port}: {exc}", "CONF-003") from None
            try:
                conn.send(data)
                ack = conn.read_ack()
            finally:
                conn.close()
            if ack is None:
                return False, "no acknowledgement", mask_body(data), "(none)"
            code, control = field(ack, "MSA-1"), field(ack, "MSA-2")
            return (
                code in ("AA", "CA") and control == mid,
                f"MSA-1 {code}, MSA-2 {control}",
                mask_body(data),
                mask_body(ack),
            )
        assert self.fmt is not None and self.fmt.postbox is not None
        if self.kind == "http":
            import httpx

            url = self.url + self.fmt.postbox.path
            ctype = self.fmt.media_type
            try:
                r = httpx.post(
                    url,
                    content=data,
                    headers={"Idempotency-Key": mid, "Content-Type": ctype},
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                return False, f"no answer: {type(exc).__name__}", mask_body(data), "(none)"
            return (
                200 <= r.status_code < 300,
                f"HTTP {r.status_code}",
                f"POST {url}\nIdempotency-Key: {mid}\n\n" + mask_body(data),
                f"HTTP {r.status_code}\n" + mask_body(r.content),
            )
        assert self.fmt is not None
        if self.kind == "numbered":
            from gateway.outbox.numbered_drop import file_name

            name = file_name(self.numbers[mid], self.fmt.extension)
        else:
            name = mid + self.fmt.extension
        tmp = self.dir / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.dir / name)
        deadline = time.monotonic() + float(self.params.get("pickup-timeout", 10))
        while (self.dir / name).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        picked = not (self.dir / name).exists()
        return (
            picked,
            "picked up" if picked else "still in the folder",
            f"{name} ({len(data):,} bytes)\n\n" + mask_body(data),
            "picked up" if picked else "not picked up",
        )


def load_item(folder: Path, ref: str):
    """A fixture: a postbox item in the postbox form of the format its content is recognised as
    (:func:`formats.sniff`; the suite's fixtures are OmniHIS postbox JSON)."""
    path = folder / ref
    if not path.is_file():
        raise StepError(f"fixture {ref!r} not found")
    data = path.read_bytes()
    fmt = formats.sniff(data)
    if fmt is None or fmt.postbox is None or fmt.postbox.codec is None:
        raise StepError(f"fixture {ref!r} is not a postbox item in a format the gateway reads")
    return fmt.postbox_codec().read_postbox(data, source=path.name)


def execute(suite: Suite, options: RunOptions) -> tuple[list[TestResult], list[str]]:
    spec = json.loads((suite.folder / "suite.json").read_text("utf-8"))
    params = {**suite.params, **options.params}
    delivery = Delivery(options.target, params, options.timeout)
    try:
        observer = make_observer(options.observe) if options.observe else None
    except ObserverError as exc:
        raise UsageError(str(exc)) from None
    declared = declared_of(options)
    declared.add(f"channel:{delivery.kind}")
    if delivery.kind not in ("drop", "numbered"):
        declared.add("refusal")  # a drop folder has no way to refuse: its test is "never filed"
    try:
        results = run_declared(
            suite,
            spec,
            options,
            declared,
            observer,
            lambda t, r: _run(t, r, spec, suite.folder, delivery, observer),
        )
    finally:
        close(observer)
    return results, [f"channel: {delivery.kind}"]


def _run(
    t: dict, r: TestResult, spec: dict, folder: Path, delivery: Delivery, observer: Observer | None
) -> None:
    names: dict[str, str] = {}
    last: tuple[bool, str] | None = None
    for step in t["steps"]:
        if "deliver" in step or "deliver_unreadable" in step:
            mid = names[step["id"]] if step.get("id") else "CONF" + uuid.uuid4().hex[:16].upper()
            if step.get("as"):
                names[step["as"]] = mid
            if "deliver" in step:
                data = delivery.body(mid, load_item(folder, spec["fixtures"][step["deliver"]]))
                label = f"deliver {step['deliver']} as {mid}"
            else:
                data = delivery.unreadable(mid)
                label = f"deliver unreadable content as {mid}"
            ok, detail, shown_req, shown_resp = delivery.deliver(mid, data)
            r.exchanges.append(Exchange(label, shown_req, shown_resp))
            last = (ok, detail)
        elif "expect" in step:
            if last is None:
                raise StepError("expect before any delivery")
            want = bool(step["expect"]["acknowledged"])
            r.check(
                last[0] == want,
                "acknowledgement",
                f"got {last[1]}; wanted "
                + ("a positive acknowledgement" if want else "a refusal (no positive acknowledgement)"),
            )
        elif "observe" in step:
            if observer is None:
                raise StepError("no observer")
            obs = step["observe"]
            mid = names[obs["message"]]
            deadline = time.monotonic() + float(obs.get("wait", 0))
            try:
                n = observer(mid)
                while n < int(obs.get("min", 1)) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    n = observer(mid)
                if obs.get("settle"):
                    time.sleep(float(obs["settle"]))
                    n = observer(mid)
            except Exception as exc:  # the tester's observer: its failure is a runner error
                raise StepError(f"observer: {type(exc).__name__}: {exc}", "CONF-004") from None
            if "count" in obs:
                r.check(
                    n == int(obs["count"]), "filed copies", f"got {n} filed for {mid}; wanted {obs['count']}"
                )
            else:
                r.check(
                    n >= int(obs["min"]),
                    "filed copies",
                    f"got {n} filed for {mid}; wanted at least {obs['min']}",
                )
        else:
            raise StepError(f"unknown step {sorted(step)}")

"""The executor of ``mllp`` suites (``mllp-receiver``): declarative tests sent to an MLLP endpoint.

A test (``tests[]`` of ``suite.json``) is a list of steps, read like a sender's script:

- ``{"send": FIXTURE, "as": NAME, "controlId": NAME, "encoding": "latin-1", "oversize": true, "acks": N}``:
  one message (fixture text with ``${controlId}``, ``${now}``, ``${param.x}``), framed (MLLP release 2:
  0x0B message 0x1C 0x0D), on the current connection; ``controlId`` reuses another message's MSH-10
  (a resend); ``oversize`` pads with an NTE to one byte over ``param max-frame-bytes``; then ``acks``
  acknowledgements (default 1) are read;
- ``{"send_many": [FIXTURE, ...], "as": [NAME, ...]}``: pipelined, then one ACK each;
- ``{"expect": {"ack": I, "MSA-1": CODE | [CODES], "MSA-2": "${NAME}", "ERR": true | false,
  "MSH-9.1": "ACK", "count": N}}``: assertions on the acknowledgements of the last send;
- ``{"observe": {"message": NAME, "count": N | "min": N, "wait": S, "settle": S}}``: what the endpoint
  stored, through the ``--observe`` observer (:mod:`conformance.observe`);
- ``{"reconnect": true}``: a new connection.

HL7 v2.5 §2.9 (acknowledgement modes), §2.7 (escapes), §2.15.5 (ERR); MLLP release 2 (HL7 TN).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
import uuid
from typing import Any

from conformance.mask import mask_body
from conformance.model import Exchange, RunnerError, TestResult
from conformance.observe import Observer, ObserverError, close, make_observer
from conformance.suite import RunOptions, Suite, UsageError

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


class StepError(RunnerError):
    """A step cannot be carried out (CONF-002), the target not reached (CONF-003), the observer failed
    (CONF-004)."""


def parse_target(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"an MLLP target is HOST:PORT, not {target!r}")
    return host or "127.0.0.1", int(port)


def field(message: bytes, name: str) -> str:
    """``MSA-1``, ``MSH-9.1``, ``ERR-3``: the first occurrence, counted as the standard counts (MSH-1 is
    the field separator). Empty when absent."""
    seg, _, rest = name.partition("-")
    num, _, comp = rest.partition(".")
    text = message.decode("latin-1")
    sep = text[3] if text.startswith("MSH") and len(text) > 3 else "|"
    for line in re.split(r"\r\n|\r|\n", text):
        if line[:3] != seg:
            continue
        parts = line.split(sep)
        i = int(num) - 1 if seg == "MSH" else int(num)
        value = parts[i] if 0 <= i < len(parts) else ""
        if comp:
            comps = value.split("^")
            value = comps[int(comp) - 1] if int(comp) <= len(comps) else ""
        return value
    return ""


def has_segment(message: bytes, seg: str) -> bool:
    return any(line[:3] == seg for line in re.split(r"\r\n|\r|\n", message.decode("latin-1")))


class Connection:
    def __init__(self, host: str, port: int, timeout: float):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(SB + data + EB + CR)

    def read_ack(self) -> bytes | None:
        """The next frame's content; ``None`` when the peer closed or nothing came in time."""
        while True:
            start = self.buffer.find(SB)
            end = self.buffer.find(EB, start + 1) if start >= 0 else -1
            if start >= 0 and end > start:
                data = self.buffer[start + 1 : end]
                self.buffer = self.buffer[end + 1 :].lstrip(CR)
                return data
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, OSError):
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SuiteRun:
    def __init__(self, suite: Suite, options: RunOptions, spec: dict, observer: Observer | None):
        self.suite = suite
        self.host, self.port = parse_target(options.target)
        self.params = {**suite.params, **options.params}
        self.timeout = float(self.params.get("ack-timeout", options.timeout))
        self.spec = spec
        self.observer = observer
        self.fixtures: dict[str, str] = {}

    def fixture(self, name: str) -> str:
        if name not in self.fixtures:
            ref = self.spec.get("fixtures", {}).get(name)
            if ref is None or not (self.suite.folder / ref).is_file():
                raise StepError(f"fixture {name!r} not found in {self.suite.name}/suite.json")
            text = (self.suite.folder / ref).read_text("utf-8")
            self.fixtures[name] = "\r".join(line for line in text.splitlines() if line.strip())
        return self.fixtures[name]

    def build(self, fixture: str, control_id: str, step: dict) -> bytes:
        values = {
            "controlId": control_id,
            "now": dt.datetime.now().strftime("%Y%m%d%H%M%S"),
            **{f"param.{k}": v for k, v in self.params.items()},
        }

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in values:
                raise StepError(f"unknown placeholder ${{{m.group(1)}}} in fixture {fixture!r}")
            return values[m.group(1)]

        text = _VAR.sub(sub, self.fixture(fixture))
        data = text.encode(step.get("encoding", "utf-8"))
        if step.get("oversize"):
            limit = int(self.params.get("max-frame-bytes", 10 * 1024 * 1024))
            pad = limit + 1 - len(data) - len(b"\rNTE|1||")
            data += b"\rNTE|1||" + b"x" * max(pad, 1)
        return data

    def run_test(self, t: dict, result: TestResult) -> None:
        names: dict[str, str] = {}
        acks: list[bytes | None] = []
        conn: Connection | None = None
        try:
            for step in t["steps"]:
                if "reconnect" in step:
                    if conn:
                        conn.close()
                    conn = None
                elif "send" in step or "send_many" in step:
                    if conn is None:
                        try:
                            conn = Connection(self.host, self.port, self.timeout)
                        except OSError as exc:
                            raise StepError(f"connect {self.host}:{self.port}: {exc}", "CONF-003") from None
                    acks = self.send(conn, step, names, result)
                elif "expect" in step:
                    self.expect(step["expect"], acks, names, result)
                elif "observe" in step:
                    self.observe(step["observe"], names, result)
                else:
                    raise StepError(f"unknown step {sorted(step)}")
        finally:
            if conn:
                conn.close()

    def send(
        self, conn: Connection, step: dict, names: dict[str, str], result: TestResult
    ) -> list[bytes | None]:
        fixtures = step["send_many"] if "send_many" in step else [step["send"]]
        as_ = step.get("as") or []
        as_ = as_ if isinstance(as_, list) else [as_]
        messages = []
        for i, fx in enumerate(fixtures):
            cid = (
                names[step["controlId"]] if step.get("controlId") else "CONF" + uuid.uuid4().hex[:16].upper()
            )
            if i < len(as_):
                names[as_[i]] = cid
            messages.append(self.build(fx, cid, step))
        try:
            for m in messages:
                conn.send(m)
        except OSError as exc:
            raise StepError(f"send: {exc}", "CONF-003") from None
        n = int(step.get("acks", 1)) * len(messages)
        acks = [conn.read_ack() for _ in range(n)]
        for m, i in zip(messages, range(len(messages)), strict=True):
            got = acks[i] if i < len(acks) else None
            result.exchanges.append(
                Exchange(
                    f"send {fixtures[i]} ({len(m):,} bytes)",
                    mask_body(m) if len(m) < 65536 else mask_body(m[:4096]) + f"\n... ({len(m):,} bytes)",
                    "\n\n".join(mask_body(a) for a in acks if a)
                    if i == len(messages) - 1
                    else (mask_body(got) if got else "(no acknowledgement)"),
                )
            )
        return acks

    def _value(self, text: Any, names: dict[str, str]) -> str:
        return _VAR.sub(
            lambda m: names.get(m.group(1), self.params.get(m.group(1)[6:], m.group(0))), str(text)
        )

    def expect(self, exp: dict, acks: list[bytes | None], names: dict[str, str], result: TestResult) -> None:
        if "count" in exp:
            count = sum(1 for a in acks if a is not None)
            result.check(count == exp["count"], "acknowledgements", f"got {count}; wanted {exp['count']}")
        i = int(exp.get("ack", 0))
        ack = acks[i] if i < len(acks) else None
        label = f"ACK {i + 1}"
        if not result.check(
            ack is not None,
            f"{label} received",
            "an acknowledgement frame"
            if ack is not None
            else f"no acknowledgement within {self.timeout:g} s",
        ):
            return
        assert ack is not None
        for key, want in exp.items():
            if key in ("ack", "count"):
                continue
            if key == "ERR":
                got_err = has_segment(ack, "ERR")
                result.check(
                    got_err == bool(want),
                    f"{label} ERR",
                    f"ERR segment {'present' if got_err else 'absent'}; "
                    f"wanted {'present' if want else 'absent'}",
                )
                continue
            got = field(ack, key)
            wants = [self._value(w, names) for w in (want if isinstance(want, list) else [want])]
            result.check(
                got in wants, f"{label} {key}", f"got {got!r}; wanted {' or '.join(map(repr, wants))}"
            )

    def observe(self, obs: dict, names: dict[str, str], result: TestResult) -> None:
        if self.observer is None:
            raise StepError("no observer")
        cid = names[obs["message"]]
        deadline = time.monotonic() + float(obs.get("wait", 0))
        try:
            n = self.observer(cid)
            while n < max(1, int(obs.get("min", 1))) and time.monotonic() < deadline:
                time.sleep(0.1)
                n = self.observer(cid)
            if obs.get("settle"):
                time.sleep(float(obs["settle"]))
                n = self.observer(cid)
        except (
            ObserverError,
            Exception,
        ) as exc:  # the observer is the tester's: any failure is a runner error
            raise StepError(f"observer: {type(exc).__name__}: {exc}", "CONF-004") from None
        if "count" in obs:
            result.check(
                n == int(obs["count"]),
                "stored copies",
                f"got {n} stored for MSH-10 {cid}; wanted {obs['count']}",
            )
        else:
            result.check(
                n >= int(obs["min"]),
                "stored copies",
                f"got {n} stored for MSH-10 {cid} at that moment; wanted at least {obs['min']}",
            )


def load_spec(suite: Suite) -> dict:
    return json.loads((suite.folder / "suite.json").read_text("utf-8"))


def missing(
    requires: list[str], declared: set[str], observer: Observer | None, assume_all: bool
) -> list[str]:
    out = []
    for r in requires:
        if r == "observer":
            if observer is None:
                out.append("no --observe given: what the endpoint stored cannot be counted")
        elif not assume_all and r not in declared:
            out.append(f"not declared: {r} (--capability {r})")
    return out


def declared_of(options: RunOptions) -> set[str]:
    """The capabilities the tester declared (``--capability``, repeatable or comma-separated)."""
    return {c.strip() for cap in options.capabilities for c in cap.split(",") if c.strip()}


def run_declared(suite: Suite, spec: dict, options: RunOptions, declared: set[str], observer, run_test):
    """Every test of a declarative suite (MLLP, postbox): skipped with the reason when a capability it
    requires is not declared, else ``run_test(test, result)``; a :class:`StepError` is the test's error."""
    results = []
    for t in spec["tests"]:
        where = f"{suite.folder.name}/suite.json"
        r = TestResult(f"{suite.name}/{t['id']}", t["name"], t["requirement"], where)
        miss = missing(t.get("requires", []), declared, observer, options.assume_all)
        if miss:
            r.skip("; ".join(miss))
        else:
            started = time.perf_counter()
            try:
                run_test(t, r)
            except StepError as exc:
                r.error(str(exc))
            r.seconds = time.perf_counter() - started
        results.append(r)
    return results


def execute(suite: Suite, options: RunOptions) -> tuple[list[TestResult], list[str]]:
    spec = load_spec(suite)
    try:
        observer = make_observer(options.observe) if options.observe else None
    except ObserverError as exc:
        raise UsageError(str(exc)) from None
    run = SuiteRun(suite, options, spec, observer)
    try:
        results = run_declared(suite, spec, options, declared_of(options), observer, run.run_test)
    finally:
        close(observer)
    return results, []

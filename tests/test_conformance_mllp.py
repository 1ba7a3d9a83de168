"""The mllp-receiver conformance suite (issue 8): passes against the gateway's MLLP listener as
``hisgw serve`` runs it (acceptance 1), and receivers broken in one way fail exactly the tests aimed at
that breakage (acceptance 2)."""

from __future__ import annotations

import pytest

from conformance.model import Verdict
from conformance.runner import RunOptions, run
from conformance.selftest.receivers import Receiver
from tests.conftest import ServerProcess, free_port, wait_for_port

DECLARED = ["enhanced-ack,charset:8859/1,charset:UNICODE UTF-8,frame-limit,pipelining"]


def failed(result) -> dict[str, str]:
    return {t.id: t.reason for t in result.tests if t.verdict is not Verdict.PASS}


def test_every_mllp_receiver_test_passes_against_hisgw_serve(tmp_path):
    mllp = free_port()
    server = ServerProcess(["--demo", "--mllp-port", str(mllp), "--metrics-port", "0"], tmp_path).wait_ready()
    try:
        wait_for_port(mllp)
        result = run(
            "mllp-receiver",
            RunOptions(
                f"127.0.0.1:{mllp}",
                capabilities=DECLARED,
                observe=f"hisgw-mllp:sqlite:///{tmp_path / 'var' / 'hisgw.db'}",
            ),
        )
    finally:
        server.stop()
    assert not failed(result), failed(result)
    assert len(result.tests) == 16 and result.count(Verdict.SKIP) == 0


def test_undeclared_capabilities_and_no_observer_are_skipped_with_reasons(tmp_path):
    rx = Receiver(tmp_path / "rx.db").start()
    try:
        result = run("mllp-receiver", RunOptions(f"127.0.0.1:{rx.port}"))
    finally:
        rx.stop()
    skipped = {t.id: t.reason for t in result.tests if t.verdict is Verdict.SKIP}
    assert "no --observe given" in skipped["mllp-receiver/stored-before-ack"]
    assert "not declared: enhanced-ack" in skipped["mllp-receiver/enhanced-accept-then-application-ack"]
    assert "charset:8859/1" in skipped["mllp-receiver/charset-8859-1"]
    assert not failed(result).keys() - skipped.keys()


@pytest.mark.parametrize(
    "behaviour, aimed",
    [
        ("correct", set()),
        ("ack-before-store", {"mllp-receiver/stored-before-ack"}),
        ("files-twice", {"mllp-receiver/repeat-stored-once"}),
    ],
)
def test_broken_receiver_fails_exactly_the_aimed_test(tmp_path, behaviour, aimed):
    rx = Receiver(tmp_path / "rx.db", behaviour).start()
    try:
        result = run(
            "mllp-receiver", RunOptions(f"127.0.0.1:{rx.port}", capabilities=DECLARED, observe=rx.observer)
        )
    finally:
        rx.stop()
    assert set(failed(result)) == aimed, failed(result)
    assert all(t.verdict is Verdict.FAIL for t in result.tests if t.id in aimed)
    assert result.count(Verdict.SKIP) == 0

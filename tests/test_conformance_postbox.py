"""The postbox-receiver conformance suite (issue 8): passes against the outbox's postbox simulators on
every channel (acceptance 1); a postbox that files a repeat twice fails exactly the test aimed at it
(acceptance 2)."""

from __future__ import annotations

import pytest

import formats
from conformance.model import Verdict
from conformance.runner import RunOptions, run
from conformance.selftest.receivers import FilesTwiceInbox
from gateway.outbox.testkit import SimProcess


def failed(result) -> dict[str, str]:
    return {t.id: t.reason for t in result.tests if t.verdict in (Verdict.FAIL, Verdict.ERROR)}


CHANNELS = [*formats.channels(), *(f"drop-{f.name}" for f in formats.drop_formats())]
"""Every channel of the formats' postbox forms, and a drop folder in every drop form (from the registry)."""


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_postbox_test_passes_against_the_simulators(tmp_path, channel):
    kind, _, dialect = channel.partition("-")
    params = {}
    if kind == "drop":
        sim = SimProcess("drop", tmp_path, "sim", directory=tmp_path / "drop", dialect=dialect)
        target, params = str(tmp_path / "drop"), {"dialect": dialect}
    elif formats.channels()[channel].postbox.transport == "numbered-files":  # type: ignore[union-attr]
        # a mail client's folder of numbered interchanges (the Edifact MEDVRI channel)
        fmt = formats.channels()[channel]
        sim = SimProcess("numbered", tmp_path, "sim", directory=tmp_path / "drop", dialect=fmt.name)
        target, params, kind = str(tmp_path / "drop"), {"channel": channel}, "numbered"
    else:
        form = formats.channels()[kind].postbox
        assert form is not None
        sim = SimProcess(form.transport or "", tmp_path, "sim")
        if form.transport == "mllp":
            target = f"127.0.0.1:{sim.port}"
        else:  # the simulator's inbox, or <url><path> for a form that adds a path (FHIR: /Communication)
            target = f"http://127.0.0.1:{sim.port}/" + (kind if form.path else "inbox")
            params = {"channel": kind}
    try:
        result = run("postbox-receiver", RunOptions(target, params=params, observe=f"lines:{sim.filed_log}"))
    finally:
        counts = sim.stop()
    assert not failed(result), failed(result)
    skipped = {t.id for t in result.tests if t.verdict is Verdict.SKIP}
    # a drop folder cannot answer a refusal: that one test is skipped there, with its reason
    assert skipped == ({"postbox-receiver/unreadable-refused"} if kind in ("drop", "numbered") else set())
    assert counts["duplicates"] >= 2 and counts["invalid"] >= 1, counts


def test_postbox_filing_repeats_twice_fails_exactly_the_aimed_test(tmp_path):
    inbox = FilesTwiceInbox(tmp_path / "filed.log").start()
    try:
        result = run("postbox-receiver", RunOptions(inbox.url, observe=f"lines:{tmp_path / 'filed.log'}"))
    finally:
        inbox.stop()
    assert set(failed(result)) == {"postbox-receiver/repeat-filed-once"}, failed(result)
    assert "got 2 filed" in failed(result)["postbox-receiver/repeat-filed-once"]


def test_without_observer_the_store_tests_are_skipped_with_the_reason(tmp_path):
    sim = SimProcess("http", tmp_path, "sim")
    try:
        result = run("postbox-receiver", RunOptions(f"http://127.0.0.1:{sim.port}/inbox"))
    finally:
        sim.stop()
    skipped = {t.id: t.reason for t in result.tests if t.verdict is Verdict.SKIP}
    assert set(skipped) == {
        "postbox-receiver/repeat-filed-once",
        "postbox-receiver/filing-format-readable",
        "postbox-receiver/unreadable-not-filed",
    }
    assert all("no --observe given" in r for r in skipped.values())
    assert not failed(result).keys() - skipped.keys()

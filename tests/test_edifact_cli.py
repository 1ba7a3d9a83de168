"""``hisgw convert --from/--to edifact-medvri|edifact-medlab`` (issue 17): a file of one interchange of many
messages, through FHIR, HL7 v2 and canonical JSON and back to the same bytes; errors one line each, located;
exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.golden_util import GOLDEN

HISGW = [sys.executable, "-m", "gateway.cli"]
LAB3 = GOLDEN / "edifact-medlab" / "three-patients-in-one-interchange" / "message.edi"
VRI3 = GOLDEN / "edifact-medvri" / "three-letters-in-one-interchange" / "message.edi"


def run(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([*HISGW, *args], capture_output=True, timeout=120)
    assert b"Traceback" not in out.stderr
    return out


def test_medlab_through_fhir_hl7v2_and_canonical_back_to_the_same_interchange(tmp_path: Path) -> None:
    for via, count in (("fhir", 3), ("hl7v2", 3), ("canonical", 3)):
        mid = tmp_path / f"lab.{via}"
        assert (
            run("convert", str(LAB3), "--from", "edifact-medlab", "--to", via, "-o", str(mid)).returncode == 0
        )
        if via != "hl7v2":
            assert len(mid.read_bytes().splitlines()) == count
        back = tmp_path / f"back-{via}.edi"
        out = run("convert", str(mid), "--from", via, "--to", "edifact-medlab", "-o", str(back))
        assert out.returncode == 0, out.stderr
        if via != "hl7v2":  # v2 has no room for the envelope: new UNB, compared in the golden tests
            assert back.read_bytes() == LAB3.read_bytes()
        else:
            assert back.read_bytes().count(b"UNH+") == 3 and b"UNZ+3+" in back.read_bytes()


def test_medvri_letters_to_fhir_communications(tmp_path: Path) -> None:
    out = run("convert", str(VRI3), "--from", "edifact-medvri", "--to", "fhir")
    assert out.returncode == 0
    bundles = [json.loads(x) for x in out.stdout.splitlines()]
    kinds = [[e["resource"]["resourceType"] for e in b["entry"]] for b in bundles]
    assert kinds == [["MessageHeader", "Communication"]] * 3


def test_errors_are_one_line_each_and_nothing_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.edi"
    bad.write_bytes(LAB3.read_bytes().replace(b"UNT+7+2", b"UNT+6+2").replace(b"BSN999999060", b"BSN123"))
    target = tmp_path / "out.ndjson"
    out = run("convert", str(bad), "--from", "edifact-medlab", "--to", "fhir", "-o", str(target))
    assert out.returncode == 1
    assert out.stderr.decode().splitlines() == [
        "error EDI-008 bad.edi line 16 segment 15 UNT element 1: UNT counts 6 segments; message '2' has 7 "
        "(UNH and UNT included)",
        "error EDI-021 bad.edi line 5 segment 4 PID element 5: 'BSN123' is not BSN and a number passing the "
        "11-test",
    ]
    assert not target.exists()


def test_wrong_message_type_and_pairings(tmp_path: Path) -> None:
    out = run("convert", str(LAB3), "--from", "edifact-medvri", "--to", "fhir")
    assert out.returncode == 1 and b"EDI-031" in out.stderr
    out = run("convert", str(LAB3), "--from", "edifact-medlab", "--to", "medicom")
    assert out.returncode == 2 and b"holds messages, not dossiers" in out.stderr
    out = run("summary", str(LAB3), "--from", "edifact-medlab", "--to", "fhir")
    assert out.returncode == 2

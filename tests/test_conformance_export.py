"""The his-export conformance suite (issue 8): every golden export file and the real Nictiz professional
summary pass (acceptance 1); exports broken on purpose fail exactly the tests aimed at the breakage
(acceptance 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.model import Verdict
from conformance.runner import RunOptions, UsageError, run
from tests.conftest import REAL_PS, ROOT

GOLDEN = ROOT / "tests" / "golden"
EXPORT_NAMES = ("export.xml", "export.txt", "omnihis.json", "omnihis.ndjson")


def golden_exports() -> list[Path]:
    found = [
        p
        for d in ("medicom", "microhis", "omnihis")
        for p in sorted((GOLDEN / d).glob("*/*"))
        if p.name in EXPORT_NAMES
    ]
    return [*found, REAL_PS]


def failed(result) -> dict[str, str]:
    return {t.id.split("/", 1)[1]: t.reason for t in result.tests if t.verdict is not Verdict.PASS}


def test_every_golden_export_and_the_real_ps_pass(tmp_path):
    files = golden_exports()
    assert len(files) >= 30 and REAL_PS in files
    bad = {}
    for f in files:
        result = run("his-export", RunOptions(str(f)))
        if failed(result):
            bad[str(f.relative_to(ROOT.parent))] = failed(result)
        assert len(result.tests) == 7
    assert not bad, bad


def _medicom_broken(tmp_path: Path) -> Path:
    src = (GOLDEN / "medicom" / "maximal-dossier-every-field" / "export.xml").read_bytes()
    assert b'bsn="555555914"' in src and b'<Deelcontact episode="525"' in src
    out = tmp_path / "broken.xml"
    out.write_bytes(
        src.replace(b'bsn="555555914"', b'bsn="555555915"').replace(
            b'<Deelcontact episode="525"', b'<Deelcontact episode="999"'
        )
    )
    return out


def _omnihis_broken(tmp_path: Path) -> Path:
    doc = json.loads((GOLDEN / "omnihis" / "maximal-every-key" / "omnihis.json").read_text("utf-8"))
    text = json.dumps(doc, ensure_ascii=False)
    assert '"999911120"' in text and '"episodeId": "ep-k86"' in text
    text = text.replace('"999911120"', '"999911121"').replace(
        '"episodeId": "ep-k86"', '"episodeId": "ep-nowhere"', 1
    )
    out = tmp_path / "broken.json"
    out.write_text(text, "utf-8")
    return out


def _ps_broken(tmp_path: Path) -> Path:
    src = REAL_PS.read_bytes()
    bsn = b'<id extension="555555914" root="2.16.840.1.113883.2.4.6.3"/>'
    assert src.count(bsn) == 1
    out = tmp_path / "broken-ps.xml"
    out.write_bytes(src.replace(bsn, bsn.replace(b"555555914", b"555555915")))
    return out


@pytest.mark.parametrize(
    "make, aimed",
    [
        (_medicom_broken, {"bsn", "internal-references"}),
        (_omnihis_broken, {"bsn", "internal-references"}),
        (_ps_broken, {"bsn"}),
    ],
    ids=["medicom-bsn-and-dangling-episode", "omnihis-bsn-and-dangling-episode", "ps-hl7v3-bsn"],
)
def test_broken_export_fails_exactly_the_aimed_tests(tmp_path, make, aimed):
    target = make(tmp_path)
    result = run("his-export", RunOptions(str(target)))
    assert set(failed(result)) == aimed, failed(result)
    assert all(t.verdict is Verdict.FAIL for t in result.tests if t.id.split("/", 1)[1] in aimed)


def test_wrong_encoding_fails_the_encoding_test(tmp_path):
    """A Medicom export that declares UTF-8 instead of ISO-8859-15: exactly the encoding test fails."""
    src = (GOLDEN / "medicom" / "minimal-dossier" / "export.xml").read_text("iso-8859-15")
    out = tmp_path / "utf8.xml"
    out.write_bytes(
        src.replace(
            '<?xml version="1.0" encoding="ISO-8859-15"?>', '<?xml version="1.0" encoding="UTF-8"?>'
        ).encode("utf-8")
    )
    assert b'encoding="UTF-8"' in out.read_bytes()
    result = run("his-export", RunOptions(str(out)))
    assert set(failed(result)) == {"encoding"}, failed(result)


def test_no_file_or_unknown_dialect_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a file"):
        run("his-export", RunOptions(str(tmp_path / "missing.xml")))
    (tmp_path / "x.bin").write_bytes(b"\x00\x01garbage")
    with pytest.raises(UsageError, match="dialect"):
        run("his-export", RunOptions(str(tmp_path / "x.bin")))


EDIFACT = sorted((GOLDEN / "edifact-medvri").glob("*/message.edi")) + sorted(
    (GOLDEN / "edifact-medlab").glob("*/message.edi")
)


@pytest.mark.parametrize("path", EDIFACT, ids=[f"{p.parent.parent.name}/{p.parent.name}" for p in EDIFACT])
def test_every_golden_edifact_interchange_passes(path: Path):
    result = run("his-export", RunOptions(str(path)))
    assert len(result.tests) == 7 and not failed(result), failed(result)


def test_broken_medlab_fails_exactly_bsn_and_dates(tmp_path):
    src = (GOLDEN / "edifact-medlab" / "numbers-units-ranges-and-flags" / "message.edi").read_bytes()
    assert src.count(b"BSN999999011") == 1 and src.count(b"DET:1+26:01:04") == 1
    out = tmp_path / "broken.edi"
    out.write_bytes(
        src.replace(b"BSN999999011", b"BSN999999012").replace(b"DET:1+26:01:04", b"DET:1+26:13:04")
    )
    result = run("his-export", RunOptions(str(out)))
    assert set(failed(result)) == {"bsn", "dates"}, failed(result)

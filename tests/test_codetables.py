"""Code tables are data: shipped subset, full tables from a configured path, unknown codes kept with a warning."""

from __future__ import annotations

from pathlib import Path

from mappings.codetables import CodeTables, code_tables
from mappings.problems import ProblemSink, Severity


def test_shipped_subset_and_metadata():
    t = code_tables()
    assert t["icpc"].display("K78") == "Boezemfibrilleren/-fladderen"
    assert t["tabel45"].display("3208") == "glucose nuchter, art/cap (lab)"
    assert t["icpc"].system == "http://hl7.org/fhir/sid/icpc-1-nl"
    assert t.by_system["urn:oid:2.16.840.1.113883.2.4.4.31.1"] is t["icpc"]
    # Tabel 25 and Tabel 69 ship empty: no confirmed source for their codes is in this repository yet
    assert {n for n, table in t.tables.items() if not table.codes} == {"tabel25", "tabel69"}


def test_unknown_code_is_kept_with_a_warning():
    sink = ProblemSink(strict=True)
    code_tables().check("icpc", "Z99.99", "x.xml:3 /a/@icpc", sink)  # strict: a warning must not raise
    [p] = sink.problems
    assert (p.severity, p.code, p.location) == (Severity.WARNING, "CODE-001", "x.xml:3 /a/@icpc")
    code_tables().check("icpc", "K78", "x", sink)
    assert len(sink.problems) == 1


def test_full_tables_from_a_configured_path(tmp_path: Path, monkeypatch):
    (tmp_path / "icpc-1-nl.csv").write_text("code,display\nZ99.99,Testcode\n", "utf-8")
    full = CodeTables(tmp_path)
    assert full["icpc"].display("Z99.99") == "Testcode" and "K78" not in full["icpc"]
    assert full["tabel45"].display("1915")  # tables not in the path stay the shipped subset
    monkeypatch.setenv("HISGW_CODE_TABLES_PATH", str(tmp_path))
    assert "Z99.99" in code_tables()["icpc"]

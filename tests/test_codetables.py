"""Code tables are data (mappings/codes): a shipped subset, full tables from a configured path, and unknown
codes kept with a ``CODE-001`` warning (DOMAIN.md §8, STYLE.md "code tables as data")."""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

import pytest

from mappings.codetables import SHIPPED_DIR, CodeTables, code_tables
from mappings.model import ICPC_RE
from mappings.problems import ProblemSink, Severity
from tests.factories import typical_dossier

# the shape of a code in each table: a row that breaks it is a typing error in the data file
SHAPES = {
    "icpc": ICPC_RE,
    "atc": re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}\Z"),
    "tabel14": re.compile(r"^[0-9]{2}\Z"),
    "tabel25": re.compile(r"^[0-9]{1,4}\Z"),
    "tabel45": re.compile(r"^[0-9]{1,5}\Z"),
    "tabel69": re.compile(r"^[0-9]{1,3}\Z"),
    "thesaurus40": re.compile(r"^[0-9]{1,5}\Z"),
    "thesaurus122": re.compile(r"^[0-9]{1,5}\Z"),
}
# DOMAIN.md §8: system URI and OID of each table
SYSTEMS = {
    "icpc": ("http://hl7.org/fhir/sid/icpc-1-nl", "2.16.840.1.113883.2.4.4.31.1"),
    "tabel45": (
        "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen",
        "2.16.840.1.113883.2.4.4.30.45",
    ),
    "tabel14": (
        "https://referentiemodel.nhg.org/tabellen/nhg-tabel-14-contactwijze",
        "2.16.840.1.113883.2.4.4.30.14",
    ),
    "tabel25": (
        "https://referentiemodel.nhg.org/tabellen/nhg-tabel-25-gebruiksvoorschrift#aanvullend-numeriek",
        "2.16.840.1.113883.2.4.4.5",
    ),
    "tabel69": (
        "https://referentiemodel.nhg.org/tabellen/nhg-tabel-69-soort-correspondentie",
        "2.16.840.1.113883.2.4.4.30.69",
    ),
    "thesaurus40": ("urn:oid:2.16.840.1.113883.2.4.4.1.902.40", "2.16.840.1.113883.2.4.4.1.902.40"),
    "thesaurus122": ("urn:oid:2.16.840.1.113883.2.4.4.1.902.122", "2.16.840.1.113883.2.4.4.1.902.122"),
    "atc": ("http://www.whocc.no/atc", "2.16.840.1.113883.6.73"),
}


def test_every_table_is_loaded_with_its_metadata():
    t = code_tables()
    assert set(t.tables) == set(SYSTEMS)
    for name, (system, oid) in SYSTEMS.items():
        assert (t[name].system, t[name].oid, t[name].unmapped) == (system, oid, "keep-warn")
        assert t.by_system[system] is t[name] and t.by_system[f"urn:oid:{oid}"] is t[name]


EXTRA_COLUMNS = {"tabel45": {"category": {"laboratory", "vital-signs", "imaging"}}}
"""Columns beyond code and display, and the values each may hold (FHIR observation-category codes)."""


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_shipped_rows_are_well_formed(name):
    file = tomllib.loads((SHIPPED_DIR / "tables.toml").read_text("utf-8"))[name]["file"]
    rows = list(csv.reader((SHIPPED_DIR / file).read_text("utf-8").splitlines()))
    extra = EXTRA_COLUMNS.get(name, {})
    assert rows[0] == ["code", "display", *extra]
    codes = [r[0] for r in rows[1:]]
    assert len(codes) == len(set(codes)), "a code appears twice"
    for row in rows[1:]:
        code, display, *more = row
        assert len(more) == len(extra), f"{name}: {code} has not the columns {rows[0]}"
        assert SHAPES[name].match(code), f"{name}: {code!r} is not a code of this table"
        assert display.strip() == display and display, f"{name}: {code} has no clean display"
        for value, allowed in zip(more, extra.values(), strict=True):
            assert value in allowed, f"{name}: {code} has {value!r}, not one of {sorted(allowed)}"
    assert code_tables()[name].codes == {r[0]: r[1] for r in rows[1:]}


@pytest.mark.parametrize(
    "table,code,display",
    [
        ("icpc", "K78", "Boezemfibrilleren/-fladderen"),
        ("icpc", "L86.01", "HNP (thoracaal/lumbaal)"),
        ("icpc", "T90", "Diabetes mellitus"),
        ("icpc", "R96", "Astma"),
        ("icpc", "K86", "Hypertensie zonder orgaanbeschadiging"),
        ("tabel45", "3208", "glucose nuchter, art/cap (lab)"),
        ("tabel45", "1915", "temperatuur patiënt (oraal gemeten)"),
        ("tabel14", "03", "Consult"),
        ("tabel25", "1137", "zo nodig"),
        ("thesaurus40", "219", "VERKEERSDEELNAME"),
        ("thesaurus40", "1347", "ASTMA"),
        ("thesaurus122", "35", "PENICILLINES"),
        ("atc", "J01AA02", "doxycycline"),
        ("atc", "C07AB02", "metoprolol"),
    ],
)
def test_lookup(table, code, display):
    assert code in code_tables()[table] and code_tables()[table].display(code) == display


def test_subset_sizes():
    t = code_tables()
    assert len(t["icpc"].codes) >= 100 and len(t["atc"].codes) >= 30
    # Tabel 69 ships without rows: no confirmed source for its codes was at hand (mappings/codes/README.md)
    assert {n for n, table in t.tables.items() if not table.codes} == {"tabel69"}


def test_codes_of_the_real_ps_and_the_typical_dossier_are_shipped():
    t = code_tables()
    real_icpc = {"K78", "S74.01", "R21.01", "K70", "R96", "L86.01", "L03", "D02", "S13"}
    assert real_icpc <= set(t["icpc"].codes)
    assert {"1915", "1334", "3208", "2283", "1913", "193"} <= set(t["tabel45"].codes)
    d = typical_dossier(1)
    assert {e.icpc for e in d.episodes} <= set(t["icpc"].codes)
    assert {x.code for x in d.measurements} <= set(t["tabel45"].codes)
    assert {x.atc for x in d.medications} <= set(t["atc"].codes)


def test_unknown_code_is_kept_with_a_warning():
    sink = ProblemSink(strict=True)
    code_tables().check("icpc", "Z99.99", "x.xml:3 /a/@icpc", sink)  # strict: a warning must not raise
    [p] = sink.problems
    assert (p.severity, p.code, p.location) == (Severity.WARNING, "CODE-001", "x.xml:3 /a/@icpc")
    assert "'Z99.99'" in p.message and "ICPC-1-NL" in p.message
    code_tables().check("icpc", "K78", "x", sink)
    code_tables().check("icpc", None, "x", sink)  # no code, nothing to check
    assert len(sink.problems) == 1
    assert code_tables()["icpc"].display("Z99.99") is None and code_tables()["icpc"].display(None) is None


def test_full_tables_from_a_configured_path(tmp_path: Path, monkeypatch):
    (tmp_path / "icpc-1-nl.csv").write_text("code,display\nZ99.99,Testcode\nK78,Boezemfibrilleren\n", "utf-8")
    full = CodeTables(tmp_path)
    assert full["icpc"].display("Z99.99") == "Testcode"
    assert "K86" not in full["icpc"]  # the file replaces the subset, it is not merged into it
    assert full["tabel45"].display("1915")  # tables not in the path stay the shipped subset
    assert code_tables(tmp_path)["icpc"].codes == full["icpc"].codes  # the same through the cached loader
    monkeypatch.setenv("HISGW_CODE_TABLES_PATH", str(tmp_path))
    assert "Z99.99" in code_tables()["icpc"]
    sink = ProblemSink()
    code_tables().check("icpc", "Z99.99", "x", sink)
    assert sink.problems == []  # known in the full table: no warning
    monkeypatch.delenv("HISGW_CODE_TABLES_PATH")
    assert "Z99.99" not in code_tables()["icpc"]  # back to the shipped subset


def test_tabel45_gives_the_observation_category():
    """Temperatures are vital signs, the CT an imaging result, creatine kinase a lab test (issue 20)."""
    t = code_tables()["tabel45"]
    assert [t.column("category", x) for x in ("1913", "1915", "2283", "193", "0000")] == [
        "vital-signs",
        "vital-signs",
        "imaging",
        "laboratory",
        None,
    ]

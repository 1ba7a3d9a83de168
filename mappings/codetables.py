"""Code tables as data: ICPC-1-NL, NHG Tabel 14/25/45/69, G-Standaard thesauri 40 and 122, ATC.

The tables are licensed (NHG, WHO, Z-Index), so the project ships a realistic subset in
``mappings/codes/*.csv`` described by ``mappings/codes/tables.toml`` (system URI, OID, version, source,
rule for unmapped codes). Set ``HISGW_CODE_TABLES_PATH`` (or pass ``path``) to a directory holding the
full tables under the same file names; a file found there replaces the shipped subset.

Unknown codes are *kept*, never dropped: :meth:`CodeTables.check` reports them as warnings
(``CODE-001``) and the reader carries the code on unchanged.
"""

from __future__ import annotations

import csv
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mappings.problems import ProblemSink

SHIPPED_DIR = Path(__file__).parent / "codes"


@dataclass(frozen=True)
class CodeTable:
    name: str
    title: str
    system: str
    oid: str
    version: str
    source: str
    unmapped: str
    codes: dict[str, str]
    extra: dict[str, dict[str, str]]
    """Further columns per code (``tabel45``: ``category``, the FHIR observation-category)."""

    def display(self, code: str | None) -> str | None:
        return None if code is None else self.codes.get(code)

    def column(self, name: str, code: str | None) -> str | None:
        """The value of a further column for ``code`` (``None`` when the code or the column is missing)."""
        row = self.extra.get(code) if code is not None else None
        return (row.get(name) or None) if row else None

    def __contains__(self, code: object) -> bool:
        return code in self.codes


class CodeTables:
    """All code tables, by short name (``icpc``, ``tabel45``, ``tabel14``, ``tabel25``, ``tabel69``,
    ``thesaurus40``, ``thesaurus122``, ``atc``)."""

    def __init__(self, path: Path | None = None):
        meta = tomllib.loads((SHIPPED_DIR / "tables.toml").read_text("utf-8"))
        self.tables: dict[str, CodeTable] = {}
        for name, m in meta.items():
            src = SHIPPED_DIR / m["file"]
            if path is not None and (Path(path) / m["file"]).is_file():
                src = Path(path) / m["file"]
            codes: dict[str, str] = {}
            extra: dict[str, dict[str, str]] = {}
            with src.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    codes[row["code"]] = row["display"]
                    more = {k: v for k, v in row.items() if k not in ("code", "display") and k and v}
                    if more:
                        extra[row["code"]] = more
            self.tables[name] = CodeTable(
                name,
                m["title"],
                m["system"],
                m["oid"],
                m["version"],
                m["source"],
                m["unmapped"],
                codes,
                extra,
            )
        self.by_system = {t.system: t for t in self.tables.values()}
        self.by_system.update({f"urn:oid:{t.oid}": t for t in self.tables.values()})

    def __getitem__(self, name: str) -> CodeTable:
        return self.tables[name]

    def check(self, table: str, code: str | None, location: str, sink: ProblemSink) -> None:
        """Warn (``CODE-001``) when ``code`` is not in ``table``; the code is kept either way."""
        if code is not None and code not in self.tables[table].codes:
            sink.warning(
                "CODE-001", location, f"code {code!r} is not in {self.tables[table].title}; kept as is"
            )


@lru_cache(maxsize=4)
def _load(path: str | None) -> CodeTables:
    return CodeTables(Path(path) if path else None)


def code_tables(path: str | os.PathLike[str] | None = None) -> CodeTables:
    """The code tables, loaded once per path; default path from ``HISGW_CODE_TABLES_PATH``."""
    if path is None:
        path = os.environ.get("HISGW_CODE_TABLES_PATH") or None
    return _load(str(path) if path else None)

"""Small terminology helpers shared by the FHIR and HL7 v2 mappings, their tables as data
(``mappings/data/*.csv``, read at first use).

- :func:`is_ucum`: whether a unit is UCUM (The Unified Code for Units of Measure, ucum.org): it must parse
  as a UCUM expression built of the atoms and prefixes of ``ucum-units.csv`` (a subset of ucum-essence).
  A unit that does not is kept as its text, never labelled UCUM.
- :func:`interpretations`: HL7 table 0078 abnormal flags = v3 ObservationInterpretation codes, with their
  display (``observation-interpretation.csv``).
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

_DATA = Path(__file__).parent / "data"


def rows(name: str) -> list[list[str]]:
    """The rows of a CSV data file after its header (lines starting with ``#`` are comments)."""
    with (_DATA / name).open(encoding="utf-8") as fh:
        out = list(csv.reader(line for line in fh if not line.startswith("#")))
    return out[1:]


@cache
def _ucum() -> re.Pattern[str]:
    table = rows("ucum-units.csv")
    prefixes = sorted((s for k, s in table if k == "prefix"), key=len, reverse=True)
    atoms = sorted((s for k, s in table if k == "atom"), key=len, reverse=True)
    alt = "|".join(map(re.escape, atoms))
    pre = "|".join(map(re.escape, prefixes))
    term = rf"(?:(?:{pre})?(?:{alt})[+-]?\d*(?:\{{[^{{}}]*\}})?|\d+|\{{[^{{}}]*\}})"
    return re.compile(rf"/?{term}(?:[./]{term})*\Z")


@cache
def is_ucum(unit: str) -> bool:
    """Whether ``unit`` parses as a UCUM expression built of the shipped atoms and prefixes."""
    return bool(unit) and len(unit) <= 60 and bool(_ucum().match(unit))


@cache
def interpretations() -> dict[str, str]:
    """Abnormal flag / ObservationInterpretation code -> display."""
    return {code: display for code, display in rows("observation-interpretation.csv")}

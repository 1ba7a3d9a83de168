"""The HL7 v2 code tables the segment mappings need, read from ``mappings/hl7v2/data/*.csv`` at first use.

- HL7 table 0396 coding system names -> FHIR code system URI (``coding-systems.csv``): ``LN`` is
  ``http://loinc.org``, ``SCT`` SNOMED CT, ``NHG45`` NHG Tabel 45. A name the table lacks is kept as
  ``urn:his-gateway:hl7v2:coding-system:<name>``; a coding without a name is a code of the sender's own,
  kept under ``urn:his-gateway:hl7v2:local:<MSH-3.1>/<MSH-4.1>`` (the V2-to-FHIR IG leaves the system of
  such codes to the implementer; ours names the sender so two labs' local codes never mix).
- HL7 table 0085 result status (OBX-11) -> FHIR ObservationStatus (``result-status.csv``).
(UCUM units and the table 0078 abnormal flags are shared with the FHIR mappings: :mod:`mappings.units`.)
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from urllib.parse import quote, unquote

_DATA = Path(__file__).parent / "data"
CODING_SYSTEM = "urn:his-gateway:hl7v2:coding-system:"
LOCAL = "urn:his-gateway:hl7v2:local:"
UCUM = "http://unitsofmeasure.org"
TABEL45_URI = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen"


def _rows(name: str) -> list[list[str]]:
    with (_DATA / name).open(encoding="utf-8") as fh:
        rows = [r for r in csv.reader(line for line in fh if not line.startswith("#"))]
    return rows[1:]


@cache
def _systems() -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    by_uri: dict[str, str] = {}
    for name, uri in _rows("coding-systems.csv"):
        by_name[name.upper()] = uri
        by_uri.setdefault(uri, name)
    return by_name, by_uri


def local_system(sender: str) -> str:
    """The code system of codes without a coding system name, for one sender (``MSH-3.1/MSH-4.1``)."""
    return LOCAL + quote(sender or "unknown", safe="/")


def system_uri(name: str, sender: str) -> str:
    """CWE.3 (a table 0396 name, an OID or a URI) -> the code system URI."""
    if not name:
        return local_system(sender)
    hit = _systems()[0].get(name.upper())
    if hit is not None:
        return hit
    if name.startswith(("http://", "https://", "urn:")):
        return name
    return CODING_SYSTEM + quote(name, safe="")


def system_name(uri: str) -> str:
    """The CWE.3 written for a code system URI (inverse of :func:`system_uri`; local codes get none)."""
    hit = _systems()[1].get(uri)
    if hit is not None:
        return hit
    if uri.startswith(CODING_SYSTEM):
        return unquote(uri[len(CODING_SYSTEM) :])
    if uri.startswith(LOCAL):
        return ""
    return uri


@cache
def _statuses() -> tuple[dict[str, str], dict[str, str]]:
    to_fhir: dict[str, str] = {}
    back: dict[str, str] = {}
    for code, status in _rows("result-status.csv"):
        to_fhir[code] = status
        back.setdefault(status, code)
    return to_fhir, back


def result_status(code: str) -> str | None:
    """OBX-11 -> FHIR ObservationStatus (``None`` for a code outside table 0085)."""
    return _statuses()[0].get(code)


def result_status_code(status: str) -> str:
    """FHIR ObservationStatus -> the OBX-11 written."""
    return _statuses()[1].get(status, "F")

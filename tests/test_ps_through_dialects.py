"""The real NHG professional summary through every dialect and back (issue 2, acceptance 4).

The Nictiz instance is read into the canonical model, written in each dialect, read back, and must give
the same canonical dossier; the written bytes are stable (writing the read-back dossier gives them again).
The same holds for the FHIR collection Bundle.
"""

from __future__ import annotations

import pytest

import formats
from adapters.base import get_format
from tests.conftest import REAL_PS


@pytest.fixture(scope="module")
def real_ps():
    return get_format("ps-hl7v3").read(REAL_PS.read_bytes(), source=REAL_PS.name)


# every writable dossier format the registry offers: one added later is covered without anyone remembering
# it (message formats such as HL7 v2 and Edifact carry messages, not a whole dossier)
WRITABLE = [f.name for f in formats.dossier_formats() if f.writes]


@pytest.mark.parametrize("dialect", WRITABLE)
def test_real_ps_round_trips_through(dialect, real_ps):
    fmt = get_format(dialect)
    written = fmt.write(real_ps)
    back = fmt.read(written, source=f"ps.{dialect}")
    assert back == real_ps
    assert fmt.write(back) == written
    # nothing of substance lost on the way: the counts the issue names
    assert len(back.episodes) == 6 and len(back.contacts) == 13
    assert sum(len(dc.lines) for c in back.contacts for dc in c.deelcontacten) == 42
    assert len(back.medications) == 2

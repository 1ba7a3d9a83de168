"""Reading FHIR message Bundles back into HL7 v2 messages (mappings/hl7v2/fhir.py): bad Bundles get located
problems (``HL7-070``/``HL7-071``/``FHIR-0xx``), never another exception; every golden case's Bundle survives
any one of its values being removed or replaced by a value of the wrong type."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.hl7v2 import canonical as c
from mappings.hl7v2 import fhir
from mappings.problems import InputError, ProblemSink
from tests.golden_util import GOLDEN

BUNDLES = sorted((GOLDEN / "hl7v2").glob("*/*/fhir.json"))


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _read(doc: Any) -> c.Hl7Canonical | None:
    try:
        return fhir.from_fhir(doc, ProblemSink())
    except InputError as exc:
        assert exc.problems and all(p.code.startswith(("HL7-07", "FHIR-", "CODE-")) for p in exc.problems)
        return None


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, "HL7-070"),
        (
            {
                "resourceType": "Bundle",
                "type": "message",
                "entry": [{"resource": {"resourceType": "Patient"}}],
            },
            "HL7-070",
        ),
        ([], "HL7-070"),
    ],
)
def test_not_a_message_bundle(doc, code):
    with pytest.raises(InputError) as exc:
        fhir.from_fhir(doc)
    assert exc.value.problems[0].code == code


def test_a_message_without_its_patient_names_what_is_missing():
    doc = json.loads(
        (GOLDEN / "hl7v2" / "adt-a04" / "minimal-bsn-name-and-birth-date" / "fhir.json").read_bytes()
    )
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] != "Patient"]
    with pytest.raises(InputError) as exc:
        fhir.from_fhir(doc)
    assert [(p.code, p.location) for p in exc.value.problems] == [("HL7-071", "Bundle.entry")]


_WRONG = st.sampled_from([None, 7, "x", [], {}, [1], {"a": 1}, True, "2024-13-45"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(BUNDLES), st.data())
def test_any_one_value_removed_or_of_the_wrong_type_gives_problems_not_crashes(path: Path, data):
    doc = json.loads(path.read_bytes())
    where = data.draw(st.sampled_from(_paths(doc)[1:]))
    broken = copy.deepcopy(doc)
    parent = broken
    for k in where[:-1]:
        parent = parent[k]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(_WRONG)
    _read(broken)  # a canonical message or located problems; anything else fails the test

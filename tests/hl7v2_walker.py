"""The walker of issue 13's rule: every non-empty value of a message is mapped or listed.

For a message the gateway accepted, :func:`unaccounted` visits every non-empty leaf (field, repetition,
component, subcomponent) of every segment and keeps those that are neither found in the FHIR Bundle made of
it (the decoded text, or for a date/time its ISO digits) nor in a field the mapping reported as
deliberately not mapped (``HL7-060`` information) or as translated by a code table (:data:`TRANSLATED`).
It is independent of the mappings' own ``READ`` sets: it looks at the output.
"""

from __future__ import annotations

import re

from mappings.fhir.common import dumps
from mappings.hl7v2.er7 import Message
from mappings.problems import Problem

TRANSLATED = {
    # delimiters, message type, version, processing and acknowledgement codes, character set: the header
    "MSH": {1, 2, 9, 11, 12, 15, 16, 17, 18},
    # set ids (the position is the identity), value types, result status (table 0085 -> FHIR status)
    "OBX": {1, 2, 11},
    "OBR": {1},
    "NTE": {1, 2},
    "PID": {1, 8},  # set id, administrative sex (table 0001 -> FHIR gender)
    "PV1": {1, 2},  # set id, patient class (table 0004 -> Encounter.class)
}
_CODING_SYSTEM_COMPONENTS = {3, 6, 12}  # CWE.3/.6/.12: a table 0396 name -> a code system URI
_DATE = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?\Z")
_LISTED = re.compile(r"([A-Z0-9]{3})-(\d+)")


def _found(value: str, text: str) -> bool:
    if value in text:
        return True
    mt = _DATE.match(value)
    if mt and mt.group(2):
        iso = mt.group(1) + "".join(f"-{g}" for g in mt.groups()[1:3] if g)
        return iso in text
    return False


def unaccounted(msg: Message, bundle: dict, problems: list[Problem]) -> list[str]:
    """Locations (``OBX[2]-5.1``) of values nothing consumed."""
    text = dumps(bundle).decode("utf-8")
    listed: set[tuple[str, int]] = set()
    for p in problems:
        if p.code == "HL7-060":
            listed |= {(s, int(n)) for s, n in _LISTED.findall(p.message)}
    out: list[str] = []
    for seg in msg.segments:
        name = seg.fields[0]
        skip = TRANSLATED.get(name, set())
        start = 3 if name == "MSH" else 1
        for n in range(start, len(seg.fields)):
            if not seg.fields[n] or n in skip or (name, n) in listed:
                continue
            for r, comps in enumerate(seg.all_components(n), 1):
                for i, subs in enumerate(comps, 1):
                    for j, value in enumerate(subs, 1):
                        value = value.strip()
                        if not value or value == '""' or (j == 1 and i in _CODING_SYSTEM_COMPONENTS):
                            continue
                        if not _found(value, text):
                            out.append(seg.loc(n, r, i, j))
    return out

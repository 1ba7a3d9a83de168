"""Measurement -> Observation[nl-core-LaboratoryTestResult or -GeneralMeasurement] by NHG Tabel 45.

==================  =========================================================================================
canonical           FHIR Observation
==================  =========================================================================================
id                  identifier (system urn:his-gateway:id:measurement)
source_root/ext     identifier (system urn:oid:<root>, value the extension; use official), first
code                code.coding (NHG Tabel 45 diagnostische bepalingen; display from the code table);
                    category from the table's ``category`` column (laboratory when it has none)
effective           effectiveDateTime (with the Amsterdam offset)
date_only           effectiveDateTime a date (``2014-04-30``): no time is invented
value_quantity      valueQuantity.value (exact decimal digits)
unit                valueQuantity.unit (and UCUM system/code when the unit has the form of a UCUM code);
                    without a number: extension urn:his-gateway:fhir:extension:measurement-unit (valueString)
value_text          valueString
reference_low/high  referenceRange[0].low.value / high.value (with the unit)
interpretation      interpretation[0].coding (v3 ObservationInterpretation L H N A LL HH)
episode_id          extension ext-Context-EpisodeOfCare (valueReference)
shielded            meta.security v3 Confidentiality R
(fixed)             status final
==================  =========================================================================================

Tabel 45 holds lab tests and measurements alike (blood pressure, temperature, a CT finding); the code
table says which (``mappings/codes/nhg-tabel-45.csv`` column ``category``). A laboratory result is written
with nl-core-LaboratoryTestResult (category laboratory), anything else with nl-core-GeneralMeasurement and
its own category (vital-signs, imaging).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from mappings import model as m
from mappings.codetables import code_tables
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    code_in,
    coding,
    episode_context,
    episode_of,
    ext_string,
    ext_text,
    fdate,
    fdatetime,
    identifiers,
    is_shielded,
    meta,
    pdate,
    pdatetime,
    pdecimal,
    put,
    source_of,
    table_code,
    take,
)

KIND = "measurement"
_NO_CONTEXT = WriteContext()
_LAB = [{"coding": [coding(c.OBSERVATION_CATEGORY, "laboratory", "Laboratory")]}]
"""The category of a laboratory result (the HL7 v2 fast path writes it for the ORU results it takes)."""
_CATEGORIES = {
    "laboratory": "Laboratory",
    "vital-signs": "Vital Signs",
    "imaging": "Imaging",
    "exam": "Exam",
    "procedure": "Procedure",
}


def category(code: str) -> str:
    """The observation-category of a Tabel 45 code: the code table's ``category``, else laboratory."""
    cat = code_tables()["tabel45"].column("category", code)
    return cat if cat in _CATEGORIES else "laboratory"


_UCUM_RE = re.compile(r"[!-~]{1,30}")  # printable ASCII without spaces: the form of a UCUM code
_INTERPRETATIONS = {
    "L": "Low",
    "H": "High",
    "N": "Normal",
    "A": "Abnormal",
    "LL": "Critical low",
    "HH": "Critical high",
}


def _quantity(value, unit: str | None) -> dict:
    q: dict = {} if value is None else {"value": value}
    put(q, "unit", unit)
    if unit:
        if _UCUM_RE.fullmatch(unit):
            q["system"] = c.UCUM
            q["code"] = unit
    return q


def to_fhir(x: m.Measurement, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The nl-core-LaboratoryTestResult Observation of a measurement."""
    obs: dict = {
        "resourceType": "Observation",
        "id": ctx.id("Observation", x.id),
    }
    cat = category(x.code)
    obs["meta"] = meta(c.P_LAB_RESULT if cat == "laboratory" else c.P_GENERAL_MEASUREMENT, x.shielded)
    ext = []
    if x.value_quantity is None and x.unit is not None:
        ext.append(ext_string(c.EXT_MEASUREMENT_UNIT, x.unit))  # unit (without a number)
    if x.episode_id is not None:
        ext.append(episode_context(ctx, x.episode_id))  # episode_id
    if ext:
        obs["extension"] = ext
    obs["identifier"] = identifiers(KIND, x)  # source_root/ext, id
    obs["status"] = "final"
    obs["category"] = [{"coding": [coding(c.OBSERVATION_CATEGORY, cat, _CATEGORIES[cat])]}]  # code
    obs["code"] = {"coding": [coding(c.TABEL45, x.code, c.display("tabel45", x.code))]}  # code
    if ctx.patient is not None:
        obs["subject"] = ctx.patient
    # effective, date_only
    obs["effectiveDateTime"] = fdate(x.effective.date()) if x.date_only else fdatetime(x.effective)
    if x.value_quantity is not None:
        obs["valueQuantity"] = _quantity(x.value_quantity, x.unit)  # value_quantity, unit
    else:
        put(obs, "valueString", x.value_text)  # value_text
    if x.interpretation is not None:
        obs["interpretation"] = [
            {
                "coding": [
                    coding(
                        c.V3_INTERPRETATION,
                        x.interpretation,  # interpretation
                        _INTERPRETATIONS[x.interpretation],
                    )
                ]
            }
        ]
    if x.reference_low is not None or x.reference_high is not None:
        rng: dict = {}
        if x.reference_low is not None:
            rng["low"] = _quantity(x.reference_low, x.unit)  # reference_low
        if x.reference_high is not None:
            rng["high"] = _quantity(x.reference_high, x.unit)  # reference_high
        obs["referenceRange"] = [rng]
    return obs


def is_measurement(obs: dict) -> bool:
    """An Observation coded by NHG Tabel 45."""
    return code_in(obs.get("code"), (c.TABEL45,)) is not None


def from_fhir(
    obs: dict, ctx: ReadContext | None = None, where: str = "Observation", fallback_id: str = "meas"
) -> m.Measurement | None:
    """The canonical measurement of a Tabel 45 Observation."""
    ctx = ctx or ReadContext()
    mid = ctx.local_id(obs, KIND, where, fallback_id)
    code = table_code(obs.get("code"), c.TABEL45, f"{where}.code", ctx)
    if code is None:
        ctx.error("FHIR-020", f"{where}.code", "a measurement needs an NHG Tabel 45 code")
        return None
    if "effectiveDateTime" not in obs:
        ctx.error(
            "FHIR-020",
            f"{where}.effectiveDateTime",
            "a measurement needs the time it was taken (effectiveDateTime)",
        )
        return None
    raw = obs.get("effectiveDateTime")
    date_only = isinstance(raw, str) and len(raw) == 10
    if date_only:
        day = pdate(raw, f"{where}.effectiveDateTime", ctx)
        effective = None if day is None else dt.datetime(day.year, day.month, day.day)
    else:
        effective = pdatetime(raw, f"{where}.effectiveDateTime", ctx)
    value = text = None
    unit = ext_text(obs, c.EXT_MEASUREMENT_UNIT)
    if "valueQuantity" in obs:
        q = as_dict(obs["valueQuantity"])
        value = pdecimal(q.get("value"), f"{where}.valueQuantity.value", ctx)
        unit = take(q, "unit") if take(q, "unit") is not None else as_str(q.get("code"))
    elif "valueString" in obs or "_valueString" in obs:
        text = take(obs, "valueString")
    else:
        for key in obs:
            if key.startswith("value"):
                ctx.warning(
                    "FHIR-024",
                    f"{where}.{key}",
                    f"a value of type {key[5:]} is not kept (a number or a text is)",
                )
    low = high = None
    ranges = as_list(obs.get("referenceRange"))
    if ranges:
        rng = as_dict(ranges[0])
        low = pdecimal(as_dict(rng.get("low")).get("value"), f"{where}.referenceRange[0].low.value", ctx)
        high = pdecimal(as_dict(rng.get("high")).get("value"), f"{where}.referenceRange[0].high.value", ctx)
    interpretation: Any = None
    for n, cc in enumerate(as_list(obs.get("interpretation"))):
        interpretation = code_in(cc, (c.V3_INTERPRETATION,))
        if interpretation not in _INTERPRETATIONS:
            ctx.warning(
                "FHIR-023", f"{where}.interpretation[{n}]", "interpretation other than L H N A LL HH not kept"
            )
            interpretation = None
        break
    if effective is None:
        return None
    try:
        return m.Measurement(
            id=mid,
            code=code,
            effective=effective,
            value_quantity=value,
            value_text=text,
            unit=unit,
            reference_low=low,
            reference_high=high,
            interpretation=interpretation,
            date_only=date_only,
            episode_id=episode_of(obs, ctx, where),
            shielded=is_shielded(obs),
            **source_of(obs),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid measurement: {exc}")
        return None

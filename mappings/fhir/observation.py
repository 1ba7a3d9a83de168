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
its own category (vital-signs, imaging). A result coded in another system (HL7 v2) is a laboratory result.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec

from mappings import model as m
from mappings import units
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
    fdatetime,
    identifiers,
    is_shielded,
    meta,
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


def category_concept(cat: str) -> list[dict]:
    """Observation.category of a result of category ``cat``."""
    return [{"coding": [coding(c.OBSERVATION_CATEGORY, cat, _CATEGORIES[cat])]}]


_INTERPRETATIONS = {
    "L": "Low",
    "H": "High",
    "N": "Normal",
    "A": "Abnormal",
    "LL": "Critical low",
    "HH": "Critical high",
}
EXT_ATTACHMENT = c.GW + "fhir:extension:measurement-attachment"
"""R4 Observation.value[x] has no Attachment (R5 has): ED/RP data travels in this extension."""
EXT_UNIT_SYSTEM = c.GW + "fhir:extension:measurement-unit-system"


def _quantity(value, unit: str | None, unit_system: str | None = None) -> dict:
    """A Quantity; the unit is labelled UCUM only when it is valid UCUM (:func:`mappings.units.is_ucum`),
    and with the sender's unit system when one was named."""
    q: dict = {} if value is None else {"value": value}
    put(q, "unit", unit)
    if unit:
        if unit_system is not None:
            q["system"] = unit_system
            q["code"] = unit
        elif units.is_ucum(unit):
            q["system"] = c.UCUM
            q["code"] = unit
    return q


def code_concept(system: str | None, code: str, text: str | None, codings: tuple[m.Coding, ...]) -> dict:
    """Observation.code: the test's coding (NHG Tabel 45 with its table's display, or the sender's system
    with the sender's text), the other codings, and the sender's text when Tabel 45 names it otherwise."""
    if system is None:
        display = c.display("tabel45", code)
        first = coding(c.TABEL45, code, display)
        text = text if text is not None and text != display else None
    else:
        first = coding(system, code, text)
        text = None
    cc: dict = {"coding": [first, *(coding(o.system, o.code, o.display) for o in codings)]}
    if text is not None:
        cc["text"] = text
    return cc


def _effective(x: m.LabResult) -> str:
    if x.precision == "second":
        return fdatetime(x.effective)
    return x.effective.date().isoformat()[: {"year": 4, "month": 7, "day": 10}[x.precision]]


def _moment(text: str) -> tuple[str, str]:
    """(``valueTime`` or ``valueDateTime``, its FHIR text) of a date/time value."""
    if ":" in text and "T" not in text:
        return "valueTime", text if text.count(":") == 2 else text + ":00"
    return "valueDateTime", text


def to_fhir(x: m.Measurement, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The nl-core-LaboratoryTestResult Observation of a measurement (a HIS's) or a lab result."""
    r = x if isinstance(x, m.LabResult) else m.LabResult(**msgspec.structs.asdict(x))
    return _lab_to_fhir(r, ctx)


def _lab_to_fhir(x: m.LabResult, ctx: WriteContext) -> dict:
    obs: dict = {
        "resourceType": "Observation",
        "id": ctx.id("Observation", x.id),
    }
    cat = category(x.code) if x.system is None else "laboratory"
    obs["meta"] = meta(c.P_LAB_RESULT if cat == "laboratory" else c.P_GENERAL_MEASUREMENT, x.shielded)
    ext = []
    if x.value_quantity is None and x.unit is not None:
        ext.append(ext_string(c.EXT_MEASUREMENT_UNIT, x.unit))  # unit (without a number)
        if x.unit_system is not None:
            ext.append({"url": EXT_UNIT_SYSTEM, "valueUri": x.unit_system})
    if x.value_attachment is not None:
        a = x.value_attachment
        att: dict = {}
        put(att, "contentType", a.content_type)
        put(att, "data", a.data)
        put(att, "url", a.url)
        ext.append({"url": EXT_ATTACHMENT, "valueAttachment": att})  # value_attachment
    if x.episode_id is not None:
        ext.append(episode_context(ctx, x.episode_id))  # episode_id
    if ext:
        obs["extension"] = ext
    obs["identifier"] = identifiers(KIND, x)  # source_root/ext, id
    obs["status"] = x.status  # status
    obs["category"] = category_concept(cat)  # code (the table's category)
    obs["code"] = code_concept(x.system, x.code, x.text, x.codings)  # code, system, text, codings
    if ctx.patient is not None:
        obs["subject"] = ctx.patient
    # effective, precision, date_only (a day without a time: no invented midnight)
    obs["effectiveDateTime"] = x.effective.date().isoformat() if x.date_only else _effective(x)
    if x.value_quantity is not None:
        q = _quantity(x.value_quantity, x.unit, x.unit_system)
        if x.value_separator == "-":
            obs["valueRange"] = {"low": q, "high": _quantity(x.value_high, x.unit, x.unit_system)}
        elif x.value_separator is not None:
            obs["valueRatio"] = {"numerator": q, "denominator": {"value": x.value_high}}
        else:
            if x.comparator is not None:
                q = {"value": q.pop("value"), "comparator": x.comparator, **q}
            obs["valueQuantity"] = q  # value_quantity, comparator, unit
    elif x.value_coded:
        vc: dict = {"coding": [coding(o.system, o.code, o.display) for o in x.value_coded]}
        put(vc, "text", x.value_text)
        obs["valueCodeableConcept"] = vc  # value_coded, value_text
    elif x.value_moment is not None:
        key, text = _moment(x.value_moment)
        obs[key] = text  # value_moment
    else:
        put(obs, "valueString", x.value_text)  # value_text
    if x.interpretation is not None:
        display = _INTERPRETATIONS.get(x.interpretation) or units.interpretations().get(x.interpretation)
        obs["interpretation"] = [
            {"coding": [coding(c.V3_INTERPRETATION, x.interpretation, display)]}  # interpretation
        ]
    if x.reference_low is not None or x.reference_high is not None:
        rng: dict = {}
        if x.reference_low is not None:
            rng["low"] = _quantity(x.reference_low, x.unit, x.unit_system)  # reference_low
        if x.reference_high is not None:
            rng["high"] = _quantity(x.reference_high, x.unit, x.unit_system)  # reference_high
        obs["referenceRange"] = [rng]
    elif x.reference_text is not None:
        obs["referenceRange"] = [{"text": x.reference_text}]  # reference_text
    if x.notes:
        obs["note"] = [{"text": n} for n in x.notes]  # notes
    return obs


def is_measurement(obs: dict) -> bool:
    """An Observation coded by NHG Tabel 45."""
    return code_in(obs.get("code"), (c.TABEL45,)) is not None


def _read_coding(cd: Any) -> m.Coding | None:
    d = as_dict(cd)
    system, code = as_str(d.get("system")), as_str(d.get("code"))
    if not system or not code:
        return None
    return m.Coding(system=system, code=code, display=as_str(d.get("display")))


def _read_code(cc: Any, where: str, ctx: ReadContext) -> tuple[str, str | None, str | None, tuple] | None:
    """(code, system (None: Tabel 45), text, other codings) of Observation.code."""
    concept = as_dict(cc)
    codings = [x for x in (_read_coding(cd) for cd in as_list(concept.get("coding"))) if x is not None]
    tabel45 = table_code(cc, c.TABEL45, where, ctx)
    if tabel45 is not None:
        first = next(x for x in codings if c.system_uri(x.system) == c.TABEL45)
        others = tuple(x for x in codings if x is not first)
        return tabel45, None, as_str(concept.get("text")), others
    if not codings:
        return None
    return codings[0].code, codings[0].system, codings[0].display, tuple(codings[1:])


def _read_effective(value: Any, where: str, ctx: ReadContext) -> tuple[dt.datetime | None, str]:
    if isinstance(value, str) and len(value) in (4, 7, 10) and "T" not in value:
        try:
            y, mo, d = (value.split("-") + ["01", "01"])[:3]
            return dt.datetime(int(y), int(mo), int(d)), {4: "year", 7: "month", 10: "day"}[len(value)]
        except ValueError:
            pass
    return pdatetime(value, where, ctx), "second"


def from_fhir(
    obs: dict, ctx: ReadContext | None = None, where: str = "Observation", fallback_id: str = "meas"
) -> m.Measurement | None:
    """The canonical measurement of a Tabel 45 Observation (what a HIS dossier holds)."""
    ctx = ctx or ReadContext()
    if code_in(obs.get("code"), (c.TABEL45,)) is None:
        ctx.error("FHIR-020", f"{where}.code", "a measurement needs an NHG Tabel 45 code")
        return None
    x = lab_from_fhir(obs, ctx, where, fallback_id)
    if x is None:
        return None
    interpretation = x.interpretation if x.interpretation in _INTERPRETATIONS else None
    if x.interpretation is not None and interpretation is None:
        ctx.warning(
            "FHIR-023", f"{where}.interpretation[0]", "interpretation other than L H N A LL HH not kept"
        )
    fields = {f.name for f in msgspec.structs.fields(m.Measurement)}
    values = {k: v for k, v in msgspec.structs.asdict(x).items() if k in fields}
    values["date_only"] = x.date_only or x.precision == "day"
    return m.Measurement(**{**values, "interpretation": interpretation})


def lab_from_fhir(
    obs: dict, ctx: ReadContext | None = None, where: str = "Observation", fallback_id: str = "meas"
) -> m.LabResult | None:
    """The lab result of an Observation (NHG Tabel 45 or any other code system), as HL7 v2 carries it."""
    ctx = ctx or ReadContext()
    mid = ctx.local_id(obs, KIND, where, fallback_id)
    code = _read_code(obs.get("code"), f"{where}.code", ctx)
    if code is None:
        ctx.error("FHIR-020", f"{where}.code", "a measurement needs a code (NHG Tabel 45 or another system)")
        return None
    if "effectiveDateTime" not in obs:
        ctx.error(
            "FHIR-020",
            f"{where}.effectiveDateTime",
            "a measurement needs the time it was taken (effectiveDateTime)",
        )
        return None
    effective, precision = _read_effective(obs.get("effectiveDateTime"), f"{where}.effectiveDateTime", ctx)
    values: dict = {}
    unit = ext_text(obs, c.EXT_MEASUREMENT_UNIT)
    unit_system = None
    for e in as_list(obs.get("extension")):
        e = as_dict(e)
        if e.get("url") == EXT_UNIT_SYSTEM:
            unit_system = as_str(e.get("valueUri"))
        elif e.get("url") == EXT_ATTACHMENT:
            a = as_dict(e.get("valueAttachment"))
            try:
                values["value_attachment"] = m.Attachment(
                    content_type=as_str(a.get("contentType")),
                    data=as_str(a.get("data")),
                    url=as_str(a.get("url")),
                )
            except ValueError as exc:
                ctx.error("FHIR-030", f"{where}.extension", f"not a valid attachment: {exc}")

    def quantity(q: dict, at: str) -> Decimal | None:
        nonlocal unit, unit_system
        value = pdecimal(q.get("value"), at + ".value", ctx)
        u = take(q, "unit") if take(q, "unit") is not None else as_str(q.get("code"))
        if u is not None:
            unit = u
            system = as_str(q.get("system"))
            if system is not None and not (system == c.UCUM and units.is_ucum(u)):
                unit_system = system
        return value

    if "valueQuantity" in obs:
        q = as_dict(obs["valueQuantity"])
        values["value_quantity"] = quantity(q, f"{where}.valueQuantity")
        comparator = as_str(q.get("comparator"))
        if comparator is not None:
            values["comparator"] = comparator
    elif "valueRange" in obs:
        r = as_dict(obs["valueRange"])
        values["value_quantity"] = quantity(as_dict(r.get("low")), f"{where}.valueRange.low")
        values["value_high"] = quantity(as_dict(r.get("high")), f"{where}.valueRange.high")
        values["value_separator"] = "-"
    elif "valueRatio" in obs:
        r = as_dict(obs["valueRatio"])
        values["value_quantity"] = quantity(as_dict(r.get("numerator")), f"{where}.valueRatio.numerator")
        values["value_high"] = pdecimal(
            as_dict(r.get("denominator")).get("value"), f"{where}.valueRatio", ctx
        )
        values["value_separator"] = ":"
    elif "valueCodeableConcept" in obs:
        vc = as_dict(obs["valueCodeableConcept"])
        values["value_coded"] = tuple(
            x for x in (_read_coding(cd) for cd in as_list(vc.get("coding"))) if x is not None
        )
        values["value_text"] = as_str(vc.get("text"))
    elif "valueDateTime" in obs or "valueTime" in obs:
        values["value_moment"] = as_str(obs.get("valueDateTime", obs.get("valueTime")))
    elif "valueString" in obs or "_valueString" in obs:
        values["value_text"] = take(obs, "valueString")
    else:
        for key in obs:
            if key.startswith("value"):
                ctx.warning(
                    "FHIR-024",
                    f"{where}.{key}",
                    f"a value of type {key[5:]} is not kept (a number or a text is)",
                )
    low = high = range_text = None
    ranges = as_list(obs.get("referenceRange"))
    if ranges:
        rng = as_dict(ranges[0])
        low = pdecimal(as_dict(rng.get("low")).get("value"), f"{where}.referenceRange[0].low.value", ctx)
        high = pdecimal(as_dict(rng.get("high")).get("value"), f"{where}.referenceRange[0].high.value", ctx)
        range_text = as_str(rng.get("text"))
    interpretation: Any = None
    for n, cc in enumerate(as_list(obs.get("interpretation"))):
        interpretation = code_in(cc, (c.V3_INTERPRETATION,))
        if interpretation not in units.interpretations():
            ctx.warning(
                "FHIR-023", f"{where}.interpretation[{n}]", "interpretation outside HL7 table 0078 not kept"
            )
            interpretation = None
        break
    if effective is None:
        return None
    notes = tuple(t for t in (as_str(as_dict(n).get("text")) for n in as_list(obs.get("note"))) if t)
    status = as_str(obs.get("status")) or "final"
    try:
        return m.LabResult(
            id=mid,
            code=code[0],
            system=code[1],
            text=code[2],
            codings=code[3],
            effective=effective,
            precision=precision,  # type: ignore[arg-type]  # one of the keys above
            status=status,  # type: ignore[arg-type]  # checked by msgspec.structs below
            unit=unit,
            unit_system=unit_system,
            reference_low=low,
            reference_high=high,
            reference_text=range_text if low is None and high is None else None,
            interpretation=interpretation,
            notes=notes,
            episode_id=episode_of(obs, ctx, where),
            shielded=is_shielded(obs),
            **source_of(obs),
            **values,
        )
    except (ValueError, TypeError) as exc:
        ctx.error("FHIR-030", where, f"not a valid measurement: {exc}")
        return None

"""Medication -> MedicationRequest[mp-MedicationAgreement] (medicatieafspraak; DOMAIN.md §7, §8).

==================  ==========================================================================================
canonical           FHIR MedicationRequest
==================  ==========================================================================================
id                  identifier (system urn:his-gateway:id:medication)
product_name        medicationCodeableConcept.text (and the display of the product coding)
product_system,     medicationCodeableConcept.coding: G-Standaard GPK urn:oid:2.16.840.1.113883.2.4.4.1,
product_code        HPK .4.7, PRK .4.10, ZI .4.8
atc                 medicationCodeableConcept.coding (http://www.whocc.no/atc)
dosage_text         dosageInstruction[0].text
dosage_code         dosageInstruction[0].additionalInstruction[0].coding (NHG Tabel 25, numeric)
start, end          extension ext-TimeInterval.Period (mp9 periodOfUse, valuePeriod)
status              status (active / stopped / completed: the same codes)
prescribed_on       authoredOn
prescriber_id       requester (Practitioner)
quantity,           dispenseRequest.quantity value / unit
quantity_unit
episode_id          extension ext-Context-EpisodeOfCare (mp9 relationEpisodeOfCare, valueReference)
timing_frequency,   dosageInstruction[0].timing.repeat frequency / period / periodUnit, beside the text
timing_period/unit  (every 0.5 day in HL7v3 is frequency 2 per period 1 d: twice a day)
shielded            meta.security v3 Confidentiality R
source_root/ext     identifier (system urn:oid:<root>, value the extension), first
(fixed)             intent order; category SNOMED 16076005 (medicatieafspraak)
==================  ==========================================================================================

Deviation from mp-MedicationAgreement: the product is a ``medicationCodeableConcept``, not a reference to
an mp-PharmaceuticalProduct Medication resource. A HIS prescription names a G-Standaard product by its
code; a Medication resource would hold that same coding and nothing more, and one resource per
prescription keeps the Bundle lean. Nictiz's conversion of the professional summary used a Medication
resource (``docs/fhir-mapping.md`` lists it among the differences).
"""

from __future__ import annotations

from typing import Any

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    code_value,
    coding,
    episode_context,
    episode_of,
    ext_value,
    fdate,
    find_coding,
    identifiers,
    is_shielded,
    meta,
    pdate,
    pdecimal,
    put,
    source_of,
    table_code,
    take,
)

KIND = "medication"
_NO_CONTEXT = WriteContext()
_CATEGORY = [{"coding": [coding(c.SNOMED, "16076005", "Medicatieafspraak")]}]
_STATUSES = ("active", "stopped", "completed")


def to_fhir(x: m.Medication, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The mp-MedicationAgreement MedicationRequest of a prescription."""
    req: dict = {
        "resourceType": "MedicationRequest",
        "id": ctx.id("MedicationRequest", x.id),
        "meta": meta(c.P_MEDICATION_AGREEMENT, x.shielded),  # shielded
    }
    ext = []
    if x.start is not None or x.end is not None:
        period = {}
        if x.start is not None:
            period["start"] = fdate(x.start)  # start
        if x.end is not None:
            period["end"] = fdate(x.end)  # end
        ext.append({"url": c.EXT_PERIOD_OF_USE, "valuePeriod": period})
    if x.episode_id is not None:
        ext.append(episode_context(ctx, x.episode_id))  # episode_id
    if ext:
        req["extension"] = ext
    req["identifier"] = identifiers(KIND, x)  # source_root/ext, id
    req["status"] = x.status  # status
    req["intent"] = "order"
    req["category"] = _CATEGORY
    codings = []
    if x.product_system is not None and x.product_code is not None:
        codings.append(
            code_value(c.PRODUCT_SYSTEMS[x.product_system], x.product_code, x.product_name)
        )  # product_code
    if x.atc is not None:
        codings.append(code_value(c.ATC, x.atc, c.display("atc", x.atc)))  # atc
    product: dict = {"coding": codings} if codings else {}
    product["text"] = x.product_name  # product_name
    req["medicationCodeableConcept"] = product
    if ctx.patient is not None:
        req["subject"] = ctx.patient
    if x.prescribed_on is not None:
        req["authoredOn"] = fdate(x.prescribed_on)  # prescribed_on
    if x.prescriber_id is not None:
        req["requester"] = ctx.ref("Practitioner", x.prescriber_id)  # prescriber_id
    dosage: dict = {}
    put(dosage, "text", x.dosage_text)  # dosage_text
    repeat: dict = {}
    if x.timing_frequency is not None:
        repeat["frequency"] = x.timing_frequency  # timing_frequency
    if x.timing_period is not None:
        repeat["period"] = x.timing_period  # timing_period
        repeat["periodUnit"] = x.timing_unit  # timing_unit
    if repeat:
        dosage["timing"] = {"repeat": repeat}
    if x.dosage_code is not None:
        dosage["additionalInstruction"] = [
            {
                "coding": [
                    code_value(
                        c.TABEL25,
                        x.dosage_code,  # dosage_code
                        c.display("tabel25", x.dosage_code),
                    )
                ]
            }
        ]
    if dosage:
        req["dosageInstruction"] = [dosage]
    if x.quantity is not None or x.quantity_unit is not None:
        q: dict = {}
        if x.quantity is not None:
            q["value"] = x.quantity  # quantity
        put(q, "unit", x.quantity_unit)  # quantity_unit
        req["dispenseRequest"] = {"quantity": q}
    return req


def from_fhir(
    req: dict, ctx: ReadContext | None = None, where: str = "MedicationRequest", fallback_id: str = "med"
) -> m.Medication | None:
    """The canonical prescription of a MedicationRequest."""
    ctx = ctx or ReadContext()
    mid = ctx.local_id(req, KIND, where, fallback_id)
    product = as_dict(req.get("medicationCodeableConcept"))
    if not product:
        ctx.error(
            "FHIR-020",
            f"{where}.medicationCodeableConcept",
            "a prescription needs its product as a "
            "medicationCodeableConcept (a medicationReference is not read)",
        )
        return None
    hit = find_coding(product, c.PRODUCT_KINDS)
    system: Any = None
    code = None
    if hit is not None:
        system, code = c.PRODUCT_KINDS[str(c.system_uri(hit[1]["system"]))], take(hit[1], "code")
    name = as_str(product.get("text")) or (as_str(hit[1].get("display")) if hit else None)
    if not name or not name.strip():
        ctx.error(
            "FHIR-020", f"{where}.medicationCodeableConcept.text", "a prescription needs a product name"
        )
        return None
    status: Any = req.get("status")
    if status not in _STATUSES:
        ctx.warning(
            "FHIR-023",
            f"{where}.status",
            f"status {status!r} read as stopped (the model knows active, stopped and completed)",
        )
        status = "stopped"
    period = as_dict(ext_value(req, c.EXT_PERIOD_OF_USE, "valuePeriod"))
    dosages = as_list(req.get("dosageInstruction"))
    dosage = as_dict(dosages[0]) if dosages else {}
    if len(dosages) > 1:
        ctx.warning("FHIR-024", f"{where}.dosageInstruction[1]", "only the first dosage instruction is kept")
    dosage_code = None
    for n, cc in enumerate(as_list(dosage.get("additionalInstruction"))):
        at = f"{where}.dosageInstruction[0].additionalInstruction[{n}]"
        dosage_code = table_code(cc, c.TABEL25, at, ctx)
        if dosage_code is not None:
            break
    q = as_dict(as_dict(req.get("dispenseRequest")).get("quantity"))
    repeat = as_dict(as_dict(dosage.get("timing")).get("repeat"))
    frequency = repeat.get("frequency")
    if frequency is not None and (type(frequency) is not int or frequency < 1):
        ctx.warning(
            "FHIR-023", f"{where}.dosageInstruction[0].timing.repeat.frequency", "not a count: not kept"
        )
        frequency = None
    unit: Any = repeat.get("periodUnit")
    every = pdecimal(repeat.get("period"), f"{where}.dosageInstruction[0].timing.repeat.period", ctx)
    if (every is None) != (unit is None) or unit not in (None, "h", "d", "wk", "mo"):
        if every is not None or unit is not None:
            ctx.warning(
                "FHIR-023",
                f"{where}.dosageInstruction[0].timing.repeat",
                "a period needs a unit h, d, wk or mo: the schedule's period is not kept",
            )
        every = unit = None
    try:
        return m.Medication(
            id=mid,
            product_name=name,
            product_system=system,
            product_code=code,
            atc=table_code(product, c.ATC, f"{where}.medicationCodeableConcept", ctx),
            dosage_text=take(dosage, "text"),
            dosage_code=dosage_code,
            start=pdate(period.get("start"), f"{where}.extension.valuePeriod.start", ctx),
            end=pdate(period.get("end"), f"{where}.extension.valuePeriod.end", ctx),
            status=status,
            prescribed_on=pdate(req.get("authoredOn"), f"{where}.authoredOn", ctx),
            prescriber_id=ctx.local(
                req.get("requester"), f"{where}.requester", ("Practitioner", "PractitionerRole")
            ),
            quantity=pdecimal(q.get("value"), f"{where}.dispenseRequest.quantity.value", ctx),
            quantity_unit=take(q, "unit") if take(q, "unit") is not None else as_str(q.get("code")),
            episode_id=episode_of(req, ctx, where),
            shielded=is_shielded(req),
            timing_frequency=frequency,
            timing_period=every,
            timing_unit=unit,
            **source_of(req),
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid prescription: {exc}")
        return None

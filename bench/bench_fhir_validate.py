"""Inbound FHIR validation speed: ``mappings.fhir.validator.validate`` against fhir.resources R4B.

Issue "FHIR R4 mappings", validator part: on the same inbound Bundle (a collection of an nl-core-Patient
identified by BSN, the GP's Organization and Practitioner, and 100 nl-core-LaboratoryTestResult
Observations referring to them by ``urn:uuid:``), compare

- ours: ``validate(body)`` from the raw bytes (decode, structure, bindings, identifiers, references);
- fhir.resources R4B through the seam ``mappings/fhir/r4b.py``: ``orjson.loads`` + ``model_validate`` +
  ``model_dump_json`` (the model route needs the JSON decoded and gives its answer back as JSON).

Target: ours at least 10x faster, while checking more. Prints a markdown table and replaces the section
"FHIR inbound validation" of docs/performance.md.

Second part, the professional summary as a FHIR document (issue "FHIR R4 mappings", acceptance 5): the
typical dossier of ``tests.factories`` (30 episodes, 300 journal lines, 40 medications, ...) through
``mappings.summary.build_summary`` and ``mappings.fhir.document.summary_document`` to JSON bytes
(``mappings.fhir.common.dumps``, orjson), against fhir.resources R4B ``model_validate`` +
``model_dump_json`` of the same document Bundle, in the same run. Target: our build under 10 ms median.
Writes the section "FHIR summary document". Run: ``uv run python -m bench.bench_fhir_validate``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from bench._report import machine, write_section  # noqa: E402
from mappings.fhir.r4b import dump_json_with_models, validate_with_models  # noqa: E402
from mappings.fhir.validator import validate  # noqa: E402

TARGET_RATIO = 10.0
NOTES = """Both refuse unknown elements, wrong JSON types, impossible dates and two values of one choice
element. Ours also checks what the models do not: required bindings (status, intent, gender, Bundle.type,
clinical and verification status codings ...), BSN 11-test and AGB/UZI/URA/UZOVI digits, that every
reference resolves inside the Bundle and points at an allowed resource type, contained references, the
extension rules, the Bundle, Observation and Quantity invariants, string and document size and nesting
depth (docs/fhir-validation.md). Both are measured in the same process; other work on the two shared
cores makes single figures vary by some 20 %."""
NLCORE = "http://nictiz.nl/fhir/StructureDefinition/"
TABEL45 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen"
# (NHG Tabel 45 code, LOINC, name, UCUM unit, low, high, value)
TESTS = [
    ("382", "4548-4", "HbA1c", "mmol/mol", 20, 42, 53),
    ("1860", "2345-7", "Glucose nuchter", "mmol/L", 4.0, 6.1, 7.2),
    ("369", "2160-0", "Kreatinine", "umol/L", 60, 110, 94),
    ("1577", "2093-3", "Cholesterol totaal", "mmol/L", 3.0, 5.0, 5.6),
    ("2658", "718-7", "Hemoglobine", "mmol/L", 7.5, 10.0, 8.4),
]


def _uid(seed: int, n: int) -> str:
    return f"urn:uuid:{uuid.UUID(int=(seed << 64) | n)}"


def inbound_bundle(n_observations: int = 100, seed: int = 1) -> dict:
    """A realistic inbound collection Bundle: Patient (BSN), Organization, Practitioner, n lab results."""
    patient_url, org_url, gp_url = _uid(seed, 1), _uid(seed, 2), _uid(seed, 3)
    patient = {
        "resourceType": "Patient",
        "id": "pat-1",
        "meta": {"profile": [NLCORE + "nl-core-Patient"]},
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
        "name": [
            {
                "use": "official",
                "family": "van Beek-de Jong",
                "_family": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix",
                            "valueString": "van",
                        },
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-own-name",
                            "valueString": "Beek",
                        },
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-partner-prefix",
                            "valueString": "de",
                        },
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-partner-name",
                            "valueString": "Jong",
                        },
                    ]
                },
                "given": ["Johanna", "J."],
                "_given": [
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                                "valueCode": "BR",
                            }
                        ]
                    },
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                                "valueCode": "IN",
                            }
                        ]
                    },
                ],
            }
        ],
        "telecom": [
            {"system": "phone", "value": "+31612345678", "use": "mobile"},
            {"system": "email", "value": "j.vanbeek@example.nl", "use": "home"},
        ],
        "gender": "female",
        "birthDate": "1957-03-14",
        "address": [
            {
                "use": "home",
                "line": ["Dorpsstraat 12 a"],
                "_line": [
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName",
                                "valueString": "Dorpsstraat",
                            },
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber",
                                "valueString": "12",
                            },
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-buildingNumberSuffix",
                                "valueString": "a",
                            },
                        ]
                    }
                ],
                "city": "Ĳsselstein",
                "postalCode": "3401 AB",
                "country": "NL",
            }
        ],
        "generalPractitioner": [{"reference": org_url, "display": "Huisartsenpraktijk De Linde"}],
    }
    organization = {
        "resourceType": "Organization",
        "id": "org-1",
        "meta": {"profile": [NLCORE + "nl-core-HealthcareProvider-Organization"]},
        "identifier": [
            {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01012345"},
            {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "87654321"},
        ],
        "name": "Huisartsenpraktijk De Linde",
        "telecom": [{"system": "phone", "value": "+31301234567", "use": "work"}],
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": "prac-1",
        "meta": {"profile": [NLCORE + "nl-core-HealthProfessional-Practitioner"]},
        "identifier": [
            {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01004567"},
            {"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": "123456782"},
        ],
        "name": [{"use": "official", "family": "Huisman", "given": ["Pieter"], "prefix": ["dr."]}],
        "gender": "male",
    }
    entries = [
        {"fullUrl": patient_url, "resource": patient},
        {"fullUrl": org_url, "resource": organization},
        {"fullUrl": gp_url, "resource": practitioner},
    ]
    for i in range(n_observations):
        t45, loinc, name, unit, low, high, value = TESTS[i % len(TESTS)]
        day = 1 + i % 28
        value = round(value + (i % 7) * 0.1, 1) if isinstance(value, float) else value + i % 5
        obs = {
            "resourceType": "Observation",
            "id": f"lab-{i + 1}",
            "meta": {"profile": [NLCORE + "nl-core-LaboratoryTestResult"]},
            "identifier": [
                {"system": "urn:oid:2.16.840.1.113883.2.4.6.6.1.99.1", "value": f"LAB-{seed}-{i + 1:05d}"}
            ],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "275711006",
                            "display": "Serum chemistry test",
                        }
                    ]
                },
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                            "display": "Laboratory",
                        }
                    ]
                },
            ],
            "code": {
                "coding": [
                    {"system": TABEL45, "code": t45, "display": name},
                    {"system": "http://loinc.org", "code": loinc},
                ],
                "text": name,
            },
            "subject": {"reference": patient_url, "type": "Patient"},
            "effectiveDateTime": f"2024-{1 + i % 12:02d}-{day:02d}T08:{i % 60:02d}:00+01:00",
            "issued": f"2024-{1 + i % 12:02d}-{day:02d}T14:00:00.000+01:00",
            "performer": [{"reference": gp_url, "display": "dr. P. Huisman"}],
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
            "interpretation": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "H" if value > high else "N",
                        }
                    ]
                }
            ],
            "note": [{"text": f"Afgenomen op de praktijk ({name}); nuchter: ja."}],
            "referenceRange": [
                {
                    "low": {"value": low, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                    "high": {
                        "value": high,
                        "unit": unit,
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
                                "code": "normal",
                            }
                        ]
                    },
                }
            ],
        }
        entries.append({"fullUrl": _uid(seed, 100 + i), "resource": obs})
    return {
        "resourceType": "Bundle",
        "id": f"inbound-{seed}",
        "meta": {"lastUpdated": "2024-12-01T10:00:00+01:00"},
        "type": "collection",
        "timestamp": "2024-12-01T10:00:00+01:00",
        "entry": entries,
    }


def _median_ms(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    load = os.getloadavg()[0]  # the cores are shared: a loaded machine slows both sides alike
    bundle = inbound_bundle(100)
    body = orjson.dumps(bundle)
    problems = validate(body)
    assert not problems, [p.render_line() for p in problems]

    def theirs() -> bytes:
        return dump_json_with_models(validate_with_models(orjson.loads(body)))

    theirs()  # the first call builds pydantic's validators
    ours_ms = _median_ms(lambda: validate(body), 100)
    ours_dict_ms = _median_ms(lambda: validate(bundle), 100)
    theirs_ms = _median_ms(theirs, 30)
    ratio = theirs_ms / ours_ms
    uname = " ".join(os.uname())
    rows = [
        "| validator | input | median (ms) | ratio |",
        "|---|---|---:|---:|",
        f"| ours: `validate(bytes)` (decode + all checks) | {len(body):,} bytes | {ours_ms:.2f} | 1.0 |",
        f"| ours: `validate(dict)` (already decoded) | same Bundle | {ours_dict_ms:.2f} | "
        f"{ours_dict_ms / ours_ms:.2f} |",
        f"| fhir.resources R4B: loads + model_validate + model_dump_json | same bytes | {theirs_ms:.2f} | "
        f"{ratio:.1f} |",
    ]
    body_md = (
        f"Machine: `{uname}`; {machine()}; nproc {os.cpu_count()}; load average {load:.1f} at the start. "
        f"Pinned to one core; median of 100 runs (R4B: 30) after 3 warm-up runs.\n"
        f"Input: an inbound collection Bundle of 103 entries (nl-core-Patient with BSN, Organization with "
        f"AGB and URA, Practitioner with AGB and UZI, 100 nl-core-LaboratoryTestResult Observations with "
        f"NHG Tabel 45 and LOINC codes, reference range, interpretation, note; every reference a "
        f"`urn:uuid:` entry), built by `bench.bench_fhir_validate.inbound_bundle`.\n"
        f"Target: ours at least {TARGET_RATIO:.0f}x faster than the R4B models. "
        f"Measured: **{ratio:.1f}x** ({'met' if ratio >= TARGET_RATIO else 'NOT met'}).\n\n"
        + "\n".join(rows)
        + "\n\n"
        + NOTES
    )
    print(body_md)
    write_section("FHIR inbound validation", body_md)
    summary_document_bench(load)


SUMMARY_TARGET_MS = 10.0


def summary_document_bench(load: float) -> None:
    """The typical dossier's summary document Bundle, built and serialised, against the R4B models."""

    from mappings.fhir.common import dumps
    from mappings.fhir.document import summary_document
    from mappings.summary import build_summary
    from tests.factories import typical_dossier

    dossier = typical_dossier()
    as_of = max(
        c.start for c in dossier.contacts
    ).date()  # the day of the last contact: a full journal window

    def build() -> bytes:
        return dumps(summary_document(build_summary(dossier, as_of=as_of), as_of=as_of))

    def document_only() -> bytes:
        return dumps(summary_document(summary, as_of=as_of))

    summary = build_summary(dossier, as_of=as_of)
    doc = build()
    decoded = orjson.loads(doc)
    problems = validate(doc)
    assert not [p for p in problems if p.severity.name == "ERROR"], [p.render_line() for p in problems]

    def theirs() -> bytes:
        return dump_json_with_models(validate_with_models(decoded))

    theirs()
    ours_ms = _median_ms(build, 100)
    doc_ms = _median_ms(document_only, 100)
    theirs_ms = _median_ms(theirs, 30)
    counts: dict[str, int] = {}
    for e in decoded["entry"]:
        t = e["resource"]["resourceType"]
        counts[t] = counts.get(t, 0) + 1
    rows = [
        "| path | median (ms) | x ours |",
        "|---|---:|---:|",
        f"| ours: build_summary + summary_document + dumps (orjson) | {ours_ms:.2f} | 1.0 |",
        f"| ours: summary_document + dumps of an already selected summary | {doc_ms:.2f} | "
        f"{doc_ms / ours_ms:.2f} |",
        f"| fhir.resources R4B: model_validate + model_dump_json of the same document | {theirs_ms:.2f} | "
        f"{theirs_ms / ours_ms:.1f} |",
    ]
    body_md = (
        f"{machine()}; load average {load:.1f} at the start. Pinned to one core; median of 100 runs "
        f"(R4B: 30) after 3 warm-up runs.\n"
        f"Input: `tests.factories.typical_dossier()` as of {as_of}; the document Bundle has "
        f"{len(decoded['entry'])} entries ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
        f"{len(doc):,} bytes, and passes our inbound validator.\n"
        f"Target: built and serialised under {SUMMARY_TARGET_MS:.0f} ms median. "
        f"Measured: **{ours_ms:.2f} ms** "
        f"({'met' if ours_ms < SUMMARY_TARGET_MS else 'NOT met'}).\n\n" + "\n".join(rows)
    )
    print(body_md)
    write_section("FHIR summary document", body_md)


if __name__ == "__main__":
    main()

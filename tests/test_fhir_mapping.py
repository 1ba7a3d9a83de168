"""FHIR R4 mappings (issue "FHIR R4 mappings", DOMAIN.md §5, §8, §9): golden cases, round trips, validity,
the ``fhir`` format and bad input.

Golden cases (``tests/golden/fhir/<case>/``): ``canonical.json`` and ``fhir.json``, the Bundle the mapping
writes, sorted-key and indented (for a postbox item ``postbox.json``, the Communication). Both directions are
proved by tests/test_golden.py (canonical -> FHIR equals the file after that normalisation, the file ->
canonical equals ``canonical.json``, with exactly the warnings of ``warnings.txt``); here: the files are valid
for fhir.resources R4B and for the gateway's inbound validator.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import tomllib
import tracemalloc
import uuid
from decimal import Decimal
from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.xmlsafe import parse_xml
from mappings import model as m
from mappings import summary
from mappings.fhir import bundle, codes, communication, document, observation, patient
from mappings.fhir.common import NAMESPACE, ReadContext, WriteContext, _uuid5, dumps, fdatetime, pdatetime
from mappings.fhir.format import FORMAT, read_bundle
from mappings.fhir.r4b import validate_with_models
from mappings.fhir.validator import validate
from mappings.problems import InputError, ProblemSink
from tests.factories import small_dossier, typical_dossier
from tests.golden_util import GOLDEN
from tests.strategies import dossiers, postbox_items

AREA = GOLDEN / "fhir"
CASES = sorted(p for p in AREA.iterdir() if p.is_dir() and not p.name.startswith("summary-document"))
DECODE = msgspec.json.Decoder(float_hook=Decimal).decode
ROOT = Path(__file__).resolve().parent.parent


def pretty(obj: dict) -> bytes:
    return dumps(obj, pretty=True) + b"\n"


def through_json(obj: dict) -> dict:
    """What a receiver decodes: the JSON bytes read back with exact decimals."""
    return DECODE(dumps(obj))


def is_postbox(case: Path) -> bool:
    return case.name.startswith("postbox-")


# --------------------------------------------------------------------------- golden cases


def test_every_resource_type_has_a_golden_case():
    names = {p.name for p in CASES}
    assert {
        "patient-with-voorvoegsels-and-partner-name",
        "episode-closed-with-attention",
        "encounter-video-consult",
        "soep-report",
        "measurement-with-reference-range",
        "medication-agreement-gpk",
        "allergy-thesaurus-122",
        "contraindication-flag",
        "attention-flag",
        "correspondence-communication",
    } <= names


# Both directions of every case (canonical.json <-> fhir.json, or postbox.json for a postbox item):
# tests/test_golden.py, one test over every format's cases.


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_golden_fhir_is_valid(case: Path):
    raw = (case / ("postbox.json" if is_postbox(case) else "fhir.json")).read_bytes()
    assert validate(raw) == []
    doc = orjson.loads(raw)
    validate_with_models(doc)
    for e in doc.get("entry", []):
        validate_with_models(e["resource"])


def test_golden_patient_carries_the_nl_core_name_parts():
    doc = json.loads((AREA / "patient-with-voorvoegsels-and-partner-name" / "fhir.json").read_bytes())
    pat = doc["entry"][0]["resource"]
    name = pat["name"][0]
    own = {e["url"]: e["valueString"] for e in name["_family"]["extension"]}
    assert own == {
        codes.EXT_OWN_PREFIX: "van",
        codes.EXT_OWN_NAME: "Putten",
        codes.EXT_PARTNER_PREFIX: "van der",
        codes.EXT_PARTNER_NAME: "Giessen",
    }
    assert name["family"] == "van Putten-van der Giessen"  # NL4: own name, then the partner's
    assert name["extension"] == [{"url": codes.EXT_ASSEMBLY_ORDER, "valueCode": "NL4"}]
    assert name["given"] == ["Johanna", "Petronella", "Maria"]
    assert pat["name"][1]["given"] == ["J.", "P.", "M."]  # initials in a second official name
    assert [x["extension"][0]["valueCode"] for x in pat["name"][1]["_given"]] == ["IN", "IN", "IN"]
    assert pat["identifier"] == [{"use": "official", "system": codes.BSN, "value": "111222333"}]
    line_ext = pat["address"][0]["_line"][0]["extension"]
    assert {"url": codes.EXT_HOUSE_NUMBER, "valueString": "15-2"} in line_ext
    coverage = doc["entry"][1]["resource"]
    assert coverage["resourceType"] == "Coverage"
    assert coverage["payor"][0]["identifier"] == {"system": codes.UZOVI, "value": "3311"}


# --------------------------------------------------------------------------- round trips (properties)


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_round_trip_collection_bundle(d: m.Dossier):
    assert bundle.from_fhir(through_json(bundle.to_fhir(d)), ProblemSink(strict=True)) == d


@settings(max_examples=100, deadline=None)
@given(dossiers())
def test_every_emitted_resource_validates_with_r4b_models_and_the_inbound_validator(d: m.Dossier):
    raw = dumps(bundle.to_fhir(d))
    assert validate(raw) == []
    doc = orjson.loads(raw)
    for e in doc["entry"]:
        validate_with_models(e["resource"])
    validate_with_models(doc)


@settings(max_examples=100, deadline=None)
@given(dossiers())
def test_summary_document_reads_back_and_is_valid(d: m.Dossier):
    as_of = dt.date(2026, 6, 1)
    doc = document.summary_document(d, as_of=as_of)
    raw = dumps(doc)
    assert validate(raw) == []
    validate_with_models(orjson.loads(raw))
    # the document leaves shielded data out and gives each prescription its status on the reference date
    expected = summary.status_as_of(summary.without_shielded(d), as_of)
    assert bundle.from_fhir(DECODE(raw), ProblemSink(strict=True)) == expected
    assert b'"security"' not in raw
    check_document_structure(doc)


@settings(max_examples=200, deadline=None)
@given(postbox_items())
def test_round_trip_postbox_item(item: m.PostboxItem):
    res = communication.postbox_to_fhir(item)
    raw = dumps(res)
    assert validate(raw) == []
    validate_with_models(orjson.loads(raw))
    assert communication.postbox_from_fhir(DECODE(raw), ProblemSink(strict=True)) == item


DIALECT_GOLDENS = sorted(
    p
    for p in GOLDEN.glob("*/*/canonical.json")
    if p.parent.parent.name != "fhir" and b'"practice"' in p.read_bytes()
)


@pytest.mark.parametrize("path", DIALECT_GOLDENS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_dialect_golden_dossier_round_trips_through_fhir(path: Path):
    """The dialects' golden dossiers (empty texts, control characters, DST edges, exact decimals ...)."""
    data = path.read_bytes()
    many = (
        msgspec.json.decode(data, type=list[m.Dossier])
        if data.lstrip().startswith(b"[")
        else [m.from_json(data)]
    )
    for d in many:
        raw = dumps(bundle.to_fhir(d))
        assert validate(raw) == []
        assert bundle.from_fhir(DECODE(raw)) == d


def test_output_is_byte_stable_and_ids_are_scoped_per_dossier():
    a, b = small_dossier(1), small_dossier(2)
    assert dumps(bundle.to_fhir(a)) == dumps(bundle.to_fhir(small_dossier(1)))
    urls_a = {e["fullUrl"] for e in bundle.to_fhir(a)["entry"]}
    urls_b = {e["fullUrl"] for e in bundle.to_fhir(b)["entry"]}
    assert urls_a.isdisjoint(urls_b)  # the same local ids ("ep0") in two dossiers never meet
    assert all(u.startswith("urn:uuid:") and uuid.UUID(u[9:]).version == 5 for u in urls_a)


def test_fast_uuid5_is_rfc4122_uuid5():
    for name in ("", "Patient/patient", "Observation/soep/c1/0/3", "é" * 70):
        assert _uuid5(NAMESPACE.bytes, name) == str(uuid.uuid5(NAMESPACE, name))


def test_references_between_entries_resolve():
    doc = bundle.to_fhir(typical_dossier())
    urls = {e["fullUrl"] for e in doc["entry"]}
    refs: list[str] = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("reference"), str):
                refs.append(x["reference"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    assert refs and set(refs) <= urls
    assert all(e["fullUrl"] == "urn:uuid:" + e["resource"]["id"] for e in doc["entry"])


# --------------------------------------------------------------------------- codes, times, data types


def test_code_systems_agree_with_tables_toml_and_domain():
    tables = tomllib.loads((ROOT / "mappings/codes/tables.toml").read_text("utf-8"))
    for system, name in codes.TABLE_OF_SYSTEM.items():
        assert tables[name]["system"] == system
        assert codes.system_uri("urn:oid:" + tables[name]["oid"]) == system
        assert codes.system_uri(tables[name]["oid"]) == system
    # DOMAIN.md §8, as written there: the URI emitted, the OID accepted
    for uri, oid in [
        ("http://fhir.nl/fhir/NamingSystem/bsn", "2.16.840.1.113883.2.4.6.3"),
        ("http://fhir.nl/fhir/NamingSystem/agb-z", "2.16.840.1.113883.2.4.6.1"),
        ("http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "2.16.528.1.1007.3.1"),
        ("http://fhir.nl/fhir/NamingSystem/uzi-nr-sys", "2.16.528.1.1007.3.2"),
        ("http://fhir.nl/fhir/NamingSystem/ura", "2.16.528.1.1007.3.3"),
        ("http://fhir.nl/fhir/NamingSystem/big", "2.16.528.1.1007.5.1"),
        ("http://fhir.nl/fhir/NamingSystem/uzovi", "2.16.840.1.113883.2.4.6.4"),
        ("http://hl7.org/fhir/sid/icpc-1-nl", "2.16.840.1.113883.2.4.4.31.1"),
        ("http://fhir.nl/fhir/NamingSystem/journaalregeltypen", "2.16.840.1.113883.2.4.4.32.2"),
        ("http://www.whocc.no/atc", "2.16.840.1.113883.6.73"),
        ("http://fhir.nl/fhir/NamingSystem/uzi-rolcode", "2.16.840.1.113883.2.4.15.111"),
        ("urn:oid:2.16.840.1.113883.2.4.4.1.902.40", "2.16.840.1.113883.2.4.4.1.902.40"),
    ]:
        assert codes.system_uri(uri) == uri
        assert codes.system_uri("urn:oid:" + oid) == uri
    assert codes.system_uri("urn:oid:2.16.840.1.113883.2.4.6.3") == codes.BSN
    assert codes.system_uri("2.16.528.1.1007.3.1") == codes.UZI_PERSON
    assert codes.system_uri("urn:oid:2.16.840.1.113883.2.4.15.111") == codes.UZI_ROLE
    assert codes.system_uri("2.16.840.1.113883.2.4.4.1") == codes.GPK
    assert codes.system_uri("http://example.org/x") == "http://example.org/x"
    assert codes.system_uri(None) is None


@pytest.mark.parametrize(
    ("local", "written"),
    [
        (dt.datetime(2017, 6, 11, 11, 0), "2017-06-11T11:00:00+02:00"),  # summer time
        (dt.datetime(2017, 1, 11, 11, 0), "2017-01-11T11:00:00+01:00"),
        (dt.datetime(2026, 3, 29, 2, 30), "2026-03-29T02:30:00+01:00"),  # in the spring-forward gap
        (dt.datetime(2026, 10, 25, 2, 30), "2026-10-25T02:30:00+02:00"),  # the first of the two 02:30s
        (dt.datetime(1930, 5, 1, 12, 0), "1930-05-01T11:40:28Z"),  # Amsterdam mean time +00:19:32
    ],
)
def test_moments_carry_the_amsterdam_offset_and_read_back(local: dt.datetime, written: str):
    assert fdatetime(local) == written
    assert pdatetime(written, "x", ReadContext()) == local


def test_foreign_offsets_are_converted_to_amsterdam_time():
    ctx = ReadContext()
    assert pdatetime("2026-07-01T09:00:00-04:00", "x", ctx) == dt.datetime(2026, 7, 1, 15, 0)
    assert pdatetime("2026-01-15T08:00:00Z", "x", ctx) == dt.datetime(2026, 1, 15, 9, 0)
    assert pdatetime("2026-01-15T08:00:00.250+01:00", "x", ctx) == dt.datetime(2026, 1, 15, 8, 0)
    assert [p.code for p in ctx.sink.problems] == ["FHIR-022"]


def test_decimals_keep_their_digits():
    d = typical_dossier(episodes=0, journal_lines=0, medications=0, measurements=0)
    d = msgspec.structs.replace(
        d,
        measurements=(
            m.Measurement(
                id="a",
                code="3208",
                effective=dt.datetime(2020, 1, 1, 8, 0),
                value_quantity=Decimal("6.10"),
                unit="mmol/L",
                reference_low=Decimal("3.50"),
                reference_high=Decimal("1E+1"),
            ),
        ),
    )
    raw = dumps(bundle.to_fhir(d))
    assert b'"value":6.10' in raw and b'"value":3.50' in raw and b'"value":1E+1' in raw
    back = bundle.from_fhir(DECODE(raw))
    assert str(back.measurements[0].value_quantity) == "6.10"


def test_single_resources_map_without_a_dossier():
    p = typical_dossier().patient
    res = patient.to_fhir(p)
    assert res["resourceType"] == "Patient" and "managingOrganization" not in res
    assert patient.from_fhir(through_json(res), insurance=p.insurance) == p
    x = typical_dossier().measurements[0]
    obs = observation.to_fhir(x)
    assert obs["code"]["coding"][0]["system"] == codes.TABEL45 and "subject" not in obs
    assert observation.from_fhir(through_json(obs)) == x


def test_attachment_as_document_reference_and_binary():
    ctx = WriteContext("att")
    ctx.patient = ctx.ref("Patient", "patient")
    for data in (b"%PDF-1.4 stamboom \x00\xff", b""):
        a = document.Attachment(
            id="fam-1",
            title="Familieformulier klinische genetica",
            content_type="application/pdf",
            data=data,
            date=dt.datetime(2024, 2, 1, 10, 0),
            episode_id="ep1",
        )
        doc_ref, binary = document.attachment_to_fhir(a, ctx)
        entries = [{"fullUrl": "urn:uuid:" + r["id"], "resource": r} for r in (doc_ref, binary)]
        entries.append(
            {
                "fullUrl": ctx.url("EpisodeOfCare", "ep1"),
                "resource": {
                    "resourceType": "EpisodeOfCare",
                    "id": ctx.id("EpisodeOfCare", "ep1"),
                    "status": "active",
                    "patient": ctx.patient,
                },
            }
        )
        rctx = ReadContext(ProblemSink(strict=True), entries)
        rctx.ids[2] = "ep1"
        for r in (doc_ref, binary):
            validate_with_models(through_json(r))
        assert document.attachment_from_fhir(through_json(doc_ref), rctx) == a


def test_attachment_with_tampered_data_is_refused():
    ctx = WriteContext("att")
    doc_ref, binary = document.attachment_to_fhir(
        document.Attachment(id="x", title="t", content_type="text/plain", data=b"origineel"), ctx
    )
    binary["data"] = "dmVyYW5kZXJk"  # "veranderd"
    rctx = ReadContext(
        ProblemSink(), [{"fullUrl": "urn:uuid:" + r["id"], "resource": r} for r in (doc_ref, binary)]
    )
    assert document.attachment_from_fhir(doc_ref, rctx) is None
    assert [p.code for p in rctx.sink.problems] == ["FHIR-034"]


# --------------------------------------------------------------------------- the summary document


def check_document_structure(doc: dict) -> None:
    """Document rules: first entry the Composition, every other entry referenced from a section, readable
    well-formed XHTML narrative (parsed with the project's one XML parser)."""
    assert (
        doc["type"] == "document" and doc["identifier"]["value"].startswith("urn:uuid:") and doc["timestamp"]
    )
    comp = doc["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition"
    assert comp["type"]["coding"][0] == {
        "system": codes.LOINC,
        "code": "67781-5",
        "display": "Summarization of episode note",
    }
    referenced = {ref["reference"] for s in comp["section"] for ref in s.get("entry", [])}
    assert referenced == {e["fullUrl"] for e in doc["entry"][1:]}
    assert comp["subject"]["reference"] in referenced and comp["custodian"]["reference"] in referenced
    for s in comp["section"]:
        div = s["text"]["div"]
        assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        root = parse_xml(div.encode("utf-8"), "narrative").getroot()
        assert "".join(root.itertext()).strip()
        assert ("entry" in s) != ("emptyReason" in s)


def test_summary_document_sections_and_narrative_escape_text():
    d = small_dossier(5)
    evil = "<script>alert('x')</script> & \"quotes\"\r\nregel 2\rregel 3 \x0b"
    d = msgspec.structs.replace(
        d, attention_notes=(m.AttentionNote(id="att9", text=evil),), contraindications=()
    )
    doc = document.summary_document(d, as_of=dt.date(2026, 6, 1))
    check_document_structure(doc)
    sections = {s["code"]["coding"][0]["code"]: s for s in doc["entry"][0]["resource"]["section"]}
    assert list(sections) == [
        "administrative",
        "episodes",
        "journal",
        "medication",
        "measurements",
        "contraindications",
        "intolerances",
        "attention",
    ]
    div = sections["attention"]["text"]["div"]
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; \"quotes\"<br/>regel 2<br/>regel 3" in div
    assert "<script" not in div and "\x0b" not in div
    assert sections["contraindications"]["emptyReason"]["coding"][0]["code"] == "nilknown"
    assert "Geen contra-indicaties." in sections["contraindications"]["text"]["div"]
    assert sections["episodes"]["code"]["coding"][1] == {
        "system": codes.LOINC,
        "code": "11450-4",
        "display": "Problem list - Reported",
    }


def test_write_summary_documents_one_bundle_per_line():
    out = io.BytesIO()
    n = document.write_summary_documents((small_dossier(i) for i in range(3)), out, as_of=dt.date(2026, 6, 1))
    lines = out.getvalue().splitlines()
    assert n == 3 and len(lines) == 3
    assert [json.loads(x)["type"] for x in lines] == ["document"] * 3
    assert FORMAT.write_many([], io.BytesIO()) == 0


# --------------------------------------------------------------------------- the fhir format and the CLI


def test_format_writes_one_bundle_and_ndjson_and_reads_both():
    one = FORMAT.write(small_dossier(1))
    assert one.endswith(b"\n") and one.count(b"\n") == 1
    assert FORMAT.read(one) == small_dossier(1)
    out = io.BytesIO()
    assert FORMAT.write_many((small_dossier(i) for i in range(4)), out) == 4
    back = list(FORMAT.iter_read(io.BytesIO(out.getvalue()), source="many.ndjson"))
    assert back == [small_dossier(i) for i in range(4)]
    indented = pretty(bundle.to_fhir(small_dossier(2)))
    assert list(FORMAT.iter_read(io.BytesIO(indented), source="one.json")) == [small_dossier(2)]


def test_cli_converts_medicom_to_fhir_and_back(tmp_path: Path):
    src = GOLDEN / "medicom" / "maximal-dossier-every-field" / "export.xml"
    hisgw = [sys.executable, "-m", "gateway.cli"]
    fhir = tmp_path / "d.fhir.json"
    run = subprocess.run(
        [*hisgw, "convert", str(src), "--from", "medicom", "--to", "fhir", "-o", str(fhir)],
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    direct = subprocess.run(
        [*hisgw, "convert", str(src), "--from", "medicom", "--to", "canonical"],
        capture_output=True,
        timeout=120,
    )
    back = subprocess.run(
        [*hisgw, "convert", str(fhir), "--from", "fhir", "--to", "canonical"],
        capture_output=True,
        timeout=120,
    )
    assert back.returncode == 0, back.stderr
    assert m.from_json(back.stdout) == m.from_json(direct.stdout)
    assert orjson.loads(fhir.read_bytes())["type"] == "collection"


# --------------------------------------------------------------------------- bad input


def problems_of(data: bytes, strict: bool = False) -> list:
    sink = ProblemSink(strict=strict)
    with pytest.raises(InputError) as exc:
        read_bundle(data, source="in.json", sink=sink)
    return list(exc.value.problems)


def good_bundle() -> dict:
    return orjson.loads(dumps(bundle.to_fhir(small_dossier(7))))


def entry_index(doc: dict, rtype: str, n: int = 0) -> int:
    return [i for i, e in enumerate(doc["entry"]) if e["resource"]["resourceType"] == rtype][n]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "FHIR-001"),
        (b"", "FHIR-001"),
        (b"[" * 100_000 + b"]" * 100_000, "FHIR-001"),
        (b'{"resourceType": "Patient"}', "FHIR-002"),
        (b'{"resourceType": "Bundle", "type": "collection"}', "FHIR-010"),
    ],
)
def test_unreadable_input_is_a_problem_never_a_traceback(data: bytes, code: str):
    problems = problems_of(data)
    assert problems[0].code == code and problems[0].location.startswith("in.json")


HOSTILE = {
    "deep-json-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-json-object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "deep-bundle": b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
    + b'{"a":' * 5000
    + b"1"
    + b"}" * 5001
    + b"]}",
    "truncated-json": b'{"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:',
    "too-many-values": b'{"resourceType":"Bundle","type":"collection","x":[' + b"1," * 600_000 + b"1]}",
    "empty": b"",
    "nul-bytes": b"\x00" * 4096,
    "garbage-100mb": os.urandom(1024 * 1024) * 100,
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_refused_quickly_with_bounded_memory(case: str):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as info:
            list(FORMAT.iter_read(io.BytesIO(HOSTILE[case]), source=f"{case}.in"))
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert peak < 300 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"
    problems = info.value.problems
    assert problems and any(p.severity.value == "error" for p in problems)
    assert all(p.code and p.location.startswith(f"{case}.in") for p in problems)


def _paths(x, prefix=()):
    yield prefix
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, (*prefix, i))


_FUZZ_BASE = orjson.loads(
    dumps(bundle.to_fhir(typical_dossier(3, episodes=3, journal_lines=8, medications=2, measurements=3)))
)
_FUZZ_PATHS = list(_paths(_FUZZ_BASE))[1:]
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.just(""),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
    st.just([{}]),
    st.just({"reference": "urn:uuid:x"}),
    st.just("2017-02-30"),
    st.just("urn:oid:2.16.840.1.113883.2.4.4.31.1"),
)


_SHARED_VALUE: list = [{}]  # st.just hands out one object: two damages may place it inside itself


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_FUZZ_PATHS), st.booleans(), _JSON_VALUES), min_size=1, max_size=3))
@example([(("entry",), False, _SHARED_VALUE), (("entry", 0, "fullUrl"), False, _SHARED_VALUE)])
def test_damaged_bundles_give_problems_never_a_traceback(damage):
    """Delete or replace elements anywhere in a good Bundle: the reader returns a dossier or raises
    InputError with located problems; nothing else escapes. Both through the format (validator first)
    and straight into the mapping (``bundle.from_fhir`` takes any dict: the API calls it so)."""
    doc = damaged(damage)
    try:
        bundle.from_fhir(orjson.loads(orjson.dumps(doc)), ProblemSink(), source="damaged.json")
    except InputError as exc:
        assert exc.problems and all(p.location.startswith("damaged.json") for p in exc.problems)
    try:
        read_bundle(orjson.dumps(doc), source="damaged.json", sink=ProblemSink())
    except InputError as exc:
        assert exc.problems and all(p.location.startswith("damaged.json") for p in exc.problems)


def damaged(damage) -> dict:
    doc = orjson.loads(orjson.dumps(_FUZZ_BASE))
    for path, delete, value in damage:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:  # a copy: JSON is a tree, and a reused example value must not end up inside itself
                node[path[-1]] = orjson.loads(orjson.dumps(value))
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def test_problems_are_located_by_fhirpath():
    doc = good_bundle()
    i = entry_index(doc, "Encounter")
    del doc["entry"][i]["resource"]["period"]
    j = entry_index(doc, "Observation", 0)
    doc["entry"][j]["resource"]["code"]["coding"] = [{"system": codes.JOURNAAL, "code": "X"}]
    k = entry_index(doc, "Patient")
    doc["entry"][k]["resource"]["identifier"][0]["value"] = "123456789"
    problems = problems_of(orjson.dumps(doc))
    found = {(p.code, p.location) for p in problems}
    assert ("FHIRV-040", f"in.json Bundle.entry[{k}].resource.identifier[0].value") in found
    strict = problems_of(orjson.dumps(doc), strict=True)
    assert len(strict) == 1 and strict[0].code == "FHIRV-040"
    del doc["entry"][k]["resource"]["identifier"]
    found = {(p.code, p.location) for p in problems_of(orjson.dumps(doc))}
    assert ("FHIR-020", f"in.json Bundle.entry[{i}].resource.period.start") in found
    assert ("FHIR-020", f"in.json Bundle.entry[{j}].resource.code") in found


def test_mapping_problems_have_codes_and_locations():
    doc = good_bundle()
    p = entry_index(doc, "Patient")
    del doc["entry"][p]["resource"]["managingOrganization"]
    doc["entry"].append(
        {
            "fullUrl": "urn:uuid:0b6f8a4c-3c3e-4f5e-8d3c-2f0c9a1b2c3d",
            "resource": {
                "resourceType": "Organization",
                "id": "0b6f8a4c-3c3e-4f5e-8d3c-2f0c9a1b2c3d",
                "name": "Tweede",
            },
        }
    )
    problems = problems_of(orjson.dumps(doc))
    assert [(x.code, x.location) for x in problems if x.severity.value == "error"] == [
        ("FHIR-011", f"in.json Bundle.entry[{p}].resource.managingOrganization")
    ]


def test_the_only_organization_is_the_practice_with_a_warning_and_codes_are_checked():
    doc = good_bundle()
    p = entry_index(doc, "Patient")
    del doc["entry"][p]["resource"]["managingOrganization"]
    o = entry_index(doc, "Observation", 0)
    while "valueQuantity" not in doc["entry"][o]["resource"]:
        o += 1
    doc["entry"][o]["resource"]["code"]["coding"][0]["code"] = "99999"
    sink = ProblemSink()
    d = read_bundle(orjson.dumps(doc), source="in.json", sink=sink)
    assert d.practice == small_dossier(7).practice
    assert [(x.code, x.location) for x in sink.problems] == [
        ("FHIR-016", f"in.json Bundle.entry[{p}].resource.managingOrganization"),
        ("CODE-001", f"in.json Bundle.entry[{o}].resource.code.coding[0].code"),
    ]


def test_empty_input_is_reported():
    sink = ProblemSink()
    with pytest.raises(InputError):
        list(FORMAT.iter_read(io.BytesIO(b"\n  \n"), source="leeg.ndjson", sink=sink))
    assert [(x.code, x.location) for x in sink.problems] == [("FHIR-006", "leeg.ndjson:1")]


def test_unread_entries_are_reported():
    doc = good_bundle()
    doc["entry"].append(
        {
            "fullUrl": "urn:uuid:1b6f8a4c-3c3e-4f5e-8d3c-2f0c9a1b2c3d",
            "resource": {
                "resourceType": "Task",
                "id": "1b6f8a4c-3c3e-4f5e-8d3c-2f0c9a1b2c3d",
                "status": "requested",
                "intent": "order",
            },
        }
    )
    sink = ProblemSink()
    assert read_bundle(orjson.dumps(doc), source="in.json", sink=sink) == small_dossier(7)
    assert [(p.code, p.location) for p in sink.problems] == [
        ("FHIR-012", f"in.json Bundle.entry[{len(doc['entry']) - 1}].resource")
    ]


def test_a_foreign_bundle_with_oid_systems_and_resource_ids_is_read():
    """Another sender's Bundle: Type/id references, urn:oid systems, no local-id identifiers."""
    doc = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "https://x.example/fhir/Patient/p1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "555555914"}],
                    "name": [{"family": "Direnç", "given": ["A."]}],
                    "birthDate": "1950-05-20",
                    "gender": "male",
                    "managingOrganization": {"reference": "Organization/o1"},
                    "generalPractitioner": [{"reference": "PractitionerRole/r1"}],
                },
            },
            {
                "fullUrl": "https://x.example/fhir/Organization/o1",
                "resource": {
                    "resourceType": "Organization",
                    "id": "o1",
                    "name": "Praktijk",
                    "identifier": [{"system": "urn:oid:2.16.528.1.1007.3.3", "value": "90000388"}],
                },
            },
            {
                "fullUrl": "https://x.example/fhir/PractitionerRole/r1",
                "resource": {
                    "resourceType": "PractitionerRole",
                    "id": "r1",
                    "practitioner": {"reference": "Practitioner/h1"},
                    "specialty": [
                        {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.15.111", "code": "01.015"}]}
                    ],
                },
            },
            {
                "fullUrl": "https://x.example/fhir/Practitioner/h1",
                "resource": {
                    "resourceType": "Practitioner",
                    "id": "h1",
                    "identifier": [{"system": "urn:oid:2.16.528.1.1007.3.1", "value": "900014719"}],
                },
            },
            {
                "fullUrl": "https://x.example/fhir/Observation/o9",
                "resource": {
                    "resourceType": "Observation",
                    "id": "o9",
                    "status": "final",
                    "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.30.45", "code": "1915"}]},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2017-02-26T00:00:00+01:00",
                    "valueQuantity": {"value": 37.3, "unit": "Cel"},
                },
            },
        ],
    }
    sink = ProblemSink()
    d = read_bundle(orjson.dumps(doc), source="foreign.json", sink=sink)
    assert d.patient.bsn == "555555914" and d.patient.name.family == "Direnç" and d.patient.name.given == "A."
    assert d.practice == m.Organization(id="o1", name="Praktijk", ura="90000388")
    assert d.gp == m.HealthProfessional(id="h1", uzi="900014719", role="01.015")
    assert d.measurements == (
        m.Measurement(
            id="o9",
            code="1915",
            effective=dt.datetime(2017, 2, 26, 0, 0),
            value_quantity=Decimal("37.3"),
            unit="Cel",
        ),
    )
    assert not sink.has_errors

"""The golden cases of every dossier format, one test over (format, case) (issue 18; STYLE.md "golden round
trips").

A format's cases are ``tests/golden/<format name>/<case>/``, one folder per case named for what it proves.
A case holds one *native* file in the format's extension (:attr:`formats.Format.extension`): the
dossier(s) as the format writes them (any name: ``export.xml``, ``omnihis.json``, ``fhir.json`` ...) or,
named ``postbox<ext>``, a postbox item in the format's postbox form. Beside it:

- ``canonical.json``: what reading it gives, sorted-key and indented (a JSON list when the file holds
  several dossiers);
- ``warnings.txt``: every problem reading it reports, one rendered line each (reading has no error);
- ``written<ext>``, only where the native file is not in the writer's own form (offsets, unknown keys,
  extra white space ...): what writing ``canonical.json`` gives. Otherwise writing gives the native file
  byte for byte (FHIR JSON after normalising: sorted keys, indented, as it is kept for review).

An area may pin the code tables its warnings were made with in ``_code-tables/`` (so the golden warnings
do not change when the shipped table subset grows). ``HISGW_REGEN_GOLDEN=1`` rewrites the expected files
(a case whose input the writer normalises gets a ``written<ext>``, never a rewritten input); review the
diff. The message format ``hl7v2`` has its own golden layout (``tests/test_hl7v2_golden.py``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgspec
import pytest

import formats
from mappings import model as m
from mappings.problems import ProblemSink
from tests.golden_util import GOLDEN, REGEN, canonical_pretty, check_or_write

EXPECTED = ("canonical", "warnings", "written")
"""Stems of the expected files (never a case's native file)."""


def _pretty_fhir(data: bytes) -> bytes:
    from mappings.fhir.common import dumps
    from mappings.fhir.format import decode

    return dumps(decode(data, "written", ProblemSink()), pretty=True) + b"\n"


NORMALISE = {"application/fhir+json": _pretty_fhir}
"""Media types whose golden files are kept in a review form the writer does not write."""


def _cases() -> list[tuple[formats.Format, Path]]:
    return [
        (fmt, case)
        for fmt in formats.dossier_formats()
        if (GOLDEN / fmt.name).is_dir()
        for case in sorted((GOLDEN / fmt.name).iterdir())
        if case.is_dir() and not case.name.startswith("_")
    ]


CASES = _cases()
WRITTEN = [(fmt, case) for fmt, case in CASES if fmt.writes]
IDS = [f"{fmt.name}/{case.name}" for fmt, case in CASES]


def native(fmt: formats.Format, case: Path) -> Path:
    found = [p for p in case.glob(f"*{fmt.extension}") if p.name[: -len(fmt.extension)] not in EXPECTED]
    assert len(found) == 1, f"{case} needs exactly one native {fmt.extension} file, has {found}"
    return found[0]


def is_postbox(path: Path) -> bool:
    return path.name.startswith("postbox.")


@pytest.fixture
def pinned_tables(request, monkeypatch):
    fmt, _ = request.node.callspec.params["fmt_case"]
    tables = GOLDEN / fmt.name / "_code-tables"
    if tables.is_dir():
        monkeypatch.setenv("HISGW_CODE_TABLES_PATH", str(tables))


def pretty(items: list) -> str:
    if len(items) == 1:
        return canonical_pretty(items[0])
    as_list = [json.loads(canonical_pretty(x)) for x in items]
    return json.dumps(as_list, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_items(case: Path, postbox: bool) -> list:
    data = (case / "canonical.json").read_bytes()
    if postbox:
        return [m.postbox_from_json(data)]
    if data.lstrip().startswith(b"["):
        return msgspec.json.decode(data, type=list[m.Dossier])
    return [formats.get("canonical").codec().read(data)]  # the canonical format reads its golden files


@pytest.mark.parametrize("fmt_case", CASES, ids=IDS)
def test_golden_read(fmt_case, pinned_tables):
    """Reading the native file gives ``canonical.json`` (as text and as the model) with exactly the
    problems of ``warnings.txt``, none an error."""
    fmt, case = fmt_case
    path = native(fmt, case)
    data = path.read_bytes()
    sink = ProblemSink()
    postbox = is_postbox(path)
    if postbox:
        got = [fmt.postbox_codec().read_postbox(data, source=path.name, sink=sink)]
    else:
        got = list(fmt.codec().iter_read(io.BytesIO(data), source=path.name, sink=sink))
    assert not sink.has_errors, [p.render_line() for p in sink.problems]
    check_or_write(case / "canonical.json", pretty(got))
    assert got == expected_items(case, postbox)  # and the golden file is itself a valid dossier
    check_or_write(case / "warnings.txt", "".join(p.render_line() + "\n" for p in sink.problems))


@pytest.mark.parametrize("fmt_case", WRITTEN, ids=[f"{f.name}/{c.name}" for f, c in WRITTEN])
def test_golden_write(fmt_case, pinned_tables):
    """Writing ``canonical.json`` gives the native file byte for byte, or ``written<ext>`` where the native
    file is not in the writer's form (and then differs from it)."""
    fmt, case = fmt_case
    path = native(fmt, case)
    data = path.read_bytes()
    items = expected_items(case, is_postbox(path))
    if is_postbox(path):
        written = fmt.postbox_codec().write_postbox(items[0])
    else:
        out = io.BytesIO()
        assert fmt.codec().write_many(items, out) == len(items)
        written = out.getvalue()
    written = NORMALISE.get(fmt.media_type, lambda b: b)(written)
    target = case / f"written{fmt.extension}"
    if target.exists():
        check_or_write(target, written)
        assert target.read_bytes() != data, f"{target.name} is only for inputs the writer normalises"
    elif REGEN and written != data:
        target.write_bytes(written)  # pragma: no cover - a new case whose input is not writer-normal
    else:
        assert written == data, f"writing {case.name}/canonical.json does not give {path.name}"


def test_every_dossier_format_with_a_golden_folder_has_cases_of_each_kind_it_offers():
    """At least one case per format; a format with a postbox file form has a postbox case."""
    by_format: dict[str, list[Path]] = {}
    for fmt, case in CASES:
        by_format.setdefault(fmt.name, []).append(native(fmt, case))
    for fmt in formats.dossier_formats():
        if not (GOLDEN / fmt.name).is_dir():
            continue
        natives = by_format.get(fmt.name, [])
        assert any(not is_postbox(p) for p in natives), fmt.name
        if fmt.postbox is not None and fmt.postbox.codec is not None:
            assert any(is_postbox(p) for p in natives), f"{fmt.name} has no postbox case"

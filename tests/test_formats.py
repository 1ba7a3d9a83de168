"""The format registry (issue 18, acceptance 1): the registry is the only list of formats, every format
describes itself completely, and a format added to the registry is taken everywhere without another edit.
"""

from __future__ import annotations

import ast
import io
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import formats
from formats import registry
from tests.factories import small_dossier

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("adapters", "mappings", "gateway", "conformance", "formats")
REGISTRY = Path("formats/registry.py")
NOT_A_FORMAT = {
    (Path("mappings/fhir/validator.py"), "canonical"): "the FHIR primitive type canonical",
    (Path("mappings/hl7v2/fhir.py"), "fhir"): "the fhir column of the v2 status tables (tables/*.csv)",
}
"""String literals that spell a format's name but mean something else."""


def _own_modules(fmt: formats.Format) -> set[Path]:
    """The modules of a format's codec and postbox codec: the only places besides the registry that may
    spell its name."""
    targets = [fmt.codec_path] + ([fmt.postbox.codec] if fmt.postbox and fmt.postbox.codec else [])
    return {Path(*t.split(":")[0].split(".")).with_suffix(".py") for t in targets}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _spellings(name: str) -> tuple[str, ...]:
    return (f'"{name}"', f"'{name}'")


def _scan() -> list[tuple[Path, int, str, str]]:
    """(module, line, literal, format name) of every string literal of the packages that spells a format's
    name: equal to it, or quoting it inside a longer one (a TOML line, a message). Docstrings are prose."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            tree = ast.parse(path.read_text("utf-8"))
            docs = _docstrings(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docs:
                    continue
                for fmt in formats.all_formats():
                    if node.value == fmt.name or any(q in node.value for q in _spellings(fmt.name)):
                        found.append((rel, node.lineno, node.value, fmt.name))
    return found


def test_the_registry_is_the_only_list_of_formats():
    """Outside the registry and a format's own modules (its codec, its postbox codec) no module of the
    packages spells a format's name; the few literals that mean something else are listed, each found."""
    hits = _scan()
    misplaced = [
        f"{rel}:{line} {value!r}"
        for rel, line, value, name in hits
        if rel != REGISTRY and rel not in _own_modules(formats.get(name)) and (rel, name) not in NOT_A_FORMAT
    ]
    assert misplaced == []
    assert {(rel, name) for rel, _, _, name in hits} >= set(NOT_A_FORMAT)  # the exceptions are not stale
    for fmt in formats.all_formats():  # the walk reads every module: each codec spells its own name
        assert {(rel, fmt.name) for rel, *_ in hits if rel in _own_modules(fmt)}, fmt.name
        assert (REGISTRY, fmt.name) in {(rel, name) for rel, _, _, name in hits}


def test_the_scan_finds_a_name_where_it_does_not_belong(tmp_path):
    """The scan above is not blind: the same walk over a module that lists dialects finds each."""
    source = 'DIALECTS = ("medicom", "omnihis")\nLINE = \'dialect = "microhis"\'\n'
    tree = ast.parse(source)
    hits = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and any(
            n.value == f.name or any(q in n.value for q in _spellings(f.name)) for f in formats.all_formats()
        )
    ]
    assert sorted(hits) == ['dialect = "microhis"', "medicom", "omnihis"]


def test_every_format_describes_itself_completely():
    seen = set()
    for fmt in formats.all_formats():
        assert fmt.name not in seen, fmt.name
        seen.add(fmt.name)
        codec = fmt.codec()
        assert codec.name == fmt.name
        assert hasattr(codec, "iter_read") and (hasattr(codec, "write_many") or not fmt.writes)
        assert fmt.media_type and fmt.extension.startswith(".") and fmt.title
        assert (ROOT / fmt.spec).is_file(), f"{fmt.name}: its spec {fmt.spec} is missing"
        if fmt.postbox is not None:
            assert fmt.postbox.drop or fmt.postbox.channel, fmt.name
            from gateway.outbox.channels import TRANSPORTS

            assert fmt.postbox.channel is None or fmt.postbox.transport in TRANSPORTS, fmt.name
            if fmt.postbox.transport == "numbered-files":  # the channel numbers the files it writes
                assert hasattr(fmt.postbox_codec(), "write_numbered"), fmt.name
            if fmt.postbox.codec is not None:
                pb = fmt.postbox_codec()
                assert pb.name == fmt.name and hasattr(pb, "write_postbox") and hasattr(pb, "read_postbox")
            else:
                assert not fmt.postbox.drop, f"{fmt.name}: a drop form needs a codec that writes the file"
    channels = [f.postbox.channel for f in formats.all_formats() if f.postbox and f.postbox.channel]
    assert len(channels) == len(set(channels)) and "drop" not in channels


def test_codecs_answer_from_the_registry():
    for fmt in formats.dossier_formats():
        codec = fmt.codec()
        assert codec.description is fmt
        assert codec.streaming == fmt.streaming and codec.media_type == fmt.media_type


def _golden_natives() -> list[tuple[str, Path]]:
    """(format, native file) of every golden case: the files in the format's own extension that are not
    an expected output."""
    out = []
    for fmt in formats.all_formats():
        area = ROOT / "tests" / "golden" / fmt.name
        for path in sorted(area.rglob(f"*{fmt.extension}")) if area.is_dir() else []:
            if path.parent.name.startswith("_") or path.stem in ("canonical", "warnings", "written"):
                continue
            out.append((fmt.name, path))
    return out


@pytest.mark.parametrize(
    "name,path", _golden_natives(), ids=lambda x: x if isinstance(x, str) else f"{x.parent.name}/{x.name}"
)
def test_every_golden_file_is_recognised_as_its_own_format_and_no_other(name: str, path: Path):
    """Content sniffing (``formats.sniff``): each format's golden inputs are claimed by it alone."""
    data = path.read_bytes()
    claimed = [f.name for f in formats.all_formats() if f.sniff is not None and f.sniff(data.lstrip())]
    assert claimed == [name]
    assert formats.sniff(data).name == name  # type: ignore[union-attr]


def test_every_format_but_the_canonical_has_golden_cases():
    """The golden files of ``canonical`` are every case's ``canonical.json``."""
    for fmt in formats.all_formats():
        area = ROOT / "tests" / "golden" / fmt.name
        cases = [p for p in area.rglob("*") if p.is_dir()] if area.is_dir() else []
        assert cases or fmt.sniff is None, f"{fmt.name} has no golden folder tests/golden/{fmt.name}/"


# --------------------------------------------------------------------------- the command line


def hisgw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, timeout=120, cwd=ROOT
    )


def test_convert_help_lists_every_format_and_a_read_only_to_is_a_usage_error(tmp_path):
    helped = hisgw("convert", "--help")
    assert helped.returncode == 0
    text = helped.stdout.decode()
    for fmt in formats.all_formats():
        assert f"{fmt.name}: {fmt.title.split()[0]}" in text
    src = tmp_path / "in.json"
    src.write_bytes(formats.get("canonical").codec().write(small_dossier(1)))
    for fmt in formats.all_formats():
        if fmt.writes:
            continue
        r = hisgw("convert", str(src), "--from", "canonical", "--to", fmt.name)
        assert r.returncode == 2 and not r.stdout
        message = r.stderr.decode()
        assert "read only" in message
        assert message.rstrip().endswith(", ".join(f.name for f in formats.writable()))
    r = hisgw("convert", str(src), "--from", "canonical", "--to", "no-such-format")
    assert r.returncode == 2 and ", ".join(formats.names()) in r.stderr.decode()


# --------------------------------------------------------------------------- adding a format

TOY = '''
"""A toy format: the canonical JSON after a first line ``TOY``; its postbox form likewise."""

from mappings.codec import DossierFormat, PostboxFormat
from mappings.model import from_json, postbox_from_json, to_json


class ToyFormat(DossierFormat, PostboxFormat):
    name = "toy"

    def read(self, data, *, source="<input>", sink=None):
        return from_json(data.split(b"\\n", 1)[1])

    def write(self, dossier):
        return b"TOY\\n" + to_json(dossier)

    def read_postbox(self, data, *, source="<input>", sink=None):
        return postbox_from_json(data.split(b"\\n", 1)[1])

    def write_postbox(self, item):
        return b"TOY\\n" + to_json(item)


FORMAT = ToyFormat()
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """One module and one registry entry: nothing else is edited."""
    (tmp_path / "toyformat.py").write_text(textwrap.dedent(TOY), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    fmt = formats.Format(
        name="toy",
        title="a toy export",
        media_type="text/x-toy",
        extension=".toy",
        codec_path="toyformat:FORMAT",
        spec="README.md",
        export=True,
        postbox=formats.PostboxForm(codec="toyformat:FORMAT", drop=True),
        sniff=lambda data: data.startswith(b"TOY\n"),
    )
    monkeypatch.setattr(registry, "FORMATS", (*registry.FORMATS, fmt))
    return fmt


def test_a_new_format_is_taken_everywhere_from_its_registry_entry(toy, tmp_path):
    from conformance.export_suite import detect, read_problems
    from gateway.cli import app
    from gateway.outbox.channels import DropChannel
    from gateway.outbox.config import parse_routing
    from gateway.outbox.demo import demo_routing
    from gateway.outbox.simulators import parse_args
    from gateway.outbox.testkit import make_item, patients

    d = small_dossier(1)
    # the command line converts from and to it
    src = tmp_path / "in.json"
    src.write_bytes(formats.get("canonical").codec().write(d))
    r = CliRunner().invoke(
        app, ["convert", str(src), "--from", "canonical", "--to", "toy", "-o", str(tmp_path / "x")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "x").read_bytes().startswith(b"TOY\n")
    r = CliRunner().invoke(app, ["validate", str(tmp_path / "x"), "--from", "toy"])
    assert r.exit_code == 0, r.output
    # the his-export conformance suite recognises and reads it
    data = (tmp_path / "x").read_bytes()
    assert detect(data) == "toy" and read_problems(data, "toy", "x") == ([], 1)
    # the routing file, the drop channel, the simulators and the demo postboxes take it as a drop dialect
    route = parse_routing(
        {"practice": {"01000001": {"channel": "drop", "dir": str(tmp_path), "dialect": "toy"}}}
    )
    channel = DropChannel(route.route("01000001"))  # type: ignore[arg-type]
    item = make_item("m-1", "01000001", patients(random.Random(3), 1)[0])
    assert [o.kind for o in channel.send([("m-1", item)])] == ["delivered"]
    assert toy.postbox_codec().read_postbox((tmp_path / "m-1.toy").read_bytes()) == item
    assert (
        parse_args(["drop", "--dir", str(tmp_path), "--dialect", "toy", "--filed-log", "f"]).dialect == "toy"
    )
    demo = demo_routing(tmp_path / "demo", [f"0100000{i}" for i in range(1, 5)]).read_text("utf-8")
    assert 'dialect = "toy"' in demo


def test_a_format_that_is_not_registered_is_refused_everywhere(tmp_path):
    from conformance.export_suite import detect
    from gateway.outbox.config import RoutingError, parse_routing

    with pytest.raises(RoutingError, match="dialect"):
        parse_routing({"practice": {"01000001": {"channel": "drop", "dir": str(tmp_path), "dialect": "toy"}}})
    with pytest.raises(RoutingError, match="channel"):
        parse_routing({"practice": {"01000001": {"channel": "toy", "url": "http://x"}}})
    assert detect(b"TOY\n{}") is None
    with pytest.raises(formats.UnknownFormat):
        formats.get("toy")


def test_hisgw_formats_lists_the_registry_and_filters_it():
    table = hisgw("formats")
    assert table.returncode == 0
    rows = table.stdout.decode().splitlines()
    assert [r.split()[0] for r in rows] == formats.names()
    for row, fmt in zip(rows, formats.all_formats(), strict=True):
        assert fmt.media_type in row and row.endswith(fmt.title)
        assert ("read only" in row) is (not fmt.writes)
    names = hisgw("formats", "--export", "--writes", "--names")
    assert names.returncode == 0
    assert names.stdout.decode().split() == [f.name for f in formats.exports() if f.writes]
    dossiers = hisgw("formats", "--dossiers", "--names").stdout.decode().split()
    assert dossiers == [f.name for f in formats.dossier_formats()] and len(dossiers) < len(rows)


def test_summary_to_a_format_with_a_summary_form_of_its_own_writes_that_form(tmp_path):
    """``summary --to fhir`` writes FHIR document Bundles (the codec's ``write_summaries``), not the
    collection Bundles ``convert`` writes; every other format writes the summary as a dossier."""
    import json

    src = ROOT / "tests" / "golden" / "medicom" / "maximal-dossier-every-field" / "export.xml"
    for fmt in formats.writable():
        if fmt.holds != "dossiers":
            continue
        out = tmp_path / f"summary{fmt.extension}"
        args = ("summary", str(src), "--from", "medicom", "--as-of", "2026-06-01", "--to", fmt.name)
        r = hisgw(*args, "-o", str(out))
        assert r.returncode == 0, r.stderr.decode()
        if hasattr(fmt.codec(), "write_summaries"):
            assert json.loads(out.read_bytes())["type"] == "document"
        else:
            assert len(list(fmt.codec().iter_read(io.BytesIO(out.read_bytes())))) == 1

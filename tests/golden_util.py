"""Golden-file helpers: canonical JSON pretty-printed for review, and a normalised comparison.

Golden cases live in ``tests/golden/<area>/<case>/``, one folder per case named for what it proves.
Set ``HISGW_REGEN_GOLDEN=1`` to (re)write expected files from the current code -- then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mappings import model as m

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("HISGW_REGEN_GOLDEN") == "1"


def canonical_pretty(obj: m.Dossier | m.PostboxItem) -> str:
    """Sorted-key, indented canonical JSON (Decimals as strings), newline-terminated."""
    builtins = json.loads(m.to_json(obj))
    return json.dumps(builtins, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_dossier(path: Path) -> m.Dossier:
    return m.from_json(path.read_bytes())


def load_postbox(path: Path) -> m.PostboxItem:
    return m.postbox_from_json(path.read_bytes())


def cases(area: str) -> list[Path]:
    """Every case folder of an area, sorted, as pytest parameters (ids = folder names)."""
    return sorted(p for p in (GOLDEN / area).iterdir() if p.is_dir())


def check_or_write(path: Path, actual: str | bytes) -> None:
    """Compare ``actual`` with the golden file (or write it when regenerating)."""
    data = actual.encode("utf-8") if isinstance(actual, str) else actual
    if REGEN or not path.exists():
        if not REGEN:
            raise AssertionError(f"golden file {path} is missing (run with HISGW_REGEN_GOLDEN=1 and review)")
        path.write_bytes(data)
        return
    assert path.read_bytes() == data, f"{path} differs from what the code produces"

"""Read and write speed of every dialect adapter (issue "HIS adapters", acceptance 8).

On the typical dossier (tests.factories.typical_dossier: 30 episodes, 300 journal lines, 40 medications,
200 measurements) and on the real NHG professional summary. Target: median read and write under 5 ms per
typical dossier per dialect on one core. Run: ``uv run python -m bench.bench_adapters``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import formats  # noqa: E402
from bench._report import machine, median_ms, write_section  # noqa: E402
from tests.factories import typical_dossier  # noqa: E402

REAL_PS = (
    Path(__file__).resolve().parent.parent
    / "tests/data/external/nictiz-huisartswaarneming"
    / ("QUPC_IN990002NL_01.hl7v3.xml")
)
DIALECTS = [f.name for f in formats.dossier_formats() if f.writes and f.codec_path.startswith("adapters.")]
"""Every format written by a dialect adapter (``adapters/``), from the registry."""
TARGET_MS = 5.0
NOTES = """What keeps the readers inside the budget (profiled with cProfile):

- **medicom**: coded values, ids, dates and numbers are attributes and free text is an element, so a
  typical document has far fewer elements to walk (73 kB); the writer is a hand-written serialiser that a
  test holds byte-identical to what lxml would write.
- **microhis**: ~1,100 records split with `str.split` (a raw `|` never occurs inside a field); escapes are
  decoded in one regex pass only for fields that hold a backslash.
- Every reader also checks each code against the code tables; misses cost a located warning each."""


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    d = typical_dossier(1)
    rows = [
        "| format | input | size (bytes) | read median (ms) | write median (ms) | target met |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name in DIALECTS:
        fmt = formats.get(name).codec()
        data = fmt.write(d)
        assert fmt.read(data) == d, f"{name} does not round-trip the typical dossier"
        r = median_ms(lambda fmt=fmt, data=data: fmt.read(data), repeat=100)
        w = median_ms(lambda fmt=fmt: fmt.write(d), repeat=100)
        ok = "yes" if r < TARGET_MS and w < TARGET_MS else "NO"
        rows.append(f"| {name} | typical dossier | {len(data):,} | {r:.2f} | {w:.2f} | {ok} |")
        print(rows[-1], flush=True)
    if REAL_PS.exists():
        raw = REAL_PS.read_bytes()
        ps_format = formats.sniff(raw)
        assert ps_format is not None and not ps_format.writes
        ps = ps_format.codec()
        real = ps.read(raw)
        r = median_ms(lambda: ps.read(raw), repeat=100)
        rows.append(
            f"| {ps_format.name} | real NHG PS (Nictiz) | {len(raw):,} | {r:.2f} | (read-only) "
            f"| {'yes' if r < TARGET_MS else 'NO'} |"
        )
        for name in DIALECTS:
            fmt = formats.get(name).codec()
            data = fmt.write(real)
            r = median_ms(lambda fmt=fmt, data=data: fmt.read(data), repeat=100)
            w = median_ms(lambda fmt=fmt: fmt.write(real), repeat=100)
            rows.append(
                f"| {name} | real NHG PS as {name} | {len(data):,} | {r:.2f} | {w:.2f} | "
                f"{'yes' if r < TARGET_MS and w < TARGET_MS else 'NO'} |"
            )
        print("\n".join(rows[-(len(DIALECTS) + 1) :]), flush=True)
    body = (
        f"Machine: {machine()}. Pinned to one core; median of 100 runs after 3 warm-up runs.\n"
        f"Target (issue 2): median read and write under {TARGET_MS} ms per typical dossier per dialect.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + NOTES
    )
    write_section("HIS adapters: read and write per dialect", body)


if __name__ == "__main__":
    main()

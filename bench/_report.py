"""Shared by the benchmarks: machine description and replacing one section of docs/performance.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

PERF = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADER = (
    "# Performance\n\nMeasured by the scripts in `bench/` (run them with `uv run python -m bench.<name>`). "
    "Each section says the machine and the date it was measured on; targets come from the issues.\n"
)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )


def median_ms(fn: Callable[[], object], repeat: int = 50, warmup: int = 3) -> float:
    """Median wall time of one call, in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def write_section(title: str, body: str) -> None:
    """Replace (or append) the section ``## title`` in docs/performance.md."""
    PERF.parent.mkdir(exist_ok=True)
    text = PERF.read_text("utf-8") if PERF.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    PERF.write_text(text.rstrip("\n") + "\n", "utf-8")

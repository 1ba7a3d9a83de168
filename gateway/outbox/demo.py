"""Demo postboxes for ``hisgw serve --demo`` (when no routing file is set): one drop directory per demo
practice under ``var/demo-postboxes/<AGB>/``, in that practice's dialect, auto-filing on. Answers and feedback
of the demo consults appear there as postbox files (``docs/postbox-delivery.md`` §6 has the simulators
that *read* such a directory, as a HIS would)."""

from __future__ import annotations

from pathlib import Path

import formats


def demo_routing(base: Path, practices: list[str]) -> Path:
    """Write ``base/routing.toml`` routing each practice to its own drop directory; returns its path."""
    base.mkdir(parents=True, exist_ok=True)
    lines = [
        "# written by hisgw serve --demo: every demo practice's postbox is a drop directory",
        "[defaults]",
        "backoff_max = 30.0",
        "idle_poll = 0.2",
    ]
    dialects = [f.name for f in formats.drop_formats()]  # every drop form in turn
    for i, agb in enumerate(practices):
        folder = base / agb
        folder.mkdir(exist_ok=True)
        lines += [
            f"[practice.{agb}]",
            'channel = "drop"',
            f'dir = "{folder.resolve()}"',
            f'dialect = "{dialects[i % len(dialects)]}"',
            "auto_filing = true",
        ]
    path = base / "routing.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path

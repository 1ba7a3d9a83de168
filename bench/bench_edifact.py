"""Edifact speed (issue 17, acceptance 5): reading and writing a 30-result MEDLAB against pydifact.

The interchange: one MEDLAB with ZKH, PID, PAD, ART, DET, IDE and 30 BEP results (10 with an OPB comment),
release characters in some values. Timed, median of many runs:

1. pydifact 0.2.3 ``Interchange.from_str`` of the same interchange **with the Dutch segment numbering
   stripped** (``BEP:1:1:2`` -> ``BEP``): pydifact refuses the numbering (``EDISyntaxError: Invalid
   segment name``), so this is the only interchange of that content it can parse; it only tokenizes.
2. ours: the tokenizer alone (``mappings.edifact.syntax.parse``), the full read into canonical structs
   (:func:`mappings.edifact.format.read_interchange`: counts checked, every segment mapped, BSN checked,
   numbers as Decimal) and the write back to bytes (:func:`write_messages`).

Target (hand-written hot path): read and write together at least 10x faster than pydifact's parse.
Run: ``uv run python -m bench.bench_edifact`` (writes its section of docs/performance.md).
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import machine, median_ms, write_section  # noqa: E402
from mappings.edifact.format import read_interchange, write_messages  # noqa: E402
from mappings.edifact.syntax import parse  # noqa: E402
from mappings.problems import ProblemSink  # noqa: E402

TARGET = 10.0
CODES = [("3208", "Glucose nuchter", "mmol/l", "3.9", "6.0"), ("193", "CK", "U/l", "0", "170")]


def medlab_30() -> bytes:
    body = [
        "ZKH+Certe Medische Diagnostiek",
        "PID+1957:03:12+V+Berg:van den:Groot:de::J.P.++BSN999999011",
        "PAD+Dorpsstraat:12a::Groningen:9712 AB+050-1234567",
        "ART+H+01001234+P. de Huisarts",
        "DET:1+26:01:04+08:05",
        "IDE:1+J+L2601040001",
    ]
    for n in range(1, 31):
        code, name, unit, low, high = CODES[n % 2]
        body.append(f"BEP:1:1:{n}+0+{name} ?+ {n}+{4 + n / 10:.1f}++{unit}+=+{low}+{high}+{code}")
        if n % 3 == 0:
            body.append(f"OPB:1:1:{n}:1+Opmerking?: monster {n} ?'s ochtends afgenomen.")
    segs = ["UNB+UNOC:1+CERTE+01234567+260104:1210+LAB000042", "UNH+1+MEDLAB:1", *body]
    segs += [f"UNT+{len(body) + 2}+1", "UNZ+1+LAB000042"]
    return ("UNA:+.? '\r\n" + "".join(s + "'\r\n" for s in segs)).encode("latin-1")


def strip_numbering(data: bytes) -> str:
    """The same interchange without the Dutch segment numbering (what pydifact can parse)."""
    return re.sub(r"(^|\n)([A-Z]{3})(?::\d+)+\+", r"\1\2+", data.decode("latin-1"))


def main() -> None:
    from pydifact.segmentcollection import Interchange

    data = medlab_30()
    plain = strip_numbering(data)
    warnings.simplefilter("ignore")  # pydifact warns on every service segment for want of directories
    assert len(Interchange.from_str(plain).segments) > 30  # it parses the stripped interchange
    items = read_interchange(data)
    assert write_messages(items) == data  # byte-identical round trip, checked before timing
    repeat = 300
    t_pydifact = median_ms(lambda: Interchange.from_str(plain), repeat=repeat)
    t_tokenize = median_ms(lambda: parse(data, sink=ProblemSink()), repeat=repeat)
    t_read = median_ms(lambda: read_interchange(data), repeat=repeat)
    t_write = median_ms(lambda: write_messages(items), repeat=repeat)
    ratio = t_pydifact / (t_read + t_write)
    body = f"""
Issue 17 acceptance 5: reading and writing a 30-result MEDLAB (50 segments, {len(data)} bytes, release
characters in names and comments) at least {TARGET:.0f}x faster than pydifact's own parse of the same
interchange (the hot path is hand-written: see the docstring of `mappings/edifact/syntax.py` for why
pydifact is not used). pydifact cannot parse the Dutch segment numbering (`BEP:1:1:2`), so it is timed on
the same interchange with the numbering stripped. `bench/bench_edifact.py`, {machine()}; median of
{repeat} runs, one core.

| step | ms per interchange |
|---|---|
| pydifact 0.2.3 `Interchange.from_str` (tokenize only, numbering stripped) | {t_pydifact:.3f} |
| ours: tokenize and check counts (`syntax.parse`) | {t_tokenize:.3f} |
| ours: read into canonical structs (`read_interchange`: tokenize, check, map every segment) | {t_read:.3f} |
| ours: write back to bytes (`write_messages`, byte-identical) | {t_write:.3f} |
| **ours read + write vs pydifact parse** | **{ratio:.1f}x faster** (target {TARGET:.0f}x) |
"""
    write_section("Edifact MEDLAB and MEDVRI", body)
    print(body)


if __name__ == "__main__":
    main()

"""HL7 v2 lab results as labs send them (issue 13, acceptance 4), in one run on one file.

The file: 2,000 distinct ORU^R01, each with PID, PV1, OBR and 30 OBX of mixed code systems (NHG Tabel 45,
LOINC, SNOMED CT, a lab's own codes) and value types (NM, SN, ST, CWE, TX, DT), statuses F/P/C and a note.
Measured on it:

1. python-hl7 ``hl7.parse`` of every message (parse only): the yardstick.
2. ``hisgw convert FILE --from hl7v2 --to fhir -o OUT`` as a whole process (interpreter start, imports,
   reading, mapping every message to its FHIR message Bundle, writing NDJSON). Target: >= 10x (1).
3. The same mapping in process (:func:`mappings.hl7v2.fast.oru_bytes`, the function the command line
   calls per message), one core. Target: >= 15x (1).
4. MLLP receive + store + audit + ACK inside ``hisgw serve`` (SQLite), 4 pipelining connections, these
   messages. Target: >= 2,500 messages/s.

Run: ``uv run python -m bench.bench_hl7v2_labs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import machine, write_section  # noqa: E402
from bench.bench_hl7v2 import serve_mllp_rate  # noqa: E402
from mappings.hl7v2.fast import oru_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 2_000
CODES = [
    "3208^glucose nuchter, art/cap (lab)^NHG45",
    "2345-7^Glucose [Mass/volume] in Serum or Plasma^LN",
    "718-7^Hemoglobin [Mass/volume] in Blood^LN",
    "271649006^Systolic blood pressure^SCT",
    "KAL^Kalium^99CERTE^2823-3^Potassium^LN",
    "193^creatine kinase (CK, CPK)^NHG45",
]
UNITS = ["mmol/L", "g/dL", "mm[Hg]", "U/L", "10*9/L", "mmol/L"]


def obx(i: int, n: int) -> str:
    """OBX i of report n: mostly numbers (their values differ per report), and every fifth of another
    value type (those repeat from report to report, as findings like "detected" do)."""
    code, unit = CODES[i % len(CODES)], UNITS[i % len(UNITS)]
    status = "F" if i % 11 else ("P" if i % 2 else "C")
    kind = i % 10
    if kind == 3:
        return f"OBX|{i}|SN|{code}||<^0.{i % 9 + 1}|{unit}|<5|L|||{status}|||20240301080000\r"
    if kind == 5:
        return f"OBX|{i}|CWE|{code}||260373001^Detected^SCT||||||{status}|||20240301080000\r"
    if kind == 7:
        return f"OBX|{i}|ST|{code}||zie opmerking||||||{status}|||20240301080000\r"
    if kind == 9:
        return f"OBX|{i}|DT|{code}||20240229||||||{status}|||20240301080000\r"
    flag = "H" if i % 7 == 0 else "N"
    value = f"{4 + i / 10 + n % 97 / 100:.2f}"
    return f"OBX|{i}|NM|{code}||{value}|{unit}|3.5-6.1|{flag}|||{status}|||20240301080000\r"


def report(n: int) -> bytes:
    """Report ``n`` of the file (its own control id and values)."""
    return (
        "MSH|^~\\&|LAB|Certe|HISGW|01234567|20240301120000+0100||ORU^R01^ORU_R01|"
        f"LAB-{n}|P|2.5|||||NLD|UNICODE UTF-8\r"
        "PID|1||123456782^^^NLMINBIZA^NNNLD||van den Berg-de Vries&van den&Berg&de&Vries^Jan^J.^^^^L"
        "||19800101|M|||Dorpsstraat 12a&Dorpsstraat&12a^^Groningen^^9712 AB^NL^H\r"
        "PV1|1|O\r"
        f"OBR|1|P{n}|F{n}|LAB^Laboratorium^L|||20240301080000\r" + "".join(obx(i, n) for i in range(1, 31))
    ).encode()


def main() -> None:
    import hl7

    reports = [report(n) for n in range(1, MESSAGES + 1)]
    texts = [r.decode() for r in reports]
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {sorted(affinity)[0]})

    def best(fn, warm: bool = True) -> float:
        if warm:
            fn()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return MESSAGES / min(times)

    python_hl7 = best(lambda: [hl7.parse(t) for t in texts], warm=False)
    in_process = best(lambda: [oru_bytes(r) for r in reports])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "reports.hl7")
        src.write_bytes(b"\n".join(reports))
        cmd = [sys.executable, "-m", "gateway.cli", "convert", str(src), "--from", "hl7v2", "--to", "fhir",
               "-o", f"{tmp}/out.ndjson"]  # fmt: skip
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            runs.append(time.perf_counter() - t0)
        whole = MESSAGES / min(runs)
        lines = Path(tmp, "out.ndjson").read_bytes().count(b"\n")
        assert lines == MESSAGES, lines
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gateway.cli"], cwd=ROOT, check=True)
        startup = time.perf_counter() - t0
    if affinity:
        os.sched_setaffinity(0, affinity)
    it = iter(reports * 3)
    served = serve_mllp_rate(
        total=5_000, make=lambda control: next(it).replace(b"|LAB-", f"|{control}-".encode())
    )
    rows = [
        ("python-hl7 `hl7.parse`, parse only (the yardstick)", python_hl7, "-"),
        (
            "`hisgw convert --from hl7v2 --to fhir` as a whole process (start, imports, map, write)",
            whole,
            "yes" if whole >= 10 * python_hl7 else "NO (target 10x)",
        ),
        (
            "the same mapping in process (`fast.oru_bytes`), one core",
            in_process,
            "yes" if in_process >= 15 * python_hl7 else "NO (target 15x)",
        ),
    ]
    table = ["| what | messages/s | x python-hl7 | target met |", "|---|---:|---:|---|"]
    table += [f"| {w} | {r:,.0f} | {r / python_hl7:.1f} | {ok} |" for w, r, ok in rows]
    mllp_ok = "yes" if served >= 2_500 else "NO (target 2,500)"
    body = f"""Machine: {machine()}.
File: {MESSAGES:,} distinct ORU^R01, each PID, PV1, OBR and 30 OBX of mixed code systems (NHG Tabel 45, LOINC,
SNOMED CT, a lab's own codes) and value types (NM, SN, CWE, ST, DT), statuses F, P and C
({len(reports[0]):,} bytes a message). Parse and in-process rows pinned to one core, best of three.

{chr(10).join(table)}

| MLLP inside `hisgw serve` (SQLite) | messages/s | target met |
|---|---:|---|
| receive, store, audit, ACK: 5,000 of these reports, 4 connections | {served:,.0f} | {mllp_ok} |

Importing the command line alone (`python -c "import gateway.cli"`) took {startup:.2f} s in this run: the
whole-process figure carries that start-up before the first message."""
    print(body)
    write_section("HL7 v2 lab results (issue 13)", body)


if __name__ == "__main__":
    main()

"""BEP (result), OPB (comment on a result) and IDE (sample identification), ``docs/dialects/edifact.md`` §4.

::

    IDE:<r>+<J|N complete>+<lab number>'
    BEP:<r>:<s>:<n>+0+<test name>+<value>+<C corrected>+<unit>+<flag>+<low>+<high>+<NHG Tabel 45 code>'
    OPB:<r>:<s>:<n>:<k>+<comment line>'

``r`` the report (DET) number, ``s`` the sample, ``n`` the result, ``k`` the comment line. BEP-1 ``0``
is a result (``1``, a comment-only line, is read as a result without value). BEP-3 a number (the UNA
decimal mark or ``.``) becomes ``value_quantity``, anything else (``<5``, ``neg``) ``value_text``.
BEP-6 flags are the table ``mappings/codes/medlab-flags.csv`` (``>`` high, ``<`` low, ...). BEP-9 an
NHG Tabel 45 code (unknown codes kept, ``CODE-001``). Field positions as ``mmerlijn/msg-edifact``
``src/segments/BEP.php`` reads them.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from mappings import model as m
from mappings.codetables import CodeTables
from mappings.edifact.canonical import LabResult
from mappings.edifact.common import safe_id, warn_unread
from mappings.edifact.syntax import Segment, Writer
from mappings.problems import ProblemSink

FLAGS_FILE = Path(__file__).resolve().parent.parent / "codes" / "medlab-flags.csv"
_NUM = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)\Z")


@lru_cache(maxsize=1)
def flags() -> tuple[dict[str, str], dict[str, str]]:
    """(Edifact flag -> interpretation, interpretation -> Edifact flag) from the data file."""
    with FLAGS_FILE.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    inbound = {r["edifact"]: r["interpretation"] for r in rows}
    inbound.update({r["interpretation"]: r["interpretation"] for r in rows})  # letters read as well
    return inbound, {r["interpretation"]: r["edifact"] for r in rows}


def number(text: str, decimal: str) -> Decimal | None:
    if not _NUM.match(text):
        return None
    if decimal != "." and "." in text:
        return None
    try:
        return Decimal(text.replace(",", ".") if decimal == "," or "," in text else text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def show(value: Decimal | None, decimal: str) -> str | None:
    if value is None:
        return None
    s = str(value)
    return s.replace(".", decimal) if decimal != "." else s


def ide_from_segment(seg: Segment, sink: ProblemSink) -> tuple[bool, str | None]:
    warn_unread(seg, {1, 2}, sink)
    flag = seg.get(1)
    if flag not in ("", "J", "N"):
        sink.error("EDI-023", seg.loc(1), f"IDE-1 {flag!r} is not J or N")
    return flag != "N", seg.get(2) or None


def ide_to_segment(w: Writer, report: int, complete: bool, lab_number: str | None) -> str:
    return w.segment("IDE", "J" if complete else "N", lab_number, numbers=(str(report),))


def from_segment(
    seg: Segment,
    sink: ProblemSink,
    *,
    effective: dt.datetime | None,
    mid: str,
    decimal: str,
    tables: CodeTables,
) -> LabResult | None:
    """BEP -> a result; ``EDI-024`` without a code or an observation time."""
    if len(seg.elements) > 9:
        warn_unread(seg, {1, 2, 3, 4, 5, 6, 7, 8, 9}, sink)
    f = [c[0] if c else "" for c in seg.elements[:9]]
    f += [""] * (9 - len(f))
    _kind, name, raw, changed, unit, flag_raw, low_raw, high_raw, code = f  # BEP-1 .. BEP-9
    if not code.strip():
        sink.error("EDI-024", seg.loc(9), "a result without an NHG Tabel 45 code")
        return None
    if code not in tables["tabel45"]:
        tables.check("tabel45", code, seg.loc(9), sink)
    if effective is None:
        sink.error("EDI-024", seg.loc(), "a result without an observation time (no DET before it)")
        return None
    qty = number(raw, decimal) if raw else None
    text = raw if raw and qty is None else None
    low = number(low_raw, decimal) if low_raw else None
    high = number(high_raw, decimal) if high_raw else None
    for e, r, v in ((7, low_raw, low), (8, high_raw, high)):
        if r and v is None:
            sink.error("EDI-025", seg.loc(e), f"reference limit {r!r} is not a number")
            return None
    interp = None
    if flag_raw:
        interp = flags()[0].get(flag_raw)
        if interp is None:
            sink.error("EDI-025", seg.loc(6), f"flag {flag_raw!r} is not in the MEDLAB flag table")
            return None
    try:
        meas = m.Measurement(
            id=safe_id(mid),
            code=code,
            effective=effective,
            value_quantity=qty,
            value_text=text,
            unit=unit or None,
            reference_low=low,
            reference_high=high,
            interpretation=interp,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        sink.error("EDI-025", seg.loc(), str(exc))
        return None
    return LabResult(measurement=meas, name=name or None, changed=bool(changed))


def to_segment(w: Writer, r: LabResult, numbers: tuple[str, ...], decimal: str) -> str:
    x = r.measurement
    value = show(x.value_quantity, decimal) if x.value_quantity is not None else x.value_text
    return w.segment(
        "BEP",
        "0",  # BEP-1 a result
        r.name,  # BEP-2
        value,  # BEP-3
        "C" if r.changed else None,  # BEP-4
        x.unit,  # BEP-5
        flags()[1].get(x.interpretation or "") if x.interpretation else None,  # BEP-6
        show(x.reference_low, decimal),  # BEP-7
        show(x.reference_high, decimal),  # BEP-8
        x.code,  # BEP-9
        numbers=numbers,
    )

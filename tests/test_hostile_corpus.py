"""One hostile corpus against every reader (issue 2, acceptance 6).

Each input must be refused with our declared ``InputError`` (a located, coded problem) within 1 s, with
bounded memory, by every format -- never another exception, never a hang. Per-dialect suites test their
own finer cases; this one makes sure no reader was left out.
"""

from __future__ import annotations

import io
import os
import time
import tracemalloc

import pytest

from adapters.base import format_names, get_format
from mappings.problems import InputError, Severity

# every reader the registry offers: a reader added later is in this corpus without anyone remembering it
READERS = [
    n for n in format_names() if n != "hl7v2"
]  # hl7v2: its own hostile suite (tests/test_hl7v2_er7.py)

XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b"<MedicomExport>&xxe;</MedicomExport>"
)
LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>"
)
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJ = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
WRONG_ENCODING = '<?xml version="1.0" encoding="UTF-8"?>\n<MedicomExport>Direnç ĳ</MedicomExport>'.encode(
    "cp1252", "replace"
)
TRUNCATED_XML = b'<?xml version="1.0" encoding="ISO-8859-15"?>\n<MedicomExport xmlns="urn:x"><Patient><Naam>'
TRUNCATED_JSON = b'{"practice": {"id": "p", "name": "Praktijk"}, "patient": {"bsn": "5555'
GARBAGE_100MB = os.urandom(1024 * 1024) * 100

CORPUS = {
    "external-entity": XXE,
    "billion-laughs": LAUGHS,
    "deep-json-array": DEEP_JSON,
    "deep-json-object": DEEP_OBJ,
    "wrong-declared-encoding": WRONG_ENCODING,
    "truncated-xml": TRUNCATED_XML,
    "truncated-json": TRUNCATED_JSON,
    "empty": b"",
    "nul-bytes": b"\x00" * 4096,
    "garbage-100mb": GARBAGE_100MB,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", list(CORPUS))
def test_refused_quickly_with_bounded_memory(reader: str, case: str):
    fmt = get_format(reader)
    data = CORPUS[case]
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as info:
            list(fmt.iter_read(io.BytesIO(data), source=f"{case}.in"))
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0, f"{reader} took {elapsed:.2f} s on {case}"
    # the input itself is not traced (allocated before start); what the reader allocates must stay bounded
    assert peak < 300 * 1024 * 1024, f"{reader} allocated {peak / 2**20:.0f} MiB on {case}"
    problems = info.value.problems
    assert problems and any(p.severity is Severity.ERROR for p in problems)
    for p in problems:
        assert p.code and p.location.startswith(f"{case}.in"), p

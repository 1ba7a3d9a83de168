"""The fifth way into a postbox: numbered interchange files in a directory read by the practice's mail
client (transport ``numbered-files`` of a format's postbox form; the Edifact MEDVRI channel,
``docs/postbox-delivery.md`` §4.5).

Dutch practices receive MEDVRI letters through a medical-mail client (the ZorgMail/Edifact client of the
HIS) that picks up interchange files from a directory. The channel writes **one interchange per postbox
item** with the format's ``write_numbered(item, number, sender)`` (for MEDVRI
:mod:`mappings.edifact.postbox`) and names it as such clients expect:

- file name ``<interchange number><extension>``, the number eight digits (``00000042.edi``), equal to the
  interchange reference inside (UNB-5), so file and interchange can be matched;
- numbers ascend per drop directory from 1, never reused: the counter and the message id each number
  was given live in the journal ``.hisgw-edifact.journal`` in the directory (a dot file: mail clients skip
  it), one line ``<number> <message id>`` each, appended and fsynced **before** the file is written;
- UNB-2 is the route's ``sender`` (the gateway's mail address, default ``HISGW``), UNB-3 the practice's
  AGB, UNH-1 ``1``.

Exactly once: a retry of the same message id (after a crash, a kill -9, a lost answer) finds its number
in the journal and writes the *same* interchange number again; a file of that name still there means an
earlier attempt delivered it. A mail client that has taken the file already sees a repeated interchange
reference from the same sender and drops it (ISO 9735 duplicate detection), as the test postbox does.
Writing is atomic (``.<name>.tmp``, fsync, rename, fsync of the directory) and the journal is locked
(``fcntl.flock``) while a number is given, so two workers never give one number twice.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

JOURNAL = ".hisgw-interchanges.journal"
DEFAULT_SENDER = "HISGW"


def file_name(number: int, extension: str) -> str:
    """``00000042.edi``: the interchange number, eight digits, and the format's extension."""
    return f"{number:08d}{extension}"


def number_of(name: str, extension: str) -> int | None:
    """The interchange number of a file name (``None`` for any other file)."""
    stem = name[: -len(extension)] if name.endswith(extension) else ""
    return int(stem) if len(stem) == 8 and stem.isdigit() and stem.isascii() else None


def read_journal(directory: Path) -> dict[int, str]:
    """Interchange number -> message id, as the journal holds them (a torn last line is ignored)."""
    try:
        text = (directory / JOURNAL).read_text("utf-8")
    except FileNotFoundError:
        return {}
    out: dict[int, str] = {}
    for line in text.splitlines():
        number, _, mid = line.partition(" ")
        if number.isdigit() and mid:
            out[int(number)] = mid
    return out


def number_for(directory: Path, message_id: str) -> int:
    """The interchange number of ``message_id``: the one it was given before, or the next one (recorded
    and fsynced before this returns). Raises ``OSError`` when the directory is not there."""
    fd = os.open(directory / JOURNAL, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0).decode("utf-8", "replace") if size else ""
        last = 0
        for line in data.splitlines():
            text, _, mid = line.partition(" ")
            if not text.isdigit():
                continue
            if mid == message_id:
                return int(text)
            last = max(last, int(text))
        if data and not data.endswith("\n"):
            os.write(fd, b"\n")  # a torn line from a crash: end it, it is ignored
        os.write(fd, f"{last + 1} {message_id}\n".encode())
        os.fsync(fd)
        return last + 1
    finally:
        os.close(fd)  # releases the lock

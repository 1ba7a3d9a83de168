"""MEDVRI as a postbox form: the item as one interchange of one MEDVRI (``docs/dialects/medvri.md``), for
the numbered drop channel of a mail client (``gateway/outbox/numbered_drop.py``, transport
``numbered-files``) and the test postbox that reads it back."""

from __future__ import annotations

import datetime as dt

from mappings.codec import PostboxFormat, sink_or_new
from mappings.edifact import envelope
from mappings.edifact.canonical import MedvriMessage
from mappings.edifact.format import MEDVRI_FORMAT, read_interchange, write_messages
from mappings.edifact.medvri import from_postbox
from mappings.model import PostboxItem
from mappings.problems import InputError, ProblemSink


class MedvriPostbox(PostboxFormat):
    """A postbox item <-> an interchange holding one MEDVRI."""

    name = MEDVRI_FORMAT.name

    def write_numbered(
        self, item: PostboxItem, number: int, sender: str, now: dt.datetime | None = None
    ) -> bytes:
        """The interchange of one item: UNB-2 ``sender``, UNB-3 the practice's AGB, UNB-5 ``number``
        (eight digits), UNH-1 ``1``."""
        moment = (now or dt.datetime.now()).replace(microsecond=0)
        env = envelope.new(sender, item.practice_agb, f"{number:08d}", moment)
        return write_messages([from_postbox(item, env, "1")])

    def write_postbox(self, item: PostboxItem) -> bytes:
        return self.write_numbered(item, 1, "HISGW")

    def read_postbox(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> PostboxItem:
        return self.read_message(data, source=source, sink=sink).item

    def read_message(
        self, data: bytes, *, source: str = "<input>", sink: ProblemSink | None = None
    ) -> MedvriMessage:
        """The one MEDVRI of an interchange (more or fewer is ``EDI-031``)."""
        sink = sink_or_new(sink)
        items = read_interchange(data, source=source, sink=sink, accept=("MEDVRI",))
        if len(items) != 1 or not isinstance(items[0], MedvriMessage):
            sink.error("EDI-031", source, f"a postbox interchange holds one MEDVRI, not {len(items)}")
            raise InputError(sink.problems)
        return items[0]


POSTBOX = MedvriPostbox()

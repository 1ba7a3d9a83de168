"""HL7 v2 (v2.5 base; 2.1 to 2.8.2 accepted where the structure allows): messages <-> canonical model.

- :mod:`.er7` the tokenizer and serializer (delimiters, escapes, character sets, batches, limits),
- one module per segment (``msh``, ``evn``, ``pid``, ``pv1``, ``in1``, ``obr``, ``obx``, ``txa``, ``rf1``,
  ``prd``, ``nte``, ``msa``, ``err``) with a ``from_segment``/``to_segment`` pair,
- one module per message family (``adt``, ``oru``, ``mdm``, ``ref``, ``ack``) and the dispatch in
  :mod:`.messages`; the message structs in :mod:`.canonical`.

Specified for users in ``docs/hl7v2.md``.
"""

from mappings.hl7v2.er7 import Hl7ParseError, Message, Segment, iter_messages, parse, parse_bytes
from mappings.hl7v2.messages import read, read_bytes, write

__all__ = [
    "Hl7ParseError",
    "Message",
    "Segment",
    "iter_messages",
    "parse",
    "parse_bytes",
    "read",
    "read_bytes",
    "write",
]

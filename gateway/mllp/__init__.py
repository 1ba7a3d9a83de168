"""HL7 v2 over MLLP: a listener that never loses a message, and a client.

- :mod:`.framing` MLLP frames with bounded memory,
- :mod:`.store` the durable inbound store (UNIQUE MSH-3/MSH-4/MSH-10; the ACK stored with the message),
- :mod:`.handler` parse, map and acknowledge one message (original and enhanced mode),
- :mod:`.server` the asyncio listener (TLS, limits, group commit), :mod:`.client` the client,
- ``python -m gateway.mllp`` the runnable entry point.

Specified in ``docs/hl7v2.md`` §7.
"""

from gateway.mllp.client import MllpClient
from gateway.mllp.server import MllpServer
from gateway.mllp.store import MessageStore

__all__ = ["MllpClient", "MllpServer", "MessageStore"]

"""What the listener does with one received frame, apart from the network and the database.

:func:`decide` parses and maps the message and builds the acknowledgement *before* anything is stored,
so the ACK can be stored in the same transaction as the message (:mod:`gateway.mllp.store`):

============================  ==============  =====================  ======
received                      original mode   enhanced (accept ack)  stored
============================  ==============  =====================  ======
frame over the size cap       AR              CR                     no
no readable MSH               AR              --                     no
MSH-3/4/10 unusable as a key  AR              CR                     no
syntax, charset, escapes      AR              CR                     yes
unsupported type/event/vers.  AR              CR                     yes
content errors (BSN, dates)   AE              CA (app ack AE)        yes
mapped (warnings as ERR W)    AA              CA (app ack AA)        yes
============================  ==============  =====================  ======

A message whose MSH-3/4/10 was stored before with other content (MSH-7 aside) is a *conflicting
duplicate*: answered AR (CR in enhanced mode) with ``MLLP-005`` naming MSH-10, audited, not stored
(:func:`conflicting`); a true resend gets the acknowledgement stored first, byte for byte.

A message that could not be stored (database down) is answered ``AE``/``CE`` with ``MLLP-003`` and is
not acknowledged as received: the sender keeps it and resends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from gateway.mllp.store import KEY_LENGTH, InboundRecord
from mappings.hl7v2 import ack, fast, messages
from mappings.hl7v2.er7 import Hl7ParseError, Segment, parse_bytes
from mappings.problems import InputError, Problem, ProblemSink, Severity

REJECTING = frozenset({"HL7-012", "HL7-013", "HL7-014"})
"""Content problems that make a message unsupported (AR) rather than wrong (AE)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one frame: a record to store (``None``: not storable) and the ACK to send."""

    record: InboundRecord | None
    ack: bytes | None
    code: str
    problems: tuple[Problem, ...] = ()


def _problem(code: str, location: str, message: str) -> Problem:
    return Problem(Severity.ERROR, code, location, message)


def _acks(
    msh: Segment | None, outcome: ack.Outcome, problems: tuple[Problem, ...], now: dt.datetime
) -> tuple[str, bytes | None, bytes | None]:
    """(MSA-1 of the accept ACK or ACK, the ACK to send, the application ACK: stored, then sent after it)."""
    if not ack.is_enhanced(msh):
        code = ack.ORIGINAL[outcome]
        return code, ack.ack_bytes(ack.build_ack(msh, code, problems, now=now)), None
    assert msh is not None
    accept: ack.Outcome = "reject" if outcome == "reject" else "accept"
    code = ack.ENHANCED[accept]
    sent = (
        ack.ack_bytes(ack.build_ack(msh, code, problems if accept == "reject" else (), now=now))
        if ack.wanted(msh.get(15) or "AL", accept)
        else None
    )
    app = None
    if accept == "accept" and ack.wanted(msh.get(16) or "NE", outcome):
        app = ack.ack_bytes(ack.build_ack(msh, ack.ORIGINAL[outcome], problems, now=now))
    return code, sent, app


def reject_unframed(
    head: bytes, message: str, code: str = "MLLP-001", now: dt.datetime | None = None
) -> Decision:
    """The answer to a frame that is not kept (over the size cap): AR/CR, nothing stored."""
    now = now or dt.datetime.now()
    msh = ack.header_segment(head)
    problems = (_problem(code, "message", message),)
    ack_code, sent, _ = _acks(msh, "reject", problems, now)
    return Decision(None, sent, ack_code, problems)


def decide(
    data: bytes, *, peer: str = "", default_charset: str = "", now: dt.datetime | None = None
) -> Decision:
    """Parse, map and acknowledge one message (never raises for bad input)."""
    now = now or dt.datetime.now()
    msg = None
    parse_error: Hl7ParseError | None = None
    try:
        msg = parse_bytes(data, default_charset=default_charset)
    except Hl7ParseError as exc:
        parse_error = exc
    # The key and the ACK come from the MSH as decoded; when the message cannot be parsed, from its MSH
    # line alone (the same bytes always take the same path, so a resend finds the same key).
    msh = msg.msh if msg is not None else ack.header_segment(data)
    if msh is None:
        problems: tuple[Problem, ...] = (
            parse_error.problems
            if parse_error
            else (_problem("HL7-002", "segment 1", "no readable MSH segment"),)
        )
        code, sent, _ = _acks(None, "reject", problems, now)
        return Decision(None, sent, code, problems)
    key = (msh.raw(3), msh.raw(4), msh.raw(10))
    if not key[2] or max(len(k) for k in key) > KEY_LENGTH:
        problems = (
            _problem(
                "MLLP-004",
                "MSH-10" if not key[2] else "MSH-3",
                "MSH-10 is empty"
                if not key[2]
                else f"MSH-3, MSH-4 or MSH-10 is longer than {KEY_LENGTH} characters",
            ),
        )
        code, sent, _ = _acks(msh, "reject", problems, now)
        return Decision(None, sent, code, problems)
    outcome: ack.Outcome
    result: object = None
    sink = ProblemSink()
    try:
        if parse_error is not None:
            raise parse_error
        assert msg is not None
        result = fast.accept(msg, sink, accepted=messages.INBOUND)  # the one mapping (docs/hl7v2.md §6a)
        outcome = "accept"
    except InputError as exc:
        sink.problems.extend(p for p in exc.problems if p not in sink.problems)
        reject = isinstance(exc, Hl7ParseError) or any(p.code in REJECTING for p in sink.problems)
        outcome = "reject" if reject else "error"
    problems = tuple(sink.problems)
    code, sent, app = _acks(msh, outcome, problems, now)
    bsns = _bsns(result) if outcome != "reject" else ()
    record = InboundRecord(
        key=key,
        message_type=msh.raw(9)[:64],
        raw=data,
        ack_code=code,
        ack=sent,
        app_ack=app,
        peer=peer,
        bsns=bsns,
    )
    return Decision(record, sent, code, problems)


def _bsns(obj: object) -> tuple[str, ...]:
    """The BSNs a mapped message names (for the NEN 7513 receipt audit; never logged)."""
    found = []
    for holder in (
        obj,
        getattr(obj, "item", None),
        getattr(obj, "consult", None),
        getattr(obj, "reply", None),
    ):
        bsn = getattr(getattr(holder, "patient", None), "bsn", None)
        if bsn:
            found.append(bsn)
    return tuple(dict.fromkeys(found))


def store_failed(data: bytes, reason: str, now: dt.datetime | None = None) -> bytes | None:
    """AE/CE (``MLLP-003``) for a message the database did not take: the sender must resend it."""
    now = now or dt.datetime.now()
    msh = ack.header_segment(data)
    problem = _problem("MLLP-003", "message", f"the message could not be stored ({reason}); resend it")
    code = "CE" if ack.is_enhanced(msh) else "AE"
    return ack.ack_bytes(ack.build_ack(msh, code, (problem,), now=now))


def conflicting(record: InboundRecord, now: dt.datetime | None = None) -> InboundRecord:
    """The refusal of a conflicting duplicate (``gateway.mllp.store.ConflictHook``): AR/CR with an ERR
    ``MLLP-005`` at MSH-10; the sender must give a new message a new control id."""
    now = now or dt.datetime.now()
    msh = ack.header_segment(record.raw)
    problem = _problem(
        "MLLP-005",
        "MSH-10",
        f"MSH-10 {record.key[2]!r} of this sender was already used for a message with other content;"
        " a new message needs a new control id",
    )
    code, sent, _ = _acks(msh, "reject", (problem,), now)
    return dataclasses.replace(record, ack_code=code, ack=sent, app_ack=None, conflict=True)

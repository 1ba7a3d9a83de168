"""The consult's states and the rules between them, as data (DOMAIN.md §2, docs/consult.md §2).

::

    sent --pickup--> picked-up --answer--> answered --close-with-declaration--> closed-declared
      |                 ^    |                |  \\--close-administratively--> closed-administrative
      |                 |    +--cancel--+     |
      +----cancel-------|---------------+-> cancelled
                        +----follow-up--------+

A question sent to a named specialist is picked up at once (it is stored as ``picked-up``); one sent to
a specialism (vakgroep) waits until one of its members picks it up. After an answer the GP may ask a
follow-up question, which the specialist answers again. The specialist closes an answered consult, with
a declaration (``DECLARATION_RULES``) or administratively. The GP may cancel until the first answer.

Every (state, action) pair not in :data:`TRANSITIONS` is refused (``CON-010``) with the action's rule,
and nothing changes. Who may act is in :data:`ACTIONS` (``practice`` or ``hospital``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Party = Literal["practice", "hospital"]

STATES: tuple[str, ...] = (
    "sent",
    "picked-up",
    "answered",
    "closed-declared",
    "closed-administrative",
    "cancelled",
)
OPEN_STATES = ("sent", "picked-up")
"""States in which an answer is awaited (and a consult past its due time is overdue)."""
FINAL_STATES = ("closed-declared", "closed-administrative", "cancelled")

TASK_STATUS: dict[str, str] = {
    "sent": "requested",
    "picked-up": "accepted",
    "answered": "in-progress",
    "closed-declared": "completed",
    "closed-administrative": "completed",
    "cancelled": "cancelled",
}
"""FHIR Task.status per state; the state itself is Task.businessStatus (:data:`STATE_SYSTEM`)."""
SERVICE_REQUEST_STATUS: dict[str, str] = {
    "sent": "active",
    "picked-up": "active",
    "answered": "active",
    "closed-declared": "completed",
    "closed-administrative": "completed",
    "cancelled": "revoked",
}
STATE_SYSTEM = "urn:his-gateway:consult-state"


@dataclass(frozen=True, slots=True)
class Action:
    """An action: who may take it and the rule a refusal names."""

    name: str
    party: Party
    rule: str
    """The rule as the refusal names it."""


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "pickup",
            "hospital",
            "consult.pickup: only a consult sent to a specialism and not yet picked up "
            "can be picked up, by one member of that specialism",
        ),
        Action(
            "answer",
            "hospital",
            "consult.answer: only a picked-up consult (or a follow-up question) can be "
            "answered, by the specialist who picked it up",
        ),
        Action(
            "follow-up",
            "practice",
            "consult.follow-up: the GP asks a follow-up question only after an "
            "answer and before the consult is closed",
        ),
        Action("close-with-declaration", "hospital", "consult.close: only an answered consult is closed"),
        Action("close-administratively", "hospital", "consult.close: only an answered consult is closed"),
        Action("cancel", "practice", "consult.cancel: the GP cancels a consult only before it is answered"),
    )
}

TRANSITIONS: dict[tuple[str, str], str] = {
    ("sent", "pickup"): "picked-up",
    ("picked-up", "answer"): "answered",
    ("answered", "follow-up"): "picked-up",
    ("answered", "close-with-declaration"): "closed-declared",
    ("answered", "close-administratively"): "closed-administrative",
    ("sent", "cancel"): "cancelled",
    ("picked-up", "cancel"): "cancelled",
}

DECLARATION_RULES: tuple[tuple[str, str], ...] = (
    (
        "newTreatmentQuestion",
        "consult.declaration: a declaration needs a new question about the treatment of the patient",
    ),
    (
        "noOpenDbc",
        "consult.declaration: a declaration needs that there is no open DBC of this specialism "
        "for the patient",
    ),
)
"""Both must hold to close with a declaration (seeds/000 "Declareren"); otherwise close administratively."""


def allowed_from(action: str) -> list[str]:
    """The states from which ``action`` is allowed."""
    return [s for (s, a) in TRANSITIONS if a == action]


def next_state(state: str, action: str) -> str | None:
    """The state after ``action`` in ``state``; None when the pair is not allowed."""
    return TRANSITIONS.get((state, action))

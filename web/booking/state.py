"""The one state machine of a booking's status. Every status change goes through ``require_transition``.

    pending_payment ──pay──▶ confirmed ──check-in──▶ in_progress ──complete──▶ completed
          │                     │  │
          │                     │  └──no-show (after the start)──▶ no_show
          ├──cancel / unpaid expiry──▶ cancelled ◀──cancel──┘
          └──reschedule──▶ rescheduled ◀──reschedule── confirmed
"""

from __future__ import annotations

from web.core.errors import Conflict

PENDING_PAYMENT = "pending_payment"
CONFIRMED = "confirmed"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
CANCELLED = "cancelled"
RESCHEDULED = "rescheduled"
NO_SHOW = "no_show"

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING_PAYMENT: frozenset({CONFIRMED, CANCELLED, RESCHEDULED}),
    CONFIRMED: frozenset({IN_PROGRESS, CANCELLED, RESCHEDULED, NO_SHOW}),
    IN_PROGRESS: frozenset({COMPLETED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
    RESCHEDULED: frozenset(),
    NO_SHOW: frozenset(),
}

# Statuses whose booking no longer holds a place in its slot.
RELEASED_PLACE = frozenset({CANCELLED, RESCHEDULED})

# How each target status reads after "cannot be ...".
_PARTICIPLES = {
    CONFIRMED: "confirmed", IN_PROGRESS: "checked in", COMPLETED: "completed", CANCELLED: "cancelled",
    RESCHEDULED: "rescheduled", NO_SHOW: "marked as a no-show",
}


class IllegalTransition(Conflict):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(
            f"A booking that is {current.replace('_', ' ')} cannot be {_PARTICIPLES.get(wanted, wanted)}."
        )
        self.current = current
        self.wanted = wanted


def can_transition(current: str, wanted: str) -> bool:
    return wanted in TRANSITIONS.get(current, frozenset())


def require_transition(current: str, wanted: str) -> None:
    """Raise IllegalTransition (409) unless ``current`` may become ``wanted``."""
    if not can_transition(current, wanted):
        raise IllegalTransition(current, wanted)

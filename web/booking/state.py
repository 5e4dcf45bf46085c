"""The one state machine of a booking's status. Every status change goes through ``require_transition``.

    pending_payment ──pay──▶ confirmed ──check-in──▶ in_progress ──complete──▶ completed
          │                     │  │
          │                     │  └──no-show (after the start)──▶ no_show
          ├──cancel / unpaid expiry──▶ cancelled ◀──cancel──┘
          └──reschedule──▶ rescheduled ◀──reschedule── confirmed
"""

from __future__ import annotations

from web.core.errors import Conflict
from web.core.messages import N_

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

# How a status reads inside a sentence ("A booking that is %(status)s ..."); translated where it is shown.
STATUS_WORDS = {
    PENDING_PAYMENT: N_("waiting for payment"), CONFIRMED: N_("confirmed"), IN_PROGRESS: N_("checked in"),
    COMPLETED: N_("completed"), CANCELLED: N_("cancelled"), RESCHEDULED: N_("rescheduled"),
    NO_SHOW: N_("a no-show"),
}

# One whole sentence per refused change: sentences pieced together from parts do not translate.
_REFUSALS = {
    CONFIRMED: "A booking that is %(status)s cannot be confirmed.",
    IN_PROGRESS: "A booking that is %(status)s cannot be checked in.",
    COMPLETED: "A booking that is %(status)s cannot be completed.",
    CANCELLED: "A booking that is %(status)s cannot be cancelled.",
    RESCHEDULED: "A booking that is %(status)s cannot be rescheduled.",
    NO_SHOW: "A booking that is %(status)s cannot be marked as a no-show.",
}
# Listed for the catalogs (the extractor reads N_ calls, not a dict of plain strings).
_ = (N_("A booking that is %(status)s cannot be confirmed."), N_("A booking that is %(status)s cannot be checked in."),
     N_("A booking that is %(status)s cannot be completed."), N_("A booking that is %(status)s cannot be cancelled."),
     N_("A booking that is %(status)s cannot be rescheduled."),
     N_("A booking that is %(status)s cannot be marked as a no-show."))


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " "))


class IllegalTransition(Conflict):
    def __init__(self, current: str, wanted: str) -> None:
        refusal = _REFUSALS.get(wanted, "A booking that is %(status)s cannot be changed.")
        super().__init__(N_(refusal, status=status_words(current)))
        self.current = current
        self.wanted = wanted


def can_transition(current: str, wanted: str) -> bool:
    return wanted in TRANSITIONS.get(current, frozenset())


def require_transition(current: str, wanted: str) -> None:
    """Raise IllegalTransition (409) unless ``current`` may become ``wanted``."""
    if not can_transition(current, wanted):
        raise IllegalTransition(current, wanted)

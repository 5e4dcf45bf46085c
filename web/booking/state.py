"""The one state machine of a booking's status, and the questions pages ask about a booking or a hold.

Every status change goes through ``require_transition``. Pages and templates never compare statuses
themselves: they ask ``can_pay``, ``is_upcoming``, ``can_mark_no_show``, ``is_live_hold``…

    pending_payment ──pay──▶ confirmed ──check-in──▶ in_progress ──complete──▶ completed
          │                     │  │
          │                     │  └──no-show (after the start)──▶ no_show
          ├──cancel / unpaid expiry──▶ cancelled ◀──cancel──┘
          └──reschedule──▶ rescheduled ◀──reschedule── confirmed
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
# A visit that still stands: its place is used and the pet is expected (or in the clinic now). A pet with
# an active booking cannot be booked at an overlapping time; a slot with one cannot be blocked.
ACTIVE = frozenset({PENDING_PAYMENT, CONFIRMED, IN_PROGRESS})
# ACTIVE as an SQL list, for the statements that filter by it: one definition for Python and SQL.
ACTIVE_SQL = "(" + ", ".join(f"'{status}'" for status in sorted(ACTIVE)) + ")"
# The money of these was taken (a free visit counts as paid).
_PAID = frozenset({CONFIRMED, IN_PROGRESS, COMPLETED})

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


class StaleVersion(Conflict):
    """The booking changed since the caller read it (its ``version`` moved on): reload and try again."""

    def __init__(self, status: str) -> None:
        super().__init__(N_("This booking changed meanwhile (it is now %(status)s). Reload it and try again.",
                            status=status_words(status)))
        self.current_status = status


def require_version(booking: Any, version: int) -> None:
    """Raise StaleVersion (409) unless ``booking`` is still at ``version`` (optimistic locking)."""
    if booking["version"] != version:
        raise StaleVersion(booking["status"])


# ------------------------------------------------------------------ questions pages ask


def is_upcoming(booking: Any, now: datetime) -> bool:
    """A visit still ahead of the owner: it stands (ACTIVE) and has not ended yet."""
    return booking["status"] in ACTIVE and booking["end_time"] > now


def is_paid(booking: Any) -> bool:
    """Its money was taken (or nothing was due)."""
    return booking["payment_status"] == "paid" or booking["status"] in _PAID


def can_pay(booking: Any) -> bool:
    """The booking waits for its payment."""
    return booking["status"] == PENDING_PAYMENT


def can_mark_no_show(booking: Any, now: datetime) -> bool:
    """The pet did not come: only for a confirmed visit, and only once its start time has passed."""
    return can_transition(booking["status"], NO_SHOW) and booking["start_time"] <= now


def no_show_possible_later(booking: Any, now: datetime) -> bool:
    """A confirmed visit that has not started: it can be marked a no-show after its start."""
    return can_transition(booking["status"], NO_SHOW) and booking["start_time"] > now


HOLD_PENDING = "pending"
HOLD_CONFIRMED = "confirmed"
HOLD_EXPIRED = "expired"
# Given back by its owner (or by the clinic blocking the slot), as opposed to expired.
HOLD_RELEASED = "cancelled"


def is_live_hold(reservation: Any, now: datetime) -> bool:
    """A hold that still keeps its place: pending and not expired."""
    return reservation["status"] == HOLD_PENDING and reservation["expires_at"] > now


def is_released_hold(reservation: Any) -> bool:
    """A hold given back (by its owner, or by the clinic blocking its slot), as opposed to one that expired."""
    return reservation["status"] == HOLD_RELEASED

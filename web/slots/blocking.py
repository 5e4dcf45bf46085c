"""Slots blocked and unblocked by the clinic, with the bookings and holds in their way.

Staff block a slot, or a range, for ``maintenance`` (status ``maintenance``) or ``leave`` (status
``unavailable``: the staff member is away). The design only lists the four statuses; we use both blocked
statuses so the reason survives without another column, and the booking engine treats both alike: a hold's
``TAKE_PLACE`` takes only ``available`` slots, and places given back by a cancellation leave a blocked slot
blocked. A slot with active bookings (pending_payment, confirmed, in_progress) or an unexpired pending hold
is not blocked: the refusal names them. ``cancel_active=True`` (the "cancel these bookings" path) cancels
them first with the engine's ``cancel`` and reason ``clinic_request`` (CLINIC_POLICY: 100 % refund of what
was paid), releases the holds, then blocks; in_progress bookings (the pet is in the clinic) cannot be
cancelled and keep the slot unblocked.

Lock discipline: the selected slot rows are locked ``FOR UPDATE`` in ``slot_id`` order (the order of every
multi-slot statement of the engine) before bookings and holds are looked at, so a hold cannot slip in
between the check and the block: it either committed before the lock (and is seen) or waits and then finds
the slot no longer ``available``. On the cancel path the bookings and holds to cancel are then locked
``NOWAIT``: the engine locks a booking or hold before its slot, so waiting for one while holding the
slots could deadlock; someone changing one of them at that very moment gets "try again" (409) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from web.accounts.auth import CurrentUser
from web.booking import queries as booking_queries
from web.booking import services as booking_services
from web.booking.codes import display_booking_code
from web.clinics import services as clinics
from web.core import clock, sql
from web.core.announcements import announce
from web.core.audit import transaction_as
from web.core.errors import Conflict, InvalidInput, NotFound
from web.core.messages import N_, Message
from web.slots import places
from web.slots import statements as q
from web.slots.generation import check_day_range, format_local, listed

BLOCK_REASONS = {"maintenance": "maintenance", "leave": "unavailable"}


@dataclass
class ActiveBooking:
    booking_id: UUID
    booking_code: str
    status: str
    version: int
    slot_id: UUID
    start_time: datetime
    pet_name: str
    owner_name: str
    final_amount: Decimal
    payment_status: str

    @property
    def paid(self) -> bool:
        """Its money was taken: cancelling it (clinic-initiated) refunds ``final_amount`` in full."""
        return self.payment_status == "paid"


@dataclass
class BlockResult:
    changed: int  # slots blocked (or unblocked)
    unchanged: int  # already in the wanted state
    skipped_started: int  # slots that already started are left alone
    cancelled_bookings: list[UUID] = field(default_factory=list)
    released_holds: int = 0


class SlotsHaveBookings(Conflict):
    """Blocking refused: these slots have active bookings or holds (or bookings that cannot be cancelled)."""

    def __init__(self, detail: str, bookings: list[ActiveBooking], holds: int, cancellable: bool) -> None:
        super().__init__(detail)
        self.bookings = bookings
        self.holds = holds
        self.cancellable = cancellable


def _check_selection(slot_ids: list[UUID] | None, first_day: date | None, last_day: date | None,
                     today: date) -> None:
    if slot_ids:
        if len(slot_ids) > 2000:
            raise InvalidInput({"slot_ids": N_("Choose at most 2000 slots at once.")})
        return
    if first_day is None and last_day is None:
        raise InvalidInput({"slot_ids": N_("Choose slots, or a range of days.")},
                           detail=N_("Choose slots, or a range of days."))
    errors: dict[str, Message] = {}
    check_day_range(first_day, last_day, today, errors, allow_past=True)
    if errors:
        raise InvalidInput(errors)


async def _locked_selection(clinic_id: UUID, slot_ids: list[UUID] | None, first_day: date | None,
                            last_day: date | None, staff_id: UUID | None, service_id: UUID | None
                            ) -> tuple[list[asyncpg.Record], int]:
    """The selected slots of the clinic that have not started, locked; and how many had started."""
    rows = await sql.fetch(q.LOCK_SELECTED_SLOTS, clinic_id, slot_ids or None, None if slot_ids else first_day,
                           None if slot_ids else last_day, staff_id, service_id)
    if slot_ids and len(rows) != len(set(slot_ids)):
        raise NotFound(N_("Some of these slots do not exist at this clinic."))
    now = datetime.now().astimezone()
    upcoming = [row for row in rows if row["start_time"] > now]
    return upcoming, len(rows) - len(upcoming)


def _announce_days(clinic_id: UUID, slots: list[asyncpg.Record], changed: list[asyncpg.Record]) -> None:
    """The days of the slots that changed, announced to the open pages (web/core/announcements.py)."""
    changed_ids = {row["slot_id"] for row in changed}
    for day in {row["date"] for row in slots if row["slot_id"] in changed_ids}:
        announce("slots", clinic_id, day)


def _active_booking(row: asyncpg.Record) -> ActiveBooking:
    return ActiveBooking(**{name: row[name] for name in ActiveBooking.__dataclass_fields__})


async def block_slots(actor: CurrentUser, clinic_id: UUID, *, slot_ids: list[UUID] | None = None,
                      first_day: date | None = None, last_day: date | None = None, staff_id: UUID | None = None,
                      service_id: UUID | None = None, reason: str = "maintenance",
                      cancel_active: bool = False) -> BlockResult:
    """Block the chosen slots (``slot_ids``, or every slot of ``first_day`` … ``last_day``, optionally of one
    staff member and/or service) for ``reason`` ('maintenance' → status maintenance, 'leave' → unavailable).
    Slots that already started are left alone; already blocked ones are counted as unchanged.

    A slot with active bookings or unexpired holds is refused with SlotsHaveBookings (409) naming them, and
    nothing changes; with ``cancel_active`` they are cancelled first (clinic_request: full refund of what
    was paid) and the holds released, in the same transaction."""
    if reason not in BLOCK_REASONS:
        raise InvalidInput({"reason": N_("Choose maintenance or leave.")})
    clinic = await clinics.clinic_of_staff(actor, clinic_id)
    zone = clinic["timezone"]
    _check_selection(slot_ids, first_day, last_day, clock.clinic_today(zone))
    try:
        async with transaction_as(actor.user_id, reason="block_slots", metadata={"block_reason": reason}):
            slots, started = await _locked_selection(clinic_id, slot_ids, first_day, last_day, staff_id, service_id)
            ids = [row["slot_id"] for row in slots]
            dates = sorted({row["date"] for row in slots})
            bookings = [_active_booking(row) for row in
                        await booking_queries.active_bookings_in_slots(clinic_id, ids, dates)] if ids else []
            holds = await booking_queries.live_holds_in_slots(clinic_id, ids, dates) if ids else []
            in_progress = [booking for booking in bookings if booking.status == "in_progress"]
            if (bookings or holds) and (not cancel_active or in_progress):
                raise _bookings_error(bookings, len(holds), zone, cancellable=not in_progress)
            result = BlockResult(0, 0, started)
            if holds:
                # The engine cancels them NOWAIT (a hold being confirmed right now would deadlock with us):
                # someone confirming one at this moment gets their booking, and we say "try again".
                freed = await booking_services.cancel_holds_on_blocked_slots(
                    clinic_id, [row["reservation_id"] for row in holds])
                await places.give_back_many(clinic_id, freed)
                result.released_holds = len(holds)
            if bookings:
                # The same NOWAIT reason: someone changing one of these bookings now (it locks the booking,
                # then the slot we hold) would deadlock with us.
                await booking_services.lock_bookings_nowait(clinic_id, [booking.booking_id for booking in bookings])
            for booking in bookings:
                # The engine's own cancel (nested in this transaction): refund by CLINIC_POLICY, payment
                # record updated, history written, place returned (the slot is not blocked yet).
                await booking_services.cancel(actor, booking.booking_id, "clinic_request", booking.version,
                                              notes=f"Slot blocked ({reason}).")
                result.cancelled_bookings.append(booking.booking_id)
            changed = await sql.fetch(q.BLOCK, clinic_id, ids, dates, BLOCK_REASONS[reason]) if ids else []
            _announce_days(clinic_id, slots, changed)
    except (asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError) as exc:
        raise Conflict(N_("These slots were being changed at the same moment. Please try again.")) from exc
    result.changed = len(changed)
    result.unchanged = len(slots) - len(changed)
    return result


def _bookings_error(bookings: list[ActiveBooking], holds: int, zone: str, cancellable: bool) -> SlotsHaveBookings:
    named = [f"{display_booking_code(b.booking_code)} ({b.pet_name}, {format_local(b.start_time, zone)})"
             for b in bookings]
    if not cancellable:
        detail = N_("Some of these slots have a pet checked in right now (%(bookings)s): they cannot be blocked "
                    "until the visit is completed.",
                    bookings=listed([n for n, b in zip(named, bookings, strict=True) if b.status == "in_progress"]))
    elif bookings and holds:
        detail = N_("These slots have active bookings: %(bookings)s, and %(holds)d place(s) held by someone "
                    "paying right now. Cancel these bookings (clinic-initiated, full refund) or move them "
                    "first.", bookings=listed(named), holds=holds)
    elif bookings:
        detail = N_("These slots have active bookings: %(bookings)s. Cancel these bookings (clinic-initiated, "
                    "full refund) or move them first.", bookings=listed(named))
    else:
        detail = N_("%(holds)d place(s) of these slots are held by someone booking right now. Try again in a "
                    "few minutes, or cancel the holds.", holds=holds)
    return SlotsHaveBookings(detail, bookings, holds, cancellable)


async def cancel_bookings_and_block(actor: CurrentUser, clinic_id: UUID, **selection) -> BlockResult:
    """The clinic-initiated path: cancel the selected slots' active bookings (full refund), release their
    holds, and block them, in one transaction. Same arguments as ``block_slots``."""
    return await block_slots(actor, clinic_id, cancel_active=True, **selection)


async def unblock_slots(actor: CurrentUser, clinic_id: UUID, *, slot_ids: list[UUID] | None = None,
                        first_day: date | None = None, last_day: date | None = None, staff_id: UUID | None = None,
                        service_id: UUID | None = None) -> BlockResult:
    """Open blocked slots (maintenance or leave) for booking again: 'available', or 'booked' if full.
    Slots that already started stay as they are."""
    clinic = await clinics.clinic_of_staff(actor, clinic_id)
    _check_selection(slot_ids, first_day, last_day, clock.clinic_today(clinic["timezone"]))
    try:
        async with transaction_as(actor.user_id, reason="unblock_slots"):
            slots, started = await _locked_selection(clinic_id, slot_ids, first_day, last_day, staff_id, service_id)
            ids = [row["slot_id"] for row in slots]
            dates = sorted({row["date"] for row in slots})
            changed = await sql.fetch(q.UNBLOCK, clinic_id, ids, dates) if ids else []
            _announce_days(clinic_id, slots, changed)
    except asyncpg.DeadlockDetectedError as exc:
        raise Conflict(N_("These slots were being changed at the same moment. Please try again.")) from exc
    return BlockResult(len(changed), len(slots) - len(changed), started)

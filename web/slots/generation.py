"""Slot generation from a weekly template, and blocking/unblocking slots: the only place these rules live.

Generation
    A template (weekdays, clinic-local opening and closing time, service, optional staff member, slot length,
    capacity, optional price) is laid over a date range. Times are clinic-local wall-clock times turned into
    ``timestamptz`` with the clinic's IANA zone (``clinics.timezone``), day by day, so a slot's ``date`` is
    always its clinic-local day (the ``slots_check_local_day`` trigger checks it). All candidate slots go in
    with ONE ``INSERT ... SELECT FROM unnest(...) ON CONFLICT (...) DO NOTHING`` leaning on the schema's
    ``slots_unique_start UNIQUE NULLS NOT DISTINCT (clinic_id, service_id, staff_id, start_time, date)``
    (migration 0002): the identity of a slot is clinic + service + staff + start, so running the same template
    twice creates nothing new. ``slots.price`` exists: a template price overrides the service's price for
    these slots; without one the slot's price stays NULL and the service's price applies (``COALESCE``).

    A staff member cannot be in two slots at once: candidates that overlap one of their existing slots (of any
    service) are refused with the clashing times listed, and nothing is written. The per-partition exclusion
    constraints ``slots_YYYYMM_no_staff_overlap`` (migration 0003) are the last line against a concurrent
    generation: their error is translated into the same 409, never a 500.

Blocking
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

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from web.accounts.auth import CurrentUser
from web.booking import services as booking_services
from web.booking.codes import display_booking_code
from web.core import sql
from web.core.audit import transaction_as
from web.core.errors import Conflict, InvalidInput, NotFound
from web.core.formatting import zone_abbreviation
from web.core.messages import N_, Message
from web.slots import places

MAX_RANGE_DAYS = 62
MAX_DAYS_AHEAD = 366
MAX_CAPACITY = 100
MIN_LENGTH_MINUTES = 5
MAX_LENGTH_MINUTES = 720
MAX_PRICE = Decimal("999999999")
# How many clashing times / bookings a message names before "and N more".
MAX_LISTED = 10
# The list page shows at most this many slots.
MAX_LISTED_SLOTS = 2000

BLOCK_REASONS = {"maintenance": "maintenance", "leave": "unavailable"}
BLOCKED_STATUSES = ("maintenance", "unavailable")
ACTIVE_BOOKING_STATUSES = ("pending_payment", "confirmed", "in_progress")


@dataclass(frozen=True)
class SlotTemplate:
    """A week's pattern. ``weekdays``: 0 = Monday … 6 = Sunday; times are clinic-local wall-clock times."""

    weekdays: frozenset[int]
    opening: time
    closing: time
    service_id: UUID
    staff_id: UUID | None = None
    length_minutes: int | None = None  # None: the service's duration
    capacity: int = 1
    price: Decimal | None = None  # None: the service's price applies


@dataclass
class GenerationResult:
    created: int
    existing: int  # candidates whose slot (same clinic, service, staff, start) already existed
    skipped_past: int  # candidates that would start in the past (today before now)
    first_day: date
    last_day: date
    timezone: str
    created_slot_ids: list[UUID] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        return self.created + self.existing


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


@dataclass
class BlockResult:
    changed: int  # slots blocked (or unblocked)
    unchanged: int  # already in the wanted state
    skipped_started: int  # slots that already started are left alone
    cancelled_bookings: list[UUID] = field(default_factory=list)
    released_holds: int = 0


class StaffOverlap(Conflict):
    """Generation refused: the staff member already has slots at these times."""

    def __init__(self, detail: str, clashes: list[dict]) -> None:
        super().__init__(detail)
        self.clashes = clashes


class SlotsHaveBookings(Conflict):
    """Blocking refused: these slots have active bookings or holds (or bookings that cannot be cancelled)."""

    def __init__(self, detail: str, bookings: list[ActiveBooking], holds: int, cancellable: bool) -> None:
        super().__init__(detail)
        self.bookings = bookings
        self.holds = holds
        self.cancellable = cancellable


# ------------------------------------------------------------------ SQL

CLINIC = "SELECT clinic_id, name, timezone FROM clinics WHERE clinic_id = $1"

SERVICE_OF_CLINIC = """
SELECT service_id, name, duration_minutes, price, currency, is_active FROM services
WHERE service_id = $1 AND clinic_id = $2
"""

STAFF_OF_CLINIC = "SELECT staff_id, name, is_active FROM staff WHERE staff_id = $1 AND clinic_id = $2"

# Existing slots of the staff member that overlap a candidate, except the candidate's own identity (which
# ON CONFLICT skips). Overlaps can only happen on the same clinic-local day (a slot stays within its day),
# so ``s.date = c.day`` keeps each probe inside one partition.
STAFF_CLASHES = """
SELECT c.start_time AS new_start, c.end_time AS new_end, s.start_time, s.end_time, sv.name AS service_name
FROM unnest($1::date[], $2::timestamptz[], $3::timestamptz[]) AS c(day, start_time, end_time)
JOIN slots s ON s.date = c.day AND s.staff_id = $4
     AND tstzrange(s.start_time, s.end_time) && tstzrange(c.start_time, c.end_time)
JOIN services sv ON sv.service_id = s.service_id
WHERE NOT (s.clinic_id = $5 AND s.service_id = $6 AND s.start_time = c.start_time)
ORDER BY c.start_time, s.start_time
"""

INSERT_GENERATED = """
INSERT INTO slots (clinic_id, service_id, staff_id, date, start_time, end_time, capacity, remaining, price,
                   created_by)
SELECT $1, $2, $3, c.day, c.start_time, c.end_time, $4, $4, $5, $6
FROM unnest($7::date[], $8::timestamptz[], $9::timestamptz[]) AS c(day, start_time, end_time)
ON CONFLICT (clinic_id, service_id, staff_id, start_time, date) DO NOTHING
RETURNING slot_id
"""

# The slots a block/unblock acts on, row-locked in slot_id order. $2: explicit ids (or NULL); $3/$4: a day
# range (or NULL); $5/$6: optional staff/service filters.
LOCK_SELECTED_SLOTS = """
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.status, s.capacity, s.remaining
FROM slots s
WHERE s.clinic_id = $1
  AND ($2::uuid[] IS NULL OR s.slot_id = ANY($2::uuid[]))
  AND ($3::date IS NULL OR s.date >= $3::date)
  AND ($4::date IS NULL OR s.date <= $4::date)
  AND ($5::uuid IS NULL OR s.staff_id = $5::uuid)
  AND ($6::uuid IS NULL OR s.service_id = $6::uuid)
ORDER BY s.slot_id
FOR UPDATE OF s
"""

ACTIVE_BOOKINGS = """
SELECT b.booking_id, b.booking_code, b.status, b.version, b.slot_id, s.start_time, p.name AS pet_name,
       u.name AS owner_name, b.final_amount, b.payment_status
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN pets p ON p.pet_id = b.pet_id
JOIN users u ON u.user_id = b.user_id
WHERE b.slot_id = ANY($1::uuid[]) AND b.slot_date = ANY($2::date[])
  AND b.status IN ('pending_payment', 'confirmed', 'in_progress')
ORDER BY s.start_time, b.booking_code
"""

PENDING_HOLDS = """
SELECT r.reservation_id, r.slot_id, r.slot_date FROM reservations r
WHERE r.slot_id = ANY($1::uuid[]) AND r.slot_date = ANY($2::date[])
  AND r.status = 'pending' AND r.expires_at > now()
"""

LOCK_BOOKINGS_NOWAIT = "SELECT 1 FROM bookings WHERE booking_id = ANY($1::uuid[]) FOR UPDATE NOWAIT"
BLOCK = """
UPDATE slots SET status = $3, version = version + 1
WHERE slot_id = ANY($1::uuid[]) AND date = ANY($2::date[]) AND status IN ('available', 'booked')
RETURNING slot_id
"""

# A full slot ('booked' means no place left) goes back to 'booked', any other to 'available'.
UNBLOCK = """
UPDATE slots SET status = CASE WHEN remaining = 0 THEN 'booked' ELSE 'available' END, version = version + 1
WHERE slot_id = ANY($1::uuid[]) AND date = ANY($2::date[]) AND status IN ('maintenance', 'unavailable')
RETURNING slot_id
"""


# ------------------------------------------------------------------ helpers


async def _clinic_for(actor: CurrentUser, clinic_id: UUID) -> asyncpg.Record:
    """The clinic, if ``actor`` works there (receptionist) or manages it; else "not found"."""
    if not actor.is_staff or not actor.works_at(clinic_id):
        raise NotFound(N_("No such clinic."))
    clinic = await sql.fetchrow(CLINIC, clinic_id)
    if clinic is None:
        raise NotFound(N_("No such clinic."))
    return clinic


def clinic_today(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def format_local(value: datetime, zone: str) -> str:
    """``2026-12-01 09:00 WITA``: the same in every language (messages embed it)."""
    return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone_abbreviation(zone)}"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" (+{len(items) - MAX_LISTED})" if len(items) > MAX_LISTED else "")


def candidate_slots(template: SlotTemplate, length_minutes: int, first_day: date, last_day: date,
                    zone: str) -> list[tuple[date, datetime, datetime]]:
    """(clinic-local day, start, end) of every slot the template lays over the days, start and end as
    aware datetimes in the clinic's zone (a wall-clock time made aware with zoneinfo: correct on any day,
    also in zones with daylight saving). A slot ends no later than the closing time."""
    tz = ZoneInfo(zone)
    length = timedelta(minutes=length_minutes)
    slots = []
    day = first_day
    while day <= last_day:
        if day.weekday() in template.weekdays:
            start = datetime.combine(day, template.opening)
            closing = datetime.combine(day, template.closing)
            while start + length <= closing:
                slots.append((day, start.replace(tzinfo=tz), (start + length).replace(tzinfo=tz)))
                start += length
        day += timedelta(days=1)
    return slots


def _check_day_range(first_day: date | None, last_day: date | None, today: date, errors: dict[str, Message],
                     allow_past: bool = False) -> None:
    if first_day is None:
        errors["first_day"] = N_("Give the first day.")
    if last_day is None:
        errors["last_day"] = N_("Give the last day.")
    if first_day is None or last_day is None:
        return
    if last_day < first_day:
        errors["last_day"] = N_("The last day cannot be before the first day.")
    elif (last_day - first_day).days + 1 > MAX_RANGE_DAYS:
        errors["last_day"] = N_("Choose at most %(days)d days at once.", days=MAX_RANGE_DAYS)
    if not allow_past and first_day < today:
        errors["first_day"] = N_("The first day cannot be in the past.")
    if (last_day - today).days > MAX_DAYS_AHEAD:
        errors["last_day"] = N_("Plan at most %(days)d days ahead.", days=MAX_DAYS_AHEAD)


async def _ensure_month_partitions(first_day: date, last_day: date) -> None:
    """The monthly partitions of the range (the same premake function the daily job runs; idempotent)."""
    months, month = [], date(first_day.year, first_day.month, 1)
    while month <= last_day:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    await sql.execute("SELECT vetbook_create_month_partitions(m) FROM unnest($1::date[]) AS m", months)


# ------------------------------------------------------------------ generation


async def generate_slots(actor: CurrentUser, clinic_id: UUID, template: SlotTemplate, first_day: date | None,
                         last_day: date | None) -> GenerationResult:
    """Create the slots ``template`` lays over ``first_day`` … ``last_day`` (clinic-local days, inclusive).

    Idempotent: slots that already exist (same clinic, service, staff member and start) are counted in
    ``existing`` and left as they are. Starts already past (today) are skipped. Raises InvalidInput (422) for
    bad input, StaffOverlap (409) when the staff member already has a slot at an overlapping time; nothing is
    written then. One transaction, attributed to ``actor``."""
    clinic = await _clinic_for(actor, clinic_id)
    zone = clinic["timezone"]
    errors: dict[str, Message] = {}
    weekdays = set(template.weekdays)
    if not weekdays:
        errors["weekdays"] = N_("Choose at least one weekday.")
    elif not weekdays <= set(range(7)):
        errors["weekdays"] = N_("Weekdays are 0 (Monday) to 6 (Sunday).")
    if template.opening is None:
        errors["opening"] = N_("Give the opening time.")
    if template.closing is None:
        errors["closing"] = N_("Give the closing time.")
    elif template.opening is not None and template.closing <= template.opening:
        errors["closing"] = N_("The closing time must be after the opening time.")
    if not isinstance(template.capacity, int) or not 1 <= template.capacity <= MAX_CAPACITY:
        errors["capacity"] = N_("Capacity must be between 1 and %(max)d.", max=MAX_CAPACITY)
    if template.length_minutes is not None and not MIN_LENGTH_MINUTES <= template.length_minutes <= MAX_LENGTH_MINUTES:
        errors["length_minutes"] = N_("A slot lasts between %(min)d and %(max)d minutes.",
                                      min=MIN_LENGTH_MINUTES, max=MAX_LENGTH_MINUTES)
    if template.price is not None and not Decimal(0) <= template.price <= MAX_PRICE:
        errors["price"] = N_("The price must be zero or more.")
    _check_day_range(first_day, last_day, clinic_today(zone), errors)

    service = await sql.fetchrow(SERVICE_OF_CLINIC, template.service_id, clinic_id) if template.service_id else None
    if service is None:
        errors["service_id"] = N_("Choose a service of this clinic.")
    elif not service["is_active"]:
        errors["service_id"] = N_("This service is no longer offered.")
    if template.staff_id is not None:
        staff = await sql.fetchrow(STAFF_OF_CLINIC, template.staff_id, clinic_id)
        if staff is None:
            errors["staff_id"] = N_("Choose someone who works at this clinic.")
        elif not staff["is_active"]:
            errors["staff_id"] = N_("This person no longer works here.")
    length_minutes = template.length_minutes or (service["duration_minutes"] if service else None)
    candidates = []
    if not errors:
        candidates = candidate_slots(template, length_minutes, first_day, last_day, zone)
        if not candidates:
            errors["weekdays"] = N_("This template makes no slot in these days: check the weekdays, and that "
                                    "the opening hours are at least one slot long.")
    if errors:
        raise InvalidInput(errors)

    now = datetime.now(ZoneInfo(zone))
    future = [candidate for candidate in candidates if candidate[1] > now]
    skipped_past = len(candidates) - len(future)
    result = GenerationResult(0, 0, skipped_past, first_day, last_day, zone)
    if not future:
        return result
    days, starts, ends = (list(column) for column in zip(*future, strict=True))
    await _ensure_month_partitions(first_day, last_day)
    try:
        async with transaction_as(actor.user_id, reason="generate_slots"):
            if template.staff_id is not None:
                clashes = await sql.fetch(STAFF_CLASHES, days, starts, ends, template.staff_id, clinic_id,
                                          template.service_id)
                if clashes:
                    raise _overlap_error([dict(row) for row in clashes], zone)
            rows = await sql.fetch(
                INSERT_GENERATED, clinic_id, template.service_id, template.staff_id, template.capacity,
                template.price, actor.user_id, days, starts, ends,
            )
    except asyncpg.ExclusionViolationError as exc:
        # Another generation for this staff member committed between our check and our insert.
        raise StaffOverlap(N_("This staff member just got slots at overlapping times from someone else. "
                              "Reload and try again."), []) from exc
    result.created = len(rows)
    result.existing = len(future) - len(rows)
    result.created_slot_ids = [row["slot_id"] for row in rows]
    return result


def _overlap_error(clashes: list[dict], zone: str) -> StaffOverlap:
    times = []
    for clash in clashes:
        start, end = (clash[key].astimezone(ZoneInfo(zone)) for key in ("start_time", "end_time"))
        text = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} {zone_abbreviation(zone)} ({clash['service_name']})"
        if text not in times:
            times.append(text)
    return StaffOverlap(
        N_("This staff member already has slots at overlapping times: %(times)s. Nothing was created; "
           "change the hours or the staff member.", times=_listed(times)),
        clashes,
    )


# ------------------------------------------------------------------ blocking


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
    _check_day_range(first_day, last_day, today, errors, allow_past=True)
    if errors:
        raise InvalidInput(errors)


async def _locked_selection(clinic_id: UUID, slot_ids: list[UUID] | None, first_day: date | None,
                            last_day: date | None, staff_id: UUID | None, service_id: UUID | None
                            ) -> tuple[list[asyncpg.Record], int]:
    """The selected slots of the clinic that have not started, locked; and how many had started."""
    rows = await sql.fetch(LOCK_SELECTED_SLOTS, clinic_id, slot_ids or None, None if slot_ids else first_day,
                           None if slot_ids else last_day, staff_id, service_id)
    if slot_ids and len(rows) != len(set(slot_ids)):
        raise NotFound(N_("Some of these slots do not exist at this clinic."))
    now = datetime.now().astimezone()
    upcoming = [row for row in rows if row["start_time"] > now]
    return upcoming, len(rows) - len(upcoming)


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
    clinic = await _clinic_for(actor, clinic_id)
    zone = clinic["timezone"]
    _check_selection(slot_ids, first_day, last_day, clinic_today(zone))
    try:
        async with transaction_as(actor.user_id, reason="block_slots", metadata={"block_reason": reason}):
            slots, started = await _locked_selection(clinic_id, slot_ids, first_day, last_day, staff_id, service_id)
            ids = [row["slot_id"] for row in slots]
            dates = sorted({row["date"] for row in slots})
            bookings = [_active_booking(row) for row in await sql.fetch(ACTIVE_BOOKINGS, ids, dates)] if ids else []
            holds = await sql.fetch(PENDING_HOLDS, ids, dates) if ids else []
            in_progress = [booking for booking in bookings if booking.status == "in_progress"]
            if (bookings or holds) and (not cancel_active or in_progress):
                raise _bookings_error(bookings, len(holds), zone, cancellable=not in_progress)
            result = BlockResult(0, 0, started)
            if holds:
                # The engine cancels them NOWAIT (a hold being confirmed right now would deadlock with us):
                # someone confirming one at this moment gets their booking, and we say "try again".
                freed = await booking_services.cancel_holds_on_blocked_slots([row["reservation_id"] for row in holds])
                await places.give_back_many(freed)
                result.released_holds = len(holds)
            if bookings:
                # The same NOWAIT reason: someone changing one of these bookings now (it locks the booking,
                # then the slot we hold) would deadlock with us.
                await sql.execute(LOCK_BOOKINGS_NOWAIT, [booking.booking_id for booking in bookings])
            for booking in bookings:
                # The engine's own cancel (nested in this transaction): refund by CLINIC_POLICY, payment
                # record updated, history written, place returned (the slot is not blocked yet).
                await booking_services.cancel(actor, booking.booking_id, "clinic_request", booking.version,
                                              notes=f"Slot blocked ({reason}).")
                result.cancelled_bookings.append(booking.booking_id)
            changed = await sql.fetch(BLOCK, ids, dates, BLOCK_REASONS[reason]) if ids else []
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
                    bookings=_listed([n for n, b in zip(named, bookings, strict=True) if b.status == "in_progress"]))
    elif bookings and holds:
        detail = N_("These slots have active bookings: %(bookings)s, and %(holds)d place(s) held by someone "
                    "paying right now. Cancel these bookings (clinic-initiated, full refund) or move them "
                    "first.", bookings=_listed(named), holds=holds)
    elif bookings:
        detail = N_("These slots have active bookings: %(bookings)s. Cancel these bookings (clinic-initiated, "
                    "full refund) or move them first.", bookings=_listed(named))
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
    clinic = await _clinic_for(actor, clinic_id)
    _check_selection(slot_ids, first_day, last_day, clinic_today(clinic["timezone"]))
    try:
        async with transaction_as(actor.user_id, reason="unblock_slots"):
            slots, started = await _locked_selection(clinic_id, slot_ids, first_day, last_day, staff_id, service_id)
            ids = [row["slot_id"] for row in slots]
            dates = sorted({row["date"] for row in slots})
            changed = await sql.fetch(UNBLOCK, ids, dates) if ids else []
    except asyncpg.DeadlockDetectedError as exc:
        raise Conflict(N_("These slots were being changed at the same moment. Please try again.")) from exc
    return BlockResult(len(changed), len(slots) - len(changed), started)


# ------------------------------------------------------------------ reads for the pages


async def clinic_slots(actor: CurrentUser, clinic_id: UUID, first_day: date, last_day: date,
                       staff_id: UUID | None = None, service_id: UUID | None = None) -> list[dict]:
    """The clinic's slots of the days (clinic-local), with service, staff and active booking counts."""
    await _clinic_for(actor, clinic_id)
    rows = await sql.fetch(
        """
        SELECT s.slot_id, s.date, s.start_time, s.end_time, s.status, s.capacity, s.remaining,
               COALESCE(s.price, sv.price) AS price, sv.currency, sv.name AS service_name, st.name AS staff_name,
               (SELECT count(*) FROM bookings b WHERE b.slot_id = s.slot_id AND b.slot_date = s.date
                  AND b.status IN ('pending_payment', 'confirmed', 'in_progress')) AS active_bookings,
               s.start_time <= now() AS started
        FROM slots s
        JOIN services sv ON sv.service_id = s.service_id
        LEFT JOIN staff st ON st.staff_id = s.staff_id
        WHERE s.clinic_id = $1 AND s.date BETWEEN $2 AND $3
          AND ($4::uuid IS NULL OR s.staff_id = $4::uuid) AND ($5::uuid IS NULL OR s.service_id = $5::uuid)
        ORDER BY s.start_time, st.name NULLS FIRST, sv.name
        LIMIT $6
        """,
        clinic_id, first_day, last_day, staff_id, service_id, MAX_LISTED_SLOTS,
    )
    return [dict(row) for row in rows]


async def clinic_choices(actor: CurrentUser, clinic_id: UUID) -> dict:
    """The clinic, its services and staff (for the forms), and the clinics ``actor`` may switch to."""
    clinic = await _clinic_for(actor, clinic_id)
    services = await sql.fetch(
        "SELECT service_id, name, duration_minutes, price, currency FROM services "
        "WHERE clinic_id = $1 AND is_active ORDER BY name", clinic_id)
    staff = await sql.fetch(
        "SELECT staff_id, name, role FROM staff WHERE clinic_id = $1 AND is_active ORDER BY name", clinic_id)
    if actor.clinic_id is None:
        clinics = await sql.fetch("SELECT clinic_id, name FROM clinics ORDER BY name")
    else:
        clinics = await sql.fetch("SELECT clinic_id, name FROM clinics WHERE clinic_id = $1", actor.clinic_id)
    return {"clinic": dict(clinic), "services": [dict(r) for r in services], "staff": [dict(r) for r in staff],
            "clinics": [dict(r) for r in clinics]}


async def default_clinic_id(actor: CurrentUser) -> UUID | None:
    """The actor's own clinic; a manager of every clinic starts with the first by name."""
    if actor.clinic_id is not None:
        return actor.clinic_id
    return await sql.fetchval("SELECT clinic_id FROM clinics ORDER BY name LIMIT 1")


# Whole rupiah, with or without thousands separators as people type them: 150000, 150.000, 150,000.
PRICE_PATTERN = re.compile(r"^(\d+|\d{1,3}([.,]\d{3})+)$")


def parse_price(text: str | None) -> Decimal | None:
    """'' → None; '150000' / '150.000' / '150,000' → Decimal; anything else → ValueError."""
    cleaned = (text or "").strip().replace(" ", "")
    if not cleaned:
        return None
    if not PRICE_PATTERN.match(cleaned):
        raise ValueError(cleaned)
    return Decimal(cleaned.replace(".", "").replace(",", ""))

"""Creating slots, from a weekly template or one at a time (the API): the only place these rules live.

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

Blocking lives in web/slots/blocking.py, the reads of pages in web/slots/queries.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from web.accounts.auth import CurrentUser
from web.clinics import services as clinics
from web.clinics.tables import Service, Staff
from web.core import clock, shard_keys, sql
from web.core.announcements import announce
from web.core.audit import transaction_as
from web.core.errors import Conflict, DomainError, InvalidInput
from web.core.formatting import zone_abbreviation
from web.core.messages import N_, Message
from web.slots import statements as q
from web.slots.tables import Slot

MAX_RANGE_DAYS = 62
MAX_DAYS_AHEAD = 366
MAX_CAPACITY = 100
MIN_LENGTH_MINUTES = 5
MAX_LENGTH_MINUTES = 720
MAX_PRICE = Decimal("999999999")
# How many clashing times / bookings a message names before "and N more".
MAX_LISTED = 10



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






class StaffOverlap(Conflict):
    """Generation refused: the staff member already has slots at these times."""

    def __init__(self, detail: str, clashes: list[dict]) -> None:
        super().__init__(detail)
        self.clashes = clashes




# ------------------------------------------------------------------ SQL












# ------------------------------------------------------------------ helpers


def format_local(value: datetime, zone: str) -> str:
    """``2026-12-01 09:00 WITA``: the same in every language (messages embed it)."""
    return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone_abbreviation(zone)}"


def listed(items: list[str]) -> str:
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


def check_day_range(first_day: date | None, last_day: date | None, today: date, errors: dict[str, Message],
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


# ------------------------------------------------------------------ the rules of every new slot


def _check_terms(capacity: object, length_minutes: int | None, price: Decimal | None, errors: dict[str, Message],
                 length_field: str) -> None:
    """Capacity, length (None: the service's) and price (None: the service's) of new slots."""
    if not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        errors["capacity"] = N_("Capacity must be between 1 and %(max)d.", max=MAX_CAPACITY)
    if length_minutes is not None and not MIN_LENGTH_MINUTES <= length_minutes <= MAX_LENGTH_MINUTES:
        errors[length_field] = N_("A slot lasts between %(min)d and %(max)d minutes.",
                                  min=MIN_LENGTH_MINUTES, max=MAX_LENGTH_MINUTES)
    if price is not None and not (price.is_finite() and Decimal(0) <= price <= MAX_PRICE):
        errors["price"] = N_("The price must be zero or more.")


async def _check_service_and_staff(clinic_id: UUID, service_id: UUID | None, staff_id: UUID | None,
                                   errors: dict[str, Message]) -> dict | None:
    """The service (offered by this clinic, still active) and the staff member (working there, still
    active) of new slots; the service's row, or None with an error."""
    service = await Service.select(Service.service_id, Service.name, Service.duration_minutes, Service.price,
                                   Service.currency, Service.is_active).where(
        (Service.service_id == service_id) & (Service.clinic_id == clinic_id)).first() if service_id else None
    if service is None:
        errors["service_id"] = N_("Choose a service of this clinic.")
    elif not service["is_active"]:
        errors["service_id"] = N_("This service is no longer offered.")
    if staff_id is not None:
        staff = await Staff.select(Staff.staff_id, Staff.name, Staff.is_active).where(
            (Staff.staff_id == staff_id) & (Staff.clinic_id == clinic_id)).first()
        if staff is None:
            errors["staff_id"] = N_("Choose someone who works at this clinic.")
        elif not staff["is_active"]:
            errors["staff_id"] = N_("This person no longer works here.")
    return service


# ------------------------------------------------------------------ generation


async def generate_slots(actor: CurrentUser, clinic_id: UUID, template: SlotTemplate, first_day: date | None,
                         last_day: date | None) -> GenerationResult:
    """Create the slots ``template`` lays over ``first_day`` … ``last_day`` (clinic-local days, inclusive).

    Idempotent: slots that already exist (same clinic, service, staff member and start) are counted in
    ``existing`` and left as they are. Starts already past (today) are skipped. Raises InvalidInput (422) for
    bad input, StaffOverlap (409) when the staff member already has a slot at an overlapping time; nothing is
    written then. One transaction, attributed to ``actor``."""
    clinic = await clinics.clinic_of_staff(actor, clinic_id)
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
    _check_terms(template.capacity, template.length_minutes, template.price, errors, length_field="length_minutes")
    check_day_range(first_day, last_day, clock.clinic_today(zone), errors)
    service = await _check_service_and_staff(clinic_id, template.service_id, template.staff_id, errors)
    length_minutes = template.length_minutes or (service["duration_minutes"] if service else None)
    candidates = []
    if not errors:
        candidates = candidate_slots(template, length_minutes, first_day, last_day, zone)
        if not candidates:
            errors["weekdays"] = N_("This template makes no slot in these days: check the weekdays, and that "
                                    "the opening hours are at least one slot long.")
    if errors:
        raise InvalidInput(errors)

    now = clock.utc_now()
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
                clashes = await sql.fetch(q.STAFF_CLASHES, clinic_id, template.staff_id, template.service_id,
                                          days, starts, ends)
                if clashes:
                    raise _overlap_error([dict(row) for row in clashes], zone)
            rows = await sql.fetch(
                q.INSERT_GENERATED, clinic_id, template.service_id, template.staff_id, template.capacity,
                template.price, actor.user_id, [shard_keys.new_id(clinic_id, day) for day in days], days, starts,
                ends,
            )
            for day in {row["date"] for row in rows}:
                announce("slots", clinic_id, day)
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
           "change the hours or the staff member.", times=listed(times)),
        clashes,
    )


# ------------------------------------------------------------------ blocking
















# ------------------------------------------------------------------ reads for the pages












async def create_slot(actor: CurrentUser, clinic_id: UUID, service_id: UUID, staff_id: UUID | None,
                      start_time: datetime, end_time: datetime, capacity: int, price: Decimal | None) -> dict:
    """Open one bookable slot (the API; receptionists of the clinic, managers of it), by the same rules as
    generation: an active service and staff member of the clinic, capacity, length and price within the
    bounds, in the future, within one clinic-local day. One transaction, attributed to ``actor``."""
    clinic = await clinics.clinic_of_staff(actor, clinic_id)
    errors: dict[str, Message] = {}
    length_minutes = None
    if start_time.tzinfo is None or end_time.tzinfo is None:
        errors["start_time"] = N_("Give times with their UTC offset, e.g. 2026-12-01T09:00:00+07:00.")
    elif end_time <= start_time:
        errors["end_time"] = N_("The end must be after the start.")
    else:
        length_minutes = max(1, int((end_time - start_time).total_seconds() // 60))
    _check_terms(capacity, length_minutes, price, errors, length_field="end_time")
    if errors:
        raise InvalidInput(errors)
    await _check_service_and_staff(clinic_id, service_id, staff_id, errors)
    if errors:
        raise InvalidInput(errors)
    if start_time <= clock.utc_now():
        raise InvalidInput({"start_time": N_("A new slot must start in the future.")})
    local_day = start_time.astimezone(ZoneInfo(clinic["timezone"])).date()
    await _ensure_month_partitions(local_day, local_day)
    try:
        async with transaction_as(actor.user_id, reason="create_slot"):
            rows = await Slot.insert(Slot(
                slot_id=shard_keys.new_id(clinic_id, local_day), clinic_id=clinic_id, service_id=service_id, staff_id=staff_id, date=local_day, start_time=start_time,
                end_time=end_time, capacity=capacity, remaining=capacity, price=price, created_by=actor.user_id,
            )).returning(Slot.slot_id, Slot.clinic_id, Slot.service_id, Slot.staff_id, Slot.date, Slot.start_time,
                         Slot.end_time, Slot.status, Slot.capacity, Slot.remaining, Slot.price)
            announce("slots", clinic_id, local_day)
    except asyncpg.ExclusionViolationError as exc:
        raise Conflict(N_("This staff member already has a slot at an overlapping time.")) from exc
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(N_("A slot of this service and staff member already starts at this time.")) from exc
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "slots_within_one_local_day":
            raise InvalidInput({"end_time": N_("A slot must end on the day it starts (clinic time).")}) from exc
        raise DomainError(N_("The slot breaks a rule of the schedule."), status=422) from exc
    return rows[0]

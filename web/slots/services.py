"""Domain services of slots: the design's slot search (3.3.1) and creating slots."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from web.accounts.auth import CurrentUser
from web.core import sql
from web.core.errors import Conflict, DomainError, InvalidInput, NotFound
from web.core.messages import N_
from web.slots.statements import BOOKABLE_WITH_NOTICE

# The design's query 3.3.1, offering only what a hold would take (web/slots/statements.py BOOKABLE_WITH_NOTICE: open, a
# place left, later than the clinic's minimum booking notice), with the price the booking will charge.
# The date is the clinic-local day; it is the partition key, so one monthly partition is scanned.
SEARCH_SLOTS = f"""
SELECT s.slot_id, s.start_time, s.end_time, s.capacity, s.remaining, COALESCE(s.price, sv.price) AS price,
       s.staff_id, sv.currency
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1
  AND s.date = $2
  AND s.service_id = $3
  AND {BOOKABLE_WITH_NOTICE}
ORDER BY s.start_time ASC
"""

MAX_PRICE = Decimal("999999999")

INSERT_SLOT = """
INSERT INTO slots (clinic_id, service_id, staff_id, date, start_time, end_time, capacity, remaining, price, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)
RETURNING slot_id, clinic_id, service_id, staff_id, date, start_time, end_time, status, capacity, remaining, price
"""


async def search_slots(clinic_id: UUID, service_id: UUID, day: date) -> list[dict]:
    """Free slots of a service on a clinic-local day, by start time."""
    return [dict(row) for row in await sql.fetch_read(SEARCH_SLOTS, clinic_id, day, service_id)]


async def create_slot(actor: CurrentUser, clinic_id: UUID, service_id: UUID, staff_id: UUID | None,
                      start_time: datetime, end_time: datetime, capacity: int, price: Decimal | None) -> dict:
    """Open a bookable slot (receptionists of the clinic, managers of it)."""
    if not actor.works_at(clinic_id):
        raise NotFound(N_("No such clinic."))
    errors: dict[str, str] = {}
    if start_time.tzinfo is None or end_time.tzinfo is None:
        errors["start_time"] = N_("Give times with their UTC offset, e.g. 2026-12-01T09:00:00+07:00.")
    elif end_time <= start_time:
        errors["end_time"] = N_("The end must be after the start.")
    elif end_time - start_time > timedelta(hours=12):
        errors["end_time"] = N_("A slot lasts at most 12 hours.")
    if not 1 <= capacity <= 100:
        errors["capacity"] = N_("Capacity must be between 1 and 100.")
    if price is not None and not (price.is_finite() and Decimal(0) <= price <= MAX_PRICE):
        errors["price"] = N_("The price must be zero or more.")
    if errors:
        raise InvalidInput(errors)
    zone = await sql.fetchval("SELECT timezone FROM clinics WHERE clinic_id = $1", clinic_id)
    service_ok = await sql.fetchval(
        "SELECT EXISTS (SELECT 1 FROM services WHERE service_id = $1 AND clinic_id = $2)", service_id, clinic_id)
    if not service_ok:
        raise InvalidInput({"service_id": N_("This clinic has no such service.")})
    if staff_id is not None and not await sql.fetchval(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE staff_id = $1 AND clinic_id = $2)", staff_id, clinic_id):
        raise InvalidInput({"staff_id": N_("Nobody with this id works at this clinic.")})
    if start_time <= datetime.now(start_time.tzinfo):
        raise InvalidInput({"start_time": N_("A new slot must start in the future.")})
    local_day = start_time.astimezone(ZoneInfo(zone)).date()
    try:
        await sql.execute("SELECT vetbook_create_month_partitions($1)", local_day)
        row = await sql.fetchrow(INSERT_SLOT, clinic_id, service_id, staff_id, local_day, start_time, end_time,
                                 capacity, price, actor.user_id)
    except asyncpg.ExclusionViolationError as exc:
        raise Conflict(N_("This staff member already has a slot at an overlapping time.")) from exc
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(N_("A slot of this service and staff member already starts at this time.")) from exc
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "slots_within_one_local_day":
            raise InvalidInput({"end_time": N_("A slot must end on the day it starts (clinic time).")}) from exc
        raise DomainError(N_("The slot breaks a rule of the schedule."), status=422) from exc
    return dict(row)


# ------------------------------------------------------------------ the owner's slot finder (pages)

# "Bookable" is what the engine's hold (web/slots/statements.py TAKE_PLACE) can take right now: the
# finder offers nothing a hold would refuse.
BOOKABLE_SLOTS_OF_DAY = f"""
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.capacity, s.remaining,
       COALESCE(s.price, sv.price) AS price, sv.currency
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1 AND s.service_id = $2 AND s.date = $3 AND {BOOKABLE_WITH_NOTICE}
ORDER BY s.start_time
"""

# One grouped query for the finder's week strip (never one query per day).
BOOKABLE_PLACES_PER_DAY = f"""
SELECT s.date, count(*)::int AS slots, sum(s.remaining)::int AS places
FROM slots s
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1 AND s.service_id = $2 AND s.date BETWEEN $3 AND $4 AND {BOOKABLE_WITH_NOTICE}
GROUP BY s.date
"""

# The bookable slots of the same clinic and service nearest in time to a slot (someone just took it).
# Two weeks either side keeps the scan to at most two monthly partitions' worth of days.
NEAREST_FREE_SLOTS = f"""
WITH taken AS (
    SELECT slot_id, clinic_id, service_id, date, start_time FROM slots WHERE slot_id = $1
)
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.remaining, COALESCE(s.price, sv.price) AS price,
       sv.currency, c.timezone
FROM taken t
JOIN slots s ON s.clinic_id = t.clinic_id AND s.service_id = t.service_id AND s.slot_id <> t.slot_id
            AND s.date BETWEEN t.date - 14 AND t.date + 14
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE {BOOKABLE_WITH_NOTICE}
ORDER BY abs(extract(epoch FROM s.start_time - t.start_time)), s.start_time
LIMIT $2
"""


async def bookable_slots(clinic_id: UUID, service_id: UUID, day: date) -> list[dict]:
    """The slots of a service on a clinic-local day that an owner can hold now, by start time."""
    return [dict(row) for row in await sql.fetch(BOOKABLE_SLOTS_OF_DAY, clinic_id, service_id, day)]


async def bookable_places_per_day(clinic_id: UUID, service_id: UUID, first_day: date, last_day: date) -> dict:
    """``{day: {"slots": n, "places": m}}`` for the days from ``first_day`` to ``last_day`` that have any
    bookable place (days without one are absent)."""
    rows = await sql.fetch(BOOKABLE_PLACES_PER_DAY, clinic_id, service_id, first_day, last_day)
    return {row["date"]: {"slots": row["slots"], "places": row["places"]} for row in rows}


async def nearest_free_slots(slot_id: UUID, limit: int = 5) -> list[dict]:
    """Bookable slots of the same clinic and service as ``slot_id``, nearest in time first (one query)."""
    return [dict(row) for row in await sql.fetch(NEAREST_FREE_SLOTS, slot_id, limit)]


async def slot_place(slot_id: UUID) -> dict | None:
    """Where and when a slot is (clinic, service, clinic-local day), or None for an unknown slot."""
    row = await sql.fetchrow("SELECT clinic_id, service_id, date FROM slots WHERE slot_id = $1", slot_id)
    return dict(row) if row else None

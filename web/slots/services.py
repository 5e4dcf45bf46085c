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

# The design's query 3.3.1 (plus: not started yet, and the price the booking will charge). The date is
# the clinic-local day; it is the partition key, so one monthly partition is scanned.
SEARCH_SLOTS = """
SELECT s.slot_id, s.start_time, s.end_time, s.capacity, s.remaining, COALESCE(s.price, sv.price) AS price,
       s.staff_id, sv.currency
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
WHERE s.clinic_id = $1
  AND s.date = $2
  AND s.service_id = $3
  AND s.status = 'available'
  AND s.remaining > 0
  AND s.start_time > now()
ORDER BY s.start_time ASC
"""

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
        raise NotFound("No such clinic.")
    errors: dict[str, str] = {}
    if start_time.tzinfo is None or end_time.tzinfo is None:
        errors["start_time"] = "Give times with their UTC offset, e.g. 2026-12-01T09:00:00+07:00."
    elif end_time <= start_time:
        errors["end_time"] = "The end must be after the start."
    elif end_time - start_time > timedelta(hours=12):
        errors["end_time"] = "A slot lasts at most 12 hours."
    if not 1 <= capacity <= 100:
        errors["capacity"] = "Capacity must be between 1 and 100."
    if price is not None and not Decimal(0) <= price <= Decimal("999999999"):
        errors["price"] = "The price must be zero or more."
    if errors:
        raise InvalidInput(errors)
    zone = await sql.fetchval("SELECT timezone FROM clinics WHERE clinic_id = $1", clinic_id)
    service_ok = await sql.fetchval(
        "SELECT EXISTS (SELECT 1 FROM services WHERE service_id = $1 AND clinic_id = $2)", service_id, clinic_id)
    if not service_ok:
        raise InvalidInput({"service_id": "This clinic has no such service."})
    if staff_id is not None and not await sql.fetchval(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE staff_id = $1 AND clinic_id = $2)", staff_id, clinic_id):
        raise InvalidInput({"staff_id": "Nobody with this id works at this clinic."})
    if start_time <= datetime.now(start_time.tzinfo):
        raise InvalidInput({"start_time": "A new slot must start in the future."})
    local_day = start_time.astimezone(ZoneInfo(zone)).date()
    try:
        await sql.execute("SELECT vetbook_create_month_partitions($1)", local_day)
        row = await sql.fetchrow(INSERT_SLOT, clinic_id, service_id, staff_id, local_day, start_time, end_time,
                                 capacity, price, actor.user_id)
    except asyncpg.ExclusionViolationError as exc:
        raise Conflict("This staff member already has a slot at an overlapping time.") from exc
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("A slot of this service and staff member already starts at this time.") from exc
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "slots_within_one_local_day":
            raise InvalidInput({"end_time": "A slot must end on the day it starts (clinic time)."}) from exc
        raise DomainError("The slot breaks a rule of the schedule.", status=422) from exc
    return dict(row)

"""Reads of slots for pages and the API: the free slots an owner can hold, and a clinic's schedule for staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from web.accounts.auth import CurrentUser
from web.clinics import services as clinics
from web.core import shard_keys, sql
from web.slots import statements as q
from web.slots.tables import Slot

# The list page shows at most this many slots.
MAX_LISTED_SLOTS = 2000


async def clinic_slots(actor: CurrentUser, clinic_id: UUID, first_day: date, last_day: date,
                       staff_id: UUID | None = None, service_id: UUID | None = None) -> list[dict]:
    """The clinic's slots of the days (clinic-local), with service, staff and active booking counts."""
    await clinics.clinic_of_staff(actor, clinic_id)
    rows = await sql.fetch(q.CLINIC_SLOTS,
        clinic_id, first_day, last_day, staff_id, service_id, MAX_LISTED_SLOTS,
    )
    return [dict(row) for row in rows]


async def clinic_choices(actor: CurrentUser, clinic_id: UUID) -> dict:
    """The clinic, its services and staff (for the forms), and the clinics ``actor`` may switch to."""
    clinic = await clinics.clinic_of_staff(actor, clinic_id)
    return {"clinic": clinic, "services": await clinics.list_active_services(clinic_id),
            "staff": await clinics.active_staff(clinic_id), "clinics": await clinics.clinics_for(actor)}


async def default_clinic_id(actor: CurrentUser) -> UUID | None:
    """The actor's own clinic; a manager of every clinic starts with the first by name."""
    covered = await clinics.clinics_for(actor)
    return covered[0]["clinic_id"] if covered else None


async def search_slots(clinic_id: UUID, service_id: UUID, day: date) -> list[dict]:
    """Free slots of a service on a clinic-local day, by start time."""
    return [dict(row) for row in await sql.fetch_read(q.SEARCH_SLOTS, clinic_id, day, service_id)]


async def bookable_slots(clinic_id: UUID, service_id: UUID, day: date) -> list[dict]:
    """The slots of a service on a clinic-local day that an owner can hold now, by start time."""
    return [dict(row) for row in await sql.fetch_read(q.BOOKABLE_SLOTS_OF_DAY, clinic_id, service_id, day)]


async def bookable_places_per_day(clinic_id: UUID, service_id: UUID, first_day: date, last_day: date) -> dict:
    """``{day: {"slots": n, "places": m}}`` for the days from ``first_day`` to ``last_day`` that have any
    bookable place (days without one are absent)."""
    rows = await sql.fetch_read(q.BOOKABLE_PLACES_PER_DAY, clinic_id, service_id, first_day, last_day)
    return {row["date"]: {"slots": row["slots"], "places": row["places"]} for row in rows}


async def nearest_free_slots(slot_id: UUID, limit: int = 5) -> list[dict]:
    """Bookable slots of the same clinic and service as ``slot_id``, nearest in time first (one query)."""
    key = await locate_slot(slot_id)
    if key is None:
        return []
    rows = await sql.fetch_read(q.NEAREST_FREE_SLOTS, key.clinic_id, key.slot_id, key.day, limit)
    return [dict(row) for row in rows]


async def slot_place(slot_id: UUID) -> dict | None:
    """Where and when a slot is (clinic, service, clinic-local day), or None for an unknown slot."""
    key = await locate_slot(slot_id)
    if key is None:
        return None
    return await Slot.select(Slot.clinic_id, Slot.service_id, Slot.date).where(
        (Slot.clinic_id == key.clinic_id) & (Slot.slot_id == slot_id) & (Slot.date == key.day)).first()


@dataclass(frozen=True)
class SlotKey:
    """A slot's whole key: its clinic (the shard) and day (the partition) with its id."""

    clinic_id: UUID
    slot_id: UUID
    day: date


async def locate_slot(slot_id: UUID) -> SlotKey | None:
    """The slot's key, from its id (web/core/shard_keys.py), or by a search by id for an id of the old form.
    A key read from an id says where the slot would be, not that it exists: the statements that use it
    find no row then. None when a search finds nothing."""
    clinic_id = await shard_keys.clinic_of(slot_id)
    if clinic_id is not None:
        return SlotKey(clinic_id, slot_id, shard_keys.day_of(slot_id))
    row = await sql.fetchrow(q.SLOT_KEY_BY_ID, slot_id)
    return SlotKey(row["clinic_id"], slot_id, row["date"]) if row else None

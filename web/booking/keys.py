"""Where a hold or a booking is: its clinic (the shard on Citus) and, for a booking, the window its
``created_at`` (the partition key) lies in, read from the id (web/core/shard_keys.py) without a search.

Ids of the old form (rows made before migration 0021) are found by a search by id, across clinics.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from web.booking import statements as q
from web.core import shard_keys, sql
from web.core.shard_keys import CreatedWithin


@dataclass(frozen=True)
class HoldKey:
    clinic_id: UUID
    reservation_id: UUID


@dataclass(frozen=True)
class BookingKey:
    clinic_id: UUID
    booking_id: UUID
    created: CreatedWithin


async def locate_hold(reservation_id: UUID) -> HoldKey | None:
    """The hold's key (from its id; a search for an id of the old form: None when none is found)."""
    clinic_id = await shard_keys.clinic_of(reservation_id)
    if clinic_id is None:
        clinic_id = await sql.fetchval(q.HOLD_KEY_BY_ID, reservation_id)
        if clinic_id is None:
            return None
    return HoldKey(clinic_id, reservation_id)


async def locate_booking(booking_id: UUID) -> BookingKey | None:
    """The booking's key (from its id; a search for an id of the old form: None when none is found)."""
    clinic_id = await shard_keys.clinic_of(booking_id)
    if clinic_id is not None:
        return BookingKey(clinic_id, booking_id, CreatedWithin.around(shard_keys.day_of(booking_id)))
    row = await sql.fetchrow(q.BOOKING_KEY_BY_ID, booking_id)
    if row is None:
        return None
    return BookingKey(row["clinic_id"], booking_id, CreatedWithin.exactly(row["created_at"]))


def key_of(booking: dict) -> BookingKey:
    """The exact key of a booking row already read."""
    return BookingKey(booking["clinic_id"], booking["booking_id"], CreatedWithin.exactly(booking["created_at"]))

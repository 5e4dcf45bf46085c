"""The "this pet already has a visit then" check (web/booking/statements.py PET_IS_BUSY) looks at the pet's
holds and visits at the same clinic on the same slot date, through the partial indexes on (clinic_id, pet_id,
slot_date) of migration 0021. A clinic's slots share its zone and stay within their local day, so two
overlapping visits at one clinic always have the same slot date: these tests prove the check finds them at
the day's edges, and that the indexes serve it. Visits at other clinics live on other shards (docs/scaling.md)
and are not looked at: the last test states that rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.db.factories import (
    make_booking,
    make_clinic,
    make_pet,
    make_reservation,
    make_service,
    make_slot,
    make_user,
)
from web.booking import statements as q

# A zone far from UTC, so that the clinic-local day and the UTC day differ for most of the day.
ZONE = "Pacific/Kiritimati"


def _late_evening() -> datetime:
    """23:20 local, two weeks ahead: a slot until 23:50 ends just before the local midnight."""
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=14)
    return datetime(day.year, day.month, day.day, 23, 20, tzinfo=ZoneInfo(ZONE))


async def _visit_and_an_overlapping_slot(conn: asyncpg.Connection, existing: str) -> tuple[dict, dict, dict]:
    """A pet with a visit (a booking or a live hold) at 23:20-23:50 local, and another slot of the same clinic
    at 23:35-23:59 that overlaps it."""
    clinic = await make_clinic(conn, timezone=ZONE)
    service = await make_service(conn, clinic)
    start = _late_evening()
    visited = await make_slot(conn, clinic, service, start=start, minutes=30)
    overlapping = await make_slot(conn, clinic, service, start=start + timedelta(minutes=15), minutes=24)
    assert visited["date"] == overlapping["date"]
    pet_owner = await make_user(conn)
    pet = await make_pet(conn, pet_owner)
    if existing == "booking":
        await make_booking(conn, visited, pet_owner, pet, status="confirmed", payment_status="paid")
    else:
        await make_reservation(conn, visited, pet_owner, pet)
    return pet, visited, overlapping


async def _busy(conn: asyncpg.Connection, clinic_id, pet: dict, start: datetime, end: datetime, day) -> bool:
    return await conn.fetchval(q.PET_IS_BUSY, clinic_id, pet["pet_id"], start, end, None, day)


@pytest.mark.parametrize("existing", ["booking", "hold"])
async def test_an_overlap_at_the_same_clinic_is_found(conn, existing: str) -> None:
    pet, _, overlapping = await _visit_and_an_overlapping_slot(conn, existing)
    assert await _busy(conn, overlapping["clinic_id"], pet, overlapping["start_time"], overlapping["end_time"],
                       overlapping["date"]) is True


async def test_a_visit_just_after_is_not_an_overlap(conn) -> None:
    pet, visited, _ = await _visit_and_an_overlapping_slot(conn, "booking")
    later = visited["end_time"]
    assert await _busy(conn, visited["clinic_id"], pet, later, later + timedelta(minutes=5), visited["date"]) is False


async def test_the_check_reads_the_partial_indexes(conn) -> None:
    pet, visited, overlapping = await _visit_and_an_overlapping_slot(conn, "booking")
    # Other owners' live holds at the clinic, so that the clinic alone is not what narrows the search (as in a
    # clinic that is open for business), and statistics that say so.
    clinic = await conn.fetchrow("SELECT * FROM clinics WHERE clinic_id = $1", visited["clinic_id"])
    service = await conn.fetchrow("SELECT * FROM services WHERE clinic_id = $1", visited["clinic_id"])
    for hour in range(8, 20):
        other_slot = await make_slot(conn, dict(clinic), dict(service), start=_late_evening().replace(hour=hour),
                                     capacity=3, remaining=3)
        for _ in range(3):
            other_owner = await make_user(conn)
            await make_reservation(conn, other_slot, other_owner, await make_pet(conn, other_owner))
    await conn.execute("ANALYZE reservations")
    async with conn.transaction():
        # Tiny tables would make a scan cheaper; forbidding scans shows whether an index can serve at all.
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch(
            "EXPLAIN " + q.PET_IS_BUSY, visited["clinic_id"], pet["pet_id"], overlapping["start_time"],
            overlapping["end_time"], None, overlapping["date"]))
    assert "Seq Scan" not in plan, plan
    assert "Index Scan using reservations_pending_pet_idx" in plan, plan
    # Each bookings partition answers from its copy of bookings_active_pet_visits_idx (named by columns).
    bookings_partitions = await conn.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'bookings'::regclass")
    assert plan.count("_clinic_id_pet_id_slot_date_idx on bookings_") == bookings_partitions, plan


async def test_a_visit_at_another_clinic_is_that_clinics_to_see(conn) -> None:
    """Sharded by clinic, a hold's checks read the clinic's own shard only: the pet's visit at another
    clinic at the same time does not refuse it (the owner's bookings page lists both)."""
    pet, visited, _ = await _visit_and_an_overlapping_slot(conn, "booking")
    elsewhere = await make_clinic(conn, timezone=ZONE)
    same_time = await make_slot(conn, elsewhere, await make_service(conn, elsewhere), start=visited["start_time"])
    assert await _busy(conn, visited["clinic_id"], pet, same_time["start_time"], same_time["end_time"],
                       same_time["date"]) is True
    assert await _busy(conn, elsewhere["clinic_id"], pet, same_time["start_time"], same_time["end_time"],
                       same_time["date"]) is False

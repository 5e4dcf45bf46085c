"""The "this pet already has a visit then" check (web/booking/statements.py PET_IS_BUSY) looks only at
visits whose slot date lies within two days of the new one's, through the partial indexes of migration 0019.
These tests prove the window loses nothing at the widest gap time zones allow, and that the indexes serve it."""

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

# The two zones furthest apart: UTC+14 and UTC-11. One instant is two calendar days apart in them.
EARLIEST_ZONE, LATEST_ZONE = "Pacific/Kiritimati", "Pacific/Pago_Pago"


def _instant_two_local_days_apart() -> datetime:
    """A future instant (about two weeks ahead) that is 00:30 local in EARLIEST_ZONE and therefore 23:30 of
    the day before the day before in LATEST_ZONE."""
    day = datetime.now(ZoneInfo(EARLIEST_ZONE)).date() + timedelta(days=14)
    return datetime(day.year, day.month, day.day, 0, 30, tzinfo=ZoneInfo(EARLIEST_ZONE))


async def _visit_far_east_and_hold_far_west(conn: asyncpg.Connection, existing: str) -> tuple[dict, dict, dict]:
    """A pet with a visit (a booking or a live hold) at 00:30-00:55 in EARLIEST_ZONE, and a slot at
    23:25-23:55 in LATEST_ZONE that overlaps it in time although its slot date is two days earlier."""
    instant = _instant_two_local_days_apart()
    east = await make_clinic(conn, timezone=EARLIEST_ZONE)
    west = await make_clinic(conn, timezone=LATEST_ZONE)
    east_slot = await make_slot(conn, east, await make_service(conn, east), start=instant, minutes=25)
    west_start = instant - timedelta(minutes=5)
    west_slot = await make_slot(conn, west, await make_service(conn, west), start=west_start, minutes=30)
    assert (east_slot["date"] - west_slot["date"]).days == 2
    pet_owner = await make_user(conn)
    pet = await make_pet(conn, pet_owner)
    if existing == "booking":
        await make_booking(conn, east_slot, pet_owner, pet, status="confirmed", payment_status="paid")
    else:
        await make_reservation(conn, east_slot, pet_owner, pet)
    return pet, east_slot, west_slot


@pytest.mark.parametrize("existing", ["booking", "hold"])
async def test_an_overlap_two_local_days_apart_is_found(conn, existing: str) -> None:
    pet, _, west_slot = await _visit_far_east_and_hold_far_west(conn, existing)
    busy = await conn.fetchval(q.PET_IS_BUSY, pet["pet_id"], west_slot["start_time"], west_slot["end_time"],
                               None, west_slot["date"])
    assert busy is True


async def test_a_visit_just_after_is_not_an_overlap(conn) -> None:
    pet, east_slot, _ = await _visit_far_east_and_hold_far_west(conn, "booking")
    later = east_slot["end_time"]
    assert await conn.fetchval(q.PET_IS_BUSY, pet["pet_id"], later, later + timedelta(minutes=30), None,
                               east_slot["date"]) is False


async def test_the_check_reads_the_partial_indexes(conn) -> None:
    pet, east_slot, west_slot = await _visit_far_east_and_hold_far_west(conn, "booking")
    async with conn.transaction():
        # Tiny tables would make a scan cheaper; forbidding scans shows whether an index can serve at all.
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch(
            "EXPLAIN " + q.PET_IS_BUSY, pet["pet_id"], west_slot["start_time"], west_slot["end_time"], None,
            west_slot["date"]))
    assert "Seq Scan" not in plan, plan
    assert "Index Scan using reservations_pending_pet_idx" in plan, plan
    # Each bookings partition answers from its copy of bookings_active_pet_visits_idx (named by columns).
    bookings_partitions = await conn.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'bookings'::regclass")
    assert plan.count("_pet_id_slot_date_idx on bookings_") == bookings_partitions, plan

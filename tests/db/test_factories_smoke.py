"""The factories write valid rows: every later rule test starts from a row the schema accepts."""

import asyncpg

from tests.db.factories import make_booking, make_reservation, make_world


async def test_a_valid_world_is_accepted(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    reservation = await make_reservation(conn, world["slot"], world["owner"], world["pet"])
    booking = await make_booking(conn, world["slot"], world["owner"], world["pet"], reservation_id=reservation["reservation_id"])
    assert booking["status"] == "pending_payment"
    assert booking["payment_status"] == "pending"
    assert await conn.fetchval("SELECT count(*) FROM bookings") == 1

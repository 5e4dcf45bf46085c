"""Who changed a booking is recorded, and a pooled connection never carries one person's name into the
next request or a background job's change."""

from __future__ import annotations

import asyncpg
import pytest

from tests.accounts.helpers import make_person
from tests.conftest import APP_POOL_MAX, restart_pool
from tests.db.factories import make_booking, make_world
from web.booking.tables import Booking
from web.core import sql
from web.core.audit import transaction_as


@pytest.fixture
async def single_connection_pool(app):
    """Shrink the app's pool (with its rules: no session reset on release) to one connection for the test,
    so every transaction reuses it."""
    await restart_pool(1)
    try:
        yield
    finally:
        await restart_pool(APP_POOL_MAX)


async def test_actor_reason_and_metadata_reach_history_and_do_not_leak(app_database_url, single_connection_pool):
    setup = await asyncpg.connect(app_database_url)
    try:
        world = await make_world(setup)
        booking = await make_booking(
            setup, world["slot"], world["owner"], world["pet"], status="confirmed", payment_status="paid"
        )
    finally:
        await setup.close()
    receptionist = await make_person("receptionist", clinic_id=world["clinic"]["clinic_id"])

    async with transaction_as(receptionist["user_id"], reason="check_in", metadata={"desk": 2}):
        first_backend = await sql.fetchval("SELECT pg_backend_pid()")
        await Booking.update({Booking.status: "in_progress"}).where(Booking.booking_id == booking["booking_id"])

    # A later change with no person behind it (a job), on the very same pooled connection.
    assert await sql.fetchval("SELECT pg_backend_pid()") == first_backend
    await Booking.update({Booking.status: "completed", Booking.completed_at: Booking.updated_at}).where(
        Booking.booking_id == booking["booking_id"]
    )

    history = await sql.fetch(
        "SELECT previous_status, new_status, changed_by, change_reason, metadata::text AS metadata "
        "FROM booking_history WHERE booking_id = $1 ORDER BY changed_at, new_status DESC",
        booking["booking_id"],
    )
    assert [tuple(row) for row in history] == [
        ("confirmed", "in_progress", receptionist["user_id"], "check_in", '{"desk": 2}'),
        ("in_progress", "completed", None, "system_update", None),
    ]

"""Who changed a booking is recorded, and a pooled connection never carries one person's name into the
next request or a background job's change."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.accounts.helpers import make_person
from tests.conftest import APP_POOL_MAX, restart_pool
from tests.db.factories import make_booking, make_world
from web.accounts.services import load_current_user
from web.booking import services
from web.core import sql
from web.core.audit import Actor, current_actor, transaction_as


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
    receptionist = await load_current_user(
        (await make_person("receptionist", clinic_id=world["clinic"]["clinic_id"]))["user_id"])

    # The receptionist checks the pet in (the engine writes the history row with the transaction's actor).
    first_backend = await sql.fetchval("SELECT pg_backend_pid()")
    checked_in = await services.check_in(receptionist, booking["booking_id"], booking["version"])
    assert current_actor() == Actor(None)

    # A later change with no person behind it (a job), on the very same pooled connection.
    assert await sql.fetchval("SELECT pg_backend_pid()") == first_backend
    async with transaction_as(None, reason="system_update"):
        locked = await services.booking_for_update(booking["booking_id"])
        completed = await sql.fetchrow(
            "UPDATE bookings SET status = 'completed', completed_at = now() WHERE clinic_id = $1 AND booking_id = $2 "
            "RETURNING *", locked["clinic_id"], locked["booking_id"])
        await services._record_history(locked, completed)

    history = await sql.fetch(
        "SELECT previous_status, new_status, changed_by, change_reason, metadata::text AS metadata "
        "FROM booking_history WHERE booking_id = $1 ORDER BY changed_at, new_status DESC",
        booking["booking_id"],
    )
    assert checked_in["status"] == "in_progress"
    assert [tuple(row) for row in history] == [
        ("confirmed", "in_progress", receptionist.user_id, "check_in", None),
        ("in_progress", "completed", None, "system_update", None),
    ]


async def test_the_actor_of_a_nested_transaction_is_its_own_and_the_outer_one_comes_back(app) -> None:
    outer, inner = uuid.uuid4(), uuid.uuid4()
    async with transaction_as(outer, reason="block_slots", metadata={"block_reason": "leave"}):
        async with transaction_as(inner, reason="clinic_request"):
            assert current_actor() == Actor(inner, "clinic_request")
        assert current_actor() == Actor(outer, "block_slots", {"block_reason": "leave"})
    assert current_actor() == Actor(None)

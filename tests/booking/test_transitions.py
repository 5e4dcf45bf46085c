"""The booking state machine: its table, every transition it forbids refused over the API with nothing
changed, every transition it allows performed, and optimistic locking on the booking's version."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import asyncpg
import httpx
import pytest

from tests.booking.helpers import (
    ClinicScene,
    Person,
    book,
    clinic_scene,
    mark_paid,
    owner,
    paid_booking,
    past_slot,
    slot,
    snapshot,
)
from tests.db.factories import make_booking, make_payment
from web.booking import services, state
from web.booking.state import TRANSITIONS

STATUSES = ("pending_payment", "confirmed", "in_progress", "completed", "cancelled", "rescheduled", "no_show")

# The lifecycle of a booking, written out by hand (not derived from the code under test).
ALLOWED = {
    ("pending_payment", "confirmed"),  # paid
    ("pending_payment", "cancelled"),  # cancelled, or its payment deadline passed
    ("pending_payment", "rescheduled"),
    ("confirmed", "in_progress"),  # checked in
    ("confirmed", "cancelled"),
    ("confirmed", "rescheduled"),
    ("confirmed", "no_show"),
    ("in_progress", "completed"),
}

# API operation -> (who performs it, path suffix, status it leads to, participle in the refusal).
# How each status reads inside the refusal (web/booking/state.py STATUS_WORDS).
STATUS_IN_A_SENTENCE = {
    "pending_payment": "waiting for payment", "confirmed": "confirmed", "in_progress": "checked in",
    "completed": "completed", "cancelled": "cancelled", "rescheduled": "rescheduled", "no_show": "a no-show",
}

OPERATIONS = {
    "cancel": ("owner", "cancel", "cancelled", "cancelled"),
    "reschedule": ("owner", "reschedule", "rescheduled", "rescheduled"),
    "check_in": ("receptionist", "check-in", "in_progress", "checked in"),
    "complete": ("receptionist", "complete", "completed", "completed"),
    "no_show": ("receptionist", "no-show", "no_show", "marked as a no-show"),
}

# Statuses whose booking still uses its place (the rest gave it back).
KEEPS_PLACE = {"pending_payment", "confirmed", "in_progress", "completed", "no_show"}


def test_transition_table_is_the_hand_written_lifecycle() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    assert {(current, wanted) for current, targets in TRANSITIONS.items() for wanted in targets} == ALLOWED
    for current in STATUSES:
        for wanted in STATUSES:
            assert state.can_transition(current, wanted) == ((current, wanted) in ALLOWED)
    assert state.RELEASED_PLACE == set(STATUSES) - KEEPS_PLACE
    assert not state.can_transition("confirmed", "no_such_status")
    assert not state.can_transition("no_such_status", "confirmed")


async def test_transition_table_names_exactly_the_statuses_the_schema_allows(own_database, conn) -> None:
    definition = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'bookings_status_check' "
        "AND conrelid = 'bookings'::regclass"
    )
    assert set(re.findall(r"'([a-z_]+)'", definition)) == set(STATUSES), definition


async def booking_in_status(conn: asyncpg.Connection, scene: ClinicScene, person: Person, status: str,
                            slot_row: dict) -> dict:
    """A booking written directly in ``status`` (with the payment columns that status requires), its slot's
    places consistent with it, so that only the operation under test can change anything."""
    now = await conn.fetchval("SELECT now()")
    columns: dict = {"status": status, "payment_status": "paid"}
    if status == "pending_payment":
        columns.update(payment_status="pending", payment_due_at=now + timedelta(minutes=30))
    elif status == "cancelled":
        columns.update(payment_status="failed", cancelled_at=now, cancellation_reason="customer_request")
    elif status == "completed":
        columns.update(completed_at=now)
    booking = await make_booking(conn, slot_row, person.row, person.pet, **columns)
    if columns["payment_status"] == "paid":
        payment = await make_payment(conn, booking, payment_method="card", payment_provider="sandbox",
                                     status="completed", paid_at=now)
        await conn.execute("UPDATE bookings SET payment_id = $1 WHERE booking_id = $2",
                           payment["payment_id"], booking["booking_id"])
    if status in KEEPS_PLACE:
        await conn.execute("UPDATE slots SET remaining = remaining - 1 WHERE slot_id = $1", slot_row["slot_id"])
    return dict(await conn.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking["booking_id"]))


async def perform(client: httpx.AsyncClient, scene: ClinicScene, person: Person, operation: str, booking: dict,
                  version: int, target_slot: dict | None = None) -> httpx.Response:
    actor, suffix, _, _ = OPERATIONS[operation]
    body: dict = {"version": version}
    if operation == "cancel":
        body["reason"] = "customer_request"
    if operation == "reschedule":
        body["slot_id"] = str(target_slot["slot_id"])
    headers = person.headers if actor == "owner" else scene.receptionist.headers
    return await client.post(f"/api/v1/bookings/{booking['booking_id']}/{suffix}", json=body, headers=headers)


@pytest.mark.parametrize("status", STATUSES)
async def test_every_operation_on_a_booking_in_this_status_is_refused_or_performed_as_the_machine_says(
    own_database, conn, client: httpx.AsyncClient, status: str
) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    for index, operation in enumerate(OPERATIONS):
        # A no-show needs a visit that has started: otherwise the time rule, not the state, would refuse it.
        if operation == "no_show":
            booked_slot = await past_slot(conn, scene)
        else:
            booked_slot = await slot(conn, scene, hour=8 + index)
        target = await slot(conn, scene, hour=14 + index)
        booking = await booking_in_status(conn, scene, person, status, booked_slot)
        assert await services.slot_invariant_violations() == []
        before = await snapshot(conn)

        response = await perform(client, scene, person, operation, booking, booking["version"], target)

        wanted, participle = OPERATIONS[operation][2], OPERATIONS[operation][3]
        if (status, wanted) in ALLOWED:
            assert response.status_code == 200, (status, operation, response.text)
            after = dict(await conn.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking["booking_id"]))
            assert after["status"] == wanted and after["version"] == booking["version"] + 1
            if operation == "reschedule":
                assert response.json()["status"] == status and response.json()["slot_id"] == str(target["slot_id"])
        else:
            assert response.status_code == 409, (status, operation, response.text)
            assert response.json()["detail"] == (
                f"A booking that is {STATUS_IN_A_SENTENCE[status]} cannot be {participle}."
            )
            assert await snapshot(conn) == before, (status, operation)
        assert await services.slot_invariant_violations() == []


async def test_no_show_before_the_start_time_is_refused_and_changes_nothing(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await booking_in_status(conn, scene, person, "confirmed", await slot(conn, scene))
    before = await snapshot(conn)

    response = await perform(client, scene, person, "no_show", booking, booking["version"])

    assert response.status_code == 409
    assert response.json()["detail"] == "A visit can be marked as a no-show only after its start time."
    assert await snapshot(conn) == before


# ------------------------------------------------------------------ optimistic locking


@pytest.mark.parametrize("operation", ["cancel", "reschedule", "check_in"])
async def test_a_stale_version_is_refused_naming_the_current_status_and_changes_nothing(
    own_database, conn, client, operation: str
) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booked_slot, target = await slot(conn, scene, hour=9), await slot(conn, scene, hour=11)
    pending = await book(person, booked_slot)
    assert pending["version"] == 1
    # Paid meanwhile (another device, the payment notification): version 2.
    assert await mark_paid(pending["booking_id"])
    before = await snapshot(conn)

    stale = await perform(client, scene, person, operation, pending, 1, target)

    assert stale.status_code == 409, stale.text
    assert stale.json()["detail"] == (
        "This booking changed meanwhile (it is now confirmed). Reload it and try again."
    )
    assert await snapshot(conn) == before
    # The same request with the current version goes through: only the version stood in the way.
    fresh = await perform(client, scene, person, operation, pending, 2, target)
    assert fresh.status_code == 200, fresh.text


async def test_a_stale_version_after_a_cancellation_names_the_cancelled_status(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene))
    cancelled = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=person.headers,
                                  json={"reason": "pet_unwell", "version": booking["version"]})
    assert cancelled.status_code == 200 and cancelled.json()["version"] == booking["version"] + 1
    before = await snapshot(conn)

    response = await perform(client, scene, person, "check_in", booking, booking["version"])

    assert response.status_code == 409
    assert "it is now cancelled" in response.json()["detail"]
    assert await snapshot(conn) == before


async def test_two_cancellations_with_the_same_version_at_once_cancel_once(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booked_slot = await slot(conn, scene, capacity=2)
    booking = await paid_booking(person, booked_slot)

    responses = await asyncio.gather(*(
        client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=headers,
                    json={"reason": "customer_request", "version": booking["version"]})
        for headers in (person.headers, scene.receptionist.headers)
    ))

    assert sorted(response.status_code for response in responses) == [200, 409]
    refused = next(response for response in responses if response.status_code == 409)
    assert "it is now cancelled" in refused.json()["detail"]
    assert await conn.fetchval("SELECT count(*) FROM booking_history WHERE booking_id = $1",
                               booking["booking_id"]) == 2  # paid, then cancelled once
    assert await conn.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", booked_slot["slot_id"]) == 2
    assert await services.slot_invariant_violations() == []

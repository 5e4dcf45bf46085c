"""booking_history: exactly one row per status change, naming who acted (the owner, the receptionist, or
nobody for a job), why, and the cancellation's refund; also when a person's change and a background job
take turns on one pooled connection."""

from __future__ import annotations

import httpx

from tests.booking.helpers import book, clinic_scene, history, mark_paid, owner, paid_booking, past_slot, slot
from tests.conftest import restart_pool
from web.app import background_jobs
from web.booking import services
from web.core import sql
from web.core.jobs import run_once_if_free

PAID = ("pending_payment", "confirmed", None, "payment_received", None)


async def staff_action(client: httpx.AsyncClient, headers: dict, booking_id, action: str, version: int) -> dict:
    response = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=headers, json={"version": version})
    assert response.status_code == 200, response.text
    return response.json()


async def test_check_in_and_completion_are_recorded_as_the_receptionist(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene))
    desk = scene.receptionist

    checked_in = await staff_action(client, desk.headers, booking["booking_id"], "check-in", booking["version"])
    completed = await staff_action(client, desk.headers, booking["booking_id"], "complete", checked_in["version"])

    assert completed["status"] == "completed" and completed["completed_at"] is not None
    assert await history(conn, booking["booking_id"]) == [
        PAID,
        ("confirmed", "in_progress", desk.user_id, "check_in", None),
        ("in_progress", "completed", desk.user_id, "complete", None),
    ]


async def test_a_no_show_is_recorded_as_the_receptionist(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    started = await past_slot(conn, scene)
    # The slot has started, so it cannot be held any more: the paid booking is written directly.
    booking_id = await conn.fetchval(
        "INSERT INTO bookings (user_id, pet_id, clinic_id, service_id, slot_id, slot_date, status, payment_status, "
        "total_amount, final_amount) VALUES ($1, $2, $3, $4, $5, $6, 'confirmed', 'paid', 150000, 150000) "
        "RETURNING booking_id",
        person.user_id, person.pet["pet_id"], scene.clinic["clinic_id"], scene.service["service_id"],
        started["slot_id"], started["date"],
    )
    await conn.execute("UPDATE slots SET remaining = 0 WHERE slot_id = $1", started["slot_id"])

    marked = await staff_action(client, scene.receptionist.headers, booking_id, "no-show", 1)

    assert marked["status"] == "no_show"
    assert await history(conn, booking_id) == [
        ("confirmed", "no_show", scene.receptionist.user_id, "no_show", None),
    ]
    # A no-show keeps its place: the visit's time was used.
    assert (await conn.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", started["slot_id"])) == 0
    assert await services.slot_invariant_violations() == []


async def test_cancellations_record_the_person_the_reason_and_the_refund(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn, pets=3)
    paid_by_owner = await paid_booking(person, await slot(conn, scene, hour=9), person.pets[0])
    paid_by_clinic = await paid_booking(person, await slot(conn, scene, hour=10), person.pets[1])
    unpaid = await book(person, await slot(conn, scene, hour=11), person.pets[2])

    for booking, headers, reason in (
        (paid_by_owner, person.headers, "schedule_conflict"),
        (paid_by_clinic, scene.receptionist.headers, "clinic_request"),
        (unpaid, person.headers, "pet_unwell"),
    ):
        response = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=headers,
                                      json={"reason": reason, "version": booking["version"], "notes": "sorry"})
        assert response.status_code == 200, response.text

    assert await history(conn, paid_by_owner["booking_id"]) == [
        PAID,
        ("confirmed", "cancelled", person.user_id, "schedule_conflict",
         {"refund_percentage": 90, "policy_applied": "standard_cancellation", "refund_amount": "135000"}),
    ]
    assert await history(conn, paid_by_clinic["booking_id"]) == [
        PAID,
        ("confirmed", "cancelled", scene.receptionist.user_id, "clinic_request",
         {"refund_percentage": 100, "policy_applied": "clinic_cancellation", "refund_amount": "150000"}),
    ]
    assert await history(conn, unpaid["booking_id"]) == [
        ("pending_payment", "cancelled", person.user_id, "pet_unwell",
         {"refund_percentage": 0, "policy_applied": "unpaid"}),
    ]
    notes = await conn.fetch("SELECT cancellation_notes FROM bookings WHERE status = 'cancelled'")
    assert [row["cancellation_notes"] for row in notes] == ["sorry"] * 3


async def test_a_reschedule_records_one_row_on_the_old_booking_and_none_on_the_new(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene, hour=9))
    target = await slot(conn, scene, hour=15)

    response = await client.post(f"/api/v1/bookings/{booking['booking_id']}/reschedule", headers=person.headers,
                                 json={"slot_id": str(target["slot_id"]), "version": booking["version"]})

    assert response.status_code == 200, response.text
    assert await history(conn, booking["booking_id"]) == [
        PAID,
        ("confirmed", "rescheduled", person.user_id, "reschedule", None),
    ]
    assert await history(conn, response.json()["booking_id"]) == []


async def test_people_and_jobs_taking_turns_on_one_pooled_connection_are_each_recorded_as_themselves(
    own_database, conn
) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn, pets=3)
    receptionist = scene.receptionist
    cancelled = await paid_booking(person, await slot(conn, scene, hour=9), person.pets[0])
    overdue = await book(person, await slot(conn, scene, hour=10), person.pets[1])
    visiting = await paid_booking(person, await slot(conn, scene, hour=11), person.pets[2])
    await conn.execute("UPDATE bookings SET payment_due_at = now() - interval '1 second' WHERE booking_id = $1",
                       overdue["booking_id"])
    # Every transaction from here on runs on the same single connection.
    await restart_pool(1)
    backend = await sql.fetchval("SELECT pg_backend_pid()")

    await services.cancel(person.user, cancelled["booking_id"], "customer_request", cancelled["version"])
    # The unpaid-expiry job as the app's scheduler runs it (inside its advisory-lock transaction).
    assert await run_once_if_free(next(job for job in background_jobs() if job.name == "expire_unpaid_bookings"))
    await services.check_in(receptionist.user, visiting["booking_id"], visiting["version"])
    paid_last = await book(person, await slot(conn, scene, hour=13), person.pets[1])
    assert await mark_paid(paid_last["booking_id"])

    assert await sql.fetchval("SELECT pg_backend_pid()") == backend
    assert await history(conn, cancelled["booking_id"]) == [
        PAID,
        ("confirmed", "cancelled", person.user_id, "customer_request",
         {"refund_percentage": 90, "policy_applied": "standard_cancellation", "refund_amount": "135000"}),
    ]
    assert await history(conn, overdue["booking_id"]) == [
        ("pending_payment", "cancelled", None, "payment_expired", {"refund_percentage": 0, "policy_applied": "unpaid"}),
    ]
    assert await history(conn, visiting["booking_id"]) == [
        PAID,
        ("confirmed", "in_progress", receptionist.user_id, "check_in", None),
    ]
    # The job ran right after a person's change, and the payment (no person) right after the owner's own
    # hold and confirmation: nobody's name, reason or refund leaked into the next change.
    assert await history(conn, paid_last["booking_id"]) == [PAID]
    assert await conn.fetchval("SELECT count(*) FROM booking_history") == 6

"""Paying at the clinic's desk: only the clinic's receptionists and managers mark a payment paid."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx

from tests.payments.helpers import person, scene, scene_with_booking, start_payment, started_payment, state_of


async def test_a_receptionist_of_the_clinic_marks_it_paid(client: httpx.AsyncClient, own_database: str,
                                                          conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "clinic")

    answer = await client.post(f"/api/v1/payments/{payment_id}/mark-paid", headers=at.receptionist.headers)
    again = await client.post(f"/api/v1/payments/{payment_id}/mark-paid", headers=at.receptionist.headers)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed"
    assert answer.json()["paid_at"] is not None
    assert again.status_code == 200 and again.json() == answer.json()
    after = await state_of(conn, booking["booking_id"])
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("confirmed", "paid")
    assert str(after["booking"]["payment_id"]) == payment_id
    assert after["payments"][0]["status"] == "completed"
    assert [(row["previous_status"], row["new_status"], row["changed_by"], row["change_reason"])
            for row in after["history"]] == [
        ("pending_payment", "confirmed", at.receptionist.user_id, "payment_received")]
    assert json.loads(after["history"][0]["metadata"])["provider"] == "clinic"


async def test_a_manager_of_the_clinic_may_mark_it_paid(client: httpx.AsyncClient, own_database: str,
                                                        conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "clinic")
    manager = await person(conn, "manager", at.clinic)

    answer = await client.post(f"/api/v1/payments/{payment_id}/mark-paid", headers=manager.headers)

    assert answer.status_code == 200, answer.text
    assert (await state_of(conn, booking["booking_id"]))["booking"]["status"] == "confirmed"


async def test_others_cannot_mark_it_paid(client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "clinic")
    elsewhere = await scene(conn)
    before = await state_of(conn, booking["booking_id"])
    path = f"/api/v1/payments/{payment_id}/mark-paid"

    by_other_receptionist = await client.post(path, headers=elsewhere.receptionist.headers)
    by_other_manager = await client.post(path, headers=(await person(conn, "manager", elsewhere.clinic)).headers)
    by_owner = await client.post(path, headers=at.owner.headers)
    anonymous = await client.post(path)
    unknown = await client.post(f"/api/v1/payments/{uuid.uuid4()}/mark-paid", headers=at.receptionist.headers)

    assert by_other_receptionist.status_code == 404
    assert by_other_manager.status_code == 404
    assert by_owner.status_code == 403
    assert anonymous.status_code == 401
    assert unknown.status_code == 404
    assert await state_of(conn, booking["booking_id"]) == before


async def test_only_desk_payments_are_marked_paid_by_hand(client: httpx.AsyncClient, own_database: str,
                                                          conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    online = await start_payment(client, booking, "sandbox", f"online-{uuid.uuid4()}", by=at.owner)
    before = await state_of(conn, booking["booking_id"])

    answer = await client.post(f"/api/v1/payments/{online.json()['payment_id']}/mark-paid",
                               headers=at.receptionist.headers)

    assert answer.status_code == 409
    assert await state_of(conn, booking["booking_id"]) == before


async def test_no_money_is_taken_at_the_desk_for_a_cancelled_booking(client: httpx.AsyncClient, own_database: str,
                                                                     conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "clinic")
    cancelled = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel",
                                  json={"reason": "pet_unwell", "version": booking["version"]},
                                  headers=at.owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    before = await state_of(conn, booking["booking_id"])
    assert before["payments"][0]["status"] == "expired"

    answer = await client.post(f"/api/v1/payments/{payment_id}/mark-paid", headers=at.receptionist.headers)

    assert answer.status_code == 409
    assert await state_of(conn, booking["booking_id"]) == before

"""Starting a payment over the JSON API: idempotency keys, who may pay, what may be paid, and the
clinic's desk."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from tests.payments.helpers import (
    PRICE,
    payments_path,
    pending_booking,
    person,
    scene,
    scene_with_booking,
    start_payment,
    state_of,
)


async def test_same_idempotency_key_answers_the_same_payment(client: httpx.AsyncClient, own_database: str,
                                                             conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    body = {"provider": "sandbox", "idempotency_key": f"attempt-{uuid.uuid4()}"}

    first = await client.post(payments_path(booking), json=body, headers=at.owner.headers)
    second = await client.post(payments_path(booking), json=body, headers=at.owner.headers)

    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert first.json()["payment_id"] == second.json()["payment_id"]
    assert first.json() == second.json()
    payment = first.json()
    assert payment["status"] == "pending"
    assert payment["provider"] == "sandbox"
    assert payment["amount"] == "150000.00"
    assert payment["payment_url"] == f"http://127.0.0.1/sandbox/pay/{payment['payment_id']}"
    rows = await conn.fetch("SELECT payment_id, idempotency_key, amount, currency, payment_provider, status "
                            "FROM payment_records WHERE booking_id = $1", booking["booking_id"])
    assert len(rows) == 1
    assert str(rows[0]["payment_id"]) == payment["payment_id"]
    assert (rows[0]["idempotency_key"], rows[0]["amount"], rows[0]["currency"], rows[0]["status"]) == (
        body["idempotency_key"], PRICE, "IDR", "pending")


async def test_a_key_reused_for_another_booking_is_a_conflict(client: httpx.AsyncClient, own_database: str,
                                                              conn: asyncpg.Connection) -> None:
    at = await scene(conn)
    first_booking = await pending_booking(conn, at)
    second_booking = await pending_booking(conn, at)
    body = {"provider": "sandbox", "idempotency_key": f"attempt-{uuid.uuid4()}"}
    assert (await client.post(payments_path(first_booking), json=body, headers=at.owner.headers)).status_code == 201

    reused = await client.post(payments_path(second_booking), json=body, headers=at.owner.headers)
    other_provider = await client.post(payments_path(first_booking), json={**body, "provider": "clinic"},
                                       headers=at.owner.headers)

    assert reused.status_code == 409
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert "idempotency key" in reused.json()["detail"]
    assert other_provider.status_code == 409
    assert await conn.fetchval("SELECT count(*) FROM payment_records WHERE booking_id = $1",
                               second_booking["booking_id"]) == 0
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 1


async def test_only_the_bookings_owner_may_pay(client: httpx.AsyncClient, own_database: str,
                                               conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    stranger = await person(conn, "owner")

    by_stranger = await start_payment(client, booking, "sandbox", "stranger-1", by=stranger)
    by_receptionist = await start_payment(client, booking, "clinic", "desk-0001", by=at.receptionist)
    anonymous = await start_payment(client, booking, "sandbox", "nobody-1")

    assert by_stranger.status_code == 404
    assert by_receptionist.status_code == 403
    assert anonymous.status_code == 401
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 0


async def test_a_paid_booking_cannot_be_paid_again(client: httpx.AsyncClient, own_database: str,
                                                   conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    desk = await start_payment(client, booking, "clinic", "desk-first", by=at.owner)
    paid = await client.post(f"/api/v1/payments/{desk.json()['payment_id']}/mark-paid",
                             headers=at.receptionist.headers)
    assert paid.status_code == 200, paid.text

    again = await start_payment(client, booking, "sandbox", "online-second", by=at.owner)

    assert again.status_code == 409
    assert again.json()["detail"] == "This booking is already paid."
    assert await conn.fetchval("SELECT count(*) FROM payment_records WHERE booking_id = $1",
                               booking["booking_id"]) == 1


async def test_a_booking_past_its_payment_deadline_cannot_be_paid(client: httpx.AsyncClient, own_database: str,
                                                                  conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    await conn.execute("UPDATE bookings SET payment_due_at = now() - interval '1 minute' WHERE booking_id = $1",
                       booking["booking_id"])

    late = await start_payment(client, booking, "sandbox", "too-late-1", by=at.owner)

    assert late.status_code == 409
    assert "over" in late.json()["detail"]
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 0


async def test_unknown_or_unconfigured_providers_are_refused(client: httpx.AsyncClient, own_database: str,
                                                             conn: asyncpg.Connection, configure) -> None:
    at, booking = await scene_with_booking(conn)
    configure(VETBOOK_MIDTRANS_SERVER_KEY="", VETBOOK_SANDBOX_PAYMENTS="0")

    answers = {
        provider: await start_payment(client, booking, provider, f"try-{provider}", by=at.owner)
        for provider in ("paypal", "midtrans", "sandbox")
    }
    bad_key = await start_payment(client, booking, "clinic", "short", by=at.owner)

    assert {name: answer.status_code for name, answer in answers.items()} == {
        "paypal": 422, "midtrans": 422, "sandbox": 422}
    assert answers["sandbox"].json()["errors"] == [{"field": "provider", "message": "Choose one of: clinic."}]
    assert bad_key.status_code == 422
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 0


async def test_paying_at_the_clinic_moves_the_deadline_to_the_visit(client: httpx.AsyncClient, own_database: str,
                                                                    conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    start = await conn.fetchval("SELECT start_time FROM slots WHERE slot_id = $1", booking["slot_id"])
    assert booking["payment_due_at"] < start

    answer = await start_payment(client, booking, "clinic", "desk-0002", by=at.owner)

    assert answer.status_code == 201, answer.text
    assert "payment_url" not in answer.json()
    after = await state_of(conn, booking["booking_id"])
    assert after["booking"]["payment_due_at"] == start
    assert after["booking"]["status"] == "pending_payment"
    assert after["history"] == []  # the deadline moved; the status did not
    payment = await conn.fetchrow("SELECT payment_method, expiry_time, provider_payment_id, payment_url "
                                  "FROM payment_records WHERE booking_id = $1", booking["booking_id"])
    assert dict(payment) == {"payment_method": "pay_at_clinic", "expiry_time": start, "provider_payment_id": None,
                             "payment_url": None}


async def test_the_same_key_sent_twice_at_once_makes_one_payment(client: httpx.AsyncClient, own_database: str,
                                                                 conn: asyncpg.Connection) -> None:
    at, booking = await scene_with_booking(conn)
    body = {"provider": "sandbox", "idempotency_key": f"double-click-{uuid.uuid4()}"}

    answers = await asyncio.gather(*(client.post(payments_path(booking), json=body, headers=at.owner.headers)
                                     for _ in range(2)))

    assert sorted(answer.status_code for answer in answers) == [200, 201]
    assert answers[0].json()["payment_id"] == answers[1].json()["payment_id"]
    assert await conn.fetchval("SELECT count(*) FROM payment_records WHERE booking_id = $1",
                               booking["booking_id"]) == 1

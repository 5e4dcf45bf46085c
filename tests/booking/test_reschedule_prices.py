"""A rescheduled booking costs the new slot's price (web/booking/services.py ``price_change``), for owners and
for the desk alike: a visit never becomes free by moving it, a cheaper time returns the difference on the
same payment, a paid booking cannot move to a pricier time, and an attempt to pay the old amount can no
longer confirm the booking."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx

from tests.booking.helpers import (
    PRICE,
    book,
    booking_row,
    clinic_scene,
    history,
    owner,
    paid_booking,
    slot,
    snapshot,
)
from web.booking import services
from web.payments import providers
from web.payments import services as payment_services


async def reschedule(client: httpx.AsyncClient, headers: dict, booking: dict, target: dict) -> httpx.Response:
    return await client.post(f"/api/v1/bookings/{booking['booking_id']}/reschedule", headers=headers,
                             json={"slot_id": str(target["slot_id"]), "version": booking["version"]})


async def payment(conn, payment_id) -> dict:
    return dict(await conn.fetchrow("SELECT * FROM payment_records WHERE payment_id = $1", payment_id))


async def start_attempt(person, booking: dict, provider: str = "sandbox") -> dict:
    attempt, _ = await payment_services.create_payment(person.user, booking["booking_id"], provider,
                                                       f"test-{uuid.uuid4()}")
    return attempt


async def settle(attempt: dict) -> dict:
    """The gateway's signed "settlement" of ``attempt`` arrives."""
    return await payment_services.handle_notification("sandbox", providers.SandboxProvider().notification(
        attempt["payment_id"], attempt["amount"], attempt["currency"], approve=True))


async def test_a_free_visit_moved_to_a_priced_slot_waits_for_the_new_price(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    free = await book(person, await slot(conn, scene, hour=9, price=Decimal(0)))
    assert (free["status"], free["payment_status"], free["final_amount"]) == ("confirmed", "paid", Decimal(0))
    normal = await slot(conn, scene, hour=15)  # the service's price, 150 000

    response = await reschedule(client, person.headers, free, normal)

    assert response.status_code == 200, response.text
    moved = await booking_row(response.json()["booking_id"])
    assert (moved["status"], moved["payment_status"]) == ("pending_payment", "pending")
    assert (moved["total_amount"], moved["final_amount"]) == (PRICE, PRICE)
    assert moved["payment_due_at"] is not None and moved["payment_due_at"] <= normal["start_time"]
    # And paying the new price confirms it, like any booking waiting for payment.
    started = await start_attempt(person, moved)
    assert started["amount"] == PRICE
    await settle(started)
    assert (await booking_row(moved["booking_id"]))["status"] == "confirmed"


async def test_the_desk_moving_a_free_visit_to_a_priced_slot_leaves_the_price_due_at_the_visit(
        own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    free = await book(person, await slot(conn, scene, hour=9, price=Decimal(0)))
    normal = await slot(conn, scene, hour=15)

    response = await reschedule(client, scene.receptionist.headers, free, normal)

    assert response.status_code == 200, response.text
    moved = await booking_row(response.json()["booking_id"])
    assert (moved["status"], moved["final_amount"], moved["payment_due_at"]) == (
        "pending_payment", PRICE, normal["start_time"])


async def test_a_paid_visit_moved_to_a_cheaper_slot_gets_the_difference_back(own_database, conn, client) -> None:
    scene = await clinic_scene(conn, refund_deadline_hours=24)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene, hour=9))
    cheaper = await slot(conn, scene, hour=15, price=Decimal("100000"))

    response = await reschedule(client, person.headers, booking, cheaper)

    assert response.status_code == 200, response.text
    moved = await booking_row(response.json()["booking_id"])
    assert (moved["status"], moved["payment_status"], moved["final_amount"], moved["payment_id"]) == (
        "confirmed", "paid", Decimal("100000.00"), booking["payment_id"])
    paid = await payment(conn, booking["payment_id"])
    assert (paid["status"], paid["refund_amount"]) == ("partially_refunded", Decimal("50000.00"))
    assert '"reschedule_price_difference"' in paid["metadata"]
    assert (await history(conn, booking["booking_id"]))[-1][4] == {
        "old_price": "150000.00", "new_price": "100000.00", "refund_amount": "50000.00",
        "policy_applied": "reschedule_price_difference"}

    # A later cancellation refunds 90 % of what the booking now costs, on top of the first refund.
    cancelled = await client.post(f"/api/v1/bookings/{moved['booking_id']}/cancel", headers=person.headers,
                                  json={"reason": "other", "version": moved["version"]})
    assert cancelled.status_code == 200, cancelled.text
    after = await booking_row(moved["booking_id"])
    assert (after["payment_status"], after["refunded_amount"]) == ("partially_refunded", Decimal("90000.00"))
    paid = await payment(conn, booking["payment_id"])
    assert (paid["status"], paid["refund_amount"]) == ("partially_refunded", Decimal("140000.00"))


async def test_a_paid_visit_cannot_move_to_a_pricier_slot(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene, hour=9))
    pricier = await slot(conn, scene, hour=15, price=Decimal("200000"))
    before = await snapshot(conn)

    for who in (person, scene.receptionist):  # the same rule at the desk
        response = await reschedule(client, who.headers, booking, pricier)
        assert response.status_code == 409, response.text
        assert response.json()["detail"] == services.PRICIER_THAN_PAID

    assert await snapshot(conn) == before


async def test_moving_an_unpaid_booking_to_another_price_ends_its_old_payment_attempt(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await book(person, await slot(conn, scene, hour=9))
    attempt = await start_attempt(person, booking)
    pricier = await slot(conn, scene, hour=15, price=Decimal("200000"))

    response = await reschedule(client, person.headers, booking, pricier)

    assert response.status_code == 200, response.text
    moved = await booking_row(response.json()["booking_id"])
    assert (moved["status"], moved["final_amount"]) == ("pending_payment", Decimal("200000.00"))
    assert (await payment(conn, attempt["payment_id"]))["status"] == "expired"
    # The owner pays the old amount after all (the gateway page was still open): the money is returned in
    # full and the booking keeps waiting for the amount due.
    result = await settle(attempt)
    assert result["status"] == "refunded"
    returned = await payment(conn, attempt["payment_id"])
    assert (returned["refund_amount"], returned["amount"]) == (PRICE, PRICE)
    still = await booking_row(moved["booking_id"])
    assert (still["status"], still["payment_status"], still["payment_id"]) == ("pending_payment", "pending", None)


async def test_moving_an_unpaid_booking_at_the_same_price_keeps_its_payment_attempt(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await book(person, await slot(conn, scene, hour=9))
    attempt = await start_attempt(person, booking)
    same_price = await slot(conn, scene, hour=15)

    response = await reschedule(client, person.headers, booking, same_price)

    assert response.status_code == 200, response.text
    assert (await payment(conn, attempt["payment_id"]))["status"] == "pending"
    await settle(attempt)
    moved = await booking_row(response.json()["booking_id"])
    assert (moved["status"], moved["payment_id"]) == ("confirmed", attempt["payment_id"])


async def test_a_booking_to_pay_at_the_clinic_moved_later_waits_until_the_new_visit(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await book(person, await slot(conn, scene, days=3, hour=9))
    await start_attempt(person, booking, provider="clinic")
    booking = await booking_row(booking["booking_id"])
    later = await slot(conn, scene, days=6, hour=9)

    response = await reschedule(client, person.headers, booking, later)

    assert response.status_code == 200, response.text
    moved = await booking_row(response.json()["booking_id"])
    # Paid at the visit: the deadline moved with it (it would otherwise cancel the booking three days early).
    assert moved["payment_due_at"] == later["start_time"]

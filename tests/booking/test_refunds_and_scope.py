"""Cancellation refunds by policy (90% before the clinic's refund deadline, nothing after it, 100% when
the clinic cancels), places returned without unblocking a blocked slot, reschedules that carry the
payment, and who may see or change whose booking."""

from __future__ import annotations

from decimal import Decimal

import httpx

from tests.booking.helpers import (
    PRICE,
    book,
    booking_row,
    clinic_scene,
    owner,
    paid_booking,
    slot,
    slot_row,
    snapshot,
)
from web.booking import services


async def cancel(client: httpx.AsyncClient, headers: dict, booking: dict, reason: str = "customer_request"):
    return await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=headers,
                             json={"reason": reason, "version": booking["version"]})


async def payment(conn, payment_id) -> dict:
    return dict(await conn.fetchrow("SELECT * FROM payment_records WHERE payment_id = $1", payment_id))


async def test_an_owner_cancelling_before_the_refund_deadline_gets_90_percent_back(own_database, conn, client) -> None:
    scene = await clinic_scene(conn, refund_deadline_hours=24)
    person = await owner(conn)
    visit = await slot(conn, scene, days=7)
    booking = await paid_booking(person, visit)

    response = await cancel(client, person.headers, booking)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    after = await booking_row(booking["booking_id"])
    assert (after["payment_status"], after["refunded_amount"]) == ("partially_refunded", Decimal("135000.00"))
    assert after["refunded_amount"] == after["final_amount"] * Decimal("0.9")
    paid = await payment(conn, booking["payment_id"])
    assert (paid["status"], paid["refund_amount"]) == ("partially_refunded", Decimal("135000.00"))
    assert paid["refunded_at"] is not None
    assert (await slot_row(conn, visit["slot_id"]))["remaining"] == 1
    assert await services.slot_invariant_violations() == []


async def test_a_refund_of_an_odd_amount_is_rounded_to_whole_rupiah(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene, price=Decimal("12345")))

    assert (await cancel(client, person.headers, booking)).status_code == 200

    # 90% of 12 345 is 11 110.5: half a rupiah rounds up.
    after = await booking_row(booking["booking_id"])
    assert (after["payment_status"], after["refunded_amount"]) == ("partially_refunded", Decimal("11111.00"))
    assert (await payment(conn, booking["payment_id"]))["refund_amount"] == Decimal("11111.00")


async def test_an_owner_cancelling_after_the_refund_deadline_gets_nothing_back(own_database, conn, client) -> None:
    # A clinic whose refund deadline is 30 days before the visit: a visit in 7 days is already past it.
    scene = await clinic_scene(conn, refund_deadline_hours=30 * 24)
    person = await owner(conn)
    visit = await slot(conn, scene, days=7)
    booking = await paid_booking(person, visit)

    response = await cancel(client, person.headers, booking)

    assert response.status_code == 200, response.text
    after = await booking_row(booking["booking_id"])
    assert (after["status"], after["payment_status"], after["refunded_amount"]) == ("cancelled", "paid", Decimal(0))
    paid = await payment(conn, booking["payment_id"])
    assert (paid["status"], paid["refund_amount"], paid["refunded_at"]) == ("completed", None, None)
    metadata = await conn.fetchval(
        "SELECT metadata FROM booking_history WHERE booking_id = $1 AND new_status = 'cancelled'",
        booking["booking_id"],
    )
    assert '"policy_applied": "late_cancellation"' in metadata and '"refund_percentage": 0' in metadata
    # The place still comes back: someone else may take the visit.
    assert (await slot_row(conn, visit["slot_id"]))["remaining"] == 1


async def test_a_receptionist_cancelling_refunds_everything(own_database, conn, client) -> None:
    # Even past the refund deadline: the clinic cancelled, not the owner.
    scene = await clinic_scene(conn, refund_deadline_hours=30 * 24)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene))

    response = await cancel(client, scene.receptionist.headers, booking, reason="clinic_request")

    assert response.status_code == 200, response.text
    after = await booking_row(booking["booking_id"])
    assert (after["payment_status"], after["refunded_amount"]) == ("refunded", PRICE)
    paid = await payment(conn, booking["payment_id"])
    assert (paid["status"], paid["refund_amount"]) == ("refunded", PRICE)


async def test_an_unpaid_cancellation_refunds_nothing_and_fails_the_payment(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    booking = await book(person, await slot(conn, scene))

    assert (await cancel(client, person.headers, booking)).status_code == 200

    after = await booking_row(booking["booking_id"])
    assert (after["status"], after["payment_status"], after["refunded_amount"]) == ("cancelled", "failed", Decimal(0))


async def test_a_place_returned_to_a_blocked_slot_leaves_it_blocked(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn, pets=2)
    blocked = await slot(conn, scene, hour=9, capacity=2)
    full = await slot(conn, scene, hour=11, capacity=1)
    in_blocked = await paid_booking(person, blocked, person.pets[0])
    in_full = await paid_booking(person, full, person.pets[1])
    # Staff close the first slot for maintenance; the second is full, hence 'booked'.
    await conn.execute("UPDATE slots SET status = 'maintenance' WHERE slot_id = $1", blocked["slot_id"])
    assert (await slot_row(conn, full["slot_id"]))["status"] == "booked"

    assert (await cancel(client, person.headers, in_blocked)).status_code == 200
    assert (await cancel(client, person.headers, in_full)).status_code == 200

    after_blocked, after_full = await slot_row(conn, blocked["slot_id"]), await slot_row(conn, full["slot_id"])
    assert (after_blocked["remaining"], after_blocked["status"]) == (2, "maintenance")
    assert (after_full["remaining"], after_full["status"]) == (1, "available")
    # And nobody can hold the blocked slot's free places.
    other = await owner(conn)
    refused = await client.post("/api/v1/reservations", headers=other.headers,
                                json={"slot_id": str(blocked["slot_id"]), "pet_id": str(other.pet["pet_id"])})
    assert refused.status_code == 409 and refused.json()["detail"] == "This slot is not open for booking."
    assert await services.slot_invariant_violations() == []


async def test_a_reschedule_carries_the_payment_to_the_new_booking_and_moves_the_place(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    old_slot = await slot(conn, scene, hour=9, capacity=1)
    new_slot = await slot(conn, scene, hour=15, capacity=1)
    booking = await paid_booking(person, old_slot)
    assert (await slot_row(conn, old_slot["slot_id"]))["status"] == "booked"

    response = await client.post(f"/api/v1/bookings/{booking['booking_id']}/reschedule", headers=person.headers,
                                 json={"slot_id": str(new_slot["slot_id"]), "version": booking["version"]})

    assert response.status_code == 200, response.text
    moved = await booking_row(response.json()["booking_id"])
    assert (moved["status"], moved["payment_status"], moved["payment_id"]) == ("confirmed", "paid",
                                                                               booking["payment_id"])
    assert (moved["slot_id"], moved["final_amount"]) == (new_slot["slot_id"], booking["final_amount"])
    assert moved["rescheduled_from_booking_id"] == booking["booking_id"]
    assert moved["rescheduled_from_created_at"] == booking["created_at"]
    old = await booking_row(booking["booking_id"])
    assert (old["status"], old["payment_status"], old["version"]) == ("rescheduled", "paid", booking["version"] + 1)
    freed, taken = await slot_row(conn, old_slot["slot_id"]), await slot_row(conn, new_slot["slot_id"])
    assert (freed["remaining"], freed["status"]) == (1, "available")
    assert (taken["remaining"], taken["status"]) == (0, "booked")
    carried = await payment(conn, booking["payment_id"])
    assert carried["status"] == "completed" and '"carried_to_booking"' in carried["metadata"]
    assert str(moved["booking_id"]) in carried["metadata"]
    assert await services.slot_invariant_violations() == []

    # Cancelling the new booking refunds the carried payment.
    assert (await cancel(client, person.headers, moved)).status_code == 200
    assert (await payment(conn, booking["payment_id"]))["status"] == "partially_refunded"
    assert (await slot_row(conn, new_slot["slot_id"]))["remaining"] == 1


async def test_a_reschedule_into_a_full_slot_is_refused_and_changes_nothing(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person, rival = await owner(conn), await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene, hour=9))
    taken = await slot(conn, scene, hour=15)
    await book(rival, taken)
    before = await snapshot(conn)

    response = await client.post(f"/api/v1/bookings/{booking['booking_id']}/reschedule", headers=person.headers,
                                 json={"slot_id": str(taken["slot_id"]), "version": booking["version"]})

    assert response.status_code == 409
    assert await snapshot(conn) == before


# ------------------------------------------------------------------ scope


async def test_an_owner_cannot_see_or_touch_another_owners_booking_or_hold(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person, stranger = await owner(conn), await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene, hour=9))
    held = await client.post("/api/v1/reservations", headers=person.headers,
                             json={"slot_id": str((await slot(conn, scene, hour=15))["slot_id"]),
                                   "pet_id": str(person.pet["pet_id"])})
    assert held.status_code == 201
    target = await slot(conn, scene, hour=13)
    path = f"/api/v1/bookings/{booking['booking_id']}"
    hold_path = f"/api/v1/reservations/{held.json()['reservation_id']}"
    before = await snapshot(conn)

    answers = [
        await client.get(path, headers=stranger.headers),
        await cancel(client, stranger.headers, booking),
        await client.post(f"{path}/reschedule", headers=stranger.headers,
                          json={"slot_id": str(target["slot_id"]), "version": booking["version"]}),
        await client.delete(hold_path, headers=stranger.headers),
        # Even with the hold's secret token.
        await client.post(f"{hold_path}/confirm", headers=stranger.headers,
                          json={"lock_token": held.json()["lock_token"]}),
        # Nor hold a slot for someone else's pet.
        await client.post("/api/v1/reservations", headers=stranger.headers,
                          json={"slot_id": str(target["slot_id"]), "pet_id": str(person.pet["pet_id"])}),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers), [a.text for a in answers]
    listed = await client.get("/api/v1/bookings", headers=stranger.headers)
    assert listed.status_code == 200 and listed.json() == []
    assert await snapshot(conn) == before
    # The owner does see it.
    own = await client.get(path, headers=person.headers)
    assert own.status_code == 200 and own.json()["booking_id"] == str(booking["booking_id"])


async def test_a_receptionist_of_another_clinic_gets_404_and_changes_nothing(own_database, conn, client) -> None:
    scene, elsewhere = await clinic_scene(conn), await clinic_scene(conn)
    person = await owner(conn)
    booking = await paid_booking(person, await slot(conn, scene))
    path = f"/api/v1/bookings/{booking['booking_id']}"
    stranger = elsewhere.receptionist.headers
    before = await snapshot(conn)

    answers = [
        await client.post(f"{path}/check-in", headers=stranger, json={"version": booking["version"]}),
        await client.post(f"{path}/no-show", headers=stranger, json={"version": booking["version"]}),
        await cancel(client, stranger, booking, reason="clinic_request"),
        await client.get(path, headers=stranger),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers), [a.text for a in answers]
    assert (await client.get("/api/v1/bookings", headers=stranger)).json() == []
    assert await snapshot(conn) == before
    # The clinic's own receptionist sees it and checks it in; its owner may not check in.
    assert (await client.post(f"{path}/check-in", headers=person.headers,
                              json={"version": booking["version"]})).status_code == 403
    own = await client.post(f"{path}/check-in", headers=scene.receptionist.headers, json={"version": booking["version"]})
    assert own.status_code == 200 and own.json()["status"] == "in_progress"

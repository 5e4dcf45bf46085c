"""Holds over the JSON API: confirming or releasing twice does it once, a hold repeated with its
Idempotency-Key or a cancel with its version is the same write, concurrent confirmations of one hold make
one booking, and expiry (of holds and of unpaid bookings) gives places back exactly once."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.booking.helpers import (
    book,
    clinic_scene,
    confirm_over_api,
    history,
    hold_over_api,
    owner,
    slot,
    slot_row,
    snapshot,
)
from tests.db.factories import make_payment
from web.app import background_jobs
from web.booking import services
from web.core.jobs import run_once_if_free


async def bookings_of(conn, reservation_id) -> int:
    return await conn.fetchval("SELECT count(*) FROM bookings WHERE reservation_id = $1", reservation_id)


# ------------------------------------------------------------------ idempotency


async def test_confirming_a_hold_twice_makes_one_booking(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    contested = await slot(conn, scene, capacity=2)
    held = await hold_over_api(client, person, contested["slot_id"])

    first = await confirm_over_api(client, person, held)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "pending_payment" and first.json()["payment_status"] == "pending"
    before = await snapshot(conn)
    # A retry after a lost answer, or a second tab: the same booking, nothing written again.
    second = await confirm_over_api(client, person, held)

    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    assert await bookings_of(conn, held["reservation_id"]) == 1
    assert await snapshot(conn) == before
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1


async def hold_with_key(client, person, slot_id, key: str, pet_id=None):
    return await client.post("/api/v1/reservations", headers=person.headers | {"Idempotency-Key": key},
                             json={"slot_id": str(slot_id), "pet_id": str(pet_id or person.pet["pet_id"])})


async def test_a_hold_repeated_with_its_idempotency_key_is_the_same_hold(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person, other = await owner(conn), await owner(conn)
    contested, elsewhere = await slot(conn, scene, capacity=3), await slot(conn, scene, hour=14, capacity=3)

    first = await hold_with_key(client, person, contested["slot_id"], "retry-key-0001")
    repeats = await asyncio.gather(*(hold_with_key(client, person, contested["slot_id"], "retry-key-0001")
                                     for _ in range(4)))
    # The key is the owner's own: another owner's same key is another hold.
    others = await hold_with_key(client, other, contested["slot_id"], "retry-key-0001")

    assert first.status_code == 201, first.text
    assert [(r.status_code, r.json()) for r in repeats] == [(201, first.json())] * 4
    assert others.status_code == 201 and others.json()["reservation_id"] != first.json()["reservation_id"]
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1
    assert await conn.fetchval("SELECT count(*) FROM reservations WHERE user_id = $1", person.user_id) == 1

    # The same key for another slot is a mistake of the client, refused without a change.
    before = await snapshot(conn)
    reused = await hold_with_key(client, person, elsewhere["slot_id"], "retry-key-0001")
    malformed = await hold_with_key(client, person, elsewhere["slot_id"], "short")
    assert (reused.status_code, reused.json()["detail"]) == (
        422, "This Idempotency-Key was already used for another hold.")
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "idempotency_key"
    assert await snapshot(conn) == before
    assert (await slot_row(conn, elsewhere["slot_id"]))["remaining"] == 3

    # Confirmed meanwhile: the repeat still names the same hold, whose confirm answers the same booking.
    booked = await confirm_over_api(client, person, first.json())
    again = await hold_with_key(client, person, contested["slot_id"], "retry-key-0001")
    assert again.json()["reservation_id"] == first.json()["reservation_id"]
    assert (await confirm_over_api(client, person, again.json())).json() == booked.json()


async def test_a_cancel_repeated_with_its_version_answers_the_cancelled_booking(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    contested = await slot(conn, scene, capacity=1)
    booking = (await confirm_over_api(client, person, await hold_over_api(client, person, contested["slot_id"]))).json()
    url = f"/api/v1/bookings/{booking['booking_id']}/cancel"
    body = {"reason": "customer_request", "version": booking["version"]}

    first = await client.post(url, headers=person.headers, json=body)
    before = await snapshot(conn)
    repeat = await client.post(url, headers=person.headers, json=body)
    other_reason = await client.post(url, headers=person.headers, json=body | {"reason": "other"})

    assert first.status_code == 200, first.text
    assert (repeat.status_code, repeat.json()) == (200, first.json())
    assert other_reason.status_code == 409
    assert await snapshot(conn) == before
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1


async def test_a_wrong_token_or_another_owner_confirms_nothing(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person, stranger = await owner(conn), await owner(conn)
    contested = await slot(conn, scene, capacity=1)
    held = await hold_over_api(client, person, contested["slot_id"])
    before = await snapshot(conn)

    wrong = await confirm_over_api(client, person, held | {"lock_token": held["lock_token"][:-1]})
    same_length = await confirm_over_api(client, person, held | {"lock_token": "x" * len(held["lock_token"])})
    foreign = await confirm_over_api(client, stranger, held)

    assert (wrong.status_code, wrong.json()["detail"]) == (409, "This hold's token does not match.")
    assert (same_length.status_code, same_length.json()["detail"]) == (409, "This hold's token does not match.")
    assert (foreign.status_code, foreign.json()["detail"]) == (404, "No such hold.")
    assert await snapshot(conn) == before
    assert await conn.fetchval("SELECT status FROM reservations WHERE reservation_id = $1",
                               held["reservation_id"]) == "pending"
    # The hold is still the owner's to confirm, and the last place becomes a full slot.
    confirmed = await confirm_over_api(client, person, held)
    assert confirmed.status_code == 201, confirmed.text
    assert (await slot_row(conn, contested["slot_id"]))["status"] == "booked"


async def test_releasing_a_hold_twice_returns_its_place_once(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    contested = await slot(conn, scene, capacity=2)
    held = await hold_over_api(client, person, contested["slot_id"])
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1

    first = await client.delete(f"/api/v1/reservations/{held['reservation_id']}", headers=person.headers)
    second = await client.delete(f"/api/v1/reservations/{held['reservation_id']}", headers=person.headers)

    assert first.status_code == 204
    assert second.status_code == 409 and second.json()["detail"] == "This hold was already released."
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 2
    status = await conn.fetchval("SELECT status FROM reservations WHERE reservation_id = $1", held["reservation_id"])
    assert status == "cancelled"
    # A released hold cannot be confirmed any more.
    late = await confirm_over_api(client, person, held)
    assert late.status_code == 409 and late.json()["detail"] == "This hold was already released."
    assert await bookings_of(conn, held["reservation_id"]) == 0


async def test_one_hold_confirmed_by_concurrent_requests_makes_exactly_one_booking(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    people = [await owner(conn) for _ in range(5)]
    contested = await slot(conn, scene, capacity=5)
    holds = [await hold_over_api(client, person, contested["slot_id"]) for person in people]

    # Four requests per hold, all twenty at once.
    attempts = [(person, held) for person, held in zip(people, holds, strict=True) for _ in range(4)]
    responses = await asyncio.gather(*(confirm_over_api(client, person, held) for person, held in attempts))

    for person, held in zip(people, holds, strict=True):
        answers = sorted(
            response.status_code for (who, _), response in zip(attempts, responses, strict=True) if who is person
        )
        # One made the booking; the others, repeats with the token, were answered the same booking.
        assert answers == [201, 201, 201, 201], answers
        assert len({response.json()["booking_id"] for (who, _), response in zip(attempts, responses, strict=True)
                    if who is person}) == 1
        assert await bookings_of(conn, held["reservation_id"]) == 1
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 0
    assert await services.slot_invariant_violations() == []


async def test_a_release_racing_a_confirmation_lets_exactly_one_of_them_win(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    people = [await owner(conn) for _ in range(6)]
    contested = await slot(conn, scene, capacity=6)
    holds = [await hold_over_api(client, person, contested["slot_id"]) for person in people]

    outcomes = await asyncio.gather(*(
        asyncio.gather(
            confirm_over_api(client, person, held),
            client.delete(f"/api/v1/reservations/{held['reservation_id']}", headers=person.headers),
        )
        for person, held in zip(people, holds, strict=True)
    ))

    booked = 0
    for (confirmed, released), held in zip(outcomes, holds, strict=True):
        assert {confirmed.status_code, released.status_code} in ({201, 409}, {204, 409}), (confirmed, released)
        won_by_confirmation = confirmed.status_code == 201
        booked += won_by_confirmation
        assert await bookings_of(conn, held["reservation_id"]) == int(won_by_confirmation)
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 6 - booked
    assert await services.slot_invariant_violations() == []


# ------------------------------------------------------------------ expiry


async def expire_now(conn, reservation_id) -> None:
    """Time passes: the hold's expiry moves into the past (it must stay after its creation)."""
    await conn.execute(
        "UPDATE reservations SET expires_at = created_at + interval '1 microsecond' WHERE reservation_id = $1",
        reservation_id,
    )


async def test_the_expiry_job_returns_the_place_of_a_hold_past_its_expiry(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person, other = await owner(conn), await owner(conn)
    contested = await slot(conn, scene, capacity=2)
    expiring = await hold_over_api(client, person, contested["slot_id"])
    kept = await hold_over_api(client, other, contested["slot_id"])
    await expire_now(conn, expiring["reservation_id"])
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 0

    assert await services.expire_holds() == 1

    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1
    statuses = dict(await conn.fetch("SELECT reservation_id::text, status FROM reservations"))
    assert statuses == {expiring["reservation_id"]: "expired", kept["reservation_id"]: "pending"}
    # Running again returns nothing twice.
    assert await services.expire_holds() == 0
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1
    assert await services.slot_invariant_violations() == []


async def test_confirming_an_expired_hold_answers_410_and_returns_its_place_once(own_database, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    contested = await slot(conn, scene, capacity=1)
    held = await hold_over_api(client, person, contested["slot_id"])
    await expire_now(conn, held["reservation_id"])

    response = await confirm_over_api(client, person, held)

    assert response.status_code == 410
    assert response.json()["detail"] == (
        "This hold has expired and its place was released. Please pick the slot again."
    )
    assert await conn.fetchval(
        "SELECT status FROM reservations WHERE reservation_id = $1", held["reservation_id"]) == "expired"
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1
    assert await bookings_of(conn, held["reservation_id"]) == 0
    # The job finds nothing left to return, and a second confirmation is still 410.
    assert await services.expire_holds() == 0
    again = await confirm_over_api(client, person, held)
    assert again.status_code == 410 and again.json()["detail"] == (
        "This hold has expired and its place was released. Please pick the slot again.")
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1
    assert await services.slot_invariant_violations() == []


async def test_an_unpaid_booking_past_its_deadline_is_cancelled_by_the_job_and_its_place_returned(
    own_database, conn
) -> None:
    scene = await clinic_scene(conn)
    person, patient = await owner(conn), await owner(conn)
    full_slot = await slot(conn, scene, hour=9, capacity=1)
    other_slot = await slot(conn, scene, hour=11, capacity=1)
    overdue = await book(person, full_slot)
    waiting = await book(patient, other_slot)
    # Confirming the only place marked the slot booked.
    assert (await slot_row(conn, full_slot["slot_id"]))["status"] == "booked"
    pending_payment = await make_payment(conn, overdue, payment_method="card", payment_provider="sandbox")
    await conn.execute("UPDATE bookings SET payment_due_at = now() - interval '1 second' WHERE booking_id = $1",
                       overdue["booking_id"])

    assert await services.expire_unpaid_bookings() == 1

    row = await conn.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", overdue["booking_id"])
    assert (row["status"], row["payment_status"], row["cancellation_reason"]) == ("cancelled", "failed",
                                                                                  "payment_expired")
    assert row["cancelled_at"] is not None and row["version"] == overdue["version"] + 1
    assert await conn.fetchval("SELECT status FROM payment_records WHERE payment_id = $1",
                               pending_payment["payment_id"]) == "expired"
    freed = await slot_row(conn, full_slot["slot_id"])
    assert (freed["remaining"], freed["status"]) == (1, "available")
    assert await history(conn, overdue["booking_id"]) == [
        ("pending_payment", "cancelled", None, "payment_expired", {"refund_percentage": 0, "policy_applied": "unpaid"}),
    ]
    # The booking whose deadline has not passed is untouched, and a second run does nothing.
    assert await conn.fetchval("SELECT status FROM bookings WHERE booking_id = $1",
                               waiting["booking_id"]) == "pending_payment"
    assert await services.expire_unpaid_bookings() == 0
    assert (await slot_row(conn, full_slot["slot_id"]))["remaining"] == 1
    assert await services.slot_invariant_violations() == []


async def test_the_unpaid_expiry_job_skips_a_booking_being_changed_instead_of_waiting_for_it(
    own_database, conn
) -> None:
    """The scheduler runs the job inside one transaction (its advisory lock), so every row it expired
    stays locked, slot included, until the whole batch ends. Had it waited for a booking that a person
    is changing, and had that change then needed one of those slots (a reschedule into it), the two
    would deadlock. The job must pass over a locked booking and take it on its next run."""
    scene = await clinic_scene(conn)
    first, second = await owner(conn), await owner(conn)
    first_slot, second_slot = await slot(conn, scene, hour=9), await slot(conn, scene, hour=11)
    overdue = await book(first, first_slot)
    being_changed = await book(second, second_slot)
    for booking, seconds in ((overdue, 2), (being_changed, 1)):
        await conn.execute(
            "UPDATE bookings SET payment_due_at = now() - make_interval(secs => $2) WHERE booking_id = $1",
            booking["booking_id"], seconds,
        )
    job = next(job for job in background_jobs() if job.name == "expire_unpaid_bookings")

    someone = await asyncpg.connect(own_database)
    change = someone.transaction()
    await change.start()
    try:
        await someone.execute("SELECT 1 FROM bookings WHERE booking_id = $1 FOR UPDATE", being_changed["booking_id"])
        assert await asyncio.wait_for(run_once_if_free(job), timeout=10)
        statuses = dict(await conn.fetch("SELECT booking_id, status FROM bookings"))
        assert statuses == {overdue["booking_id"]: "cancelled", being_changed["booking_id"]: "pending_payment"}
        # The place the job returned can be taken by the person's change at once.
        await asyncio.wait_for(someone.execute(
            "UPDATE slots SET remaining = remaining - 1, status = 'booked' WHERE slot_id = $1", first_slot["slot_id"]
        ), timeout=10)
    finally:
        await change.rollback()
        await someone.close()

    assert await run_once_if_free(job)
    assert await conn.fetchval("SELECT status FROM bookings WHERE booking_id = $1",
                               being_changed["booking_id"]) == "cancelled"
    assert await services.slot_invariant_violations() == []

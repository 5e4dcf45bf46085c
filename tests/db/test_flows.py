"""The design's booking flows (3.3.2, 3.3.3, 4.2, 4.4) as fixed SQL, each one guarded transaction.

Every flow ends with the slot invariant: a slot's remaining places are its capacity minus its pending
holds minus its bookings that still hold a place (all but cancelled and rescheduled ones). Every row names
its clinic and every status change writes its history row in the same transaction (migration 0021).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from decimal import Decimal

import asyncpg
import pytest

from tests.db.factories import local_start, make_slot, make_user, make_world
from web.core.shard_keys import new_id, new_id_today

STANDARD_REFUND = {"refund_percentage": 90, "policy_applied": "standard_cancellation"}


# ------------------------------------------------------------------ the flows, as the app must run them


async def record_history(conn: asyncpg.Connection, before: str, after: dict, actor: dict | None = None,
                         reason: str = "system_update", metadata: dict | None = None) -> None:
    """The history row of a status change, in the change's transaction (as web/booking/services.py writes it)."""
    await conn.execute(
        """
        INSERT INTO booking_history (clinic_id, history_id, booking_id, booking_created_at, previous_status,
                                     new_status, changed_by, change_reason, metadata)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
        """,
        after["clinic_id"], new_id_today(after["clinic_id"]), after["booking_id"], after["created_at"], before,
        after["status"], actor["user_id"] if actor else None, reason, json.dumps(metadata) if metadata else None,
    )


async def hold(conn: asyncpg.Connection, slot: dict, owner: dict, pet: dict) -> dict | None:
    """3.3.2 fixed: take the place first (guarded), and write the reservation only if a place was taken."""
    async with conn.transaction():
        taken = await conn.fetchrow(
            """
            UPDATE slots SET remaining = remaining - 1, version = version + 1
            WHERE slot_id = $1 AND date = $2 AND status = 'available' AND remaining > 0 AND start_time > now()
            RETURNING clinic_id, slot_id, date, service_id
            """,
            slot["slot_id"], slot["date"],
        )
        if taken is None:
            return None
        reservation = await conn.fetchrow(
            """
            INSERT INTO reservations (clinic_id, reservation_id, user_id, pet_id, slot_id, slot_date, service_id,
                                      expires_at, lock_token)
            VALUES ($1, $2, $3, $4, $5, $6, $7, now() + interval '10 minutes', $8)
            RETURNING *
            """,
            taken["clinic_id"], new_id(taken["clinic_id"], taken["date"]), owner["user_id"], pet["pet_id"], taken["slot_id"],
            taken["date"], taken["service_id"], secrets.token_urlsafe(32),
        )
        return dict(reservation)


async def design_order_hold(conn: asyncpg.Connection, slot: dict, owner: dict, pet: dict, version: int) -> None:
    """3.3.2 as the design orders it: the reservation first, then an UPDATE whose result nobody checks."""
    async with conn.transaction():
        await conn.execute(
            """
            INSERT INTO reservations (clinic_id, user_id, pet_id, slot_id, slot_date, service_id, expires_at, lock_token)
            VALUES ($1, $2, $3, $4, $5, $6, now() + interval '10 minutes', $7)
            """,
            slot["clinic_id"], owner["user_id"], pet["pet_id"], slot["slot_id"], slot["date"], slot["service_id"],
            secrets.token_urlsafe(32),
        )
        await conn.fetch(
            """
            UPDATE slots SET remaining = remaining - 1, updated_at = now(), version = version + 1
            WHERE slot_id = $1 AND date = $2 AND remaining > 0 AND version = $3
            RETURNING *
            """,
            slot["slot_id"], slot["date"], version,
        )


async def confirm(conn: asyncpg.Connection, reservation: dict) -> dict | None:
    """3.3.3 fixed: the hold is locked and checked, the booking is priced from the slot or its service."""
    async with conn.transaction():
        locked = await conn.fetchrow(
            """
            SELECT * FROM reservations
            WHERE reservation_id = $1 AND lock_token = $2 AND status = 'pending' AND expires_at > now()
            FOR UPDATE
            """,
            reservation["reservation_id"], reservation["lock_token"],
        )
        if locked is None:
            return None
        booking = await conn.fetchrow(
            """
            INSERT INTO bookings (booking_id, reservation_id, user_id, pet_id, clinic_id, service_id, slot_id,
                                  slot_date, staff_id, total_amount, discount_amount, final_amount, currency)
            SELECT $2, r.reservation_id, r.user_id, r.pet_id, s.clinic_id, r.service_id, r.slot_id, r.slot_date,
                   s.staff_id, COALESCE(s.price, sv.price), 0, COALESCE(s.price, sv.price), sv.currency
            FROM reservations r
            JOIN slots s ON s.clinic_id = r.clinic_id AND s.slot_id = r.slot_id AND s.date = r.slot_date
            JOIN services sv ON sv.service_id = r.service_id
            WHERE r.reservation_id = $1
            RETURNING *
            """,
            locked["reservation_id"], new_id_today(locked["clinic_id"]),
        )
        await conn.execute("UPDATE reservations SET status = 'confirmed' WHERE reservation_id = $1", locked["reservation_id"])
        await conn.execute(
            """
            UPDATE slots SET status = CASE WHEN remaining = 0 AND status = 'available' THEN 'booked' ELSE status END,
                             version = version + 1
            WHERE slot_id = $1 AND date = $2
            """,
            locked["slot_id"], locked["slot_date"],
        )
        return dict(booking)


async def pay(conn: asyncpg.Connection, booking: dict) -> tuple[dict, dict]:
    """A settled payment and the booking it confirms; the booking must still await payment at its version."""
    async with conn.transaction():
        payment = await conn.fetchrow(
            """
            INSERT INTO payment_records (clinic_id, payment_id, booking_id, booking_created_at, amount, currency,
                                         payment_method, payment_provider, provider_payment_id, status, paid_at,
                                         idempotency_key)
            VALUES ($1, $2, $3, $4, $5, $6, 'qris', 'sandbox', $7, 'completed', now(), $8)
            RETURNING *
            """,
            booking["clinic_id"], new_id_today(booking["clinic_id"]), booking["booking_id"], booking["created_at"],
            booking["final_amount"], booking["currency"], f"sandbox-{secrets.token_hex(8)}", secrets.token_hex(16),
        )
        paid = await conn.fetchrow(
            """
            UPDATE bookings SET status = 'confirmed', payment_status = 'paid', payment_id = $3, version = version + 1
            WHERE booking_id = $1 AND created_at = $2 AND status = 'pending_payment' AND version = $4
            RETURNING *
            """,
            booking["booking_id"], booking["created_at"], payment["payment_id"], booking["version"],
        )
        if paid is None:
            raise AssertionError("the booking was not awaiting payment at that version")
        await record_history(conn, "pending_payment", paid, reason="payment_received")
        return dict(paid), dict(payment)


async def cancel_with_refund(conn: asyncpg.Connection, booking: dict, actor: dict, percentage: int) -> dict | None:
    """4.2 fixed: the refund is recorded on the booking and on its payment; the place goes back to the slot,
    and the slot becomes 'available' again only if it was 'booked' (maintenance stays maintenance)."""
    async with conn.transaction():
        cancelled = await conn.fetchrow(
            """
            UPDATE bookings
            SET status = 'cancelled', cancelled_at = now(), cancellation_reason = 'customer_request',
                cancellation_notes = 'Customer requested cancellation due to schedule conflict',
                payment_status = 'partially_refunded', refunded_amount = round(final_amount * $4 / 100, 2),
                version = version + 1
            WHERE booking_id = $1 AND created_at = $2 AND status = 'confirmed' AND payment_status = 'paid'
              AND version = $3
            RETURNING *
            """,
            booking["booking_id"], booking["created_at"], booking["version"], percentage,
        )
        if cancelled is None:
            return None
        await record_history(conn, "confirmed", cancelled, actor, "customer_request",
                             {"refund_percentage": percentage, "policy_applied": "standard_cancellation"})
        refunded = await conn.execute(
            """
            UPDATE payment_records SET status = 'partially_refunded', refund_amount = $2, refunded_at = now()
            WHERE payment_id = $1 AND status = 'completed'
            """,
            cancelled["payment_id"], cancelled["refunded_amount"],
        )
        assert refunded == "UPDATE 1"
        await give_place_back(conn, cancelled["slot_id"], cancelled["slot_date"])
        return dict(cancelled)


async def give_place_back(conn: asyncpg.Connection, slot_id: object, slot_date: object) -> None:
    await conn.execute(
        """
        UPDATE slots SET remaining = remaining + 1,
                         status = CASE WHEN status = 'booked' THEN 'available' ELSE status END,
                         version = version + 1
        WHERE slot_id = $1 AND date = $2
        """,
        slot_id, slot_date,
    )


async def reschedule(conn: asyncpg.Connection, booking: dict, new_slot: dict) -> dict | None:
    """The old booking becomes 'rescheduled', a new one takes a place in the new slot and carries the payment."""
    async with conn.transaction():
        old = await conn.fetchrow(
            """
            UPDATE bookings SET status = 'rescheduled', version = version + 1
            WHERE booking_id = $1 AND created_at = $2 AND status = 'confirmed' AND version = $3
            RETURNING *
            """,
            booking["booking_id"], booking["created_at"], booking["version"],
        )
        if old is None:
            return None
        await record_history(conn, "confirmed", old, reason="reschedule")
        taken = await conn.fetchrow(
            """
            UPDATE slots SET remaining = remaining - 1,
                             status = CASE WHEN remaining = 1 THEN 'booked' ELSE status END,
                             version = version + 1
            WHERE slot_id = $1 AND date = $2 AND service_id = $3 AND status = 'available' AND remaining > 0
              AND start_time > now()
            RETURNING slot_id, date, service_id, staff_id, clinic_id
            """,
            new_slot["slot_id"], new_slot["date"], old["service_id"],
        )
        if taken is None:
            raise AssertionError("the new slot has no free place")
        new = await conn.fetchrow(
            """
            INSERT INTO bookings (booking_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, staff_id,
                                  status, payment_status, payment_id, total_amount, discount_amount, final_amount,
                                  currency, rescheduled_from_booking_id, rescheduled_from_created_at)
            VALUES ($15, $1, $2, $3, $4, $5, $6, $7, 'confirmed', 'paid', $8, $9, $10, $11, $12, $13, $14)
            RETURNING *
            """,
            old["user_id"], old["pet_id"], taken["clinic_id"], taken["service_id"], taken["slot_id"], taken["date"],
            taken["staff_id"], old["payment_id"], old["total_amount"], old["discount_amount"], old["final_amount"],
            old["currency"], old["booking_id"], old["created_at"], new_id_today(taken["clinic_id"]),
        )
        await give_place_back(conn, old["slot_id"], old["slot_date"])
        return dict(new)


async def set_booking_status(conn: asyncpg.Connection, booking: dict, expected: str, status: str, extra: str = "") -> dict:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE bookings SET status = $3, version = version + 1{extra} "
            "WHERE booking_id = $1 AND created_at = $2 AND status = $4 RETURNING *",
            booking["booking_id"], booking["created_at"], status, expected,
        )
        assert row is not None, f"booking was not {expected}"
        await record_history(conn, expected, row)
        return dict(row)


# ------------------------------------------------------------------ checks


async def slot_row(conn: asyncpg.Connection, slot: dict) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM slots WHERE slot_id = $1 AND date = $2", slot["slot_id"], slot["date"])


async def assert_slot_invariant(conn: asyncpg.Connection, slot: dict) -> asyncpg.Record:
    counts = await slot_counts(conn, slot)
    assert counts["remaining"] == counts["capacity"] - counts["pending_holds"] - counts["live_bookings"], dict(counts)
    return counts


async def slot_counts(conn: asyncpg.Connection, slot: dict) -> asyncpg.Record:
    return await conn.fetchrow(
        """
        SELECT s.capacity, s.remaining, s.status,
               (SELECT count(*) FROM reservations r
                 WHERE r.slot_id = s.slot_id AND r.slot_date = s.date AND r.status = 'pending') AS pending_holds,
               (SELECT count(*) FROM bookings b
                 WHERE b.slot_id = s.slot_id AND b.slot_date = s.date
                   AND b.status NOT IN ('cancelled', 'rescheduled')) AS live_bookings
        FROM slots s WHERE s.slot_id = $1 AND s.date = $2
        """,
        slot["slot_id"], slot["date"],
    )


async def history(conn: asyncpg.Connection, booking: dict) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM booking_history WHERE booking_id = $1 ORDER BY changed_at, new_status", booking["booking_id"]
    )


async def paid_booking(conn: asyncpg.Connection, world: dict, slot: dict | None = None) -> tuple[dict, dict]:
    slot = slot or world["slot"]
    reservation = await hold(conn, slot, world["owner"], world["pet"])
    assert reservation is not None
    booking = await confirm(conn, reservation)
    assert booking is not None
    return await pay(conn, booking)


# ------------------------------------------------------------------ hold


async def test_hold_takes_a_place_and_writes_one_reservation(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)

    reservation = await hold(conn, world["slot"], world["owner"], world["pet"])

    assert reservation is not None
    assert reservation["status"] == "pending"
    assert reservation["slot_date"] == world["slot"]["date"]
    slot = await slot_row(conn, world["slot"])
    assert (slot["remaining"], slot["status"], slot["version"]) == (0, "available", 2)
    await assert_slot_invariant(conn, world["slot"])


async def test_design_order_leaves_a_reservation_for_a_full_slot_and_the_fixed_order_does_not(
    conn: asyncpg.Connection,
) -> None:
    world = await make_world(conn)
    other_owner = await make_user(conn)
    other_pet = await conn.fetchrow(
        "INSERT INTO pets (owner_id, name, species) VALUES ($1, 'Rex', 'dog') RETURNING *", other_owner["user_id"]
    )
    assert await hold(conn, world["slot"], world["owner"], world["pet"]) is not None  # the only place is gone

    await design_order_hold(conn, world["slot"], other_owner, dict(other_pet), version=1)

    # Committed: a second pending hold on a slot of capacity 1, and the slot's count no longer adds up.
    counts = await slot_counts(conn, world["slot"])
    assert (counts["capacity"], counts["remaining"], counts["pending_holds"]) == (1, 0, 2)
    assert counts["remaining"] != counts["capacity"] - counts["pending_holds"] - counts["live_bookings"]

    # The fixed order on a second, equally full slot writes nothing.
    full_slot = await make_slot(conn, world["clinic"], world["service"], world["staff"],
                                start=local_start(world["clinic"], days_ahead=9))
    assert await hold(conn, full_slot, world["owner"], world["pet"]) is not None
    assert await hold(conn, full_slot, other_owner, dict(other_pet)) is None
    counts = await assert_slot_invariant(conn, full_slot)
    assert (counts["remaining"], counts["pending_holds"]) == (0, 1)
    assert await conn.fetchval(
        "SELECT count(*) FROM reservations WHERE slot_id = $1 AND user_id = $2", full_slot["slot_id"], other_owner["user_id"]
    ) == 0


async def test_hold_refuses_a_past_slot_and_a_slot_under_maintenance(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    await conn.execute("SELECT vetbook_ensure_partitions(3, 1)")
    past = await make_slot(conn, world["clinic"], world["service"], world["staff"],
                           start=local_start(world["clinic"], days_ahead=-1))
    maintenance = await make_slot(conn, world["clinic"], world["service"], world["staff"],
                                  start=local_start(world["clinic"], days_ahead=8), status="maintenance")

    assert await hold(conn, past, world["owner"], world["pet"]) is None
    assert await hold(conn, maintenance, world["owner"], world["pet"]) is None

    assert await conn.fetchval("SELECT count(*) FROM reservations") == 0
    for slot in (past, maintenance):
        assert (await assert_slot_invariant(conn, slot))["remaining"] == 1


async def test_two_holds_racing_for_the_last_place_make_one_reservation(
    conn: asyncpg.Connection, fresh_database_url: str
) -> None:
    world = await make_world(conn)
    rival_owner = await make_user(conn)
    rival_pet = dict(await conn.fetchrow(
        "INSERT INTO pets (owner_id, name, species) VALUES ($1, 'Rex', 'dog') RETURNING *", rival_owner["user_id"]
    ))
    rival_conn = await asyncpg.connect(fresh_database_url)
    try:
        results = await asyncio.gather(
            hold(conn, world["slot"], world["owner"], world["pet"]),
            hold(rival_conn, world["slot"], rival_owner, rival_pet),
        )
    finally:
        await rival_conn.close()

    assert sorted(result is None for result in results) == [False, True]
    counts = await assert_slot_invariant(conn, world["slot"])
    assert (counts["remaining"], counts["pending_holds"]) == (0, 1)


# ------------------------------------------------------------------ confirm and pay


async def test_confirm_books_the_slot_priced_from_the_service_when_the_slot_has_no_price(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    reservation = await hold(conn, world["slot"], world["owner"], world["pet"])

    booking = await confirm(conn, reservation)

    assert booking is not None
    assert booking["reservation_id"] == reservation["reservation_id"]
    assert (booking["status"], booking["payment_status"]) == ("pending_payment", "pending")
    assert booking["total_amount"] == booking["final_amount"] == world["service"]["price"] == Decimal("150000.00")
    assert booking["slot_date"] == world["slot"]["date"]
    assert booking["staff_id"] == world["staff"]["staff_id"]
    assert await conn.fetchval(
        "SELECT status FROM reservations WHERE reservation_id = $1", reservation["reservation_id"]
    ) == "confirmed"
    slot = await assert_slot_invariant(conn, world["slot"])
    assert (slot["remaining"], slot["status"]) == (0, "booked")


async def test_confirm_uses_the_slot_price_and_leaves_a_slot_with_places_available(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    group_slot = await make_slot(conn, world["clinic"], world["service"], None,
                                 start=local_start(world["clinic"], days_ahead=10),
                                 capacity=3, remaining=3, price=Decimal("120000"))
    reservation = await hold(conn, group_slot, world["owner"], world["pet"])

    booking = await confirm(conn, reservation)

    assert booking["final_amount"] == Decimal("120000.00")
    slot = await assert_slot_invariant(conn, group_slot)
    assert (slot["remaining"], slot["status"]) == (2, "available")


async def test_confirm_refuses_a_wrong_lock_token_and_an_expired_hold(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    reservation = await hold(conn, world["slot"], world["owner"], world["pet"])

    assert await confirm(conn, reservation | {"lock_token": secrets.token_urlsafe(32)}) is None
    await conn.execute(
        "UPDATE reservations SET created_at = now() - interval '20 minutes', expires_at = now() - interval '10 minutes' "
        "WHERE reservation_id = $1",
        reservation["reservation_id"],
    )
    assert await confirm(conn, reservation) is None

    assert await conn.fetchval("SELECT count(*) FROM bookings") == 0
    await assert_slot_invariant(conn, world["slot"])


async def test_two_confirms_of_one_hold_make_one_booking(conn: asyncpg.Connection, fresh_database_url: str) -> None:
    world = await make_world(conn)
    reservation = await hold(conn, world["slot"], world["owner"], world["pet"])
    second_tab = await asyncpg.connect(fresh_database_url)
    try:
        # The row lock makes the later one wait, then see the hold already confirmed.
        results = await asyncio.gather(confirm(conn, reservation), confirm(second_tab, reservation))
    finally:
        await second_tab.close()

    assert sorted(result is None for result in results) == [False, True]
    assert await conn.fetchval("SELECT count(*) FROM bookings") == 1
    slot = await assert_slot_invariant(conn, world["slot"])
    assert (slot["remaining"], slot["status"]) == (0, "booked")


async def test_pay_settles_the_payment_and_confirms_the_booking(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)

    booking, payment = await paid_booking(conn, world)

    assert (booking["status"], booking["payment_status"]) == ("confirmed", "paid")
    assert booking["payment_id"] == payment["payment_id"]
    assert booking["version"] == 2
    stored = await conn.fetchrow("SELECT * FROM payment_records WHERE payment_id = $1", payment["payment_id"])
    assert stored["status"] == "completed"
    assert stored["paid_at"] is not None
    assert stored["amount"] == booking["final_amount"]
    assert (stored["booking_id"], stored["booking_created_at"]) == (booking["booking_id"], booking["created_at"])
    assert [(row["previous_status"], row["new_status"]) for row in await history(conn, booking)] == [
        ("pending_payment", "confirmed")
    ]
    await assert_slot_invariant(conn, world["slot"])


# ------------------------------------------------------------------ cancel


async def test_cancel_with_standard_refund(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    receptionist = await make_user(conn, role="receptionist", clinic=world["clinic"])
    booking, payment = await paid_booking(conn, world)

    cancelled = await cancel_with_refund(conn, booking, receptionist, percentage=90)

    assert cancelled is not None
    assert (cancelled["status"], cancelled["payment_status"]) == ("cancelled", "partially_refunded")
    assert cancelled["cancelled_at"] is not None
    assert cancelled["cancellation_reason"] == "customer_request"
    assert cancelled["refunded_amount"] == Decimal("135000.00") == booking["final_amount"] * Decimal("0.9")
    stored = await conn.fetchrow("SELECT * FROM payment_records WHERE payment_id = $1", payment["payment_id"])
    assert stored["status"] == "partially_refunded"
    assert stored["refund_amount"] == Decimal("135000.00")
    assert stored["refunded_at"] is not None
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 1  # no second, positive "refund" row

    cancellations = [row for row in await history(conn, booking) if row["new_status"] == "cancelled"]
    assert len(cancellations) == 1
    assert cancellations[0]["previous_status"] == "confirmed"
    assert cancellations[0]["changed_by"] == receptionist["user_id"]
    assert cancellations[0]["change_reason"] == "customer_request"
    assert json.loads(cancellations[0]["metadata"]) == STANDARD_REFUND

    slot = await assert_slot_invariant(conn, world["slot"])
    assert (slot["remaining"], slot["status"]) == (1, "available")


async def test_cancel_returns_the_place_but_keeps_a_maintenance_slot_in_maintenance(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    receptionist = await make_user(conn, role="receptionist", clinic=world["clinic"])
    booking, _ = await paid_booking(conn, world)
    await conn.execute(
        "UPDATE slots SET status = 'maintenance' WHERE slot_id = $1 AND date = $2", world["slot"]["slot_id"], world["slot"]["date"]
    )

    assert await cancel_with_refund(conn, booking, receptionist, percentage=90) is not None

    slot = await assert_slot_invariant(conn, world["slot"])
    assert (slot["remaining"], slot["status"]) == (1, "maintenance")
    # A maintenance slot is not offered, whatever its count says.
    assert await hold(conn, world["slot"], world["owner"], world["pet"]) is None


async def test_cancel_of_a_booking_changed_meanwhile_changes_nothing(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    receptionist = await make_user(conn, role="receptionist", clinic=world["clinic"])
    booking, payment = await paid_booking(conn, world)
    await conn.execute("UPDATE bookings SET notes = 'edited', version = version + 1 WHERE booking_id = $1", booking["booking_id"])

    assert await cancel_with_refund(conn, booking, receptionist, percentage=90) is None

    stored = await conn.fetchrow("SELECT status, payment_status, version FROM bookings WHERE booking_id = $1", booking["booking_id"])
    assert tuple(stored) == ("confirmed", "paid", 3)
    assert await conn.fetchval("SELECT status FROM payment_records WHERE payment_id = $1", payment["payment_id"]) == "completed"
    assert (await assert_slot_invariant(conn, world["slot"]))["remaining"] == 0


async def test_design_refund_row_is_refused_by_the_refund_check(conn: asyncpg.Connection) -> None:
    """4.2 step 3 inserts a second, positive payment row marked 'refunded' without refund_amount. Only
    clinic_id and booking_created_at (the composite key needs them) and paid_at (else
    payment_records_paid_at_check refuses it first) are added here, so that the refund rule is the check the
    row fails."""
    world = await make_world(conn)
    booking, _ = await paid_booking(conn, world)

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await conn.execute(
            """
            INSERT INTO payment_records (clinic_id, booking_id, booking_created_at, amount, currency, payment_method,
                                         payment_provider, status, paid_at, refunded_at)
            SELECT clinic_id, booking_id, created_at, final_amount * 0.9, currency, 'refund', 'system', 'refunded',
                   now(), now()
            FROM bookings
            WHERE booking_id = $1
            """,
            booking["booking_id"],
        )
    assert refused.value.constraint_name == "payment_records_refund_check"
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 1


# ------------------------------------------------------------------ reschedule, complete, no-show


async def test_reschedule_moves_the_booking_and_its_payment_to_the_new_slot(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    booking, payment = await paid_booking(conn, world)
    new_slot = await make_slot(conn, world["clinic"], world["service"], world["staff"],
                               start=local_start(world["clinic"], days_ahead=12))

    new = await reschedule(conn, booking, new_slot)

    assert new is not None
    old = await conn.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking["booking_id"])
    assert (old["status"], old["payment_status"]) == ("rescheduled", "paid")
    assert (new["status"], new["payment_status"]) == ("confirmed", "paid")
    assert new["payment_id"] == old["payment_id"] == payment["payment_id"]
    assert (new["rescheduled_from_booking_id"], new["rescheduled_from_created_at"]) == (old["booking_id"], old["created_at"])
    assert (new["slot_id"], new["slot_date"]) == (new_slot["slot_id"], new_slot["date"])
    assert new["final_amount"] == old["final_amount"]
    assert [(row["previous_status"], row["new_status"]) for row in await history(conn, booking)][-1] == (
        "confirmed", "rescheduled"
    )

    old_slot = await assert_slot_invariant(conn, world["slot"])
    assert (old_slot["remaining"], old_slot["status"]) == (1, "available")
    moved_to = await assert_slot_invariant(conn, new_slot)
    assert (moved_to["remaining"], moved_to["status"]) == (0, "booked")


async def test_reschedule_to_a_full_slot_is_rolled_back(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    booking, _ = await paid_booking(conn, world)
    full = await make_slot(conn, world["clinic"], world["service"], world["staff"],
                           start=local_start(world["clinic"], days_ahead=12), remaining=0, status="booked")

    with pytest.raises(AssertionError, match="no free place"):
        await reschedule(conn, booking, full)

    assert await conn.fetchval("SELECT status FROM bookings WHERE booking_id = $1", booking["booking_id"]) == "confirmed"
    assert await conn.fetchval("SELECT count(*) FROM bookings") == 1
    assert await conn.fetchval("SELECT count(*) FROM booking_history WHERE new_status = 'rescheduled'") == 0
    assert (await assert_slot_invariant(conn, world["slot"]))["remaining"] == 0


async def test_complete_goes_through_in_progress(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    booking, _ = await paid_booking(conn, world)

    booking = await set_booking_status(conn, booking, "confirmed", "in_progress")
    assert booking["completed_at"] is None
    booking = await set_booking_status(conn, booking, "in_progress", "completed", ", completed_at = now()")

    assert booking["status"] == "completed"
    assert booking["completed_at"] is not None
    assert [(row["previous_status"], row["new_status"]) for row in await history(conn, booking)] == [
        ("pending_payment", "confirmed"), ("confirmed", "in_progress"), ("in_progress", "completed"),
    ]
    slot = await assert_slot_invariant(conn, world["slot"])
    assert (slot["remaining"], slot["status"]) == (0, "booked")


async def test_no_show_keeps_the_place_taken(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    booking, _ = await paid_booking(conn, world)

    booking = await set_booking_status(conn, booking, "confirmed", "no_show")

    assert (booking["status"], booking["payment_status"]) == ("no_show", "paid")
    assert [(row["previous_status"], row["new_status"]) for row in await history(conn, booking)][-1] == (
        "confirmed", "no_show"
    )
    slot = await assert_slot_invariant(conn, world["slot"])
    assert (slot["remaining"], slot["status"]) == (0, "booked")


# ------------------------------------------------------------------ optimistic locking (4.4)


async def test_update_with_a_stale_version_changes_nothing(conn: asyncpg.Connection) -> None:
    world = await make_world(conn)
    booking, _ = await paid_booking(conn, world)
    assert booking["version"] == 2

    # Two clerks read version 2; the first one's write wins, the second one's matches no row.
    first = await conn.execute(
        "UPDATE bookings SET notes = 'first clerk', version = version + 1 WHERE booking_id = $1 AND version = $2",
        booking["booking_id"], 2,
    )
    second = await conn.execute(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), version = version + 1 "
        "WHERE booking_id = $1 AND version = $2",
        booking["booking_id"], 2,
    )

    assert (first, second) == ("UPDATE 1", "UPDATE 0")
    stored = await conn.fetchrow("SELECT status, notes, version FROM bookings WHERE booking_id = $1", booking["booking_id"])
    assert tuple(stored) == ("confirmed", "first clerk", 3)
    assert await conn.fetchval("SELECT count(*) FROM booking_history WHERE new_status = 'cancelled'") == 0
    await assert_slot_invariant(conn, world["slot"])

"""Triggers: updated_at on every table that has it (4.3), and no trigger writing the booking history.

The design's history trigger (4.3) is gone since migration 0021: on Citus a trigger runs on the worker that
holds the row, and writing another distributed table from there escapes the coordinator's transaction. The
engine writes each status change's history row in the change's own transaction (tests/booking/test_history.py
checks who, why and how many). The design's trigger also broke on pooled connections: once a transaction has
set app.user_id, the setting reads '' (not NULL) in every later transaction on that connection, and
``''::uuid`` fails; the last test shows it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest

from tests.db.factories import make_booking, make_payment, make_reservation, make_user, make_world

# Each table with updated_at, its key and an UPDATE that does not mention updated_at.
UPDATED_AT_TABLES = {
    "clinics": ("clinic_id", "phone = '021-555-0101'"),
    "services": ("service_id", "description = 'Annual check-up'"),
    "staff": ("staff_id", "role = 'nurse'"),
    "users": ("user_id", "phone = '0812-0000-0001'"),
    "pets": ("pet_id", "notes = 'Shy with strangers'"),
    "slots": ("slot_id", "price = 99000"),
    "reservations": ("reservation_id", "expires_at = expires_at + interval '1 minute'"),
    "bookings": ("booking_id", "notes = 'Please bring the vaccination card'"),
    "payment_records": ("payment_id", "transaction_fee = 2500"),
    "refunds": ("refund_id", "attempts = attempts + 1"),
}


async def make_everything(conn: asyncpg.Connection) -> dict[str, dict]:
    world = await make_world(conn)
    reservation = await make_reservation(conn, world["slot"], world["owner"], world["pet"])
    booking = await make_booking(conn, world["slot"], world["owner"], world["pet"])
    payment = await make_payment(conn, booking, payment_method="qris", payment_provider="sandbox", status="pending")
    refund = await conn.fetchrow(
        "INSERT INTO refunds (clinic_id, refund_id, payment_id, booking_id, amount, reason, provider, refund_key) "
        "VALUES ($1, $2, $3, $4, 1000, 'paid_twice', 'sandbox', $5) RETURNING *",
        payment["clinic_id"], uuid.uuid4(), payment["payment_id"], booking["booking_id"], f"key-{uuid.uuid4()}")
    return {
        "clinics": world["clinic"],
        "services": world["service"],
        "staff": world["staff"],
        "users": world["owner"],
        "pets": world["pet"],
        "slots": world["slot"],
        "reservations": reservation,
        "bookings": booking,
        "payment_records": payment,
        "refunds": refund,
    }


async def test_every_table_with_updated_at_is_listed_and_has_the_trigger(conn: asyncpg.Connection) -> None:
    tables_with_column = await conn.fetch(
        """
        SELECT c.relname FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND a.attname = 'updated_at' AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        """
    )
    tables_with_trigger = await conn.fetch(
        """
        SELECT t.tgrelid::regclass::text AS relname FROM pg_trigger t
        JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE p.proname = 'update_timestamp' AND NOT t.tgisinternal AND t.tgparentid = 0
          AND t.tgtype & 2 = 2 AND t.tgtype & 16 = 16  -- BEFORE, UPDATE
        """
    )
    assert {row["relname"] for row in tables_with_column} == set(UPDATED_AT_TABLES)
    assert {row["relname"] for row in tables_with_trigger} == set(UPDATED_AT_TABLES)


async def test_updated_at_moves_on_update_of_every_table(conn: asyncpg.Connection) -> None:
    rows = await make_everything(conn)
    # now() is the transaction's start: every insert's transaction has ended before this clock reading,
    # and each update's transaction starts after it.
    before_updates = await conn.fetchval("SELECT clock_timestamp()")
    wrong = {}

    for table, (key, assignment) in UPDATED_AT_TABLES.items():
        row = rows[table]
        async with conn.transaction():
            updated = await conn.fetchrow(
                f"UPDATE {table} SET {assignment} WHERE {key} = $1 "
                "RETURNING updated_at, created_at, now() AS transaction_start",
                row[key],
            )
        moved = row["updated_at"] < before_updates <= updated["updated_at"] == updated["transaction_start"]
        if not moved or updated["created_at"] != row["created_at"]:
            wrong[table] = (row["updated_at"], dict(updated))

    assert wrong == {}


async def history(conn: asyncpg.Connection, booking: dict) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM booking_history WHERE booking_id = $1 ORDER BY changed_at, new_status", booking["booking_id"]
    )


async def set_status(conn: asyncpg.Connection, booking: dict, status: str, payment_status: str) -> datetime:
    """Change the booking's status in the current transaction; returns the transaction's now()."""
    return await conn.fetchval(
        "UPDATE bookings SET status = $3, payment_status = $4 WHERE booking_id = $1 AND created_at = $2 "
        "RETURNING now()",
        booking["booking_id"], booking["created_at"], status, payment_status,
    )


async def booking_world(conn: asyncpg.Connection) -> tuple[dict, dict]:
    world = await make_world(conn)
    booking = await make_booking(conn, world["slot"], world["owner"], world["pet"])
    receptionist = await make_user(conn, role="receptionist", clinic=world["clinic"])
    return booking, receptionist


async def test_no_trigger_writes_the_history(conn: asyncpg.Connection) -> None:
    booking, _ = await booking_world(conn)

    await set_status(conn, booking, "confirmed", "paid")

    assert await history(conn, booking) == []
    writers = await conn.fetch(
        """
        SELECT t.tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE NOT t.tgisinternal AND p.prosrc ILIKE '%booking_history%'
        """
    )
    assert writers == []


DESIGN_TRIGGER = """
CREATE FUNCTION design_log_booking_status_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> NEW.status THEN
        INSERT INTO booking_history (
            clinic_id, booking_id, booking_created_at, previous_status, new_status, changed_by, change_reason
        ) VALUES (
            NEW.clinic_id, NEW.booking_id, NEW.created_at, OLD.status, NEW.status,
            current_setting('app.user_id', true)::uuid,
            TG_ARGV[0]
        );
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER design_booking_status_change AFTER UPDATE OF status ON bookings
    FOR EACH ROW EXECUTE FUNCTION design_log_booking_status_change('system_update');
"""


async def test_the_designs_trigger_body_fails_in_the_pooled_case(conn: asyncpg.Connection) -> None:
    """The design's trigger (with only the columns our keys need added): after one change with an actor,
    the next change on the same (reused) connection fails, because app.user_id now reads '' and the design
    casts it to uuid. The engine names the actor as a statement parameter instead."""
    booking, receptionist = await booking_world(conn)
    await conn.execute(DESIGN_TRIGGER)

    async with conn.transaction():
        await conn.execute("SELECT set_config('app.user_id', $1, true)", str(receptionist["user_id"]))
        await set_status(conn, booking, "confirmed", "paid")
    assert await conn.fetchval("SELECT current_setting('app.user_id', true)") == ""
    with pytest.raises(asyncpg.InvalidTextRepresentationError, match="uuid"):
        async with conn.transaction():
            await set_status(conn, booking, "no_show", "paid")

    assert await conn.fetchval("SELECT status FROM bookings WHERE booking_id = $1", booking["booking_id"]) == "confirmed"

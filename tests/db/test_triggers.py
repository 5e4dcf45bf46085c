"""Triggers: updated_at on every table that has it, and the booking status history (4.3, fixed).

The history trigger takes the actor, reason and metadata from transaction-local settings
(``set_config('app.user_id', …, true)``, ``app.change_reason``, ``app.change_metadata``). The case that
broke the design's trigger is a pooled connection: once a transaction has set app.user_id, the setting
reads '' (not NULL) in every later transaction on that connection, and ``''::uuid`` fails.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
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
}


async def make_everything(conn: asyncpg.Connection) -> dict[str, dict]:
    world = await make_world(conn)
    reservation = await make_reservation(conn, world["slot"], world["owner"], world["pet"])
    booking = await make_booking(conn, world["slot"], world["owner"], world["pet"])
    payment = await make_payment(conn, booking, payment_method="qris", payment_provider="sandbox", status="pending")
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


async def test_status_change_records_one_history_row_with_actor_reason_and_metadata(conn: asyncpg.Connection) -> None:
    booking, receptionist = await booking_world(conn)

    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('app.user_id', $1, true), set_config('app.change_reason', 'payment_received', true), "
            "set_config('app.change_metadata', $2, true)",
            str(receptionist["user_id"]), json.dumps({"provider": "sandbox", "attempt": 1}),
        )
        changed_at = await set_status(conn, booking, "confirmed", "paid")

    rows = await history(conn, booking)
    assert len(rows) == 1
    row = rows[0]
    assert (row["previous_status"], row["new_status"]) == ("pending_payment", "confirmed")
    assert row["booking_created_at"] == booking["created_at"]
    assert row["changed_by"] == receptionist["user_id"]
    assert row["change_reason"] == "payment_received"
    assert json.loads(row["metadata"]) == {"provider": "sandbox", "attempt": 1}
    assert row["changed_at"] == changed_at


async def test_status_change_without_settings_records_no_actor_and_system_update(conn: asyncpg.Connection) -> None:
    booking, _ = await booking_world(conn)

    async with conn.transaction():
        await set_status(conn, booking, "confirmed", "paid")

    rows = await history(conn, booking)
    assert len(rows) == 1
    assert rows[0]["changed_by"] is None
    assert rows[0]["change_reason"] == "system_update"
    assert rows[0]["metadata"] is None


async def test_each_status_change_writes_exactly_one_row(conn: asyncpg.Connection) -> None:
    booking, _ = await booking_world(conn)

    await set_status(conn, booking, "confirmed", "paid")
    await set_status(conn, booking, "in_progress", "paid")
    await conn.execute(
        "UPDATE bookings SET status = 'completed', completed_at = now() WHERE booking_id = $1", booking["booking_id"]
    )

    rows = await history(conn, booking)
    assert [(row["previous_status"], row["new_status"]) for row in rows] == [
        ("pending_payment", "confirmed"),
        ("confirmed", "in_progress"),
        ("in_progress", "completed"),
    ]


async def test_update_without_status_change_writes_no_history(conn: asyncpg.Connection) -> None:
    booking, receptionist = await booking_world(conn)

    async with conn.transaction():
        await conn.execute("SELECT set_config('app.user_id', $1, true)", str(receptionist["user_id"]))
        await conn.execute("UPDATE bookings SET notes = 'Allergic to penicillin' WHERE booking_id = $1", booking["booking_id"])
        # Naming the column fires the trigger (AFTER UPDATE OF status); the value does not change.
        await conn.execute("UPDATE bookings SET status = status, version = version + 1 WHERE booking_id = $1", booking["booking_id"])

    assert await history(conn, booking) == []
    assert await conn.fetchval("SELECT version FROM bookings WHERE booking_id = $1", booking["booking_id"]) == 2


async def change_with_actor_then_without(
    acquire: Callable[[], Awaitable[asyncpg.Connection]], release: Callable[[asyncpg.Connection], Awaitable[None]],
    booking: dict, actor: dict,
) -> tuple[int, int, str | None]:
    """A status change with an actor, committed, then one without on the connection it was handed next.

    Returns the two backend pids and what app.user_id reads in the second transaction."""
    connection = await acquire()
    async with connection.transaction():
        await connection.execute(
            "SELECT set_config('app.user_id', $1, true), set_config('app.change_reason', 'customer_request', true), "
            "set_config('app.change_metadata', '{\"channel\": \"web\"}', true)",
            str(actor["user_id"]),
        )
        await set_status(connection, booking, "confirmed", "paid")
    first_pid = connection.get_server_pid()
    await release(connection)

    connection = await acquire()
    async with connection.transaction():
        leftover = await connection.fetchval("SELECT current_setting('app.user_id', true)")
        await set_status(connection, booking, "no_show", "paid")
    second_pid = connection.get_server_pid()
    await release(connection)
    return first_pid, second_pid, leftover


def assert_actor_only_on_first_change(rows: list[asyncpg.Record], actor: dict) -> None:
    assert [(row["previous_status"], row["new_status"]) for row in rows] == [
        ("pending_payment", "confirmed"),
        ("confirmed", "no_show"),
    ]
    assert rows[0]["changed_by"] == actor["user_id"]
    assert rows[0]["change_reason"] == "customer_request"
    # Nothing of the first transaction leaks into the second: no actor, default reason, no metadata.
    assert rows[1]["changed_by"] is None
    assert rows[1]["change_reason"] == "system_update"
    assert rows[1]["metadata"] is None


async def test_pooled_connection_status_change_without_actor_after_one_with_actor(conn: asyncpg.Connection) -> None:
    booking, receptionist = await booking_world(conn)

    async def same_connection() -> asyncpg.Connection:
        return conn

    async def keep(_: asyncpg.Connection) -> None:
        return None

    first_pid, second_pid, leftover = await change_with_actor_then_without(same_connection, keep, booking, receptionist)

    assert first_pid == second_pid
    # The trap the design's trigger fell into: the setting is now '' on this connection, not NULL.
    assert leftover == ""
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        await conn.fetchval("SELECT current_setting('app.user_id', true)::uuid")
    assert_actor_only_on_first_change(await history(conn, booking), receptionist)


async def test_pool_of_one_reuses_the_connection_and_records_no_actor(fresh_database_url: str) -> None:
    setup = await asyncpg.connect(fresh_database_url)
    try:
        booking, receptionist = await booking_world(setup)
    finally:
        await setup.close()

    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=1)
    try:
        first_pid, second_pid, leftover = await change_with_actor_then_without(
            pool.acquire, pool.release, booking, receptionist
        )
        assert first_pid == second_pid  # the same server session served both transactions
        # asyncpg's RESET ALL on release does not bring back NULL either.
        assert leftover == ""
        async with pool.acquire() as connection:
            assert_actor_only_on_first_change(await history(connection, booking), receptionist)
    finally:
        await pool.close()


DESIGN_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION log_booking_status_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> NEW.status THEN
        INSERT INTO booking_history (
            booking_id, booking_created_at, previous_status, new_status, changed_by, change_reason
        ) VALUES (
            NEW.booking_id, NEW.created_at, OLD.status, NEW.status,
            current_setting('app.user_id', true)::uuid,
            TG_ARGV[0]
        );
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


async def test_the_designs_trigger_body_fails_in_the_pooled_case(conn: asyncpg.Connection) -> None:
    """The scenario above is the one that matters: with the design's cast (only booking_created_at added,
    which the composite key needs) the second change on the reused connection fails."""
    booking, receptionist = await booking_world(conn)
    await conn.execute(DESIGN_TRIGGER_FUNCTION)

    async with conn.transaction():
        await conn.execute("SELECT set_config('app.user_id', $1, true)", str(receptionist["user_id"]))
        await set_status(conn, booking, "confirmed", "paid")
    with pytest.raises(asyncpg.InvalidTextRepresentationError, match="uuid"):
        async with conn.transaction():
            await set_status(conn, booking, "no_show", "paid")

    assert await conn.fetchval("SELECT status FROM bookings WHERE booking_id = $1", booking["booking_id"]) == "confirmed"


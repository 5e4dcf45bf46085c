"""The design's statements that docs/schema.md says fail, run verbatim on a real server, next to the fix.

Each test proves one deviation: the design's SQL (copied from the design document) fails or gives the wrong
answer, and the schema as built does the right thing.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.db.factories import make_booking, make_world

DESIGN_BOOKINGS_BEFORE_RESERVATIONS = """
CREATE TABLE design_bookings (
    booking_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id UUID REFERENCES design_reservations(reservation_id) ON DELETE SET NULL
)
"""

DESIGN_PARTITIONED_WITH_PK = """
CREATE TABLE design_slots (
    slot_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    date DATE NOT NULL
) PARTITION BY RANGE (date)
"""

DESIGN_NO_STAFF_OVERLAP = """
CREATE UNIQUE INDEX no_staff_overlap_idx
ON slots (staff_id, daterange(start_time, end_time))
WHERE staff_id IS NOT NULL
"""

DESIGN_SLOW_QUERY = """
SELECT
    query, calls, total_time, mean_time,
    rows, 100.0 * shared_blks_hit / nullif(shared_blks_hit + shared_blks_read, 0) AS hit_ratio
FROM pg_stat_statements
ORDER BY total_time DESC
LIMIT 10
"""

# The fix: PostgreSQL 13 renamed the two columns (total_exec_time, mean_exec_time); nothing else changes.
FIXED_SLOW_QUERY = DESIGN_SLOW_QUERY.replace("total_time", "total_exec_time").replace("mean_time", "mean_exec_time")

DESIGN_INDEX_USAGE = """
SELECT
    schemaname, relname, indexrelname, idx_scan,
    idx_tup_read, idx_tup_fetch
FROM pg_stat_user_indexes
JOIN pg_stat_user_tables USING (relid)
ORDER BY idx_scan DESC
"""

FIXED_INDEX_USAGE = """
SELECT
    i.schemaname, i.relname, i.indexrelname, i.idx_scan,
    i.idx_tup_read, i.idx_tup_fetch
FROM pg_stat_user_indexes i
JOIN pg_stat_user_tables t ON t.relid = i.relid
ORDER BY i.idx_scan DESC
"""


async def test_bookings_cannot_reference_reservations_before_they_exist(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.UndefinedTableError, match="design_reservations"):
        await conn.execute(DESIGN_BOOKINGS_BEFORE_RESERVATIONS)


async def test_partitioned_table_refuses_a_primary_key_without_the_partition_key(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.FeatureNotSupportedError, match="partition"):
        await conn.execute(DESIGN_PARTITIONED_WITH_PK)
    primary_key = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'slots_pkey'"
    )
    # The clinic leads every key since migration 0021 (docs/scaling.md); the partition key stays in it.
    assert primary_key == "PRIMARY KEY (clinic_id, slot_id, date)"


async def test_design_no_staff_overlap_index_cannot_be_created(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.UndefinedFunctionError, match="daterange"):
        await conn.execute(DESIGN_NO_STAFF_OVERLAP)


async def test_design_monitoring_queries_fail_and_the_fixed_ones_run(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    with pytest.raises(asyncpg.UndefinedColumnError, match="total_time"):
        await conn.fetch(DESIGN_SLOW_QUERY)
    with pytest.raises(asyncpg.AmbiguousColumnError, match="schemaname"):
        await conn.fetch(DESIGN_INDEX_USAGE)

    await conn.fetch(FIXED_SLOW_QUERY)
    usage = await conn.fetch(FIXED_INDEX_USAGE)
    assert any(row["indexrelname"] == "clinics_pkey" for row in usage)


async def test_design_cancellation_violates_the_designs_own_check(conn: asyncpg.Connection) -> None:
    """§4.2 cancels a paid booking without touching payment_status; under the design's §4.1 check that
    row cannot exist. Shown on a scratch table carrying the design's check verbatim."""
    await conn.execute(
        """
        CREATE TEMP TABLE design_check (status VARCHAR(20), payment_status VARCHAR(20),
        CONSTRAINT check_payment_status CHECK (
            (status = 'pending_payment' AND payment_status = 'pending') OR
            (status = 'confirmed' AND payment_status = 'paid') OR
            (status = 'cancelled' AND payment_status IN ('refunded', 'partially_refunded', 'failed')) OR
            (status IN ('in_progress', 'completed', 'no_show'))
        ))
        """
    )
    await conn.execute("INSERT INTO design_check VALUES ('confirmed', 'paid')")
    with pytest.raises(asyncpg.CheckViolationError) as cancelled:
        await conn.execute("UPDATE design_check SET status = 'cancelled'")
    assert cancelled.value.constraint_name == "check_payment_status"
    for payment_status in ("paid", "pending"):
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE design_check SET status = 'rescheduled', payment_status = $1", payment_status
            )

    # The schema as built: a cancellation with its refund state, and a reschedule, both commit.
    world = await make_world(conn)
    booking = await make_booking(
        conn, world["slot"], world["owner"], world["pet"], status="confirmed", payment_status="paid"
    )
    await conn.execute(
        "UPDATE bookings SET status = 'cancelled', payment_status = 'partially_refunded', "
        "refunded_amount = final_amount * 0.9, cancelled_at = now(), cancellation_reason = 'customer_request' "
        "WHERE booking_id = $1",
        booking["booking_id"],
    )
    second = await make_booking(
        conn, world["slot"], world["owner"], world["pet"], status="confirmed", payment_status="paid"
    )
    await conn.execute("UPDATE bookings SET status = 'rescheduled' WHERE booking_id = $1", second["booking_id"])
    statuses = await conn.fetch("SELECT status, payment_status FROM bookings ORDER BY status")
    assert [tuple(row) for row in statuses] == [("cancelled", "partially_refunded"), ("rescheduled", "paid")]


async def test_null_discount_no_longer_lets_any_final_amount_through(conn: asyncpg.Connection) -> None:
    # The design's CHECK alone accepts this row: NULL arithmetic makes the CHECK NULL, which passes.
    assert await conn.fetchval("SELECT (100::numeric = 150 - NULL::numeric) IS NULL")
    world = await make_world(conn)
    with pytest.raises(asyncpg.NotNullViolationError) as refused:
        await make_booking(
            conn, world["slot"], world["owner"], world["pet"], discount_amount=None, final_amount=1
        )
    assert refused.value.column_name == "discount_amount"


async def test_design_history_trigger_cast_fails_on_a_reused_connection(conn: asyncpg.Connection) -> None:
    """After one transaction used SET LOCAL app.user_id, the setting reads '' on that connection, and the
    design's current_setting(...)::uuid raises; the built trigger's NULLIF does not."""
    async with conn.transaction():
        await conn.execute("SET LOCAL app.user_id = '7f8c2a4e-0000-4000-8000-000000000000'")
    assert await conn.fetchval("SELECT current_setting('app.user_id', true)") == ""
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        await conn.fetchval("SELECT current_setting('app.user_id', true)::uuid")
    assert await conn.fetchval("SELECT NULLIF(current_setting('app.user_id', true), '')::uuid") is None


async def test_design_date_trunc_day_depends_on_the_session_time_zone(conn: asyncpg.Connection) -> None:
    created_at = datetime(2026, 11, 26, 16, 30, tzinfo=ZoneInfo("UTC"))
    days = set()
    for zone in ("UTC", "Asia/Jayapura"):
        await conn.execute(f"SET TimeZone = '{zone}'")
        days.add(await conn.fetchval("SELECT DATE_TRUNC('day', $1::timestamptz)::date", created_at))
    assert len(days) == 2  # the same booking, two different "days"
    # The view's rule: the clinic-local day, whoever refreshes.
    assert await conn.fetchval("SELECT ($1::timestamptz AT TIME ZONE 'Asia/Jayapura')::date", created_at) == max(days)

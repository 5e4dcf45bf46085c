"""Monthly partitions of slots (by clinic-local date) and bookings (by UTC month of created_at), their
premake function, the per-partition staff exclusion constraint, and partition pruning of the slot search."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.conftest import run_cli, vetbook_command
from tests.db.factories import (
    make_booking,
    make_clinic,
    make_pet,
    make_service,
    make_slot,
    make_staff,
    make_user,
)

UTC = ZoneInfo("UTC")

NO_STAFF_OVERLAP_DEFINITION = (
    "EXCLUDE USING gist (clinic_id WITH =, staff_id WITH =, tstzrange(start_time, end_time) WITH &&) "
    "WHERE ((staff_id IS NOT NULL))"
)


async def partition_of(conn: asyncpg.Connection, table: str, key: str, value: object) -> str:
    return await conn.fetchval(f"SELECT tableoid::regclass::text FROM {table} WHERE {key} = $1", value)


async def premake_suffixes(conn: asyncpg.Connection, months_ahead: int) -> list[str]:
    """YYYYMM of the current UTC month and the ``months_ahead`` months after it, as the server sees them."""
    rows = await conn.fetch(
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i), 'YYYYMM') AS suffix "
        "FROM generate_series(0, $1::int) AS i ORDER BY i",
        months_ahead,
    )
    return [row["suffix"] for row in rows]


async def partitions(conn: asyncpg.Connection, parent: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits WHERE inhparent = $1::regclass", parent
    )
    return {row["name"] for row in rows}


async def drop_month_partitions(conn: asyncpg.Connection, suffix: str) -> None:
    # The foreign keys that point at bookings and slots depend on every partition, so DROP TABLE alone is
    # refused; detaching first (allowed because no row references these empty partitions) releases them.
    for parent in ("bookings", "slots"):
        await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {parent}_{suffix}")
        await conn.execute(f"DROP TABLE {parent}_{suffix}")


async def no_staff_overlap_constraints(conn: asyncpg.Connection) -> dict[str, str]:
    """Each slots partition mapped to the definition of its constraint named <partition>_no_staff_overlap."""
    rows = await conn.fetch(
        """
        SELECT i.inhrelid::regclass::text AS partition, pg_get_constraintdef(c.oid) AS definition
        FROM pg_inherits i
        LEFT JOIN pg_constraint c
               ON c.conrelid = i.inhrelid AND c.contype = 'x'
              AND c.conname = i.inhrelid::regclass::text || '_no_staff_overlap'
        WHERE i.inhparent = 'slots'::regclass
        """
    )
    return {row["partition"]: row["definition"] for row in rows}


async def test_slot_lands_in_the_partition_of_its_clinic_local_month(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT vetbook_create_month_partitions('2026-11-01'), vetbook_create_month_partitions('2026-12-01')")
    clinic = await make_clinic(conn, timezone="Asia/Jayapura")  # UTC+9
    service = await make_service(conn, clinic)
    zone = ZoneInfo("Asia/Jayapura")

    # 00:30 on 1 December in Jayapura is still 30 November in UTC: the local day decides the partition.
    first_of_december = await make_slot(conn, clinic, service, start=datetime(2026, 12, 1, 0, 30, tzinfo=zone))
    last_of_november = await make_slot(conn, clinic, service, start=datetime(2026, 11, 30, 23, 0, tzinfo=zone))

    assert first_of_december["start_time"].astimezone(UTC).date() == date(2026, 11, 30)
    assert first_of_december["date"] == date(2026, 12, 1)
    assert await partition_of(conn, "slots", "slot_id", first_of_december["slot_id"]) == "slots_202612"
    assert await partition_of(conn, "slots", "slot_id", last_of_november["slot_id"]) == "slots_202611"


async def test_booking_lands_in_the_partition_of_the_utc_month_of_created_at(conn: asyncpg.Connection) -> None:
    # A session in a zone ahead of UTC, where 2026-11-30 23:30 UTC is already 1 December: neither the
    # partition bounds nor the routing may depend on the session's TimeZone.
    await conn.execute("SET TimeZone = 'Asia/Jakarta'")
    await conn.execute("SELECT vetbook_create_month_partitions('2026-11-01'), vetbook_create_month_partitions('2026-12-01')")
    clinic = await make_clinic(conn)
    service = await make_service(conn, clinic)
    owner = await make_user(conn)
    pet = await make_pet(conn, owner)
    slot = await make_slot(conn, clinic, service, start=datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta")))

    late_november = await make_booking(conn, slot, owner, pet, created_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    december_start = await make_booking(conn, slot, owner, pet, created_at=datetime(2026, 12, 1, 0, 0, tzinfo=UTC))

    assert await partition_of(conn, "bookings", "booking_id", late_november["booking_id"]) == "bookings_202611"
    assert await partition_of(conn, "bookings", "booking_id", december_start["booking_id"]) == "bookings_202612"

    await conn.execute("SET TimeZone = 'UTC'")
    bounds = await conn.fetchval("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'bookings_202612'")
    assert bounds == "FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')"


async def test_ensure_partitions_premakes_the_current_month_and_three_ahead(conn: asyncpg.Connection) -> None:
    suffixes = await premake_suffixes(conn, 3)
    for suffix in suffixes:
        await drop_month_partitions(conn, suffix)

    created = await conn.fetchval("SELECT vetbook_ensure_partitions(3, 0)")

    assert created == 2 * len(suffixes) == 8
    slots_partitions = await partitions(conn, "slots")
    bookings_partitions = await partitions(conn, "bookings")
    for suffix in suffixes:
        assert f"slots_{suffix}" in slots_partitions
        assert f"bookings_{suffix}" in bookings_partitions
    # Idempotent: the daily job calls it again and again.
    assert await conn.fetchval("SELECT vetbook_ensure_partitions(3, 0)") == 0
    assert await partitions(conn, "slots") == slots_partitions
    assert await partitions(conn, "bookings") == bookings_partitions


async def test_there_is_no_default_partition_and_a_month_without_partition_is_refused(conn: asyncpg.Connection) -> None:
    default_partitions = await conn.fetch(
        "SELECT partrelid::regclass::text AS parent FROM pg_partitioned_table "
        "WHERE partrelid IN ('slots'::regclass, 'bookings'::regclass) AND partdefid <> 0"
    )
    assert default_partitions == []

    clinic = await make_clinic(conn)
    service = await make_service(conn, clinic)
    owner = await make_user(conn)
    pet = await make_pet(conn, owner)
    far_future = datetime(2090, 6, 15, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
    with pytest.raises(asyncpg.PostgresError, match='no partition of relation "slots" found for row'):
        await make_slot(conn, clinic, service, start=far_future)

    slot = await make_slot(conn, clinic, service)
    with pytest.raises(asyncpg.PostgresError, match='no partition of relation "bookings" found for row'):
        await make_booking(conn, slot, owner, pet, created_at=far_future)
    assert await conn.fetchval("SELECT count(*) FROM bookings") == 0


async def test_every_slots_partition_has_its_staff_no_overlap_exclusion_constraint(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT vetbook_create_month_partitions('2031-03-01')")  # one made after the migration, too

    constraints = await no_staff_overlap_constraints(conn)

    assert "slots_203103" in constraints
    assert len(constraints) >= 6  # the migration's premake: previous, current and three months ahead
    assert constraints == dict.fromkeys(constraints, NO_STAFF_OVERLAP_DEFINITION)


async def test_staff_no_overlap_constraint_refuses_overlapping_slots_of_one_staff_member(conn: asyncpg.Connection) -> None:
    clinic = await make_clinic(conn)
    service = await make_service(conn, clinic)
    vet = await make_staff(conn, clinic)
    other_vet = await make_staff(conn, clinic)
    start = datetime(2026, 12, 10, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
    await conn.execute("SELECT vetbook_create_month_partitions('2026-12-01')")
    await make_slot(conn, clinic, service, vet, start=start, minutes=30)

    with pytest.raises(asyncpg.ExclusionViolationError, match="slots_202612_no_staff_overlap"):
        await make_slot(conn, clinic, service, vet, start=start + timedelta(minutes=15), minutes=30)

    # Back to back is not an overlap ([start, end) ranges); another vet or no vet may share the time.
    await make_slot(conn, clinic, service, vet, start=start + timedelta(minutes=30), minutes=30)
    await make_slot(conn, clinic, service, other_vet, start=start, minutes=30)
    await make_slot(conn, clinic, service, None, start=start + timedelta(minutes=15), minutes=30)
    assert await conn.fetchval("SELECT count(*) FROM slots") == 4


async def test_concurrent_ensure_partitions_calls_both_succeed(fresh_database_url: str) -> None:
    first = await asyncpg.connect(fresh_database_url)
    second = await asyncpg.connect(fresh_database_url)
    # Watches the second session from outside: within a transaction pg_stat_activity is a frozen snapshot.
    observer = await asyncpg.connect(fresh_database_url)
    try:
        suffixes = await premake_suffixes(first, 3)
        for suffix in suffixes[1:]:
            await drop_month_partitions(first, suffix)

        # The first call holds its transaction open after creating the partitions; the second call starts
        # meanwhile and must wait on the advisory lock rather than race to create the same tables.
        transaction = first.transaction()
        await transaction.start()
        try:
            created_first = await first.fetchval("SELECT vetbook_ensure_partitions(3, 0)")
            second_call = asyncio.create_task(second.fetchval("SELECT vetbook_ensure_partitions(3, 0)"))
            wait_event = None
            for _ in range(250):
                wait_event = await observer.fetchval(
                    "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE pid = $1",
                    second.get_server_pid(),
                )
                if wait_event == "Lock:advisory":
                    break
                await asyncio.sleep(0.02)
            assert wait_event == "Lock:advisory"
            assert not second_call.done()
        finally:
            await transaction.commit()
        created_second = await asyncio.wait_for(second_call, timeout=30)

        assert created_first == 6
        assert created_second == 0
        slots_partitions = await partitions(observer, "slots")
        bookings_partitions = await partitions(observer, "bookings")
        for suffix in suffixes:
            assert f"slots_{suffix}" in slots_partitions
            assert f"bookings_{suffix}" in bookings_partitions

        # And two calls started together, with nothing to create, both return normally.
        results = await asyncio.gather(
            first.fetchval("SELECT vetbook_ensure_partitions(3, 0)"),
            second.fetchval("SELECT vetbook_ensure_partitions(3, 0)"),
        )
        assert results == [0, 0]
    finally:
        for connection in (first, second, observer):
            await connection.close()


async def test_migrate_command_recreates_a_missing_future_partition(fresh_database_url: str) -> None:
    """``vetbook migrate`` runs web.core.maintenance.ensure_partitions, the function the daily job calls."""
    connection = await asyncpg.connect(fresh_database_url)
    try:
        furthest = (await premake_suffixes(connection, 3))[-1]
        await drop_month_partitions(connection, furthest)
        assert f"slots_{furthest}" not in await partitions(connection, "slots")
    finally:
        await connection.close()

    run_cli(*vetbook_command("migrate"), database_url=fresh_database_url)

    connection = await asyncpg.connect(fresh_database_url)
    try:
        assert f"slots_{furthest}" in await partitions(connection, "slots")
        assert f"bookings_{furthest}" in await partitions(connection, "bookings")
        constraints = await no_staff_overlap_constraints(connection)
        assert constraints[f"slots_{furthest}"] == NO_STAFF_OVERLAP_DEFINITION
    finally:
        await connection.close()


def plan_nodes(node: dict) -> list[dict]:
    return [node, *(child for sub in node.get("Plans", []) for child in plan_nodes(sub))]


async def test_slot_search_scans_one_partition_through_an_index(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT vetbook_ensure_partitions(3, 0)")
    suffixes = await premake_suffixes(conn, 3)
    first_day = datetime.strptime(suffixes[0] + "01", "%Y%m%d").date()
    last_day = datetime.strptime(suffixes[-1] + "01", "%Y%m%d").date() + timedelta(days=27)
    clinics = [await make_clinic(conn) for _ in range(3)]
    services = [await make_service(conn, clinic) for clinic in clinics]

    # Four months of slots, 12 a day, in three clinics (about 4,300 rows), every third one already booked.
    await conn.execute(
        """
        INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, status, capacity, remaining)
        SELECT c.clinic_id, c.service_id, d::date,
               (d::date + make_time(h, 0, 0)) AT TIME ZONE 'Asia/Jakarta',
               (d::date + make_time(h, 30, 0)) AT TIME ZONE 'Asia/Jakarta',
               CASE WHEN h % 3 = 0 THEN 'booked' ELSE 'available' END, 1,
               CASE WHEN h % 3 = 0 THEN 0 ELSE 1 END
        FROM unnest($1::uuid[], $2::uuid[]) AS c(clinic_id, service_id)
        CROSS JOIN generate_series($3::date, $4::date, interval '1 day') AS d
        CROSS JOIN generate_series(8, 19) AS h
        """,
        [clinic["clinic_id"] for clinic in clinics],
        [service["service_id"] for service in services],
        first_day,
        last_day,
    )
    await conn.execute("ANALYZE slots")
    months = await conn.fetch("SELECT DISTINCT tableoid::regclass::text AS name FROM slots")
    assert len(months) == 4
    assert await conn.fetchval("SELECT count(*) FROM slots") > 4000

    search_day = datetime.strptime(suffixes[1] + "15", "%Y%m%d").date()
    # Literal values, as the design's 3.3.1 writes them: the plan is a custom plan, pruned while planning.
    search = (
        "SELECT s.* FROM slots s "
        f"WHERE s.clinic_id = '{clinics[1]['clinic_id']}' AND s.date = '{search_day.isoformat()}' "
        f"AND s.service_id = '{services[1]['service_id']}' AND s.status = 'available' AND s.remaining > 0 "
        "ORDER BY s.start_time"
    )
    plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {search}"))[0]["Plan"]
    nodes = plan_nodes(plan)
    relations = {node["Relation Name"] for node in nodes if "Relation Name" in node}
    node_types = {node["Node Type"] for node in nodes}

    assert relations == {f"slots_{suffixes[1]}"}, json.dumps(plan, indent=1)
    assert node_types & {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}, json.dumps(plan, indent=1)
    assert "Seq Scan" not in node_types, json.dumps(plan, indent=1)
    # The plan answers the query: the 8 open slots of that clinic on that day, in time order.
    found = await conn.fetch(search)
    assert len(found) == 8
    assert [row["start_time"] for row in found] == sorted(row["start_time"] for row in found)

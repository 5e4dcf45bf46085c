"""``vetbook demo`` against a migrated database: what it loads, and that running it again adds nothing.

The command runs in a child process (as a user runs it). It is loaded once per module into a database
of its own; tests that run it again work on a clone of that database, so no test sees another's changes.
The "a day later" case calls ``web.demo.load_demo_data(now=…)`` in a child process, because the command
itself has no way to move the clock.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.conftest import connected, run_cli, vetbook_command
from web.accounts.passwords import verify_password
from web.core.embedded_postgres import LocalPostgres

DEMO_TIME_ZONES = {"Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"}
SERVICE_KINDS = ("vaccination", "check-up", "grooming", "dental")
SLOT_DAYS = 14
SUNDAY = 6
LOGIN_LINE = re.compile(r"^\s+(owner|receptionist|manager)\s+(\S+@\S+)\s+password:\s+(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class DemoRun:
    database: str
    url: str
    stdout: str
    # Taken just before the command started: every slot it made must start after this.
    started_at: datetime


def slots_added(stdout: str) -> int:
    match = re.search(r"demo data ready \((\d+) new slots\)", stdout)
    assert match, stdout
    return int(match.group(1))


@pytest.fixture(scope="module")
def demo_run(pg_server: LocalPostgres, template_database: str) -> Iterator[DemoRun]:
    name = f"demo_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name, template=template_database)
    try:
        url = pg_server.url(name)
        started_at = datetime.now(UTC)
        result = run_cli(*vetbook_command("demo"), database_url=url)
        yield DemoRun(name, url, result.stdout, started_at)
    finally:
        pg_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def demo_copy_url(pg_server: LocalPostgres, demo_run: DemoRun) -> Iterator[str]:
    """A clone of the demo database, for a test that runs the loader again."""
    name = f"democopy_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name, template=demo_run.database)
    try:
        yield pg_server.url(name)
    finally:
        pg_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def table_counts(connection: asyncpg.Connection) -> dict[str, int]:
    """Rows of every ordinary table in the public schema (partitions one by one)."""
    tables = await connection.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname"
    )
    return {row["relname"]: await connection.fetchval(f'SELECT count(*) FROM "{row["relname"]}"') for row in tables}


async def test_three_clinics_in_indonesias_three_time_zones(demo_run: DemoRun) -> None:
    async with connected(demo_run.url) as connection:
        zones = [row["timezone"] for row in await connection.fetch("SELECT timezone FROM clinics")]
    assert sorted(zones) == sorted(DEMO_TIME_ZONES)


async def test_every_clinic_has_priced_services_and_staff(demo_run: DemoRun) -> None:
    async with connected(demo_run.url) as connection:
        clinics = await connection.fetch("SELECT clinic_id, name FROM clinics")
        for clinic in clinics:
            services = await connection.fetch(
                "SELECT name, price, currency, duration_minutes, is_active FROM services WHERE clinic_id = $1",
                clinic["clinic_id"],
            )
            names = [service["name"].lower() for service in services]
            for kind in SERVICE_KINDS:
                assert any(kind in name for name in names), (clinic["name"], kind, names)
            for service in services:
                assert service["price"] > 0, service
                assert service["currency"] == "IDR", service
                assert service["duration_minutes"] > 0, service
                assert service["is_active"], service
            staff = await connection.fetchval("SELECT count(*) FROM staff WHERE clinic_id = $1", clinic["clinic_id"])
            assert staff > 0, clinic["name"]


async def test_slots_cover_the_next_14_local_days_without_overlap(demo_run: DemoRun) -> None:
    async with connected(demo_run.url) as connection:
        slots = await connection.fetch(
            "SELECT s.clinic_id, c.timezone, s.date, s.start_time, s.end_time, s.status, s.capacity, "
            "s.remaining, v.duration_minutes "
            "FROM slots s JOIN clinics c USING (clinic_id) JOIN services v USING (service_id)"
        )
        # Two slots of one staff member whose times overlap (same clinic, any service).
        overlaps = await connection.fetchval(
            "SELECT count(*) FROM slots a JOIN slots b ON a.staff_id = b.staff_id AND a.slot_id < b.slot_id "
            "AND tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)"
        )
        staffless = await connection.fetchval("SELECT count(*) FROM slots WHERE staff_id IS NULL")
    assert overlaps == 0
    assert staffless == 0
    assert slots_added(demo_run.stdout) == len(slots)

    days_by_zone: dict[str, set[date]] = {zone: set() for zone in DEMO_TIME_ZONES}
    for slot in slots:
        zone = ZoneInfo(slot["timezone"])
        assert slot["start_time"] > demo_run.started_at, slot  # nothing in the past
        assert slot["start_time"].astimezone(zone).date() == slot["date"], slot  # the clinic's local day
        assert slot["end_time"] - slot["start_time"] == timedelta(minutes=slot["duration_minutes"]), slot
        assert (slot["status"], slot["remaining"]) == ("available", slot["capacity"]), slot
        days_by_zone[slot["timezone"]].add(slot["date"])

    for zone_name, days in days_by_zone.items():
        today = demo_run.started_at.astimezone(ZoneInfo(zone_name)).date()
        window = [today + timedelta(days=offset) for offset in range(SLOT_DAYS)]
        assert days <= set(window), (zone_name, sorted(days - set(window)))
        # Every working day after today has slots (today may be over already); clinics rest on Sunday.
        expected = {day for day in window[1:] if day.weekday() != SUNDAY}
        assert expected <= days, (zone_name, sorted(expected - days))
        assert not [day for day in days if day.weekday() == SUNDAY], zone_name


async def test_one_login_per_role_with_the_printed_password(demo_run: DemoRun) -> None:
    printed = LOGIN_LINE.findall(demo_run.stdout)
    assert sorted(role for role, _, _ in printed) == ["manager", "owner", "receptionist"], demo_run.stdout

    async with connected(demo_run.url) as connection:
        users = {row["email"]: row for row in await connection.fetch("SELECT * FROM users")}
        clinic_ids = {row["clinic_id"] for row in await connection.fetch("SELECT clinic_id FROM clinics")}
        roles = [row["role"] for row in users.values()]
        assert sorted(roles) == ["manager", "owner", "receptionist"]

        for role, email, password in printed:
            user = users[email]
            assert user["role"] == role
            assert user["password_hash"].startswith("$argon2id$")
            assert verify_password(user["password_hash"], password), email
            assert not verify_password(user["password_hash"], password + "x"), email
            if role == "receptionist":
                assert user["clinic_id"] in clinic_ids
            if role == "owner":
                assert user["clinic_id"] is None
                pets = await connection.fetchval("SELECT count(*) FROM pets WHERE owner_id = $1", user["user_id"])
                assert pets > 0


async def test_running_demo_again_adds_nothing(demo_copy_url: str) -> None:
    async with connected(demo_copy_url) as connection:
        before = await table_counts(connection)
        hashes_before = await connection.fetch("SELECT user_id, password_hash, updated_at FROM users ORDER BY user_id")

    second = run_cli(*vetbook_command("demo"), database_url=demo_copy_url)

    assert slots_added(second.stdout) == 0
    assert "(0 new slots)" in second.stdout
    async with connected(demo_copy_url) as connection:
        assert await table_counts(connection) == before
        # Accounts are left as they were: no password re-hashed, no row rewritten.
        assert await connection.fetch("SELECT user_id, password_hash, updated_at FROM users ORDER BY user_id") == hashes_before
    # Equal counts mean something only if the first run made rows (slots live in monthly partitions).
    assert sum(count for table, count in before.items() if table.startswith("slots")) > 0
    assert before["users"] == 3


async def test_a_day_later_only_the_new_day_gets_slots(demo_copy_url: str) -> None:
    async with connected(demo_copy_url) as connection:
        existing = {row["slot_id"] for row in await connection.fetch("SELECT slot_id FROM slots")}

    a_day_later = datetime.now(UTC) + timedelta(days=1)
    loader = (
        "import asyncio, sys\n"
        "from datetime import datetime\n"
        "from web.demo import load_demo_data\n"
        "print(asyncio.run(load_demo_data(now=datetime.fromisoformat(sys.argv[1])))['slots_added'])\n"
    )
    result = run_cli(sys.executable, "-c", loader, a_day_later.isoformat(), database_url=demo_copy_url)
    reported = int(result.stdout.strip().splitlines()[-1])

    async with connected(demo_copy_url) as connection:
        rows = await connection.fetch(
            "SELECT s.slot_id, s.date, c.timezone FROM slots s JOIN clinics c USING (clinic_id)"
        )
    new_by_zone: dict[str, list[date]] = {zone: [] for zone in DEMO_TIME_ZONES}
    per_day: dict[tuple[str, date], int] = {}
    for row in rows:
        if row["slot_id"] in existing:
            per_day[row["timezone"], row["date"]] = per_day.get((row["timezone"], row["date"]), 0) + 1
        else:
            new_by_zone[row["timezone"]].append(row["date"])
    assert reported == sum(len(days) for days in new_by_zone.values())

    for zone_name, new_days in new_by_zone.items():
        # The window moved by one day: its new last day is the only one that can gain slots.
        new_last_day = a_day_later.astimezone(ZoneInfo(zone_name)).date() + timedelta(days=SLOT_DAYS - 1)
        assert set(new_days) <= {new_last_day}, (zone_name, sorted(set(new_days)))
        if new_last_day.weekday() == SUNDAY:
            assert new_days == [], zone_name
            continue
        # A full working day: as many slots as each full day made before (all but the first day, which
        # may have been partly over).
        days_before = sorted(day for zone, day in per_day if zone == zone_name)
        full_day_sizes = {per_day[zone_name, day] for day in days_before[1:]}
        assert len(full_day_sizes) == 1, (zone_name, full_day_sizes)
        assert len(new_days) == full_day_sizes.pop(), zone_name


async def test_history_gives_the_desk_and_analytics_past_visits_that_add_up(demo_copy_url: str) -> None:
    started_at = datetime.now(UTC)
    first = run_cli(*vetbook_command("demo", "--history", "14"), database_url=demo_copy_url)
    added = int(re.search(r"demo history: (\d+) past bookings added", first.stdout).group(1))

    async with connected(demo_copy_url) as connection:
        bookings = await connection.fetch(
            "SELECT b.status, b.payment_status, b.final_amount, b.refunded_amount, s.start_time, b.clinic_id "
            "FROM bookings b JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date"
        )
        view_total = await connection.fetchval("SELECT COALESCE(sum(total_bookings), 0) FROM booking_analytics_daily")
    assert added == len(bookings) > 0
    past = [row for row in bookings if row["start_time"] < started_at]
    future = [row for row in bookings if row["start_time"] >= started_at]
    # Past visits end as clinics' visits do; anything still ahead is confirmed and paid.
    assert {row["status"] for row in past} >= {"completed", "cancelled", "no_show"}
    assert {(row["status"], row["payment_status"]) for row in future} <= {("confirmed", "paid")}
    assert all(row["refunded_amount"] < row["final_amount"] for row in past if row["status"] == "cancelled")
    assert len({row["clinic_id"] for row in bookings}) == 3
    # The command refreshed the analytics view: it counts what the bookings table holds.
    assert view_total == len(bookings)
    assert "ok:" in run_cli(*vetbook_command("check"), database_url=demo_copy_url).stdout

    again = run_cli(*vetbook_command("demo", "--history", "14"), database_url=demo_copy_url)
    assert "demo history: 0 past bookings added" in again.stdout

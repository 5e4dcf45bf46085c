"""Migrations apply to an empty database and to an older one, and Piccolo agrees that all have run."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

from tests.conftest import piccolo_command, run_cli, vetbook_command

DESIGN_TABLES = {"bookings", "slots", "reservations", "payment_records", "booking_history"}
ADDED_TABLES = {"clinics", "services", "staff", "users", "pets"}
MIGRATIONS_FOLDER = Path(__file__).resolve().parents[2] / "piccolo_migrations"
# Every migration's ID, read from the files (a new migration needs no change here).
MIGRATION_IDS = sorted(
    re.search(r'^ID = "([^"]+)"', path.read_text(), re.M).group(1) for path in MIGRATIONS_FOLDER.glob("0*.py")
)


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        )
        return {row["relname"] for row in rows}
    finally:
        await connection.close()


def _check_output(url: str) -> str:
    return run_cli(*piccolo_command("migrations", "check"), database_url=url).stdout


async def test_migrate_from_empty_database(empty_database_url: str) -> None:
    assert not (await _tables(empty_database_url)) & DESIGN_TABLES

    run_cli(*vetbook_command("migrate"), database_url=empty_database_url)

    tables = await _tables(empty_database_url)
    assert DESIGN_TABLES | ADDED_TABLES <= tables
    check = _check_output(empty_database_url)
    for migration_id in MIGRATION_IDS:
        line = next(line for line in check.splitlines() if migration_id in line)
        assert line.rstrip().endswith("True"), line
    assert "False" not in check


async def test_migrate_twice_changes_nothing(empty_database_url: str) -> None:
    run_cli(*vetbook_command("migrate"), database_url=empty_database_url)
    second = run_cli(*vetbook_command("migrate"), database_url=empty_database_url)
    assert f"{len(MIGRATION_IDS)} migrations already complete" in second.stdout, second.stdout
    assert "No migrations need to be run" in second.stdout, second.stdout


async def test_migrate_an_older_database(empty_database_url: str) -> None:
    # A database that stopped after migration 3 (no analytics view, no booking_source yet).
    run_cli(*piccolo_command("migrations", "forwards", "vetbook", MIGRATION_IDS[2]), database_url=empty_database_url)
    connection = await asyncpg.connect(empty_database_url)
    try:
        assert await connection.fetchval("SELECT to_regclass('booking_analytics_daily')") is None
    finally:
        await connection.close()

    run_cli(*vetbook_command("migrate"), database_url=empty_database_url)

    connection = await asyncpg.connect(empty_database_url)
    try:
        assert await connection.fetchval("SELECT to_regclass('booking_analytics_daily')::text") == "booking_analytics_daily"
        column = await connection.fetchval(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'bookings' AND column_name = 'booking_source'"
        )
        assert column == "'app'::character varying"
    finally:
        await connection.close()
    assert "False" not in _check_output(empty_database_url)


async def test_auto_migration_sees_no_difference(empty_database_url: str, tmp_path) -> None:
    """Piccolo's snapshot (the fake migration 7) matches the Table classes: --auto finds nothing to do."""
    run_cli(*vetbook_command("migrate"), database_url=empty_database_url)
    result = run_cli(*piccolo_command("migrations", "new", "vetbook", "--auto"), database_url=empty_database_url, check=False)
    assert "No changes detected" in result.stdout + result.stderr, result.stdout + result.stderr

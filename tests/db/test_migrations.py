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


# The fake Piccolo snapshot migrations that earlier versions carried (removed: docs/architecture.md,
# "Migrations"). A database migrated then keeps their records.
REMOVED_SNAPSHOTS = [
    "2026-11-26T00:00:07:000000", "2026-11-26T00:00:09:000000", "2026-11-26T00:00:11:000000",
    "2026-11-26T00:00:13:000000", "2026-11-26T00:00:15:000000", "2026-12-01T00:00:17:000000",
    "2026-12-02T00:00:18:000000",
]


async def test_a_database_that_ran_the_removed_snapshots_migrates(empty_database_url: str) -> None:
    run_cli(*vetbook_command("migrate"), database_url=empty_database_url)
    connection = await asyncpg.connect(empty_database_url)
    try:
        await connection.executemany(
            "INSERT INTO migration (name, app_name, ran_on) VALUES ($1, 'vetbook', now())",
            [(migration_id,) for migration_id in REMOVED_SNAPSHOTS])
    finally:
        await connection.close()
    again = run_cli(*vetbook_command("migrate"), database_url=empty_database_url)
    assert "No migrations need to be run" in again.stdout, again.stdout
    assert "False" not in _check_output(empty_database_url)


# Piccolo column classes and the PostgreSQL types they stand for.
_PICCOLO_TYPES = {
    "UUID": "uuid", "Varchar": "character varying", "Text": "text", "Integer": "integer", "Numeric": "numeric",
    "Timestamptz": "timestamp with time zone", "Date": "date", "Boolean": "boolean", "JSONB": "jsonb",
    "Bytea": "bytea", "Array": "ARRAY", "BigInt": "bigint", "SmallInt": "smallint",
}


def _project_tables() -> list[type]:
    import importlib

    from piccolo.table import Table

    for module in sorted(Path(__file__).resolve().parents[2].glob("web/*/tables.py")):
        importlib.import_module(f"web.{module.parent.name}.tables")
    found, pending = [], list(Table.__subclasses__())
    while pending:
        table = pending.pop()
        pending.extend(table.__subclasses__())
        if table.__module__.startswith("web."):
            found.append(table)
    return found


async def test_table_classes_match_the_database(db: asyncpg.Connection) -> None:
    """Every Piccolo Table class names the real table's columns, each with its type, length and nullability,
    and its primary key column is (part of) the table's real primary key. Piccolo has no composite primary
    keys: slots (slot_id, date) and bookings (booking_id, created_at) declare their first column."""
    problems = []
    for table in _project_tables():
        name = table._meta.tablename
        rows = await db.fetch(
            "SELECT column_name, data_type, is_nullable, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = $1", name)
        database = {row["column_name"]: row for row in rows}
        key = {row["attname"] for row in await db.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = $1::regclass AND i.indisprimary", name)}
        columns = {column._meta.db_column_name: column for column in table._meta.columns}
        if set(columns) != set(database):
            problems.append(f"{name}: only in Piccolo {sorted(set(columns) - set(database))}, "
                            f"only in the database {sorted(set(database) - set(columns))}")
        for column_name, column in columns.items():
            row = database.get(column_name)
            if row is None:
                continue
            kind = type(column).__name__
            expected = _PICCOLO_TYPES.get(kind)
            if kind == "ForeignKey":
                expected = _PICCOLO_TYPES[type(column._foreign_key_meta.resolved_references._meta.primary_key).__name__]
            if expected != row["data_type"]:
                problems.append(f"{name}.{column_name}: {kind} but the database has {row['data_type']}")
            if kind == "Varchar" and column.length != row["character_maximum_length"]:
                problems.append(f"{name}.{column_name}: length {column.length}, database {row['character_maximum_length']}")
            nullable = row["is_nullable"] == "YES"
            if column._meta.null != nullable and not column._meta.primary_key:
                problems.append(f"{name}.{column_name}: null={column._meta.null}, database nullable={nullable}")
        if table._meta.primary_key._meta.db_column_name not in key:
            problems.append(f"{name}: Piccolo's primary key {table._meta.primary_key._meta.db_column_name} is not in "
                            f"the real key {sorted(key)}")
    assert not problems, "\n".join(problems)

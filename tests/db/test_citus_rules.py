"""The Citus rule check (web/ops/citus_rules.py): the migrated schema follows it, and it sees every break.

The second part builds, on an empty database of its own, a small schema that follows a small layout
(reference ``clinics`` and ``staff``; distributed, partitioned ``slots`` and ``bookings`` with keys and
foreign keys that include clinic_id; per-partition exclusion constraints with ``clinic_id WITH =``; a
coordinator table; a materialized view; an allowed trigger) and asserts that nothing is reported. Then
each case adds one break and asserts that exactly it is reported: the rule, the table and the offending
object's name, once (PostgreSQL clones partitioned tables' indexes, foreign keys and triggers onto every
partition; the clones must not be reported again), with the name in the message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import asyncpg
import pytest

from tests.conftest import connected
from web.ops.citus_rules import rule_violations


async def test_the_migrated_schema_follows_citus_rules(conn: asyncpg.Connection) -> None:
    violations = await rule_violations(conn)
    assert violations == [], f"{len(violations)} Citus rule violation(s):\n" + "\n".join(map(str, violations))


# ------------------------------------------------------------------------- a small schema, by the rules

LAYOUT = {
    "DISTRIBUTION_COLUMN": "clinic_id",
    "REFERENCE_TABLES": ("clinics", "staff"),
    "DISTRIBUTED_TABLES": ("slots", "bookings"),
    "COORDINATOR_TABLES": ("login_failures",),
    "COORDINATOR_VIEWS": ("daily_bookings",),
    "SAFE_TRIGGER_FUNCTIONS": ("touch",),
}


def layout(**more: tuple[str, ...]) -> SimpleNamespace:
    """The small layout, with ``more`` names appended to some of its lists."""
    return SimpleNamespace(**{key: value + more.get(key, ()) if isinstance(value, tuple) else value
                              for key, value in LAYOUT.items()})


GOOD_SCHEMA = r"""
CREATE EXTENSION btree_gist;

CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END
$$;

-- Writes another table: what the layout's SAFE_TRIGGER_FUNCTIONS leaves out.
CREATE FUNCTION log_elsewhere() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO login_failures (account, failures) VALUES ('someone', 1);
    RETURN NULL;
END
$$;

-- Reference tables: any key, foreign keys between them, allowed triggers.
CREATE TABLE clinics (
    clinic_id uuid PRIMARY KEY,
    name text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX clinics_name_key ON clinics (lower(name));
CREATE TRIGGER clinics_touch BEFORE UPDATE ON clinics FOR EACH ROW EXECUTE FUNCTION touch();

CREATE TABLE staff (
    staff_id uuid PRIMARY KEY,
    clinic_id uuid NOT NULL REFERENCES clinics (clinic_id),
    CONSTRAINT staff_staff_clinic_key UNIQUE (staff_id, clinic_id)
);

-- Distributed, partitioned by day; every key starts with clinic_id.
CREATE TABLE slots (
    clinic_id uuid NOT NULL,
    slot_id uuid NOT NULL,
    date date NOT NULL,
    staff_id uuid,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT slots_pkey PRIMARY KEY (clinic_id, slot_id, date),
    CONSTRAINT slots_clinic_id_fkey FOREIGN KEY (clinic_id) REFERENCES clinics (clinic_id),
    CONSTRAINT slots_staff_in_clinic_fkey FOREIGN KEY (staff_id, clinic_id)
        REFERENCES staff (staff_id, clinic_id),
    -- SET NULL is fine on a key without clinic_id.
    CONSTRAINT slots_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff (staff_id) ON DELETE SET NULL
) PARTITION BY RANGE (date);
CREATE TRIGGER slots_touch BEFORE UPDATE ON slots FOR EACH ROW EXECUTE FUNCTION touch();

CREATE TABLE slots_202601 PARTITION OF slots FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
ALTER TABLE slots_202601 ADD CONSTRAINT slots_202601_no_staff_overlap EXCLUDE USING gist
    (clinic_id WITH =, staff_id WITH =, tstzrange(start_time, end_time) WITH &&) WHERE (staff_id IS NOT NULL);

-- Made on its own with its columns in another order (other attribute numbers than its parent's), then
-- attached; its own exclusion constraint and unique index include clinic_id.
CREATE TABLE slots_202602 (
    updated_at timestamptz NOT NULL DEFAULT now(),
    end_time timestamptz NOT NULL,
    start_time timestamptz NOT NULL,
    staff_id uuid,
    date date NOT NULL,
    slot_id uuid NOT NULL,
    clinic_id uuid NOT NULL,
    CONSTRAINT slots_202602_no_staff_overlap EXCLUDE USING gist
        (staff_id WITH =, tstzrange(start_time, end_time) WITH &&, clinic_id WITH =)
        WHERE (staff_id IS NOT NULL)
);
ALTER TABLE slots ATTACH PARTITION slots_202602 FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
CREATE UNIQUE INDEX slots_202602_staff_start_key ON slots_202602 (staff_id, start_time, clinic_id);

CREATE TABLE bookings (
    clinic_id uuid NOT NULL,
    booking_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    slot_id uuid NOT NULL,
    slot_date date NOT NULL,
    code text,
    rescheduled_from_id uuid,
    rescheduled_from_created_at timestamptz,
    CONSTRAINT bookings_pkey PRIMARY KEY (clinic_id, booking_id, created_at),
    CONSTRAINT bookings_clinic_id_fkey FOREIGN KEY (clinic_id)
        REFERENCES clinics (clinic_id) ON DELETE CASCADE,
    CONSTRAINT bookings_slot_fkey FOREIGN KEY (clinic_id, slot_id, slot_date)
        REFERENCES slots (clinic_id, slot_id, date) ON DELETE CASCADE,
    CONSTRAINT bookings_rescheduled_from_fkey
        FOREIGN KEY (clinic_id, rescheduled_from_id, rescheduled_from_created_at)
        REFERENCES bookings (clinic_id, booking_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE bookings_202601 PARTITION OF bookings FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE bookings_202602 PARTITION OF bookings FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
CREATE UNIQUE INDEX bookings_open_code_key ON bookings (clinic_id, code, created_at) WHERE code IS NOT NULL;

-- The coordinator's: it may reference a reference table, and its triggers are its own business.
CREATE TABLE login_failures (
    account text PRIMARY KEY,
    failures integer NOT NULL,
    clinic_id uuid REFERENCES clinics (clinic_id) ON DELETE SET NULL
);
CREATE TRIGGER login_failures_log AFTER TRUNCATE ON login_failures
    FOR EACH STATEMENT EXECUTE FUNCTION log_elsewhere();

CREATE MATERIALIZED VIEW daily_bookings AS
    SELECT clinic_id, created_at::date AS day, count(*) AS bookings FROM bookings GROUP BY 1, 2;
CREATE UNIQUE INDEX daily_bookings_key ON daily_bookings (day, bookings);

-- A plain view is no table: the layout need not name it.
CREATE VIEW open_slots AS SELECT * FROM slots;
"""


@pytest.fixture
async def scratch(empty_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to an empty database of the test's own holding GOOD_SCHEMA."""
    async with connected(empty_database_url) as connection:
        await connection.execute(GOOD_SCHEMA)
        yield connection


async def test_the_small_schema_follows_its_layout(scratch: asyncpg.Connection) -> None:
    violations = await rule_violations(scratch, layout())
    assert violations == [], "\n".join(map(str, violations))


# --------------------------------------------------------------------------------- one break at a time

UNCLASSIFIED = "unclassified-table"
DISTRIBUTION_COLUMN = "distribution-column"
UNIQUE = "unique-without-distribution-column"
EXCLUSION = "exclusion-without-distribution-column"
FOREIGN_KEY = "foreign-key-distribution-column"
DIRECTION = "foreign-key-direction"
ACTION = "foreign-key-action"
TRIGGER = "unsafe-trigger"


@dataclass(frozen=True)
class Break:
    sql: str
    # (rule, table of the layout, name of the offending object), each reported exactly once.
    expected: set[tuple[str, str, str]]
    # Names appended to the layout's lists, e.g. {"DISTRIBUTED_TABLES": ("visit_notes",)}.
    more_layout: dict[str, tuple[str, ...]] = field(default_factory=dict)


BREAKS = {
    # Rule 3: unique keys without clinic_id.
    "unique constraint without clinic_id": Break(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_code_key UNIQUE (code, created_at)",
        {(UNIQUE, "bookings", "bookings_code_key")},
    ),
    "partial unique index without clinic_id": Break(
        "CREATE UNIQUE INDEX bookings_open_code_idx ON bookings (code, created_at) WHERE code IS NOT NULL",
        {(UNIQUE, "bookings", "bookings_open_code_idx")},
    ),
    "unique index of one partition": Break(
        "CREATE UNIQUE INDEX slots_202601_slot_key ON slots_202601 (slot_id)",
        {(UNIQUE, "slots", "slots_202601_slot_key")},
    ),
    "clinic_id only in an expression": Break(
        "CREATE UNIQUE INDEX slots_202602_clinic_text_key ON slots_202602 ((clinic_id::text), slot_id)",
        {(UNIQUE, "slots", "slots_202602_clinic_text_key")},
    ),
    "clinic_id only an INCLUDE column": Break(
        "CREATE UNIQUE INDEX slots_202601_staff_start_key ON slots_202601 (staff_id, start_time) "
        "INCLUDE (clinic_id)",
        {(UNIQUE, "slots", "slots_202601_staff_start_key")},
    ),
    # Rule 4: exclusion constraints without clinic_id WITH =.
    "exclusion constraint without clinic_id": Break(
        "ALTER TABLE slots_202601 ADD CONSTRAINT slots_202601_staff_overlap EXCLUDE USING gist "
        "(staff_id WITH =, tstzrange(start_time, end_time) WITH &&)",
        {(EXCLUSION, "slots", "slots_202601_staff_overlap")},
    ),
    "exclusion constraint comparing clinic_id with <>": Break(
        "ALTER TABLE slots_202602 ADD CONSTRAINT slots_202602_other_clinic EXCLUDE USING gist "
        "(clinic_id WITH <>, tstzrange(start_time, end_time) WITH &&)",
        {(EXCLUSION, "slots", "slots_202602_other_clinic")},
    ),
    # Rule 5: foreign keys between distributed tables.
    "foreign key between distributed tables without clinic_id": Break(
        "ALTER TABLE slots ADD CONSTRAINT slots_slot_key UNIQUE (slot_id, date); "
        "ALTER TABLE bookings ADD CONSTRAINT bookings_slot_id_fkey FOREIGN KEY (slot_id, slot_date) "
        "REFERENCES slots (slot_id, date)",
        {(UNIQUE, "slots", "slots_slot_key"), (FOREIGN_KEY, "bookings", "bookings_slot_id_fkey")},
    ),
    "foreign key with clinic_id on the referenced side only": Break(
        "ALTER TABLE bookings ADD COLUMN slot_clinic_id uuid, ADD CONSTRAINT bookings_slot_clinic_fkey "
        "FOREIGN KEY (slot_clinic_id, slot_id, slot_date) REFERENCES slots (clinic_id, slot_id, date)",
        {(FOREIGN_KEY, "bookings", "bookings_slot_clinic_fkey")},
    ),
    "foreign key with clinic_id at another position": Break(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_slot_swapped_fkey "
        "FOREIGN KEY (slot_id, clinic_id, slot_date) REFERENCES slots (clinic_id, slot_id, date)",
        {(FOREIGN_KEY, "bookings", "bookings_slot_swapped_fkey")},
    ),
    # Rule 6: who may reference whom.
    "foreign key from a reference table to a distributed one": Break(
        "ALTER TABLE clinics ADD COLUMN first_slot_id uuid, ADD COLUMN first_slot_date date, "
        "ADD CONSTRAINT clinics_first_slot_fkey FOREIGN KEY (clinic_id, first_slot_id, first_slot_date) "
        "REFERENCES slots (clinic_id, slot_id, date)",
        {(DIRECTION, "clinics", "clinics_first_slot_fkey")},
    ),
    "foreign key from a coordinator table to a distributed one": Break(
        "ALTER TABLE login_failures ADD COLUMN booking_id uuid, ADD COLUMN booking_created_at timestamptz, "
        "ADD CONSTRAINT login_failures_booking_fkey FOREIGN KEY (clinic_id, booking_id, booking_created_at) "
        "REFERENCES bookings (clinic_id, booking_id, created_at)",
        {(DIRECTION, "login_failures", "login_failures_booking_fkey")},
    ),
    "foreign key from a distributed table to a coordinator one": Break(
        "ALTER TABLE bookings ADD COLUMN account text, "
        "ADD CONSTRAINT bookings_account_fkey FOREIGN KEY (account) REFERENCES login_failures (account)",
        {(DIRECTION, "bookings", "bookings_account_fkey")},
    ),
    "foreign key from a reference table to a coordinator one": Break(
        "ALTER TABLE staff ADD COLUMN account text, "
        "ADD CONSTRAINT staff_account_fkey FOREIGN KEY (account) REFERENCES login_failures (account)",
        {(DIRECTION, "staff", "staff_account_fkey")},
    ),
    # Rule 7: actions that would change clinic_id.
    "ON DELETE SET NULL on a foreign key with clinic_id": Break(
        "ALTER TABLE bookings ADD COLUMN held_slot_id uuid, ADD COLUMN held_slot_date date, "
        "ADD CONSTRAINT bookings_held_slot_fkey FOREIGN KEY (clinic_id, held_slot_id, held_slot_date) "
        "REFERENCES slots (clinic_id, slot_id, date) ON DELETE SET NULL",
        {(ACTION, "bookings", "bookings_held_slot_fkey")},
    ),
    "ON DELETE SET NULL (columns) on a foreign key with clinic_id": Break(
        "ALTER TABLE bookings ADD COLUMN held_slot_id uuid, ADD COLUMN held_slot_date date, "
        "ADD CONSTRAINT bookings_held_slot_fkey FOREIGN KEY (clinic_id, held_slot_id, held_slot_date) "
        "REFERENCES slots (clinic_id, slot_id, date) ON DELETE SET NULL (held_slot_id, held_slot_date)",
        {(ACTION, "bookings", "bookings_held_slot_fkey")},
    ),
    "ON DELETE SET DEFAULT to a reference table": Break(
        "ALTER TABLE slots ADD CONSTRAINT slots_clinic_default_fkey "
        "FOREIGN KEY (clinic_id) REFERENCES clinics (clinic_id) ON DELETE SET DEFAULT",
        {(ACTION, "slots", "slots_clinic_default_fkey")},
    ),
    "ON UPDATE CASCADE on a foreign key with clinic_id": Break(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_clinic_cascade_fkey "
        "FOREIGN KEY (clinic_id) REFERENCES clinics (clinic_id) ON UPDATE CASCADE",
        {(ACTION, "bookings", "bookings_clinic_cascade_fkey")},
    ),
    # Rule 8: triggers.
    "trigger calling an unlisted function": Break(
        "CREATE TRIGGER bookings_log AFTER UPDATE ON bookings FOR EACH ROW EXECUTE FUNCTION log_elsewhere()",
        {(TRIGGER, "bookings", "bookings_log")},
    ),
    "trigger of a reference table calling an unlisted function": Break(
        "CREATE TRIGGER clinics_log AFTER UPDATE ON clinics FOR EACH ROW EXECUTE FUNCTION log_elsewhere()",
        {(TRIGGER, "clinics", "clinics_log")},
    ),
    "trigger of one partition calling an unlisted function": Break(
        "CREATE TRIGGER slots_202601_log AFTER INSERT ON slots_202601 "
        "FOR EACH ROW EXECUTE FUNCTION log_elsewhere()",
        {(TRIGGER, "slots", "slots_202601_log")},
    ),
    # Rule 1: the layout names every table.
    "new unclassified table": Break(
        "CREATE TABLE notes (note_id uuid PRIMARY KEY, clinic_id uuid REFERENCES clinics (clinic_id))",
        {(UNCLASSIFIED, "notes", "notes")},
    ),
    "new unclassified materialized view": Break(
        "CREATE MATERIALIZED VIEW slot_counts AS SELECT clinic_id, count(*) FROM slots GROUP BY clinic_id",
        {(UNCLASSIFIED, "slot_counts", "slot_counts")},
    ),
    "table in two lists of the layout": Break(
        "SELECT 1",
        {(UNCLASSIFIED, "staff", "staff")},
        {"COORDINATOR_TABLES": ("staff",)},
    ),
    "table listed as a materialized view": Break(
        "SELECT 1",
        {(UNCLASSIFIED, "login_failures", "login_failures")},
        {"COORDINATOR_VIEWS": ("login_failures",)},
    ),
    # Rule 2: the distribution column.
    "distributed table without clinic_id": Break(
        "CREATE TABLE visit_notes (note_id uuid PRIMARY KEY, body text NOT NULL)",
        {(DISTRIBUTION_COLUMN, "visit_notes", "visit_notes"), (UNIQUE, "visit_notes", "visit_notes_pkey")},
        {"DISTRIBUTED_TABLES": ("visit_notes",)},
    ),
    "distributed table whose clinic_id may be NULL": Break(
        "CREATE TABLE visit_notes (clinic_id uuid REFERENCES clinics (clinic_id), note_id uuid NOT NULL, "
        "CONSTRAINT visit_notes_key UNIQUE (clinic_id, note_id))",
        {(DISTRIBUTION_COLUMN, "visit_notes", "visit_notes")},
        {"DISTRIBUTED_TABLES": ("visit_notes",)},
    ),
}


@pytest.mark.parametrize("case", BREAKS.values(), ids=BREAKS.keys())
async def test_each_break_is_reported_once_by_its_rule(scratch: asyncpg.Connection, case: Break) -> None:
    await scratch.execute(case.sql)
    violations = await rule_violations(scratch, layout(**case.more_layout))

    found = [(v.rule, v.table, v.name) for v in violations]
    assert sorted(found) == sorted(case.expected), "\n".join(map(str, violations))
    for violation in violations:
        assert violation.name in violation.message, violation

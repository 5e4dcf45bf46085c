"""The embedded PostgreSQL launcher (LocalPostgres) on real servers: its own data folder per test.

Every server start costs seconds, so each test checks everything one start can show. The data folders
live under a fresh ``tempfile.mkdtemp`` folder rather than pytest's ``tmp_path``: a concurrent pytest run
strips o+x from ``/tmp/pytest-of-<user>``, which the unprivileged server user needs to traverse.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from web.core.embedded_postgres import EmbeddedPostgresError, LocalPostgres

DEBIAN_PG15_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def launcher_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="vetbook-launcher-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def expected_server_uid() -> int:
    """PostgreSQL refuses root, so as root the launcher must hand the server to ``nobody``."""
    return pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()


def postmaster_pid(server: LocalPostgres) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])


def process_alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return False
    state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    return "zombie" not in state


def process_uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uid of a process."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    return {int(uid) for uid in line.split()[1:]}


def listening_addresses(port: int) -> set[str]:
    """Local addresses of every TCP socket (IPv4 and IPv6) listening on ``port`` on this machine."""
    addresses = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addresses.add(socket.inet_ntop(family, raw))
    return addresses


@contextmanager
def started(server: LocalPostgres) -> Iterator[LocalPostgres]:
    """Start the server and make sure it is gone afterwards, whatever the test did."""
    pid = None
    try:
        server.start()
        pid = postmaster_pid(server)
        yield server
    finally:
        if (server.pgdata / "postmaster.pid").exists():
            pid = postmaster_pid(server)
        try:
            server.stop()
        finally:
            # stop() trusts pg_ctl; if it wrongly reported "not running", end our own postmaster by its pid.
            if pid is not None and process_alive(pid):
                os.kill(pid, signal.SIGQUIT)
                pytest.fail(f"stop() left the postmaster {pid} running")


def tree_snapshot(root: Path) -> dict[str, tuple]:
    """Mode, owner and content of everything under ``root`` (and ``root`` itself)."""
    snapshot = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        snapshot[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, content)
    return snapshot


async def fetch_one(url: str, query: str):
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchrow(query)
    finally:
        await connection.close()


async def test_fresh_data_dir_starts_a_locked_down_postgres_18(launcher_root: Path) -> None:
    # A parent folder that the server user may not traverse yet: the launcher must add o+x and nothing else.
    locked = launcher_root / "locked"
    locked.mkdir(mode=0o700)
    locked.chmod(0o700)
    data_dir = locked / "vetbook-data"
    parent_modes = {folder: stat.S_IMODE(folder.stat().st_mode) for folder in data_dir.parents}

    server = LocalPostgres(data_dir)
    with started(server):
        url = server.url()
        assert url.startswith("postgresql://postgres:")
        assert f"@127.0.0.1:{server.port}/vetbook" in url
        assert int((data_dir / "port").read_text()) == server.port > 0

        # The server process runs unprivileged and owns a private data folder.
        assert process_uids(postmaster_pid(server)) == {expected_server_uid()}
        pgdata = server.pgdata.stat()
        assert stat.S_IMODE(pgdata.st_mode) == 0o700
        assert pgdata.st_uid == expected_server_uid()

        # Parents gained o+x only where it was missing; none became readable by others.
        for folder, before in parent_modes.items():
            assert stat.S_IMODE(folder.stat().st_mode) == before | stat.S_IXOTH, folder
        assert stat.S_IMODE(locked.stat().st_mode) == 0o701

        # The superuser's password is readable by us alone, and no copy made for initdb is left behind.
        password_file = data_dir / "password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password_file.stat().st_uid == os.geteuid()
        assert not (data_dir / "log" / ".initdb-pw").exists()

        # Only 127.0.0.1 listens, and the unix socket lives outside the cluster folder.
        assert listening_addresses(server.port) == {"127.0.0.1"}
        assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()
        assert not server.socket_dir.is_relative_to(server.pgdata)

        settings = await fetch_one(
            url,
            "SELECT current_setting('server_version_num')::int / 10000 AS major, "
            "current_setting('listen_addresses') AS listen, "
            "current_setting('unix_socket_directories') AS sockets, "
            "current_setting('shared_preload_libraries') AS preload, "
            "current_setting('server_encoding') AS encoding",
        )
        assert settings["major"] == 18
        assert settings["listen"] == "127.0.0.1"
        assert settings["sockets"] == str(server.socket_dir)
        assert "pg_stat_statements" in settings["preload"].split(",")
        assert settings["encoding"] == "UTF8"

        # Every database uses the builtin C.UTF-8 locale (17+), independent of the OS's locales.
        locales = await fetch_one(
            url,
            "SELECT array_agg(DISTINCT pg_encoding_to_char(encoding)) AS encodings, "
            "array_agg(DISTINCT datlocprovider::text) AS providers, array_agg(DISTINCT datlocale) AS locales "
            "FROM pg_database",
        )
        assert locales["encodings"] == ["UTF8"]
        assert locales["providers"] == ["b"]
        assert locales["locales"] == ["C.UTF-8"]

        connection = await asyncpg.connect(url)
        try:
            await connection.execute("CREATE EXTENSION pg_stat_statements")
            # Reading the view fails unless the library was preloaded at server start.
            assert await connection.fetchval("SELECT count(*) FROM pg_stat_statements") > 0
        finally:
            await connection.close()


def test_no_other_local_account_reaches_the_server(launcher_root: Path) -> None:
    """The socket folder is the server user's alone (0700) and local connections need the password: another
    account on the machine gets no superuser login (initdb's --auth-local=trust once gave it one)."""
    server = LocalPostgres(launcher_root / "data")
    with started(server):
        assert stat.S_IMODE(server.socket_dir.stat().st_mode) == 0o700
        assert server.socket_dir.stat().st_uid == expected_server_uid()
        local_rules = [line.split() for line in (server.pgdata / "pg_hba.conf").read_text().splitlines()
                       if line.startswith("local")]
        assert local_rules and all(rule[-1] == "scram-sha-256" for rule in local_rules), local_rules
        psql = [str(server.bin_dir / "psql"), "-X", "-h", str(server.socket_dir), "-p", str(server.port),
                "-U", "postgres", "-d", "postgres", "-w", "-c", "SELECT 1"]
        without_password = subprocess.run(psql, capture_output=True, text=True,
                                          env={k: v for k, v in os.environ.items() if k != "PGPASSWORD"})
        assert without_password.returncode != 0 and "password" in without_password.stderr
        assert server.psql("SELECT 1").strip() == "1"  # the launcher itself uses the password
        if os.geteuid() == 0:
            # Another unprivileged account (as root we can become one) cannot even reach the socket.
            daemon = pwd.getpwnam("daemon")
            other = subprocess.run(psql, capture_output=True, text=True, user=daemon.pw_uid, group=daemon.pw_gid,
                                   extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin", "PGPASSWORD": server.password})
            assert other.returncode != 0 and "Permission denied" in other.stderr, other.stderr


async def test_restart_reuses_data_and_port(launcher_root: Path) -> None:
    server = LocalPostgres(launcher_root / "data")
    with started(server):
        first_port = server.port
        connection = await asyncpg.connect(server.url())
        try:
            await connection.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('survives')")
        finally:
            await connection.close()
        first_pid = postmaster_pid(server)

        # A parent losing o+x while the server runs (a concurrent pytest resets /tmp/pytest-of-<user> to
        # 0700) must not make stop() believe the server is already down.
        os.chmod(launcher_root, 0o700)
        assert server.stop() is True
        assert not server.is_running()
        assert not process_alive(first_pid)
        assert server.stop() is False

        # A new launcher object, as a new process would make: everything comes from the data folder.
        server = LocalPostgres(launcher_root / "data")
        server.start()
        assert server.port == first_port
        assert postmaster_pid(server) != first_pid
        assert (await fetch_one(server.url(), "SELECT note FROM kept"))["note"] == "survives"

        # When the old port has been taken meanwhile, the next start picks another and remembers it.
        server.stop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            # SO_REUSEADDR because the stopped server's TIME_WAIT connections still hold the port.
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", first_port))
            squatter.listen()
            server = LocalPostgres(launcher_root / "data")
            server.start()
        assert server.port != first_port
        assert int((launcher_root / "data" / "port").read_text()) == server.port
        assert (await fetch_one(server.url(), "SELECT note FROM kept"))["note"] == "survives"


def test_other_major_version_is_refused_and_left_alone(launcher_root: Path) -> None:
    data_dir = launcher_root / "data"
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, mode=0o755)
    pgdata.chmod(0o755)
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "postgresql.conf").write_text("# a PostgreSQL 16 cluster's settings\n")
    before = tree_snapshot(launcher_root)

    server = LocalPostgres(data_dir)
    with pytest.raises(EmbeddedPostgresError) as refused:
        server.start()

    message = str(refused.value)
    assert "PostgreSQL 16" in message
    assert "18" in message
    assert str(pgdata) in message
    assert tree_snapshot(launcher_root) == before


async def test_debian_postgres_15_binaries(launcher_root: Path) -> None:
    assert (DEBIAN_PG15_BIN / "postgres").exists(), "apt-get install postgresql-15"
    data_dir = launcher_root / "data15"
    server = LocalPostgres(data_dir, bin_dir=DEBIAN_PG15_BIN)
    with started(server):
        assert process_uids(postmaster_pid(server)) == {expected_server_uid()}
        assert listening_addresses(server.port) == {"127.0.0.1"}
        row = await fetch_one(
            server.url(),
            "SELECT current_setting('server_version_num')::int / 10000 AS major, "
            "pg_encoding_to_char(encoding) AS encoding, datlocprovider::text, datcollate, "
            "current_setting('shared_preload_libraries') AS preload "
            "FROM pg_database WHERE datname = current_database()",
        )
        assert row["major"] == 15
        assert row["encoding"] == "UTF8"
        # 15 has no builtin provider: libc with the C locale, which needs no OS locale either.
        assert (row["datlocprovider"], row["datcollate"]) == ("c", "C")
        assert "pg_stat_statements" in row["preload"].split(",")
        assert (server.pgdata / "PG_VERSION").read_text().strip() == "15"

    # The wheel's 18 must not open the 15 cluster it finds (its files would be unreadable to 18).
    before = tree_snapshot(data_dir)
    with pytest.raises(EmbeddedPostgresError, match=r"PostgreSQL 15 cluster.*binaries are 18"):
        LocalPostgres(data_dir).start()
    assert tree_snapshot(data_dir) == before

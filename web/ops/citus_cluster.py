"""A local Citus cluster: one coordinator and N workers, each a LocalPostgres of Debian's PostgreSQL 15.

Citus 13 supports PostgreSQL 15 to 17, not the embedded wheel's 18, so the distributed tests and
``vetbook db start --citus`` run on ``/usr/lib/postgresql/15/bin`` with the vendored build of
/work/shared/vendor/citus (``.ci/system-deps`` installs it). Layout under ``data_dir``::

    coordinator/    the node the app connects to (it also holds the reference tables' copy and the
                    coordinator tables)
    worker-1/ …     the nodes that hold the distributed tables' shards

Every node is a LocalPostgres (its own pgdata, socket, log, port and password files). What makes them one
cluster, and why:

- ``shared_preload_libraries`` starts with ``citus`` (Citus refuses to load after another library);
  ``wal_level=logical`` and replication slots / WAL senders, because online shard moves and tenant isolation
  (``force_logical``) copy a shard by logical replication between nodes;
- ``output_plugin_libraries`` (a setting Debian's 15.20 added: which libraries may decode WAL) lists
  ``citus`` beside its defaults, or those moves fail with 'library "citus" may not be used as an output
  plugin'. Passed only when the server knows the setting: an unknown ``-c`` stops the server;
- every node has the same superuser password, and each Citus database tells Citus that password
  (``pg_dist_authinfo``): the nodes log in to each other with scram over TCP;
- Citus metadata is per database: each Citus database exists on every node with the extension, and the
  coordinator's copy names the coordinator and the workers (``create_database``).

Per-node settings go on the command line (LocalPostgres ``settings``), never into postgresql.conf.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from web.core.embedded_postgres import DEFAULT_DATABASE, SUPERUSER, EmbeddedPostgresError, LocalPostgres

DEBIAN_PG15_BIN = Path("/usr/lib/postgresql/15/bin")
NODE_HOST = "127.0.0.1"
# Citus 13 is built for these PostgreSQL majors.
CITUS_PG_MAJORS = (15, 16, 17)
# The vendored build calls a function Debian's PostgreSQL exports from 15.20 on: it does not load on older 15.x.
MIN_PG15_MINOR = 20


def _server_version(bin_dir: Path) -> tuple[int, int]:
    """(major, minor) of the server in ``bin_dir``: "postgres (PostgreSQL) 15.20 (Debian …)" -> (15, 20)."""
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)\.(\d+)", out)
    if not match:
        raise EmbeddedPostgresError(f"cannot read the server version from {out.strip()!r}")
    return int(match[1]), int(match[2])


def _pg_config(bin_dir: Path, flag: str, fallback: Path) -> Path:
    pg_config = bin_dir / "pg_config"
    if not pg_config.exists():
        return fallback
    return Path(subprocess.run([str(pg_config), flag], capture_output=True, text=True, check=True).stdout.strip())


def citus_available(bin_dir: Path = DEBIAN_PG15_BIN) -> str | None:
    """None when a local Citus cluster can run on the server in ``bin_dir``; else why not, in words a skipped
    test or the CLI can show as they are."""
    bin_dir = Path(bin_dir)
    if not (bin_dir / "postgres").exists():
        return f"no PostgreSQL binaries in {bin_dir} (Debian package postgresql-15; bash .ci/system-deps)"
    major, minor = _server_version(bin_dir)
    if major not in CITUS_PG_MAJORS:
        return f"Citus 13 runs on PostgreSQL 15 to 17, and {bin_dir} holds PostgreSQL {major}.{minor}"
    if major == 15 and minor < MIN_PG15_MINOR:
        return (f"PostgreSQL 15.{minor} in {bin_dir} is older than 15.{MIN_PG15_MINOR}, which the vendored Citus "
                f"build needs (apt-get install postgresql-15)")
    libdir = _pg_config(bin_dir, "--pkglibdir", bin_dir.parent / "lib")
    if not (libdir / "citus.so").exists():
        return f"Citus is not installed: no citus.so in {libdir} (bash .ci/system-deps installs the vendored build)"
    sharedir = _pg_config(bin_dir, "--sharedir", Path(f"/usr/share/postgresql/{major}"))
    if not (sharedir / "extension" / "citus.control").exists():
        return f"Citus is not installed: no citus.control in {sharedir / 'extension'}"
    return None


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _conninfo_value(text: str) -> str:
    """A libpq key=value value, quoted (pg_dist_authinfo holds such a string)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class LocalCitusCluster:
    """A coordinator and ``workers`` workers on 127.0.0.1 under ``data_dir``.

    ``fast=True`` turns durability off on every node (throw-away test clusters only). A cluster never loses a
    worker by being started with a smaller ``workers``: the worker folders already there are part of it
    (they hold shards), so ``nodes`` counts them too.
    """

    data_dir: Path
    workers: int = 2
    bin_dir: Path = DEBIAN_PG15_BIN
    fast: bool = False

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.bin_dir = Path(self.bin_dir)
        existing = [int(path.name.split("-", 1)[1]) for path in self.data_dir.glob("worker-*")
                    if path.name.split("-", 1)[1].isdigit()]
        self.workers = max([self.workers, *existing])
        settings = self._node_settings()
        self.coordinator = LocalPostgres(self.data_dir / "coordinator", bin_dir=self.bin_dir, fast=self.fast,
                                         settings=settings)
        self.worker_nodes = [
            LocalPostgres(self.data_dir / f"worker-{number}", bin_dir=self.bin_dir, fast=self.fast,
                          settings=settings)
            for number in range(1, self.workers + 1)
        ]

    @property
    def nodes(self) -> list[LocalPostgres]:
        """The coordinator first, then the workers in order."""
        return [self.coordinator, *self.worker_nodes]

    def _node_settings(self) -> dict[str, str]:
        settings = {
            "shared_preload_libraries": "citus,pg_stat_statements",
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            # Citus's maintenance daemon takes a background worker per Citus database, and each shard move or
            # split adds logical replication workers on the receiving node.
            "max_worker_processes": "32",
            "max_logical_replication_workers": "16",
        }
        if self._server_knows("output_plugin_libraries"):
            # A list: given as is on the command line (quoted as one string it would name one library).
            settings["output_plugin_libraries"] = "pgoutput,test_decoding,citus"
        return settings

    def _server_knows(self, setting: str) -> bool:
        if not (self.bin_dir / "postgres").exists():
            return False
        result = subprocess.run([str(self.bin_dir / "postgres"), "--describe-config"], capture_output=True,
                                text=True)
        return any(line.split("\t", 1)[0] == setting for line in result.stdout.splitlines())

    # ---------------------------------------------------------------- facts

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        """The coordinator's URL: the one the app and the ``vetbook citus`` commands use."""
        return self.coordinator.url(database)

    def worker_urls(self, database: str = DEFAULT_DATABASE) -> list[str]:
        """The workers' URLs, in order (for looking at a worker's shards; the app never connects to them)."""
        return [worker.url(database) for worker in self.worker_nodes]

    def is_running(self) -> bool:
        """Whether every node runs (a cluster with a node down cannot serve every clinic)."""
        return all(node.is_running() for node in self.nodes)

    # ---------------------------------------------------------------- life cycle

    def start(self) -> str:
        """Initialise the nodes if needed, start those not running, make ``vetbook`` a Citus database.

        Returns the coordinator's URL of ``vetbook``."""
        if reason := citus_available(self.bin_dir):
            raise EmbeddedPostgresError(reason)
        self._share_password()
        ports_before = {node.data_dir: self._recorded_port(node) for node in self.nodes}
        for node in self.nodes:
            node.start()
        self._follow_port_changes(ports_before)
        self.create_database(DEFAULT_DATABASE)
        return self.url()

    def stop(self) -> bool:
        """Stop every node (the coordinator first: it is the one clients use). Returns whether any ran."""
        return any([node.stop() for node in self.nodes])

    def destroy(self) -> None:
        """Stop every node and delete the whole cluster."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---------------------------------------------------------------- databases

    def create_database(self, name: str) -> None:
        """Make ``name`` a Citus database (idempotent): it exists on every node with the extension and the
        password the nodes log in to each other with; the coordinator's metadata names the coordinator and
        every worker; ``citus.enable_unsafe_triggers`` is on for every session of it, on every node, so that
        the app's migrations may create triggers and partitions of distributed tables (Citus refuses to
        distribute a table with triggers, or to add one to a distributed table, without it)."""
        authinfo = _sql_literal(f"password={_conninfo_value(self.coordinator.password)}")
        database = _sql_identifier(name)
        for node in self.nodes:
            node.create_database(name)
            node.psql("CREATE EXTENSION IF NOT EXISTS citus", database=name)
            node.psql(f"INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) "
                      f"VALUES (0, '{SUPERUSER}', {authinfo}) ON CONFLICT DO NOTHING", database=name)
            # Per node: Citus does not pass ALTER DATABASE … SET on to the workers, and refuses it on a worker
            # of the database's metadata unless DDL propagation is off for that statement (two statements in
            # one -c run as one implicit transaction, which SET LOCAL lasts for).
            node.psql(f"SET LOCAL citus.enable_ddl_propagation = off; "
                      f"ALTER DATABASE {database} SET citus.enable_unsafe_triggers = on", database=name)
        self.coordinator.psql(
            f"SELECT citus_set_coordinator_host('{NODE_HOST}', {self._port(self.coordinator)})", database=name)
        for worker in self.worker_nodes:
            port = self._port(worker)
            known = self.coordinator.psql(
                f"SELECT 1 FROM pg_dist_node WHERE nodename = '{NODE_HOST}' AND nodeport = {port}",
                database=name).strip()
            if not known:
                self.coordinator.psql(f"SELECT citus_add_node('{NODE_HOST}', {port})", database=name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` on every node (the coordinator first, so that nothing sends it more work). A shard
        move that did not finish leaves a logical-replication subscription (and its slot) behind, which
        blocks DROP DATABASE: those are detached and dropped first."""
        for node in self.nodes:
            if not node.is_running():
                continue
            exists = node.psql(f"SELECT 1 FROM pg_database WHERE datname = {_sql_literal(name)}").strip()
            if exists:
                for subscription in node.psql("SELECT subname FROM pg_subscription", database=name).split():
                    quoted = _sql_identifier(subscription)
                    node.psql(f"ALTER SUBSCRIPTION {quoted} DISABLE", database=name)
                    node.psql(f"ALTER SUBSCRIPTION {quoted} SET (slot_name = NONE)", database=name)
                    node.psql(f"DROP SUBSCRIPTION {quoted}", database=name)
            node.psql(f"DROP DATABASE IF EXISTS {_sql_identifier(name)} WITH (FORCE)")
            node.psql("SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots "
                      f"WHERE database = {_sql_literal(name)} AND NOT active")

    def citus_databases(self) -> list[str]:
        """The coordinator's databases that have the Citus extension."""
        names = self.coordinator.psql(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname").split()
        return [name for name in names
                if self.coordinator.psql("SELECT 1 FROM pg_extension WHERE extname = 'citus'",
                                         database=name).strip()]

    # ---------------------------------------------------------------- internals

    def _share_password(self) -> None:
        """Every node gets the coordinator's superuser password, written before its first start (initdb sets
        it from that file)."""
        source = self.coordinator.data_dir / "password"
        if not source.exists():
            self.coordinator.data_dir.mkdir(parents=True, exist_ok=True)
            source.write_text(secrets.token_urlsafe(24))
            source.chmod(0o600)
        for worker in self.worker_nodes:
            target = worker.data_dir / "password"
            if not target.exists():
                worker.data_dir.mkdir(parents=True, exist_ok=True)
                target.write_text(source.read_text())
                target.chmod(0o600)

    @staticmethod
    def _port(node: LocalPostgres) -> int:
        """The node's port, also for a cluster object made after the nodes were started (``vetbook db …``)."""
        return node.port or int((node.data_dir / "port").read_text())

    @staticmethod
    def _recorded_port(node: LocalPostgres) -> int | None:
        port_file = node.data_dir / "port"
        return int(port_file.read_text()) if port_file.exists() else None

    def _follow_port_changes(self, ports_before: dict[Path, int | None]) -> None:
        """A node keeps its port across restarts unless another program took it meanwhile; then it got a new
        one, and every Citus database's metadata is told (it names nodes by host and port)."""
        moved = [(ports_before[node.data_dir], node) for node in self.nodes
                 if ports_before[node.data_dir] not in (None, node.port)]
        if not moved:
            return
        for database in self.citus_databases():
            for old_port, node in moved:
                if node is self.coordinator:
                    self.coordinator.psql(f"SELECT citus_set_coordinator_host('{NODE_HOST}', {node.port})",
                                          database=database)
                    continue
                node_id = self.coordinator.psql(
                    f"SELECT nodeid FROM pg_dist_node WHERE nodename = '{NODE_HOST}' AND nodeport = {old_port}",
                    database=database).strip()
                if node_id:
                    self.coordinator.psql(f"SELECT citus_update_node({node_id}, '{NODE_HOST}', {node.port})",
                                          database=database)
            # A changed node leaves every worker's copy of the metadata marked stale until Citus's daemon
            # syncs it in the background; until then Citus refuses metadata changes ("is a metadata node, but
            # is out of sync"). Synced now instead.
            self.coordinator.psql("SELECT start_metadata_sync_to_all_nodes()", database=database)

"""The design's monitoring queries (8.2), fixed to run, and the rest of the database health page.

Fixes against the design (docs/schema.md, deviation 16): ``pg_stat_statements`` has ``total_exec_time`` /
``mean_exec_time`` since PostgreSQL 13 (not ``total_time`` / ``mean_time``), and the index-usage join is on
``relid`` explicitly (``USING (relid)`` leaves ``schemaname``/``relname`` ambiguous).

What the page may show: statistics of this database only (a shared server's other databases stay out),
statement texts as pg_stat_statements normalises them (constants become ``$1``). A text that still holds a
quoted literal (utility statements such as ``SET`` or ``ALTER ROLE ... PASSWORD '...'`` are not always
normalised) is replaced by a note, and texts of running queries (pg_stat_activity.query, never
normalised) are not shown at all.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from web.accounts.auth import ROLE_MANAGER, CurrentUser
from web.core import readiness, sql
from web.core.errors import DomainError
from web.core.messages import N_

STATEMENT_TEXT_LIMIT = 400
SLOW_STATEMENT_COUNT = 10
INDEX_ROW_LIMIT = 40

PG_STAT_STATEMENTS_INSTALLED = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')"

# Design 8.2 "slow query identification", with PostgreSQL 13+ column names; this database only.
SLOWEST_STATEMENTS = f"""
SELECT s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.stddev_exec_time, s.max_exec_time, s.rows,
       100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0) AS hit_ratio
FROM pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.total_exec_time DESC
LIMIT {SLOW_STATEMENT_COUNT}
"""

# Design 8.2 "index usage", joined on relid, with each index's size.
INDEX_USAGE = f"""
SELECT i.schemaname, i.relname, i.indexrelname, i.idx_scan, i.idx_tup_read, i.idx_tup_fetch,
       pg_relation_size(i.indexrelid) AS index_bytes
FROM pg_stat_user_indexes i
JOIN pg_stat_user_tables t ON t.relid = i.relid
ORDER BY i.idx_scan DESC, pg_relation_size(i.indexrelid) DESC, i.indexrelname
LIMIT {INDEX_ROW_LIMIT}
"""

UNUSED_INDEXES = """
SELECT count(*) AS unused, coalesce(sum(pg_relation_size(indexrelid)), 0) AS unused_bytes
FROM pg_stat_user_indexes
WHERE idx_scan = 0
"""

# Share of block reads served from shared buffers: the whole database, tables and indexes.
CACHE_HIT_RATIO = """
SELECT
    (SELECT 100.0 * blks_hit / nullif(blks_hit + blks_read, 0)
     FROM pg_stat_database WHERE datname = current_database()) AS database_ratio,
    (SELECT 100.0 * sum(heap_blks_hit) / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0)
     FROM pg_statio_user_tables) AS table_ratio,
    (SELECT 100.0 * sum(idx_blks_hit) / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0)
     FROM pg_statio_user_indexes) AS index_ratio
"""

# Dead rows waiting for VACUUM: a cheap bloat estimate (pgstattuple would scan the tables).
DEAD_TUPLES = """
SELECT schemaname, relname, n_live_tup, n_dead_tup,
       round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1) AS dead_percent,
       pg_total_relation_size(relid) AS total_bytes,
       greatest(last_vacuum, last_autovacuum) AS last_vacuumed
FROM pg_stat_user_tables
ORDER BY n_dead_tup DESC, pg_total_relation_size(relid) DESC, relname
LIMIT 20
"""

# Lock requests not granted yet, with who blocks them; no query texts (pg_stat_activity's are raw).
LOCK_WAITS = """
SELECT l.pid, l.locktype, l.mode, l.relation::regclass::text AS relation,
       a.wait_event_type, a.wait_event, now() - a.query_start AS waiting_for,
       pg_blocking_pids(l.pid) AS blocked_by
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
ORDER BY a.query_start
"""

# Partitions of the design's partitioned tables (2.2) with their bounds and sizes.
PARTITIONS = """
SELECT parent.relname AS parent, child.relname AS partition,
       pg_get_expr(child.relpartbound, child.oid) AS bounds,
       pg_total_relation_size(child.oid) AS total_bytes,
       greatest(child.reltuples, 0)::bigint AS estimated_rows
FROM pg_inherits i
JOIN pg_class parent ON parent.oid = i.inhparent
JOIN pg_class child ON child.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = parent.relnamespace
WHERE parent.relkind = 'p' AND n.nspname = current_schema() AND parent.relname IN ('slots', 'bookings')
ORDER BY parent.relname, child.relname
"""

# Design 8.1 "throughput" and "lock contention", over the statistics' whole window.
THROUGHPUT = """
SELECT xact_commit, xact_rollback, deadlocks, stats_reset,
       (xact_commit + xact_rollback) / nullif(extract(epoch FROM now() - coalesce(stats_reset,
           pg_postmaster_start_time())), 0) AS transactions_per_second
FROM pg_stat_database WHERE datname = current_database()
"""

# The primary's standbys as it sees them: who, how (async / sync / potential), and how far behind (bytes).
REPLICATION = """
SELECT application_name, client_addr::text AS client, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes
FROM pg_stat_replication ORDER BY application_name
"""

# WAL archiving (design 7): what was archived last and whether archiving fails.
ARCHIVER = """
SELECT current_setting('archive_mode') AS archive_mode, archived_count, last_archived_wal, last_archived_time,
       failed_count, last_failed_wal, last_failed_time
FROM pg_stat_archiver
"""

_QUOTED_LITERAL = re.compile(r"'")


@dataclass
class NodeFigures:
    """What differs from node to node: each server has its own statement statistics, buffer cache and
    lock queue. ``name``: "primary", or the replica's ("replica-1", …)."""

    name: str
    reachable: bool = True
    in_recovery: bool | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    statements: list[dict] = field(default_factory=list)
    # Why there are no statements to show (None when they are shown).
    statements_note: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    lock_waits: list[dict] = field(default_factory=list)


@dataclass
class DatabaseHealth(NodeFigures):
    """The primary's figures, the tables' (the same data on every node: read on the primary), and every
    replica's own figures."""

    name: str = "primary"
    indexes: list[dict] = field(default_factory=list)
    unused_indexes: int = 0
    unused_index_bytes: int = 0
    dead_tuples: list[dict] = field(default_factory=list)
    partitions: list[dict] = field(default_factory=list)
    throughput: dict[str, Any] = field(default_factory=dict)
    replication: list[dict] = field(default_factory=list)
    archiver: dict[str, Any] = field(default_factory=dict)
    replicas: list[NodeFigures] = field(default_factory=list)


def shown_statement(text: str | None) -> str | None:
    """A statement text fit to show: None when it may hold literal values (see the module docstring)."""
    if text is None or _QUOTED_LITERAL.search(text):
        return None
    text = " ".join(text.split())
    return text if len(text) <= STATEMENT_TEXT_LIMIT else text[: STATEMENT_TEXT_LIMIT - 1] + "…"


async def _slowest_statements(figures: NodeFigures, fetchval, fetch) -> None:
    if not await fetchval(PG_STAT_STATEMENTS_INSTALLED):
        figures.statements_note = N_(
            "The pg_stat_statements extension is not installed in this database, so statement timings are "
            "not available. A database administrator can add it (shared_preload_libraries and "
            "CREATE EXTENSION pg_stat_statements)."
        )
        return
    try:
        rows = await fetch(SLOWEST_STATEMENTS)
    except (asyncpg.ObjectNotInPrerequisiteStateError, asyncpg.InsufficientPrivilegeError):
        figures.statements_note = N_(
            "pg_stat_statements is installed but not loaded by the server (shared_preload_libraries), "
            "so statement timings are not available."
        )
        return
    figures.statements = [{**dict(row), "query": shown_statement(row["query"])} for row in rows]
    if not figures.statements:
        figures.statements_note = N_("No statements recorded since the statistics were last reset.")


async def _node_figures(figures: NodeFigures, fetchval, fetch, fetchrow) -> None:
    await _slowest_statements(figures, fetchval, fetch)
    figures.cache = dict(await fetchrow(CACHE_HIT_RATIO))
    figures.lock_waits = [dict(row) for row in await fetch(LOCK_WAITS)]


async def _replica_figures(node: Any, state: dict) -> NodeFigures:
    """A replica's own figures, read on that replica (within the readiness probe's deadline), or only its
    state when it does not answer."""
    figures = NodeFigures(name=state["name"], reachable=state["reachable"], in_recovery=state.get("in_recovery"),
                          lag_bytes=state.get("lag_bytes"), lag_seconds=state.get("lag_seconds"))
    if not figures.reachable:
        return figures
    try:
        async with asyncio.timeout(readiness.PROBE_SECONDS), node.pool.acquire() as connection:
            await _node_figures(figures, connection.fetchval, connection.fetch, connection.fetchrow)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return NodeFigures(name=figures.name, reachable=False)
    return figures


def can_see_database_health(user: CurrentUser | None) -> bool:
    return user is not None and user.role == ROLE_MANAGER and user.clinic_id is None


async def database_health(manager: CurrentUser) -> DatabaseHealth:
    """Every section of the database health page: the primary's figures and the tables', then each
    replica's own (statements, cache, lock waits, lag), each read on its node: never the primary's figures
    shown as a replica's. Only for managers of every clinic: the figures are the whole database's
    (statements, tables and partitions of all clinics), which a manager of one clinic has no business
    reading."""
    if not can_see_database_health(manager):
        raise DomainError(detail=N_("This page is for managers of every clinic."), status=403)
    health = DatabaseHealth()
    await _node_figures(health, sql.fetchval, sql.fetch, sql.fetchrow)
    health.indexes = [dict(row) for row in await sql.fetch(INDEX_USAGE)]
    unused = await sql.fetchrow(UNUSED_INDEXES)
    health.unused_indexes, health.unused_index_bytes = unused["unused"], unused["unused_bytes"]
    health.dead_tuples = [dict(row) for row in await sql.fetch(DEAD_TUPLES)]
    health.partitions = [dict(row) for row in await sql.fetch(PARTITIONS)]
    health.throughput = dict(await sql.fetchrow(THROUGHPUT))
    health.replication = [dict(row) for row in await sql.fetch(REPLICATION)]
    health.archiver = dict(await sql.fetchrow(ARCHIVER))
    engine = sql.app_engine()
    if engine.extra_nodes:
        primary, replicas = await readiness.node_states(engine)
        health.in_recovery = primary["in_recovery"]
        health.replicas = [await _replica_figures(engine.extra_nodes[state["name"]], state) for state in replicas]
    return health


def human_bytes(count: int | None) -> str:
    """``8.0 kB``, ``1.2 MB``: sizes as pg_size_pretty would write them, to one decimal."""
    if count is None:
        return ""
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} bytes"

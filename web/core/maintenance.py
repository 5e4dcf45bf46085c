"""Database maintenance that the app runs itself: migrations and partitions created ahead.

Periodic jobs guard themselves with ``pg_try_advisory_xact_lock`` so that when several app processes
run, only one does the work (transaction-level locks are safe behind PgBouncer; session locks are not).
"""

from __future__ import annotations

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

from web.settings import get_settings


async def migrate() -> None:
    """Apply every migration not yet applied, then make sure partitions exist ahead. On a database already
    distributed with Citus, a table a migration added is then placed as web/ops/citus_layout.py says
    (``vetbook citus distribute`` once more; it changes nothing when there is nothing new)."""
    result = await run_forwards(app_name="vetbook", migration_id="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")
    await ensure_partitions()
    await _distribute_new_tables()


async def _distribute_new_tables() -> None:
    from web.core import sql
    from web.ops import citus

    async with sql.connection() as connection:
        # A Citus coordinator (plain PostgreSQL has no pg_dist_partition) whose layout was applied once (its
        # co-location leader, slots, is distributed).
        if not await connection.fetchval("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL"):
            return
        if await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass('public.slots'))"):
            await citus.distribute(connection, get_settings().citus_shard_count)


async def ensure_partitions(months_ahead: int | None = None, months_back: int = 0) -> int:
    """Create the monthly partitions of slots and bookings from ``months_back`` before the current month
    to ``months_ahead`` after it (default: the configured premake, 3). Returns how many were created."""
    if months_ahead is None:
        months_ahead = get_settings().partition_months_ahead
    rows = await engine_finder().run_querystring(
        QueryString("SELECT vetbook_ensure_partitions({}, {}) AS created", months_ahead, months_back)
    )
    return rows[0]["created"]

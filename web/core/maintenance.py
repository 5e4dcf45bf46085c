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
    """Apply every migration not yet applied, then make sure partitions exist ahead."""
    result = await run_forwards(app_name="vetbook", migration_id="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")
    await ensure_partitions()


async def ensure_partitions(months_ahead: int | None = None, months_back: int = 0) -> int:
    """Create the monthly partitions of slots and bookings from ``months_back`` before the current month
    to ``months_ahead`` after it (default: the configured premake, 3). Returns how many were created."""
    if months_ahead is None:
        months_ahead = get_settings().partition_months_ahead
    rows = await engine_finder().run_querystring(
        QueryString("SELECT vetbook_ensure_partitions({}, {}) AS created", months_ahead, months_back)
    )
    return rows[0]["created"]

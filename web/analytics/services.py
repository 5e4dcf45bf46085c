"""Domain services of analytics over the booking_analytics_daily materialized view."""

from __future__ import annotations

from web.core import sql


async def refresh_booking_analytics() -> None:
    """Refresh the daily view without blocking readers (needs its unique index; see migration 0004).
    Run hourly by the app's job and on demand."""
    await sql.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")

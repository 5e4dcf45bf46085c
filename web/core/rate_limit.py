"""Rate limits shared by every app process: fixed-window counters in PostgreSQL.

One statement per hit (an upsert), so concurrent requests on different workers count exactly.
"""

from __future__ import annotations

from litestar.exceptions import TooManyRequestsException

from web.core import sql
from web.settings import parse_rate

_HIT = """
INSERT INTO rate_limit_hits AS r (bucket, window_start, hits)
VALUES ($1, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2), 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
RETURNING r.hits,
          greatest(1, ceil(extract(epoch FROM r.window_start + make_interval(secs => $2) - clock_timestamp())))::int
              AS retry_after
"""


async def hit(bucket: str, rate: str, message: str) -> None:
    """Count one hit in ``bucket``; over the limit (``rate`` = "N/S"), raise 429 with Retry-After."""
    limit, seconds = parse_rate(rate)
    row = await sql.fetchrow(_HIT, bucket[:200], seconds)
    if row["hits"] > limit:
        raise TooManyRequestsException(detail=message, headers={"Retry-After": str(row["retry_after"])})


async def forget_old_windows() -> None:
    """Delete counters whose window ended more than a day ago (a periodic job)."""
    await sql.execute("DELETE FROM rate_limit_hits WHERE window_start < now() - interval '1 day'")

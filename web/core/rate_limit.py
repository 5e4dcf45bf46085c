"""Rate limits shared by every app process: fixed-window counters in PostgreSQL.

One statement per hit (an upsert), so concurrent requests on different workers count exactly. Login
failures have their own throttle on top of these counters (web/accounts/login_throttle.py).
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


# The current window's count, without counting anything.
_PEEK = """
SELECT r.hits,
       greatest(1, ceil(extract(epoch FROM r.window_start + make_interval(secs => $2) - clock_timestamp())))::int
           AS retry_after
FROM rate_limit_hits r
WHERE r.bucket = $1 AND r.window_start = to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2)
"""


async def hit(bucket: str, rate: str, message: str) -> None:
    """Count one hit in ``bucket``; over the limit (``rate`` = "N/S"), raise 429 with Retry-After."""
    limit, seconds = parse_rate(rate)
    row = await sql.fetchrow(_HIT, bucket[:200], seconds)
    if row["hits"] > limit:
        raise TooManyRequestsException(detail=message, headers={"Retry-After": str(row["retry_after"])})


async def count(bucket: str, rate: str) -> None:
    """Count one hit in ``bucket`` without refusing anything (``exceeded`` refuses the next ones)."""
    _, seconds = parse_rate(rate)
    await sql.fetchrow(_HIT, bucket[:200], seconds)


async def exceeded(bucket: str, rate: str) -> int | None:
    """Seconds until ``bucket`` may be used again when its window already holds ``rate``'s limit, else None.
    For limits that count only some outcomes (failed logins): check first, ``count`` afterwards."""
    limit, seconds = parse_rate(rate)
    row = await sql.fetchrow(_PEEK, bucket[:200], seconds)
    if row is not None and row["hits"] >= limit:
        return row["retry_after"]
    return None


async def forget_old_windows() -> None:
    """Delete counters whose window ended more than a day ago (a periodic job)."""
    await sql.execute("DELETE FROM rate_limit_hits WHERE window_start < now() - interval '1 day'")

"""Plain asyncpg access for the statements Piccolo cannot express (upserts with expressions, locks,
set_config). Uses the current Piccolo transaction when there is one, else the request's connection
(web/core/connections.py), else a pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import asyncpg
from piccolo.engine import engine_finder

from web.core.connections import request_connection

# The app has one engine for its life; Piccolo's finder re-reads its configuration on every call (~20 µs,
# a few times per statement on the hot path).
app_engine = cache(engine_finder)


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    engine = app_engine()
    transaction = engine.current_transaction.get()
    if transaction is not None:
        yield transaction.connection
        return
    held = await request_connection(engine)
    if held is not None:
        yield held
    elif engine.pool is not None:
        async with engine.pool.acquire() as pooled:
            yield pooled
    else:
        direct = await engine.get_new_connection()
        try:
            yield direct
        finally:
            await direct.close()


async def fetch_read(query: str, *args: Any) -> list[asyncpg.Record]:
    """Like ``fetch``, for reads that may lag behind the primary (slot browsing, analytics): a replica
    answers when one is configured and fresh enough, else the primary (the rules: web/core/routing.py)."""
    from web.core import routing

    return await routing.fetch_lag_tolerant(app_engine(), lambda: fetch(query, *args), query, *args)


async def fetch(query: str, *args: Any) -> list[asyncpg.Record]:
    async with connection() as conn:
        return await conn.fetch(query, *args)


async def fetchrow(query: str, *args: Any) -> asyncpg.Record | None:
    async with connection() as conn:
        return await conn.fetchrow(query, *args)


async def fetchval(query: str, *args: Any) -> Any:
    async with connection() as conn:
        return await conn.fetchval(query, *args)


async def execute(query: str, *args: Any) -> str:
    async with connection() as conn:
        return await conn.execute(query, *args)

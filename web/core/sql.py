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


@asynccontextmanager
async def read_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection for reads that may lag behind the primary (slot browsing, analytics): the replica
    node when DATABASE_REPLICA_URL is set, else the primary. The one seam for read-replica routing."""
    from web.core.database import READ_NODE

    replica = app_engine().extra_nodes.get(READ_NODE)
    if replica is not None and replica.pool is not None:
        async with replica.pool.acquire() as pooled:
            yield pooled
    else:
        async with connection() as conn:
            yield conn


async def fetch_read(query: str, *args: Any) -> list[asyncpg.Record]:
    """Like ``fetch``, through ``read_connection``."""
    async with read_connection() as conn:
        return await conn.fetch(query, *args)


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

"""Plain asyncpg access for the statements Piccolo cannot express (upserts with expressions, locks,
set_config). Uses the current Piccolo transaction when there is one, else a pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from piccolo.engine import engine_finder


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    engine = engine_finder()
    transaction = engine.current_transaction.get()
    if transaction is not None:
        yield transaction.connection
    elif engine.pool is not None:
        async with engine.pool.acquire() as pooled:
            yield pooled
    else:
        direct = await engine.get_new_connection()
        try:
            yield direct
        finally:
            await direct.close()


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

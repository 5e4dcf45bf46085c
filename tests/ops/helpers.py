"""What the operations tests share."""

from __future__ import annotations

import asyncpg


async def count_rows(url: str, table_and_condition: str) -> int:
    """``SELECT count(*) FROM <table_and_condition>`` on a connection of its own (the servers of these tests
    are not the app's)."""
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(f"SELECT count(*) FROM {table_and_condition}")
    finally:
        await connection.close()

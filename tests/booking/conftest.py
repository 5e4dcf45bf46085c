"""Fixtures of the booking-engine tests.

Each test gets a database of its own, cloned from the migrated template, and the in-process app's Piccolo
pool is pointed at it for the test. The engine's checks are global (``vetbook check`` and
``slot_invariant_violations()`` look at every slot, the expiry jobs at every hold and booking), so they
can only be asserted exactly on a database that holds nothing but the test's own rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from piccolo.engine import engine_finder

# The app fixture's pool size (tests/conftest.py), restored after each test.
APP_POOL_MAX = 10


async def restart_pool(max_size: int, dsn: str | None = None) -> None:
    """Reopen Piccolo's pool with ``max_size`` connections (on ``dsn`` when given)."""
    engine = engine_finder()
    if engine.pool is not None:
        await engine.close_connection_pool()
    if dsn is not None:
        engine.config["dsn"] = dsn
    await engine.start_connection_pool(min_size=1, max_size=max_size)


@pytest.fixture
async def booking_db(app, fresh_database_url: str) -> AsyncIterator[str]:
    """The in-process app and services work on a fresh database of this test's own; yields its URL."""
    engine = engine_finder()
    original_dsn = engine.config["dsn"]
    await restart_pool(APP_POOL_MAX, dsn=fresh_database_url)
    try:
        yield fresh_database_url
    finally:
        await restart_pool(APP_POOL_MAX, dsn=original_dsn)

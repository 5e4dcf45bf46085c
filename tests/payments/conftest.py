"""Fixtures of the payment tests.

Each in-process test gets a database of its own, cloned from the migrated template, and the app's Piccolo
pool is pointed at it for the test: the unpaid-expiry job and the "no transaction is open during the
gateway call" check look at the whole database, so it must hold nothing but the test's own rows.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from piccolo.engine import engine_finder

from web.settings import get_settings

# The app fixture's pool size (tests/conftest.py).
APP_POOL_MAX = 10


async def _point_pool_at(dsn: str) -> None:
    engine = engine_finder()
    if engine.pool is not None:
        await engine.close_connection_pool()
    engine.config["dsn"] = dsn
    await engine.start_connection_pool(min_size=1, max_size=APP_POOL_MAX)


@pytest.fixture
async def pay_db(app, fresh_database_url: str) -> AsyncIterator[str]:
    """The in-process app works on this test's own fresh database (the ``conn`` fixture's); yields its URL."""
    original = engine_finder().config["dsn"]
    await _point_pool_at(fresh_database_url)
    try:
        yield fresh_database_url
    finally:
        await _point_pool_at(original)


@pytest.fixture
def configure() -> Iterator[Callable[..., None]]:
    """``configure(VETBOOK_X="...")`` sets the app's settings for one test; the environment (and so the
    settings) are restored after it."""
    saved = dict(os.environ)

    def apply(**variables: str) -> None:
        os.environ.update(variables)
        get_settings.cache_clear()

    try:
        yield apply
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()

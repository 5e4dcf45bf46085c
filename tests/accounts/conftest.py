"""Fixtures of the accounts tests that talk to real app processes (tests/servers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the live app processes, reading English pages (the assertions read their English texts; a
    client naming no language gets Indonesian)."""
    async with httpx.AsyncClient(timeout=30, headers={"Accept-Language": "en"}) as client:
        yield client

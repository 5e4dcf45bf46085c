"""Fixtures of the payment tests. In-process tests take ``own_database`` (tests/conftest.py): the
unpaid-expiry job and the "no transaction is open during the gateway call" check look at the whole
database, so it must hold nothing but the test's own rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from web.settings import get_settings


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

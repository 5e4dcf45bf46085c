"""The safety net for database errors that reach a handler: a concurrent change is a 409 to retry, never a 500."""

from __future__ import annotations

import json

import asyncpg
import pytest
from litestar.testing import RequestFactory

from web.core.errors import handle_database_error


@pytest.mark.parametrize(
    "error",
    [asyncpg.DeadlockDetectedError("deadlock detected"), asyncpg.SerializationError("could not serialize access"),
     asyncpg.LockNotAvailableError("could not obtain lock on row")],
    ids=lambda error: type(error).__name__,
)
def test_a_transaction_lost_to_a_concurrent_change_asks_the_client_to_try_again(error: Exception) -> None:
    request = RequestFactory().post("/api/v1/bookings/00000000-0000-4000-8000-000000000000/cancel")
    response = handle_database_error(request, error)
    assert response.status_code == 409
    assert {name.lower(): value for name, value in response.headers.items()}["retry-after"] == "1"
    body = json.loads(response.content if isinstance(response.content, bytes) else json.dumps(response.content))
    assert body["status"] == 409
    assert "try again" in body["detail"]


def test_an_unknown_database_error_is_still_a_server_error() -> None:
    request = RequestFactory().get("/api/v1/health")
    assert handle_database_error(request, asyncpg.InternalServerError("boom")).status_code == 500

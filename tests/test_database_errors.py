"""The safety net for database errors that reach a handler: a concurrent change is a 409 to retry, never a 500."""

from __future__ import annotations

import json

import asyncpg
import pytest
from litestar.testing import RequestFactory

from tests.conftest import run_cli, vetbook_command
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


@pytest.mark.parametrize(
    "error",
    [asyncpg.AdminShutdownError("terminating connection due to administrator command"),
     asyncpg.CannotConnectNowError("the database system is starting up"),
     asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
     asyncpg.ConnectionFailureError("connection failure")],
    ids=lambda error: type(error).__name__,
)
def test_a_database_that_went_away_is_a_503_to_retry(error: Exception) -> None:
    request = RequestFactory().post("/api/v1/reservations")
    response = handle_database_error(request, error)
    assert response.status_code == 503
    assert {name.lower(): value for name, value in response.headers.items()}["retry-after"] == "2"


async def test_a_lost_database_answers_503_not_500_over_http(tmp_path) -> None:
    """A real app whose PostgreSQL is stopped under it: each request is tried again for the retry budget
    (1 s here), then reads and writes get 503 with Retry-After. A server back within the budget answers the
    request that was waiting for it."""
    import asyncio

    import httpx

    from tests.servers import running_app
    from web.core.embedded_postgres import LocalPostgres

    server = LocalPostgres(tmp_path / "pg", fast=True)
    try:
        url = server.start()
        run_cli(*vetbook_command("migrate"), database_url=url)
        with running_app(url, tmp_path / "app.log", env={"VETBOOK_DATABASE_RETRY_SECONDS": "1"}) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=15) as http:
                assert (await http.get("/")).status_code == 200  # the home page lists the clinics
                server.stop()
                page = await http.get("/")
                api = await http.post("/api/v1/auth/token", json={"email": "a@example.test", "password": "x"})
                for answer in (page, api):
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["retry-after"] == "2"
                assert api.json()["status"] == 503
                assert "switching database servers" in api.json()["detail"]
                assert "text/html" in page.headers["content-type"]
                assert "database away: request retried" in app.log()
                server.start()
                assert (await http.get("/")).status_code == 200
        with running_app(url, tmp_path / "app.log", env={"VETBOOK_DATABASE_RETRY_SECONDS": "30"}) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=60) as http:
                assert (await http.get("/")).status_code == 200
                server.stop()
                waiting = asyncio.create_task(http.get("/"))
                await asyncio.sleep(0.5)
                assert not waiting.done()
                await asyncio.to_thread(server.start)
                assert (await waiting).status_code == 200
    finally:
        server.destroy()

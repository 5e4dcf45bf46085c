"""Riding out a lost database connection (web/core/failover.py): a request whose transaction the server
killed before COMMIT is run again on a fresh connection and answers as if nothing happened; nothing is
written twice. And the multi-host URL form that lets new connections find the primary after a failover."""

from __future__ import annotations

import asyncio

import pytest

from tests.booking.helpers import clinic_scene, owner, slot, slot_row
from web.booking import statements as q
from web.core.database import primary_dsn


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:p@127.0.0.1:5432/db", "postgresql://u:p@127.0.0.1:5432/db"),
    ("postgresql://u:p@127.0.0.1:5432,127.0.0.1:5433/db",
     "postgresql://u:p@127.0.0.1:5432,127.0.0.1:5433/db?target_session_attrs=read-write"),
    ("postgresql://u:p@h1:5432,h2:5432/db?sslmode=disable",
     "postgresql://u:p@h1:5432,h2:5432/db?sslmode=disable&target_session_attrs=read-write"),
    # The operator's own choice stays.
    ("postgresql://u:p@h1,h2/db?target_session_attrs=any", "postgresql://u:p@h1,h2/db?target_session_attrs=any"),
    # A comma in the password is no second host.
    ("postgresql://u:a%2Cb@h1:5432/db", "postgresql://u:a%2Cb@h1:5432/db"),
])
def test_a_url_with_several_hosts_asks_for_the_one_that_takes_writes(url: str, expected: str) -> None:
    assert primary_dsn(url) == expected


async def _backend_waiting_for_the_owner_lock(conn) -> tuple[int, str]:
    async with asyncio.timeout(10):
        while True:
            row = await conn.fetchrow(
                "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'vetbook%' "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
            if row is not None:
                return row["pid"], row["application_name"]
            await asyncio.sleep(0.01)


async def test_a_hold_whose_connection_the_server_killed_is_run_again_and_holds_once(
        own_database, conn, client, fresh_database_url) -> None:
    import asyncpg

    scene = await clinic_scene(conn)
    person = await owner(conn)
    contested = await slot(conn, scene, capacity=2)
    # Another session holds the owner's lock, so the app's hold transaction waits inside its first statement:
    # the moment to kill its server process (what a primary going down does to every open transaction).
    blocker = await asyncpg.connect(fresh_database_url)
    try:
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                              q.OWNER_HOLDS_LOCK, str(person.user_id))
        request = asyncio.create_task(client.post(
            "/api/v1/reservations",
            headers=person.headers | {"Idempotency-Key": "killed-once-01", "X-Request-ID": "failover-test-0001"},
            json={"slot_id": str(contested["slot_id"]), "pet_id": str(person.pet["pet_id"])}))
        killed, application = await _backend_waiting_for_the_owner_lock(conn)
        # The transaction names its request (web/core/logging.py): the operator can tell whose it is.
        assert application == "vetbook/failover-test-0001"
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", killed)
        await blocking.rollback()
        response = await request
    finally:
        await blocker.close()

    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "failover-test-0001"
    # The killed attempt wrote nothing; the one that answered holds one place, on another server process.
    assert await conn.fetchval("SELECT count(*) FROM reservations WHERE user_id = $1", person.user_id) == 1
    assert (await slot_row(conn, contested["slot_id"]))["remaining"] == 1
    assert await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", killed) == 0


def _app_failing_with(errors: list[Exception]):
    """A Litestar app with VetBook's error handlers and retry middleware whose one endpoint raises the next
    of ``errors`` on each run, then answers 200; and the list of runs."""
    from litestar import Litestar, post
    from litestar.params import JSONBody

    from web.core.errors import EXCEPTION_HANDLERS
    from web.core.failover import retry_when_database_away_middleware

    runs: list[bytes] = []

    @post("/api/v1/change", status_code=200)
    async def change(data: JSONBody[dict]) -> dict:
        runs.append(repr(data).encode())
        if errors:
            raise errors.pop(0)
        return {"changed": True}

    return Litestar([change], middleware=[retry_when_database_away_middleware],
                    exception_handlers=EXCEPTION_HANDLERS), runs


async def test_a_request_rolled_back_by_a_deadlock_is_run_again_and_answers_as_if_nothing_happened() -> None:
    import asyncpg
    import httpx

    app, runs = _app_failing_with([asyncpg.DeadlockDetectedError("deadlock detected"),
                                   asyncpg.SerializationError("could not serialize access")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/api/v1/change", json={"slot": 1})
    assert (response.status_code, response.json()) == (200, {"changed": True})
    # Three runs, each with the whole body (the request is replayed from its buffered body).
    assert runs == [repr({"slot": 1}).encode()] * 3


async def test_a_request_rolled_back_every_time_gets_the_409_after_a_few_runs() -> None:
    import asyncpg
    import httpx

    from web.core.failover import ROLLED_BACK_ATTEMPTS

    app, runs = _app_failing_with([asyncpg.DeadlockDetectedError("deadlock detected") for _ in range(10)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/api/v1/change", json={"slot": 1})
    assert response.status_code == 409
    assert "try again" in response.json()["detail"]
    assert len(runs) == ROLLED_BACK_ATTEMPTS

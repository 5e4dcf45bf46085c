"""One connection per request (web/core/connections.py): every statement of a request runs on one server
session and no pool reset runs between them (that an event stream gives its connection back is tested
against a real server in tests/live)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from piccolo.engine import engine_finder

from tests.booking.helpers import clinic_scene, confirm_over_api, hold_over_api, owner, slot
from tests.conftest import APP_POOL_MAX, restart_pool
from web.accounts.tables import User
from web.core import shard_keys, sql
from web.core.connections import one_connection


@dataclass
class StatementLog:
    """Every statement the app's pool connections run, with the server process that ran it."""

    entries: list[tuple[int, str]] = field(default_factory=list)

    async def attach(self, connection: asyncpg.Connection) -> None:
        pid = connection.get_server_pid()
        connection.add_query_logger(lambda logged: self.entries.append((pid, logged.query)))

    def during(self, start: int) -> list[tuple[int, str]]:
        return self.entries[start:]


@pytest.fixture
async def statement_log(own_database: str) -> AsyncIterator[StatementLog]:
    log = StatementLog()
    # A pool of several connections, so that per-query checkouts would show up as several server processes.
    await restart_pool(APP_POOL_MAX, dsn=own_database, min_size=APP_POOL_MAX, init=log.attach)
    try:
        yield log
    finally:
        await restart_pool(APP_POOL_MAX, dsn=own_database)


async def test_a_hold_runs_every_statement_on_one_session_without_resets(statement_log, conn, client) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    free = await slot(conn, scene, capacity=3)
    start = len(statement_log.entries)

    await hold_over_api(client, person, free["slot_id"])

    ran = statement_log.during(start)
    assert ran, "the hold ran no statement on the app's pool"
    assert len({pid for pid, _ in ran}) == 1, ran
    statements = [query for _, query in ran]
    assert not [query for query in statements if "RESET ALL" in query or "UNLISTEN" in query], statements
    assert await conn.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", free["slot_id"]) == 2


async def test_a_booking_takes_thirteen_statements_on_the_app_pool(statement_log, conn, client) -> None:
    # The round trips of the hot path: hold = session, rate limit, BEGIN, request name and owner lock, the
    # guarded take of a place, the hold's insert, COMMIT; confirm = session, BEGIN, request name, the guarded
    # confirm of the hold, the booking's insert, COMMIT. (Issue 12 had 8: a hold and a confirm were one
    # statement each, with INSERTs inside WITH; Citus plans those across the coordinator, so since migration
    # 0021 the INSERTs are statements of their own and each statement runs on one shard: docs/scaling.md.)
    scene = await clinic_scene(conn)
    person = await owner(conn)
    free = await slot(conn, scene, capacity=3)
    # The clinic was made behind the app's back: its directory of clinics (web/core/shard_keys.py) reads it
    # once, as it would for a clinic another process created, and never again for this clinic's ids.
    assert await shard_keys.clinic_of(free["slot_id"]) == scene.clinic["clinic_id"]
    start = len(statement_log.entries)

    held = await hold_over_api(client, person, free["slot_id"])
    after_hold = len(statement_log.entries)
    confirmed = await confirm_over_api(client, person, held)

    assert confirmed.status_code == 201, confirmed.text
    hold_statements = [query for _, query in statement_log.entries[start:after_hold]]
    confirm_statements = [query for _, query in statement_log.entries[after_hold:]]
    assert len(hold_statements) == 7, hold_statements
    assert len(confirm_statements) == 6, confirm_statements
    assert await conn.fetchval("SELECT count(*) FROM bookings WHERE reservation_id = $1",
                               held["reservation_id"]) == 1


async def test_queries_and_transactions_in_one_block_share_the_connection(statement_log) -> None:
    async with one_connection(engine_finder()):
        by_piccolo = (await User.raw("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        by_sql = await sql.fetchval("SELECT pg_backend_pid()")
        async with engine_finder().transaction():
            in_transaction = await sql.fetchval("SELECT pg_backend_pid()")
        after_transaction = await sql.fetchval("SELECT pg_backend_pid()")
    assert by_piccolo == by_sql == in_transaction == after_transaction


async def test_a_failed_transaction_on_the_request_connection_leaves_it_usable(statement_log) -> None:
    async with one_connection(engine_finder()):
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with engine_finder().transaction():
                await sql.fetchval("SELECT 1 / 0")
        assert await sql.fetchval("SELECT 41 + 1") == 42

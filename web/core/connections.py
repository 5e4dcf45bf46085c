"""One pooled connection per request: every query a request makes, Piccolo's and raw SQL alike, runs on it.

Taking a connection from the pool for each query costs a checkout and, on release, asyncpg's reset
(``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``): four statements per query, the
larger part of a booking's round trips before this module. A request now takes one connection on its first
query and gives it back when its response starts; a transaction opened during the request runs on that same
connection.

The app keeps no session state on pooled connections, which is what makes the per-query reset unneeded and
PgBouncer's transaction mode safe: settings are transaction-local (``set_config(..., true)``), advisory locks
are transaction-level (``pg_advisory_xact_lock``), and LISTEN has a connection of its own (web/live/broker.py).
``tests/architecture/test_session_state.py`` keeps it that way. asyncpg still rolls back a transaction left
open and drops listeners when a connection goes back (``Connection._reset``).

Why "until the response starts": the body of a normal response is rendered by then, so the request's database
work is over; an event stream runs for minutes after it and must not pin a pool connection. Queries after that
point (a stream, a background task) each take a connection of their own, as before.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from web.core import metrics


class _RequestConnection:
    """The connection of one request: taken from ``pool`` on first use, released by ``give_back``."""

    __slots__ = ("pool", "connection", "open")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.connection: asyncpg.Connection | None = None
        self.open = True

    async def get(self) -> asyncpg.Connection:
        if self.connection is None:
            waited = time.perf_counter()
            self.connection = await self.pool.acquire()
            metrics.POOL_WAIT_SECONDS.observe(time.perf_counter() - waited)
        elif self.connection._con is None:
            # asyncpg detaches a pooled connection that died (the server went away between two of the
            # request's statements): the request must not go on half done on another one, so it ends as a
            # database-away error, which web/core/failover.py runs again from the start.
            raise asyncpg.ConnectionDoesNotExistError("the request's database connection was lost")
        return self.connection

    async def give_back(self) -> None:
        self.open = False
        connection, self.connection = self.connection, None
        if connection is not None:
            await self.pool.release(connection)
            metrics.note_pool(self.pool)


_current: ContextVar[_RequestConnection | None] = ContextVar("vetbook_request_connection", default=None)


def _held_by(engine: PostgresEngine) -> _RequestConnection | None:
    held = _current.get()
    if held is not None and held.open and engine.pool is held.pool:
        return held
    return None


async def request_connection(engine: PostgresEngine) -> asyncpg.Connection | None:
    """The connection the current request holds on ``engine`` (taken now if this is its first query), or
    None outside a request."""
    held = _held_by(engine)
    return await held.get() if held is not None else None


@asynccontextmanager
async def one_connection(engine: PostgresEngine) -> AsyncIterator[None]:
    """Run the block's queries on one connection of ``engine``'s pool (the request middleware uses it;
    so can a script or job that makes many small queries)."""
    if engine.pool is None or _held_by(engine) is not None:
        yield
        return
    held = _RequestConnection(engine.pool)
    token = _current.set(held)
    try:
        yield
    finally:
        _current.reset(token)
        await held.give_back()


class _Transaction(PostgresTransaction):
    """A Piccolo transaction that runs on the request's connection when there is one (and then leaves it to
    the request instead of releasing it)."""

    _borrowed = False

    async def get_connection(self) -> asyncpg.Connection:
        connection = await request_connection(self.engine)
        if connection is None:
            return await super().get_connection()
        self._borrowed = True
        return connection

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        if self._parent is not None or not self._borrowed:
            return await super().__aexit__(exception_type, exception, traceback)
        # PostgresTransaction.__aexit__ without its release of the connection, which the request still holds.
        try:
            if exception is not None:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            self.engine.current_transaction.reset(self.context)
        return exception is None


class VetbookEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine, with queries outside a transaction run on the request's connection."""

    async def _run_in_pool(self, query: str, args: Sequence[Any] | None = None) -> list[asyncpg.Record]:
        connection = await request_connection(self)
        if connection is None:
            return await super()._run_in_pool(query, args)
        return await connection.fetch(query, *(args or ()))

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return _Transaction(engine=self, allow_nested=allow_nested)


async def keep_session_state(connection: asyncpg.Connection) -> None:
    """The pool's reset: nothing beyond asyncpg's own rollback of an open transaction (see the module's
    docstring for why the session needs no reset)."""


def connection_per_request_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: each HTTP request runs its queries on one connection, held until its response starts."""
    from web.core.sql import app_engine

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        engine = app_engine()
        if scope["type"] != "http" or engine is None or engine.pool is None:
            await app(scope, receive, send)
            return
        held = _RequestConnection(engine.pool)
        token = _current.set(held)

        async def send_after_giving_back(message: Message) -> None:
            if message["type"] == "http.response.start" and held.open:
                await held.give_back()
            await send(message)

        try:
            await app(scope, receive, send_after_giving_back)
        finally:
            _current.reset(token)
            await held.give_back()

    return middleware

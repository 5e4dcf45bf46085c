"""Riding out a failover: a request whose database went away is run again, for a bounded time; and a
request whose transaction PostgreSQL rolled back (a deadlock, a serialization failure) is run again a few
times before the person is told to try again.

When the primary is killed or shuts down, or a failover turns it into a standby, the request's statements
fail with a lost connection, ``57P01``/``57P03`` (shutting down, starting up) or ``25006`` (read-only): the
transaction did not commit. The error handler (web/core/errors.py ``handle_database_away``) marks such an
answer; this middleware then throws the answer away and runs the request again, from its buffered body, on
a fresh connection. With a multi-host ``DATABASE_URL`` (web/core/database.py ``primary_dsn``) that
connection reaches whichever node now takes writes. Only when RETRY_SECONDS have passed without success
does the person get the 503 (with ``Retry-After``).

Why running a request again is safe: either its transaction never committed, or, when the connection was
lost during the COMMIT itself (the one moment nobody can know), the write repeats idempotently. A hold
repeated with its ``Idempotency-Key`` returns the same hold; a confirm with the same lock token returns the
same booking; a cancel repeated with the version it was made from returns the cancelled booking; a payment
has its own idempotency key. A response already started (an event stream, a page being sent) is never
repeated: only answers held back before their first byte are.

A deadlock or serialization failure (40P01, 40001) also means the failed transaction wrote nothing. People
rarely meet one, but Citus's distributed deadlock detection cancels the younger transaction when a shard
move's final switch-over and a booking wait on each other (docs/scaling.md): run again a moment later, the
booking goes through on the moved shard, so the request is repeated up to ROLLED_BACK_ATTEMPTS times before
the 409 "someone else was changing this" is sent.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

# What a failover takes: ~0.2 s from `pg_ctl promote` to the first write on the new primary here; Patroni
# needs its leader TTL (tens of seconds) and should be given a longer budget (VETBOOK_DATABASE_RETRY_SECONDS).
BACKOFF_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
# A request body larger than this is not buffered, so such a request is not repeated (forms and API
# bodies are far smaller; the app refuses bodies past its own limit anyway).
MAX_BUFFERED_BODY_BYTES = 1 << 20
# The scope key under which the error handler marks "the database went away, nothing was answered yet".
AWAY_MARK = "vetbook.database_away"
# The scope key under which it marks "this request's transaction was rolled back by a concurrent one".
ROLLED_BACK_MARK = "vetbook.rolled_back"
# How many times in all such a request runs before its 409 is answered. Six spans ~1.5 s of backoff (plus each
# attempt's own lock waits): a shard move's switch-over on a busy 2-core machine outlasted four (0.35 s).
ROLLED_BACK_ATTEMPTS = 6


def mark_database_away(scope: Scope) -> None:
    """Called by the error handler: this request's answer is a database-away 503 that may be retried."""
    scope[AWAY_MARK] = True


def mark_rolled_back(scope: Scope) -> None:
    """Called by the error handler: this request's answer is a 409 for a transaction PostgreSQL rolled back
    (deadlock, serialization failure); it may be run again."""
    scope[ROLLED_BACK_MARK] = True


async def expire_pooled_connections() -> None:
    """After a database went away, every pooled connection may lead to the old server: asyncpg closes
    them as they come back and opens new ones, which the multi-host DSN sends to the current primary."""
    from web.core.sql import app_engine

    engine = app_engine()
    if engine is not None and engine.pool is not None:
        await engine.pool.expire_connections()


async def _buffered_body(receive: Receive) -> tuple[list[Message], bool]:
    """The request's body messages, and whether they are complete (False: too large to buffer)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, True
        if size > MAX_BUFFERED_BODY_BYTES:
            return messages, False


class _Attempt:
    """One run of the request: its body replayed, its answer held back if it is a database-away one."""

    def __init__(self, scope: Scope, body: list[Message], receive: Receive, send: Send) -> None:
        self.scope, self._replay, self._receive, self._send = scope, list(body), receive, send
        self.held_back = False
        self.started = False
        scope.pop(AWAY_MARK, None)
        scope.pop(ROLLED_BACK_MARK, None)

    async def receive(self) -> Message:
        return self._replay.pop(0) if self._replay else await self._receive()

    @property
    def rolled_back(self) -> bool:
        return bool(self.scope.get(ROLLED_BACK_MARK))

    async def send_unless_away(self, message: Message) -> None:
        if message["type"] == "http.response.start" and (self.scope.get(AWAY_MARK) or self.rolled_back):
            self.held_back = True
        if self.held_back:
            return  # the database-away answer, start and body, is dropped: the request runs again
        self.started = True
        await self._send(message)


def retry_when_database_away_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: runs a request again while its answer is a database-away 503 (or the error itself,
    raised by a middleware before any handler), for up to ``VETBOOK_DATABASE_RETRY_SECONDS``."""
    from web.core.errors import is_database_away
    from web.settings import get_settings

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body, complete = await _buffered_body(receive)
        deadline = time.monotonic() + get_settings().database_retry_seconds
        attempt = rolled_back = 0
        while True:
            attempt += 1
            delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
            # The last attempt (its backoff would pass the deadline, or the rolled-back ones are used up)
            # answers whatever happens.
            may_retry = (complete and time.monotonic() + delay < deadline
                         and rolled_back < ROLLED_BACK_ATTEMPTS - 1)
            run = _Attempt(scope, body, receive, send)
            try:
                await app(scope, run.receive, run.send_unless_away if may_retry else send)
            except Exception as error:
                # Raised by a middleware (the session lookup) before any handler could answer.
                if run.started or not may_retry or not is_database_away(error):
                    raise
                log.info("database away: request retried", attempt=attempt, error=type(error).__name__,
                         path=scope.get("path"))
            else:
                if not run.held_back:
                    if attempt > 1:
                        log.info("request answered after database retries", attempts=attempt,
                                 path=scope.get("path"))
                    return
                if run.rolled_back:
                    rolled_back += 1
                    log.info("transaction rolled back: request retried", attempt=attempt, path=scope.get("path"))
                    await asyncio.sleep(delay)
                    continue
                log.info("database away: request retried", attempt=attempt, path=scope.get("path"))
            await expire_pooled_connections()
            await asyncio.sleep(delay)

    return middleware

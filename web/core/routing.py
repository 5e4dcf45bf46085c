"""Which database node answers what: the rules in one place.

| work | node | why |
|---|---|---|
| slot search (API) and the finder's lists (bookable slots of a day, places per day, nearest free slots) | a replica (``fetch_lag_tolerant``) | a slot shown a moment late is harmless: the hold re-checks everything on the primary, in its transaction |
| the analytics figures and their "data as of" | a replica | the view lags by design; both come from the same node, so they lag together |
| every statement inside a transaction (all writes) | the primary | a standby refuses writes, and a transaction's reads must see its own writes |
| sessions, API tokens, logouts | the primary | a logout must hold on the very next request |
| rate limits, the hold's checks, payments, the desk's day | the primary | they decide; a lagging count would let too much through |
| LISTEN (live updates), background jobs, ``vetbook check``, the database health page | the primary | a standby cannot LISTEN; jobs write; the checks and figures are of the primary |

Several replicas (``DATABASE_REPLICA_URL``, comma-separated) take turns. A replica is skipped for
``SKIP_SECONDS`` after it failed a read (unreachable, shutting down, or a recovery conflict, SQLSTATE
40001 on a standby), and while its lag is past ``VETBOOK_REPLICA_MAX_LAG_SECONDS``; the read is then
answered by the next replica, or by the primary. A person never gets an error because a replica is away.

The lag comes from WAL positions, not from ``pg_stat_replication.replay_lag`` (seen reporting 1 ms while
a standby was 3 s behind): every process samples the primary's position every ``WATCH_SECONDS`` and each
replica's replay position; a replica is as fresh as the primary was at the newest sample it has replayed
past, so its lag is the age of that sample (0 when it has replayed past the latest one). That is exact to
the sampling interval, and a quiet primary does not make a caught-up replica look old.

Read-your-writes: after a request that wrote (an unsafe method answered below 400), the response carries a
signed cookie (``SEEN_COOKIE``, for ``SEEN_SECONDS``) with the primary's WAL position after its commits. The
person's next lag-tolerant reads go to a replica only once it has replayed past that position (it is asked
once more, for up to ``SEEN_WAIT_SECONDS``, when the watcher's last sample says it is behind), else to the
primary: an owner sees the place they just took, a receptionist the slot they just opened.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import itertools
import time
import weakref
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from web.core import metrics, readiness

SEEN_COOKIE = "vb_seen"
SEEN_SECONDS = 30
SEEN_WAIT_SECONDS = 0.02
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SKIP_SECONDS = 5.0
ACQUIRE_SECONDS = 1.0
WATCH_SECONDS = 0.5
HISTORY_SECONDS = 120.0

# A replica read that fails with one of these is answered by another node: the replica is away (refused,
# reset, shutting down: 57P01/57P03), or it cancelled the read to replay WAL (40001 recovery conflict).
REPLICA_IS_AWAY = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
    asyncpg.SerializationError, asyncpg.AdminShutdownError, asyncpg.CannotConnectNowError,
)


@dataclass
class _Replica:
    name: str
    engine: Any  # a VetbookEngine with its own pool
    skip_until: float = 0.0
    # Unknown until the watcher has measured it: until then the primary answers.
    lag_seconds: float | None = None
    replayed: int = 0  # the replay position at the watcher's last sample


@dataclass
class ReplicaSet:
    """The replicas of one primary, taken in turn; see the module's rules."""

    replicas: list[_Replica]
    max_lag_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _turns: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def of(cls, nodes: dict[str, Any], max_lag_seconds: float) -> ReplicaSet:
        return cls([_Replica(name, engine) for name, engine in sorted(nodes.items())], max_lag_seconds)

    def usable(self) -> list[_Replica]:
        now = self.clock()
        return [replica for replica in self.replicas
                if replica.engine.pool is not None and replica.skip_until <= now
                and replica.lag_seconds is not None and replica.lag_seconds <= self.max_lag_seconds]

    def in_turn(self) -> Sequence[_Replica]:
        """The usable replicas, starting with the next one in turn."""
        usable = self.usable()
        if not usable:
            return ()
        start = next(self._turns) % len(usable)
        return usable[start:] + usable[:start]

    def failed(self, replica: _Replica) -> None:
        replica.skip_until = self.clock() + SKIP_SECONDS

    def note_lag(self, name: str, lag_seconds: float | None, replayed: int = 0) -> None:
        """The replica's measured lag (None: unknown, e.g. unreachable): past the bound, it is skipped."""
        for replica in self.replicas:
            if replica.name == name:
                replica.lag_seconds, replica.replayed = lag_seconds, replayed


# Per engine, and gone with it (an id() key could be reused by a later engine).
_replica_sets: weakref.WeakKeyDictionary[Any, ReplicaSet] = weakref.WeakKeyDictionary()


def replica_set(engine: Any, max_lag_seconds: float | None = None) -> ReplicaSet:
    """The primary engine's replicas (one set per engine, built on first use)."""
    found = _replica_sets.get(engine)
    if found is None:
        if max_lag_seconds is None:
            from web.settings import get_settings

            max_lag_seconds = get_settings().replica_max_lag_seconds
        found = _replica_sets[engine] = ReplicaSet.of(engine.extra_nodes, max_lag_seconds)
    return found


async def fetch_lag_tolerant(engine: Any, on_primary: Callable[[], Any], query: str, *args: Any) -> list[asyncpg.Record]:
    """``query``'s rows from a replica in turn (see the rules above), else from ``on_primary()``. Inside a
    transaction always from the primary: the transaction's own writes must be seen."""
    if engine.current_transaction.get() is not None:
        return await on_primary()
    must_see = _must_see.get()
    for replica in replica_set(engine).in_turn():
        try:
            async with asyncio.timeout(ACQUIRE_SECONDS):
                connection = await replica.engine.pool.acquire()
        except REPLICA_IS_AWAY:
            replica_set(engine).failed(replica)
            continue
        try:
            if must_see is not None and replica.replayed < must_see and not await _has_replayed(connection, must_see):
                continue
            return await connection.fetch(query, *args)
        except REPLICA_IS_AWAY:
            replica_set(engine).failed(replica)
        finally:
            with contextlib.suppress(*REPLICA_IS_AWAY):
                await replica.engine.pool.release(connection)
    return await on_primary()


async def _has_replayed(connection: asyncpg.Connection, position: int) -> bool:
    """Whether the replica has replayed past ``position``, waiting up to SEEN_WAIT_SECONDS for it."""
    deadline = time.monotonic() + SEEN_WAIT_SECONDS
    while True:
        replayed = await connection.fetchval(_REPLAY_POSITION)
        if replayed is not None and lsn(replayed) >= position:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.005)


def lsn(position: str) -> int:
    """A WAL position ('16/B374D848') as a number, to compare and subtract."""
    high, low = position.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class WalHistory:
    """The primary's WAL positions over the last HISTORY_SECONDS, to date a replica's replay position."""

    samples: collections.deque = field(default_factory=collections.deque)

    def add(self, at: float, position: int) -> None:
        self.samples.append((at, position))
        while self.samples and self.samples[0][0] < at - HISTORY_SECONDS:
            self.samples.popleft()

    def lag_seconds(self, now: float, replayed: int) -> float | None:
        """How old the replica's data is: 0 past the latest sample, else the age of the newest sample it
        has replayed past; None when it is behind every sample kept (older than HISTORY_SECONDS)."""
        if not self.samples or replayed >= self.samples[-1][1]:
            return 0.0
        for at, position in reversed(self.samples):
            if replayed >= position:
                return now - at
        return None


_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
_REPLAY_POSITION = "SELECT pg_last_wal_replay_lsn()::text"


async def _position(engine: Any, query: str) -> int | None:
    row = await readiness.probe(engine, query)
    value = next(iter(row.values())) if row else None
    return lsn(value) if value else None


async def watch_replicas(engine: Any, history: WalHistory | None = None, rounds: int | None = None) -> None:
    """Keep the replicas' lag up to date (until cancelled, or for ``rounds`` rounds): one sample of the
    primary's position and one of each replica's replay position every WATCH_SECONDS."""
    replicas = replica_set(engine)
    history = history or WalHistory()
    for _ in itertools.count() if rounds is None else range(rounds):
        primary = await _position(engine, _PRIMARY_POSITION)
        now = replicas.clock()
        if primary is not None:
            history.add(now, primary)
        for replica in replicas.replicas:
            replayed = await _position(replica.engine, _REPLAY_POSITION)
            lag = None if replayed is None else history.lag_seconds(now, replayed)
            replicas.note_lag(replica.name, lag, replayed or 0)
            metrics.REPLICA_LAG_SECONDS.labels(replica.name).set(-1 if lag is None else lag)
        await asyncio.sleep(WATCH_SECONDS)


# --------------------------------------------------------------------------- read-your-writes

_must_see: ContextVar[int | None] = ContextVar("vetbook_must_see_wal_position", default=None)
_WRITTEN_AT = "SELECT pg_current_wal_insert_lsn()::text"


def _signature(value: str, secret: str) -> str:
    return hmac.new(secret.encode(), b"vb_seen:" + value.encode(), hashlib.sha256).hexdigest()[:32]


def seen_cookie_value(position: int, now: float, secret: str) -> str:
    """``position.expiry.signature``: the WAL position a person's reads must see, until ``expiry``."""
    value = f"{position}.{int(now) + SEEN_SECONDS}"
    return f"{value}.{_signature(value, secret)}"


def position_to_see(cookie: str | None, now: float, secret: str) -> int | None:
    """The position of a valid, unexpired cookie; None for anything else (forged, expired, malformed)."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    value = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _signature(value, secret)) or int(parts[1]) < now:
        return None
    return int(parts[0])


def _cookie_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, content = part.strip().partition("=")
                if key == SEEN_COOKIE:
                    return content
    return None


def read_your_writes_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware (only at work with replicas): the request's reads see the position of the person's
    last write (its cookie), and a response to a write hands out the new position."""
    from web.core.sql import app_engine
    from web.settings import get_settings

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        engine = app_engine()
        if scope["type"] != "http" or engine is None or not engine.extra_nodes or engine.pool is None:
            await app(scope, receive, send)
            return
        secret, secure = get_settings().secret_key, get_settings().cookie_secure
        token = _must_see.set(position_to_see(_cookie_of(scope), time.time(), secret))
        wrote = scope.get("method", "GET") in UNSAFE_METHODS

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start" and wrote and message.get("status", 500) < 400:
                # After the request's commits: the position on the primary now covers all of them.
                with contextlib.suppress(*REPLICA_IS_AWAY, asyncpg.PostgresError):
                    async with engine.pool.acquire() as connection:
                        position = lsn(await connection.fetchval(_WRITTEN_AT))
                    cookie = (f"{SEEN_COOKIE}={seen_cookie_value(position, time.time(), secret)}; Path=/; "
                              f"Max-Age={SEEN_SECONDS}; HttpOnly; SameSite=Lax")
                    if secure or scope.get("scheme") == "https":
                        cookie += "; Secure"
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"set-cookie", cookie.encode("latin-1"))]}
            await send(message)

        try:
            await app(scope, receive, send_with_position)
        finally:
            _must_see.reset(token)

    return middleware

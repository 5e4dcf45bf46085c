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
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

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

    def note_lag(self, name: str, lag_seconds: float | None) -> None:
        """The replica's measured lag (None: unknown, e.g. unreachable): past the bound, it is skipped."""
        for replica in self.replicas:
            if replica.name == name:
                replica.lag_seconds = lag_seconds


_replica_sets: dict[int, ReplicaSet] = {}


def replica_set(engine: Any, max_lag_seconds: float | None = None) -> ReplicaSet:
    """The primary engine's replicas (one set per engine, built on first use)."""
    found = _replica_sets.get(id(engine))
    if found is None:
        if max_lag_seconds is None:
            from web.settings import get_settings

            max_lag_seconds = get_settings().replica_max_lag_seconds
        found = _replica_sets[id(engine)] = ReplicaSet.of(engine.extra_nodes, max_lag_seconds)
    return found


async def fetch_lag_tolerant(engine: Any, on_primary: Callable[[], Any], query: str, *args: Any) -> list[asyncpg.Record]:
    """``query``'s rows from a replica in turn (see the rules above), else from ``on_primary()``. Inside a
    transaction always from the primary: the transaction's own writes must be seen."""
    if engine.current_transaction.get() is not None:
        return await on_primary()
    for replica in replica_set(engine).in_turn():
        try:
            async with asyncio.timeout(ACQUIRE_SECONDS):
                connection = await replica.engine.pool.acquire()
        except REPLICA_IS_AWAY:
            replica_set(engine).failed(replica)
            continue
        try:
            return await connection.fetch(query, *args)
        except REPLICA_IS_AWAY:
            replica_set(engine).failed(replica)
        finally:
            with contextlib.suppress(*REPLICA_IS_AWAY):
                await replica.engine.pool.release(connection)
    return await on_primary()


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
    try:
        async with asyncio.timeout(ACQUIRE_SECONDS):
            async with engine.pool.acquire() as connection:
                value = await connection.fetchval(query)
    except (*REPLICA_IS_AWAY, asyncpg.PostgresError):
        return None
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
            replicas.note_lag(replica.name, None if replayed is None else history.lag_seconds(now, replayed))
        await asyncio.sleep(WATCH_SECONDS)

"""Transactions that know who acts: the booking engine writes each status change's history row with the actor,
reason and metadata of the transaction it happens in (web/booking/services.py).

The actor lives in a context variable for the length of the ``transaction_as`` block (a nested block names
its own actor and gives the outer one back), never on the connection: a pooled connection reused by another
request or a background job carries nothing over. The transaction's first round trip names the request in
``application_name`` (web/core/logging.py) and asks for generic plans (below); the block also sends what it
announced to the open pages (web/core/announcements.py) before it commits.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from piccolo.engine import engine_finder

from web.core import announcements
from web.core.announcements import Notice
from web.core.logging import application_name


@dataclass(frozen=True)
class Actor:
    """Who changes things in the current transaction (None: the system, a background job), why, and what a
    history row should add about it."""

    user_id: UUID | None
    reason: str | None = None
    metadata: dict | None = None


_SYSTEM = Actor(None)
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("vetbook_actor", default=_SYSTEM)


def current_actor() -> Actor:
    """The actor of the innermost ``transaction_as`` block (the system outside any)."""
    return _current.get()


# With the request named, the transaction's statements are planned once per connection (a generic plan)
# instead of at every execution. Planning a statement over the monthly partitions of slots and bookings costs
# more than running it (15 ms against 0.4 ms for a hold's checks at 59 partitions, empty tables included):
# PostgreSQL keeps re-planning because a custom plan's estimate leaves planning out. The commands' statements
# look rows up by key, so a generic plan with run-time partition pruning is as good. Transaction-local. Not on
# Citus: it chooses a statement's shard from the values of its parameters, which a generic plan does not
# have ("could not create distributed plan"); there the plan cache decides ($3, 'auto').
# The same round trip sends the notices known before the transaction starts ($2: none, or their payloads).
_NAME_THE_REQUEST = ("SELECT set_config('application_name', $1, true), set_config('plan_cache_mode', $3, true), "
                     f"(SELECT count(pg_notify('{announcements.CHANNEL}', notice)) FROM unnest($2::text[]) AS notice)")
# It can also take a transaction-level advisory lock on (namespace, key).
_NAME_THE_REQUEST_AND_LOCK = _NAME_THE_REQUEST + ", pg_advisory_xact_lock(hashtext($4), hashtext($5))"

_plan_cache_mode = "force_generic_plan"


def use_generic_plans(generic: bool) -> None:
    """Set once the pool knows its database (web/core/database.py open_pools): False on Citus."""
    global _plan_cache_mode
    _plan_cache_mode = "force_generic_plan" if generic else "auto"


@asynccontextmanager
async def transaction_as(
    actor_id: UUID | None, reason: str | None = None, metadata: dict | None = None,
    lock: tuple[str, str] | None = None, announce: tuple[Notice, ...] = (),
) -> AsyncIterator[object]:
    """A database transaction in which every booking status change is attributed to ``actor_id``
    (None: the system) with ``reason`` and ``metadata``, and statements use generic plans (see above).
    Piccolo queries inside it use it. With ``lock`` (namespace, key), the transaction first waits for that
    advisory lock, in the same round trip. What the block announces (web/core/announcements.py) reaches the
    open pages if it commits: ``announce`` (notices known beforehand) in the first round trip, the rest in
    one statement at the end (by the outermost block)."""
    engine = engine_finder()
    token = _current.set(Actor(actor_id, reason, metadata))
    notices, outermost = announcements.begin(list(announce))
    first = [announcements.payload(notice) for notice in announce] if outermost else []
    try:
        async with engine.transaction() as transaction:
            if lock is None:
                await transaction.connection.execute(_NAME_THE_REQUEST, application_name(), first, _plan_cache_mode)
            else:
                await transaction.connection.execute(_NAME_THE_REQUEST_AND_LOCK, application_name(), first,
                                                     _plan_cache_mode, *lock)
            yield transaction
            if outermost and (rest := announcements.unsent()):
                await transaction.connection.execute(announcements.NOTIFY_ALL, rest)
    finally:
        announcements.end(notices)
        _current.reset(token)

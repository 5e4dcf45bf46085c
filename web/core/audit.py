"""Transactions that know who acts: the status-history trigger reads the actor, reason and metadata.

The values are transaction-local (``set_config(..., true)``), so a pooled connection reused by another
request or by a background job never carries them over (the trigger reads '' as "unknown").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from piccolo.engine import engine_finder

from web.core.logging import application_name


def actor_settings(user: str, reason: str, metadata: str, application: str) -> str:
    """The set_config calls that name the actor (and the request, in application_name: web/core/logging.py),
    with their values at the given SQL positions ($1 …)."""
    return (f"set_config('app.user_id', {user}, true), set_config('app.change_reason', {reason}, true), "
            f"set_config('app.change_metadata', {metadata}, true), set_config('application_name', {application}, true)")


def actor_values(actor_id: UUID | None, reason: str | None = None,
                 metadata: dict | None = None) -> tuple[str, str, str, str]:
    """The values for ``actor_settings``: '' stands for "unknown" (the system)."""
    return (str(actor_id) if actor_id else "", reason or "", json.dumps(metadata) if metadata else "",
            application_name())


# With the actor, the transaction's statements are planned once per connection (a generic plan) instead of
# at every execution. Planning a statement over the monthly partitions of slots and bookings costs more than
# running it (15 ms against 0.4 ms for a hold's checks at 59 partitions, empty tables included): PostgreSQL
# keeps re-planning because a custom plan's estimate leaves planning out. The commands' statements look rows
# up by key, so a generic plan with run-time partition pruning is as good. Transaction-local like the rest.
_NAME_THE_ACTOR = ("SELECT " + actor_settings("$1", "$2", "$3", "$4")
                   + ", set_config('plan_cache_mode', 'force_generic_plan', true)")
# The same round trip can take a transaction-level advisory lock on (namespace, key).
_NAME_THE_ACTOR_AND_LOCK = _NAME_THE_ACTOR + ", pg_advisory_xact_lock(hashtext($5), hashtext($6))"


@asynccontextmanager
async def transaction_as(
    actor_id: UUID | None, reason: str | None = None, metadata: dict | None = None,
    lock: tuple[str, str] | None = None,
) -> AsyncIterator[object]:
    """A database transaction in which every booking status change is attributed to ``actor_id``
    (None: the system) with ``reason`` and ``metadata``, and statements use generic plans (see above).
    Piccolo queries inside it use it. With ``lock`` (namespace, key), the transaction first waits for that
    advisory lock, in the same round trip."""
    engine = engine_finder()
    async with engine.transaction() as transaction:
        actor = actor_values(actor_id, reason, metadata)
        if lock is None:
            await transaction.connection.execute(_NAME_THE_ACTOR, *actor)
        else:
            await transaction.connection.execute(_NAME_THE_ACTOR_AND_LOCK, *actor, *lock)
        yield transaction

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


@asynccontextmanager
async def transaction_as(
    actor_id: UUID | None, reason: str | None = None, metadata: dict | None = None
) -> AsyncIterator[object]:
    """A database transaction in which every booking status change is attributed to ``actor_id``
    (None: the system) with ``reason`` and ``metadata``. Piccolo queries inside it use it."""
    engine = engine_finder()
    async with engine.transaction() as transaction:
        await transaction.connection.execute(
            "SELECT set_config('app.user_id', $1, true), set_config('app.change_reason', $2, true), "
            "set_config('app.change_metadata', $3, true)",
            str(actor_id) if actor_id else "",
            reason or "",
            json.dumps(metadata) if metadata else "",
        )
        yield transaction

"""What a transaction tells the open pages when it commits: "this clinic's slots (or bookings) of this day
changed" (web/live/broker.py listens; pages refetch what they show).

The notices are ``pg_notify`` calls made by the transaction itself, on the server the app talks to, so that
PostgreSQL delivers them only if it commits (a rolled-back hold announces nothing) and sends identical ones
of a transaction once (a month of generated slots is one notice per clinic day). They used to come from row
triggers on slots and bookings; on Citus a trigger fires on the worker that holds the row, where the app
does not listen and where a notification even stops the two-phase commit of a transaction that spans
workers ("cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY"). So the code that
changes slots or bookings announces it: ``announce`` inside a ``transaction_as`` block (web/core/audit.py),
which sends what was announced in one statement before it commits, or, when the clinic and day are known
before the transaction starts (a hold, a confirm), in its first round trip at no extra cost.
"""

from __future__ import annotations

import contextvars
import json
from datetime import date
from uuid import UUID

CHANNEL = "vetbook_live"
TOPICS = ("slots", "bookings")

Notice = tuple[str, UUID, date]

# The notices of the current transaction_as block, and those already sent in its first round trip. A
# nested block adds to its outer block's.
_pending: contextvars.ContextVar[tuple[set[Notice], set[Notice]] | None] = contextvars.ContextVar(
    "vetbook_announcements", default=None)

# Sends a transaction's notices (JSON payloads) in one statement. A SELECT of no table: on Citus the
# coordinator runs it itself, and its notices go out when the distributed transaction commits there.
NOTIFY_ALL = f"SELECT count(pg_notify('{CHANNEL}', notice)) FROM unnest($1::text[]) AS notice"


def payload(notice: Notice) -> str:
    topic, clinic_id, day = notice
    return json.dumps({"topic": topic, "clinic_id": str(clinic_id), "date": day.isoformat()})


def announce(topic: str, clinic_id: UUID, day: date) -> None:
    """Tell the pages following ``clinic_id``'s ``day`` that its ``topic`` changed, when the current
    transaction commits. Outside a ``transaction_as`` block there is nothing to tell: every change of slots
    and bookings runs in one."""
    current = _pending.get()
    if current is not None:
        current[0].add((topic, clinic_id, day))


def begin(sent_first: list[Notice]) -> tuple[contextvars.Token | None, bool]:
    """Start collecting for a transaction (``sent_first``: what its first round trip sends, when it is the
    outermost block). Returns the context token to reset and whether this is the outermost block (which
    sends the rest at the end)."""
    current = _pending.get()
    if current is not None:
        # A nested block's first round trip sends nothing: the outermost one sends them at its end.
        current[0].update(sent_first)
        return None, False
    return _pending.set((set(sent_first), set(sent_first))), True


def unsent() -> list[str]:
    """The payloads announced in the current block and not sent yet."""
    current = _pending.get()
    if current is None:
        return []
    announced, sent = current
    return sorted(payload(notice) for notice in announced - sent)


def end(token: contextvars.Token | None) -> None:
    if token is not None:
        _pending.reset(token)

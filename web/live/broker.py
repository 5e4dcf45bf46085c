"""One LISTEN connection per process, fanned out to the event streams of the pages it serves.

The transactions that change slots or bookings announce ``vetbook_live`` notifications carrying a topic
(``slots`` or ``bookings``), a clinic and a day (web/core/announcements.py), on the server the app talks to
(on Citus: the coordinator); they are delivered only when the changing transaction commits. A page subscribes to one clinic day and refetches what it shows when told "this changed": the
notification carries no private data, and a page can never apply a stale delta.

Notifications are coalesced per subscriber (a burst of 200 holds wakes a page a few times, not 200), and
a subscriber that cannot keep up loses nothing but duplicates. When the LISTEN connection drops, every
subscriber is told to refetch once it is back: notifications sent meanwhile are lost, the pages' state is
not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import asyncpg
import structlog

from web.core import metrics
from web.core.announcements import CHANNEL

RECONNECT_DELAYS_SECONDS = (0.2, 0.5, 1, 2, 5)
PING_TIMEOUT_SECONDS = 5

log = structlog.get_logger(__name__)

DayKey = tuple[UUID, date]


@dataclass(eq=False)
class Subscription:
    """What one open page waits for: the topics of one clinic day that changed since it last looked."""

    key: DayKey
    topics: frozenset[str]
    changed: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self, topic: str) -> None:
        if topic in self.topics:
            self.changed.add(topic)
            self._wake.set()

    async def next_changes(self, quiet_seconds: float) -> set[str]:
        """The topics that changed, or an empty set after ``quiet_seconds`` of quiet."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), quiet_seconds)
        self._wake.clear()
        changed, self.changed = self.changed, set()
        return changed


class LiveBroker:
    """Listens on CHANNEL from the first subscription until the process ends (one connection: keeping it
    open costs less than reopening it for every page that connects)."""

    def __init__(self, dsn_provider) -> None:
        self._dsn_provider = dsn_provider
        self._subscribers: dict[DayKey, set[Subscription]] = {}
        self._listener: asyncio.Task | None = None
        self._listening = asyncio.Event()
        self._closed = False

    def subscribe(self, clinic_id: UUID, day: date, topics: frozenset[str]) -> Subscription:
        subscription = Subscription((clinic_id, day), topics)
        self._subscribers.setdefault(subscription.key, set()).add(subscription)
        metrics.LIVE_SUBSCRIBERS.inc()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen_forever(), name="vetbook-live-listener")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.key)
        if subscribers is not None and subscription in subscribers:
            subscribers.discard(subscription)
            metrics.LIVE_SUBSCRIBERS.dec()
            if not subscribers:
                del self._subscribers[subscription.key]

    async def wait_until_listening(self, within_seconds: float) -> bool:
        """True once LISTEN is in place: a change committed after this is heard. A stream sends its
        catch-up event only then, so nothing falls between the page's refetch and the first notification."""
        try:
            await asyncio.wait_for(self._listening.wait(), within_seconds)
        except TimeoutError:
            return False
        return True

    @property
    def state(self) -> str:
        """'idle' (no page has subscribed yet), 'listening', or 'reconnecting' (the connection was lost)."""
        if self._listener is None or self._listener.done():
            return "idle"
        return "listening" if self._listening.is_set() else "reconnecting"

    @property
    def subscriber_count(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def _dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            key = (UUID(message["clinic_id"]), date.fromisoformat(message["date"]))
            topic = message["topic"]
        except (ValueError, KeyError, TypeError):
            log.warning("live.bad_notification", payload=payload[:200])
            return
        for subscription in self._subscribers.get(key, ()):
            subscription.notify(topic)

    def _everyone_refetches(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                for topic in subscription.topics:
                    subscription.notify(topic)

    async def _listen_forever(self) -> None:
        attempt = 0
        while not self._closed:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn_provider(), server_settings={"application_name": "vetbook-live"}
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, lambda *args: self._dispatch(args[3]))
                self._listening.set()
                if attempt:
                    log.info("live.listener_reconnected", attempts=attempt)
                    self._everyone_refetches()
                attempt = 0
                while not lost.is_set():
                    # A dead TCP peer is noticed by a query, not by waiting.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 15)
                    if not lost.is_set():
                        # A peer that vanished without closing would leave this query waiting for TCP's
                        # retransmission timeout (minutes): give up sooner and reconnect.
                        await connection.execute("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any connection failure: retry with backoff
                log.warning("live.listener_lost", error=str(error))
            finally:
                self._listening.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            delay = RECONNECT_DELAYS_SECONDS[min(attempt, len(RECONNECT_DELAYS_SECONDS) - 1)]
            attempt += 1
            await asyncio.sleep(delay)

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        self._listener = None


def _listen_dsn() -> str:
    # LISTEN needs a session of its own on the server: behind PgBouncer in transaction mode set
    # DATABASE_LISTEN_URL to the server itself.
    from piccolo.engine import engine_finder

    from web.core.database import primary_dsn
    from web.settings import get_settings

    # Several hosts: the listener follows the primary through a failover (LISTEN fails on a standby).
    return primary_dsn(get_settings().listen_database_url or engine_finder().config["dsn"])


_broker: LiveBroker | None = None


def get_broker() -> LiveBroker:
    global _broker
    if _broker is None:
        _broker = LiveBroker(_listen_dsn)
    return _broker


async def close_broker() -> None:
    global _broker
    if _broker is not None:
        await _broker.close()
        _broker = None

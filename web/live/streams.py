"""The event stream a live page connects to (``sse-connect``): "this clinic day changed, refetch".

On every (re)connection the stream starts with one change event per topic, so a page that was offline,
or whose stream opened a moment after it was rendered, catches up at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from uuid import UUID

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from web.accounts.auth import CurrentUser
from web.clinics.services import get_clinic
from web.core.announcements import TOPICS
from web.core.errors import DomainError, InvalidInput, NotFound
from web.core.messages import N_
from web.live.broker import get_broker

KEEP_ALIVE_SECONDS = 15.0
LISTEN_WAIT_SECONDS = 5.0
RECONNECT_AFTER_MILLISECONDS = 1000


def event_name(topic: str) -> str:
    """``slots`` -> ``slots-changed``: what templates listen for (``hx-trigger="sse:slots-changed"``)."""
    return f"{topic}-changed"


def _requested_topics(topics: str, user: CurrentUser | None, clinic_id: UUID) -> frozenset[str]:
    wanted = frozenset(topic.strip() for topic in topics.split(",") if topic.strip())
    if not wanted or not wanted <= set(TOPICS):
        raise InvalidInput({"topics": N_("Choose slots, bookings, or both.")})
    # Bookings change only for the clinic's own staff to see; slots are public like the slot list.
    if "bookings" in wanted and (user is None or not user.works_at(clinic_id)):
        raise DomainError(N_("Only this clinic's staff can follow its bookings."), status=403)
    return wanted


async def _changes(clinic_id: UUID, day: date, topics: frozenset[str]) -> AsyncIterator[ServerSentEventMessage]:
    broker = get_broker()
    subscription = broker.subscribe(clinic_id, day, topics)
    try:
        # If the database cannot be reached now, the page still gets its catch-up event; the broker tells
        # it to refetch again once it listens.
        await broker.wait_until_listening(within_seconds=LISTEN_WAIT_SECONDS)
        for topic in sorted(topics):
            yield ServerSentEventMessage(event=event_name(topic), data=day.isoformat(),
                                         retry=RECONNECT_AFTER_MILLISECONDS)
        while True:
            changed = await subscription.next_changes(quiet_seconds=KEEP_ALIVE_SECONDS)
            if not changed:
                yield ServerSentEventMessage(comment="keep-alive")
            for topic in sorted(changed):
                yield ServerSentEventMessage(event=event_name(topic), data=day.isoformat())
    finally:
        broker.unsubscribe(subscription)


class LiveController(Controller):
    path = "/live"
    include_in_schema = False

    @get("/clinics/{clinic_id:uuid}/days/{day:date}", name="live:clinic_day")
    async def clinic_day(
        self, request: Request, clinic_id: FromPath[UUID], day: FromPath[date], topics: FromQuery[str] = "slots"
    ) -> ServerSentEvent:
        """Server-sent events for one clinic day: ``slots-changed`` and (staff only) ``bookings-changed``."""
        wanted = _requested_topics(topics, request.scope.get("user"), clinic_id)
        if await get_clinic(clinic_id) is None:
            raise NotFound(N_("No such clinic."))
        return ServerSentEvent(_changes(clinic_id, day, wanted), headers={"Cache-Control": "no-store",
                                                                          "X-Accel-Buffering": "no"})

"""Live updates end to end: a change the app commits on slots or bookings reaches an open event stream of a
real app process, and one it rolls back does not.

The stream is read over real HTTP from ``vetbook serve`` (an in-process ASGI transport buffers whole
responses). Changes are made through the app's API (the app announces them: web/core/announcements.py), or,
for the broker's own behaviour, by a separate connection that commits a change with its announcement, as
another app process would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import cloned_database, connected
from tests.db.factories import make_pet, make_session, make_slot, make_user, make_world
from tests.servers import LiveServer, running_app
from web.core import announcements
from web.core.embedded_postgres import LocalPostgres
from web.live.broker import LiveBroker

EVENT_WAIT_SECONDS = 10


@pytest.fixture(scope="module")
def server(pg_server: LocalPostgres, template_database: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[LiveServer]:
    with cloned_database(pg_server, template_database, "live") as url:
        log = tmp_path_factory.mktemp("live") / "app.log"
        with running_app(url, Path(log)) as live_server:
            yield live_server


@pytest.fixture
async def db(server: LiveServer) -> AsyncIterator[asyncpg.Connection]:
    async with connected(server.database_url) as connection:
        yield connection


class EventStream:
    """Reads server-sent events off an open response, one event (name, data) at a time. A task of its own
    reads the response into a queue, so that waiting for an event with a timeout never cuts the stream."""

    def __init__(self, response: httpx.Response):
        self._events: asyncio.Queue = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(response))

    async def _read(self, response: httpx.Response) -> None:
        name, data = "message", ""
        try:
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                elif line == "" and data:
                    await self._events.put((name, data))
                    name, data = "message", ""
        except (httpx.HTTPError, httpx.StreamClosed, RuntimeError):
            pass  # the test closed the response: the stream ends
        await self._events.put(None)

    async def next_event(self) -> tuple[str, str]:
        event = await asyncio.wait_for(self._events.get(), EVENT_WAIT_SECONDS)
        if event is None:
            raise AssertionError("the stream ended")
        return event

    async def nothing_within(self, seconds: float) -> bool:
        """True when no event arrives within ``seconds``."""
        try:
            await asyncio.wait_for(self._events.get(), seconds)
        except TimeoutError:
            return True
        return False


async def _open_stream(client: httpx.AsyncClient, clinic_id, day: date, topics: str = "slots"):
    return client.stream("GET", f"/live/clinics/{clinic_id}/days/{day.isoformat()}", params={"topics": topics})


async def _owner_headers(db: asyncpg.Connection) -> tuple[dict, dict]:
    """A pet owner of the server's database with an API token: (their pet, bearer headers)."""
    person = await make_user(db)
    pet = await make_pet(db, person)
    return pet, {"Authorization": f"Bearer {await make_session(db, person, kind='api')}"}


async def _hold(client: httpx.AsyncClient, db: asyncpg.Connection, slot: dict) -> httpx.Response:
    pet, headers = await _owner_headers(db)
    return await client.post("/api/v1/reservations", headers=headers,
                             json={"slot_id": str(slot["slot_id"]), "pet_id": str(pet["pet_id"])})


async def _committed_with_notice(db: asyncpg.Connection, statement: str, *args, topic: str, clinic_id,
                                 day: date) -> None:
    """A change committed with its announcement in the same transaction, as an app process does."""
    async with db.transaction():
        await db.execute(statement, *args)
        await db.execute(announcements.NOTIFY_ALL, [announcements.payload((topic, clinic_id, day))])


async def test_a_committed_change_reaches_the_open_stream_and_a_refused_one_does_not(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    world = await make_world(db)
    full = await make_slot(db, world["clinic"], world["service"], capacity=1, remaining=0, status="booked")
    slot = await make_slot(db, world["clinic"], world["service"], start=full["end_time"], capacity=3, remaining=3)
    assert full["date"] == slot["date"]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
        async with await _open_stream(client, world["clinic"]["clinic_id"], slot["date"]) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = EventStream(response)
            # Every connection starts with a catch-up event: the page refetches what it shows.
            assert await stream.next_event() == ("slots-changed", slot["date"].isoformat())

            # A hold refused (the slot is full) is rolled back and announces nothing.
            assert (await _hold(client, db, full)).status_code == 409
            assert await stream.nothing_within(2)
            # A hold that took a place is announced when it commits.
            assert (await _hold(client, db, slot)).status_code == 201
            assert await stream.next_event() == ("slots-changed", slot["date"].isoformat())
            assert await db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", slot["slot_id"]) == 2


async def test_a_rolled_back_announcement_is_never_heard(server: LiveServer, db: asyncpg.Connection) -> None:
    world = await make_world(db)
    slot = await make_slot(db, world["clinic"], world["service"], capacity=3, remaining=3)
    notice = [announcements.payload(("slots", world["clinic"]["clinic_id"], slot["date"]))]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
        async with await _open_stream(client, world["clinic"]["clinic_id"], slot["date"]) as response:
            stream = EventStream(response)
            await stream.next_event()
            transaction = db.transaction()
            await transaction.start()
            await db.execute("UPDATE slots SET remaining = remaining - 1 WHERE slot_id = $1", slot["slot_id"])
            await db.execute(announcements.NOTIFY_ALL, notice)
            await transaction.rollback()
            assert await stream.nothing_within(2)


async def test_a_stream_of_another_day_hears_nothing(server: LiveServer, db: asyncpg.Connection) -> None:
    world = await make_world(db)
    slot = await make_slot(db, world["clinic"], world["service"], capacity=2, remaining=2)
    other_day = date.fromordinal(slot["date"].toordinal() + 1)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
        async with await _open_stream(client, world["clinic"]["clinic_id"], other_day) as response:
            stream = EventStream(response)
            assert await stream.next_event() == ("slots-changed", other_day.isoformat())
            assert (await _hold(client, db, slot)).status_code == 201
            assert await stream.nothing_within(2)


async def test_pages_catch_up_after_the_listener_loses_its_connection(server: LiveServer, db: asyncpg.Connection) -> None:
    world = await make_world(db)
    slot = await make_slot(db, world["clinic"], world["service"], capacity=2, remaining=2)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
        async with await _open_stream(client, world["clinic"]["clinic_id"], slot["date"]) as response:
            stream = EventStream(response)
            await stream.next_event()
            killed = await db.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'vetbook-live' AND datname = current_database()"
            )
            assert killed == 1
            # Whatever happened while the listener was away, the page is told to refetch once it is back.
            assert await stream.next_event() == ("slots-changed", slot["date"].isoformat())
            assert (await _hold(client, db, slot)).status_code == 201
            assert await stream.next_event() == ("slots-changed", slot["date"].isoformat())


@pytest.mark.parametrize(
    ("topics", "status"),
    [("bookings", 403), ("slots,bookings", 403), ("everything", 422), ("", 422)],
)
async def test_streams_a_visitor_may_not_open(server: LiveServer, db: asyncpg.Connection, topics: str, status: int) -> None:
    world = await make_world(db)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
        response = await client.get(f"/live/clinics/{world['clinic']['clinic_id']}/days/2030-01-02",
                                    params={"topics": topics}, headers={"Accept-Language": "en"})
        assert response.status_code == status
        assert "text/event-stream" not in response.headers.get("content-type", "")


async def test_an_unknown_clinic_is_not_found(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
        response = await client.get("/live/clinics/00000000-0000-4000-8000-000000000000/days/2030-01-02")
        assert response.status_code == 404


async def test_the_broker_wakes_a_subscriber_once_per_burst_and_only_for_its_topics(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    """In-process: staff subscribe to bookings, owners' pages only to slots; 20 commits wake each once or
    a few times, never 20 times behind."""
    world = await make_world(db)
    slot = await make_slot(db, world["clinic"], world["service"], capacity=30, remaining=30)
    clinic_id, day = world["clinic"]["clinic_id"], slot["date"]
    broker = LiveBroker(lambda: server.database_url)
    key = (clinic_id, day)
    desk = broker.subscribe(*key, frozenset({"slots", "bookings"}))
    owners_page = broker.subscribe(*key, frozenset({"slots"}))
    probe = broker.subscribe(*key, frozenset({"bookings"}))
    try:
        assert await broker.wait_until_listening(within_seconds=EVENT_WAIT_SECONDS)
        await _committed_with_notice(db, "UPDATE slots SET version = version + 1 WHERE slot_id = $1",
                                     slot["slot_id"], topic="bookings", clinic_id=clinic_id, day=day)
        assert await desk.next_changes(quiet_seconds=EVENT_WAIT_SECONDS) >= {"bookings"}
        assert await probe.next_changes(quiet_seconds=EVENT_WAIT_SECONDS) == {"bookings"}
        for _ in range(20):
            await _committed_with_notice(db, "UPDATE slots SET remaining = remaining - 1 WHERE slot_id = $1",
                                         slot["slot_id"], topic="slots", clinic_id=clinic_id, day=day)
        # A later commit on another topic: notifications arrive in commit order, so once the probe hears
        # it, all twenty slot changes have reached the owners' page (no fixed sleep).
        await _committed_with_notice(db, "UPDATE slots SET version = version + 1 WHERE slot_id = $1",
                                     slot["slot_id"], topic="bookings", clinic_id=clinic_id, day=day)
        assert await probe.next_changes(quiet_seconds=EVENT_WAIT_SECONDS) == {"bookings"}
        assert await owners_page.next_changes(quiet_seconds=EVENT_WAIT_SECONDS) == {"slots"}
        # Everything was coalesced into that one wake-up.
        assert await owners_page.next_changes(quiet_seconds=0.5) == set()
        assert json.dumps(sorted(await desk.next_changes(quiet_seconds=EVENT_WAIT_SECONDS))) in ('["slots"]', '["bookings", "slots"]')
    finally:
        broker.unsubscribe(desk)
        broker.unsubscribe(owners_page)
        broker.unsubscribe(probe)
        await broker.close()


async def test_open_streams_do_not_keep_the_pool_busy(pg_server: LocalPostgres, template_database: str,
                                                      tmp_path: Path) -> None:
    # A pool of one connection: if a stream kept the connection its request took (web/core/connections.py),
    # the second stream and the page after it would wait forever.
    with cloned_database(pg_server, template_database, "livepool") as url, running_app(
        url, tmp_path / "app.log", env={"VETBOOK_DB_POOL_MIN": "1", "VETBOOK_DB_POOL_MAX": "1"}
    ) as small_pool_server:
        async with connected(url) as setup:
            world = await make_world(setup)
        clinic_id, day = world["clinic"]["clinic_id"], world["slot"]["date"]
        async with httpx.AsyncClient(base_url=small_pool_server.base_url, timeout=EVENT_WAIT_SECONDS) as client:
            async with await _open_stream(client, clinic_id, day) as first, \
                    await _open_stream(client, clinic_id, day) as second:
                assert await EventStream(first).next_event() == ("slots-changed", day.isoformat())
                assert await EventStream(second).next_event() == ("slots-changed", day.isoformat())
                page = await client.get(f"/clinics/{clinic_id}/services")
                assert page.status_code == 200, page.text
                assert world["service"]["name"] in page.text

"""Each change of slots or bookings announces its clinic and day to the open pages, once, when it commits
(web/core/announcements.py; the app does it since the row triggers had to go for Citus, migration 0021).

A connection of the test's own LISTENs on the app's database while the engine, slot blocking and
generation act; it hears exactly the (topic, clinic, day) the change concerns, and nothing for a refusal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, time

import asyncpg
import pytest

from tests.booking.helpers import book, clinic_scene, mark_paid, owner, slot
from tests.conftest import connected
from web.booking import services
from web.core import announcements
from web.core.errors import Conflict
from web.slots import blocking, generation


class Heard:
    """The notices heard on the live channel, as (topic, clinic id, day)."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, str, str]] = []
        self.arrived = asyncio.Event()

    def __call__(self, _connection, _pid, _channel, payload: str) -> None:
        message = json.loads(payload)
        self.notices.append((message["topic"], message["clinic_id"], message["date"]))
        self.arrived.set()

    async def after(self, action) -> set[tuple[str, str, str]]:
        """What ``action`` announced: everything heard until a marker sent after it (notices arrive in
        commit order), so that no fixed sleep decides."""
        self.notices.clear()
        await action()
        await self.marker.execute(announcements.NOTIFY_ALL, [json.dumps(
            {"topic": "marker", "clinic_id": "-", "date": "-"})])
        while ("marker", "-", "-") not in self.notices:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)
        return {notice for notice in self.notices if notice[0] != "marker"}


@pytest.fixture
async def heard(own_database: str) -> AsyncIterator[Heard]:
    listener = Heard()
    async with connected(own_database) as listening, connected(own_database) as marker:
        listener.marker = marker
        await listening.add_listener(announcements.CHANNEL, listener)
        yield listener


def notices(topics: tuple[str, ...], clinic: dict, day: date) -> set[tuple[str, str, str]]:
    return {(topic, str(clinic["clinic_id"]), day.isoformat()) for topic in topics}


async def test_hold_confirm_cancel_and_refusals(heard: Heard, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    person, rival = await owner(conn), await owner(conn)
    contested = await slot(conn, scene, capacity=1)
    day = contested["date"]

    held = {}

    async def take() -> None:
        held.update(await services.hold(person.user, contested["slot_id"], person.pet["pet_id"]))

    assert await heard.after(take) == notices(("slots",), scene.clinic, day)

    async def refused() -> None:
        with pytest.raises(Conflict):
            await services.hold(rival.user, contested["slot_id"], rival.pet["pet_id"])

    assert await heard.after(refused) == set()

    booking = {}

    async def confirm() -> None:
        booking.update(await services.confirm(person.user, held["reservation_id"], held["lock_token"]))

    assert await heard.after(confirm) == notices(("slots", "bookings"), scene.clinic, day)

    async def pay() -> None:
        assert await mark_paid(booking["booking_id"])

    assert await heard.after(pay) == notices(("bookings",), scene.clinic, day)

    async def cancel() -> None:
        await services.cancel(person.user, booking["booking_id"], "customer_request", booking["version"] + 1)

    assert await heard.after(cancel) == notices(("slots", "bookings"), scene.clinic, day)


async def test_reschedule_announces_both_days(heard: Heard, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    person = await owner(conn)
    first = await slot(conn, scene, days=5)
    later = await slot(conn, scene, days=6)
    booking = await book(person, first)

    async def move() -> None:
        await services.reschedule(person.user, booking["booking_id"], later["slot_id"], booking["version"])

    assert await heard.after(move) == (notices(("slots", "bookings"), scene.clinic, first["date"])
                                       | notices(("slots", "bookings"), scene.clinic, later["date"]))


async def test_generation_and_blocking_announce_each_day_they_change(heard: Heard, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    desk = scene.receptionist.user
    first_day = (await slot(conn, scene, days=9))["date"]
    last_day = date.fromordinal(first_day.toordinal() + 2)
    template = generation.SlotTemplate(
        service_id=scene.service["service_id"], staff_id=None, weekdays=list(range(7)), opening=time(9),
        closing=time(10), length_minutes=30, capacity=1, price=None)

    async def generate() -> None:
        made = await generation.generate_slots(desk, scene.clinic["clinic_id"], template, first_day, last_day)
        assert made.created == 6

    days = [date.fromordinal(first_day.toordinal() + offset) for offset in range(3)]
    assert await heard.after(generate) == set().union(*(notices(("slots",), scene.clinic, day) for day in days))

    async def block() -> None:
        await blocking.block_slots(desk, scene.clinic["clinic_id"], first_day=days[1], last_day=days[1])

    assert await heard.after(block) == notices(("slots",), scene.clinic, days[1])

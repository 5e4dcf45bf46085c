"""A page that lost its live connection catches up when it comes back: the app process serving it stops,
a place is taken meanwhile (nobody is there to tell the page), and once a process answers on the same
address again the page's event stream reconnects by itself and the list shows the change, without a
reload. The stream's first event after every connection is what makes this work (web/live/streams.py).
"""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.e2e.booking_data import booking_scene
from tests.e2e.conftest import LiveServer, NewContext
from tests.e2e.pages import SlotFinderPage
from tests.servers import start_app, stop
from web.core.embedded_postgres import free_port

# htmx's SSE extension retries with a growing delay (0.5 s, 1 s, 2 s, …, at most 64 s): a restart of a few
# seconds is caught within the next attempts.
RECONNECT_WAIT_MS = 40_000


async def test_a_page_catches_up_after_its_server_comes_back(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection, tmp_path) -> None:
    scene = await booking_scene(live_db, hours=(10, 11), capacity=1)
    taken, other = scene.slots[0]["slot_id"], scene.slots[1]["slot_id"]
    port = free_port()
    server = start_app(live_server.database_url, tmp_path / "first.log", port=port)
    try:
        context = await new_context(base_url=server.base_url)
        finder = SlotFinderPage(await context.new_page())
        await finder.open(scene.clinic["clinic_id"], scene.service["service_id"], scene.day)
        await finder.wait_until_live()
        await finder.page.evaluate("() => { window.__sameDocument = true; }")
        await expect(finder.slot(taken)).to_be_visible()

        stop(server.process)
        # While no process serves the page, the place goes (as if booked through another server).
        await live_db.execute("UPDATE slots SET remaining = 0 WHERE slot_id = $1", taken)
        server = start_app(live_server.database_url, tmp_path / "second.log", port=port)

        await expect(finder.slot(taken)).to_have_count(0, timeout=RECONNECT_WAIT_MS)
        await expect(finder.slot(other)).to_be_visible()
        assert await finder.page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    finally:
        stop(server.process)
        await live_db.execute("UPDATE slots SET remaining = capacity WHERE slot_id = $1", taken)

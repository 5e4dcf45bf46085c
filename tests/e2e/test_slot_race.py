"""The race for the last place: many owners, each in a browser of their own, click the same slot at the
same moment. Exactly ``capacity`` of them get a hold and land on its confirm page; every other page says
the slot was just taken, and every page still showing the day stops offering the slot, live (no reload).
The database agrees afterwards, and so does ``vetbook check``."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from playwright.async_api import expect

from tests.conftest import run_cli, vetbook_command
from tests.e2e.booking_data import booking_scene, owner_with_pet, sign_in
from tests.e2e.conftest import LiveServer, NewContext
from tests.e2e.pages import ConfirmPage, SlotFinderPage

RACERS = 10
# Ten browsers and the server share a small, busy machine: generous waits (they only matter when slow).
SLOW_MACHINE_TIMEOUT_MS = 45_000


@pytest.mark.parametrize("capacity", [1, 3])
async def test_the_race_for_the_last_places(capacity: int, new_context: NewContext, live_server: LiveServer,
                                            live_db: asyncpg.Connection) -> None:
    # A clinic of this test's own; a second slot the same day shows that only the raced one goes away.
    scene = await booking_scene(live_db, hours=(10, 11), capacity=capacity)
    raced_slot, other_slot = scene.slots[0]["slot_id"], scene.slots[1]["slot_id"]
    # Each owner holds once (well within the per-owner hold limits).
    owners = [await owner_with_pet(live_db, pet_name=f"Racer {index}") for index in range(RACERS)]
    finders = []
    for owner in owners:  # one browser, a context (cookie jar) per owner
        context = await new_context()
        context.set_default_timeout(SLOW_MACHINE_TIMEOUT_MS)
        await sign_in(context, live_server, owner)
        finders.append(SlotFinderPage(await context.new_page()))

    for finder in finders:
        await finder.open(scene.clinic["clinic_id"], scene.service["service_id"], scene.day)
    for finder in finders:
        await finder.wait_until_live()
        await finder.page.evaluate("() => { window.__sameDocument = true; }")
    for finder in finders:
        await finder.hold_button(raced_slot).wait_for()

    # All at once: one protocol message per page, sent together; each finds its button when it clicks.
    await asyncio.gather(*(finder.click_hold_at_once(raced_slot) for finder in finders))
    outcomes = await asyncio.gather(*(finder.hold_outcome() for finder in finders))

    winners = [finder for finder, outcome in zip(finders, outcomes, strict=True) if outcome == "held"]
    losers = [finder for finder, outcome in zip(finders, outcomes, strict=True) if outcome == "taken"]
    assert (len(winners), len(losers)) == (capacity, RACERS - capacity), outcomes
    for finder in winners:
        await expect(ConfirmPage(finder.page).confirm_button).to_be_visible(timeout=SLOW_MACHINE_TIMEOUT_MS)
    for finder in losers:
        await expect(finder.taken_message).to_be_visible(timeout=SLOW_MACHINE_TIMEOUT_MS)
        # The list follows the change by itself: the full slot is no longer offered, the other one is.
        await expect(finder.slot(raced_slot)).to_have_count(0, timeout=SLOW_MACHINE_TIMEOUT_MS)
        await expect(finder.hold_button(other_slot)).to_be_visible(timeout=SLOW_MACHINE_TIMEOUT_MS)
        assert await finder.page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
        assert raced_slot not in [slot_id for slot_id in await finder.nearest_slot_ids()]

    held = await live_db.fetch(
        "SELECT user_id, reservation_id FROM reservations WHERE slot_id = $1 AND status = 'pending'", raced_slot)
    assert len(held) == capacity
    winner_reservations = {ConfirmPage(finder.page).reservation_id() for finder in winners}
    assert {str(row["reservation_id"]) for row in held} == winner_reservations
    assert len({row["user_id"] for row in held}) == capacity
    slot = await live_db.fetchrow("SELECT remaining, capacity FROM slots WHERE slot_id = $1", raced_slot)
    assert (slot["remaining"], slot["capacity"]) == (0, capacity)

    check = await asyncio.to_thread(run_cli, *vetbook_command("check"), database_url=live_server.database_url,
                                    check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("ok"), check.stdout

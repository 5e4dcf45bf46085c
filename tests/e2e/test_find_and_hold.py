"""The owner finds a slot, holds it and confirms it, in a real Chromium against the live server: on a
360 px phone, with HTMX (pushed URLs) and with JavaScript off; an expired hold; and a slot list that
follows a hold made elsewhere without a reload."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from tests.e2e.booking_data import booking_scene, owner_with_pet, sign_in
from tests.e2e.conftest import PHONE_VIEWPORT, LiveServer, NewContext, document_scroll_width, save_screenshot
from tests.e2e.pages import ConfirmPage, SlotFinderPage
from tests.e2e.pages.booking import finder_path

RUPIAH_150K = "Rp150.000"  # e2e browsers are Indonesian (id-ID) unless a test says otherwise


async def signed_in_page(new_context: NewContext, live_server: LiveServer, owner, **options) -> Page:
    context = await new_context(**options)
    await sign_in(context, live_server, owner)
    return await context.new_page()


async def test_owner_finds_holds_and_confirms_on_a_phone(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection) -> None:
    scene = await booking_scene(live_db)
    owner = await owner_with_pet(live_db)
    page = await signed_in_page(new_context, live_server, owner, viewport=PHONE_VIEWPORT, is_mobile=True,
                                has_touch=True)
    finder = SlotFinderPage(page)

    # From the header's link, choose the clinic, then the day in the week strip: HTMX swaps, URLs pushed.
    await page.goto("/")
    await page.get_by_test_id("nav-book").click()
    await page.wait_for_url(re.compile(r"/book$"))
    await finder.choose_clinic(scene.clinic["clinic_id"])
    await expect(finder.clinic_address).to_have_text(scene.clinic["address"])
    await expect(finder.clinic_zone).to_contain_text("WITA")
    await expect(finder.service_price).to_have_text(RUPIAH_150K)
    assert await finder.places_on(scene.day) == 2
    await finder.choose_day(scene.day)
    await finder.wait_until_live()
    times = [(await finder.hold_button(slot["slot_id"]).inner_text()) for slot in scene.slots]
    assert ["10.00 WITA" in times[0], "11.00 WITA" in times[1]] == [True, True], times
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, "owner-find-slot-360")

    # Back and forward work on pushed URLs.
    await page.go_back()
    await expect(page).not_to_have_url(re.compile(rf"date={scene.day.isoformat()}"))
    await page.go_forward()
    await expect(finder.hold_button(scene.slot["slot_id"])).to_be_visible()

    assert await finder.hold(scene.slot["slot_id"]) == "held"
    confirm = ConfirmPage(page)
    reservation_id = confirm.reservation_id()
    await expect(confirm.summary_clinic).to_have_text(scene.clinic["name"])
    await expect(confirm.summary_time).to_contain_text("10.00 WITA")
    await expect(confirm.summary_pet).to_have_text("Mochi")
    await expect(confirm.price_total).to_have_text(RUPIAH_150K)
    await expect(confirm.price_discount).to_have_text("Rp0")
    await expect(confirm.price_final).to_have_text(RUPIAH_150K)
    ticking = await confirm.wait_for_ticking_countdown()
    minutes, seconds = map(int, ticking.split(":"))
    assert 0 < minutes * 60 + seconds <= 600
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, "owner-confirm-360")

    booking_id = await confirm.confirm(notes="Takut suara keras")

    booking = await live_db.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking_id)
    assert booking is not None
    assert str(booking["reservation_id"]) == reservation_id
    assert (booking["status"], booking["payment_status"], booking["user_id"]) == (
        "pending_payment", "pending", owner.user_id)
    assert booking["notes"] == "Takut suara keras" and booking["final_amount"] == scene.service["price"]
    assert await live_db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", scene.slot["slot_id"]) == 0


async def test_without_javascript_the_plain_forms_hold_and_confirm(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection) -> None:
    scene = await booking_scene(live_db, hours=(9,))
    owner = await owner_with_pet(live_db)
    page = await signed_in_page(new_context, live_server, owner, java_script_enabled=False)
    finder = SlotFinderPage(page)

    await finder.open(scene.clinic["clinic_id"], scene.service["service_id"], scene.day)
    async with page.expect_navigation():
        await finder.hold_button(scene.slot["slot_id"]).click()
    confirm = ConfirmPage(page)
    reservation_id = confirm.reservation_id()
    # Without the script the page still says until when the time is held.
    await expect(confirm.hold_countdown).to_contain_text("WITA")
    await expect(confirm.countdown).not_to_have_text(re.compile(r"^\d+:\d\d$"))

    booking_id = await confirm.confirm()

    assert await live_db.fetchval("SELECT status FROM bookings WHERE booking_id = $1 AND reservation_id = $2",
                                  booking_id, reservation_id) == "pending_payment"


async def test_an_expired_hold_says_so_and_offers_to_try_again(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection) -> None:
    scene = await booking_scene(live_db, hours=(14,))
    owner = await owner_with_pet(live_db)
    page = await signed_in_page(new_context, live_server, owner)
    finder = SlotFinderPage(page)
    await finder.open(scene.clinic["clinic_id"], scene.service["service_id"], scene.day)
    assert await finder.hold(scene.slot["slot_id"]) == "held"
    confirm = ConfirmPage(page)

    # The hold's time runs out (as if ten minutes went by).
    await live_db.execute(
        "UPDATE reservations SET created_at = now() - interval '11 minutes', expires_at = now() - interval '1 second' "
        "WHERE reservation_id = $1", confirm.reservation_id())
    await page.reload()

    await expect(confirm.hold_expired).to_be_visible()
    await expect(confirm.confirm_button).to_have_count(0)
    await save_screenshot(page, "owner-hold-expired")
    await confirm.try_again()
    assert page.url.endswith(finder_path(scene.clinic["clinic_id"], scene.service["service_id"], scene.day,
                                         owner.pet_id))
    # The expiry job gives the place back; the live list offers the slot again.
    await expect(finder.hold_button(scene.slot["slot_id"])).to_be_visible(timeout=15_000)


async def test_a_hold_elsewhere_takes_the_slot_off_every_open_list_without_a_reload(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection) -> None:
    scene = await booking_scene(live_db, hours=(10, 11))
    holder = await owner_with_pet(live_db)
    holder_page = await signed_in_page(new_context, live_server, holder)
    watcher_page = await (await new_context()).new_page()  # a visitor, signed out
    holder_finder, watcher_finder = SlotFinderPage(holder_page), SlotFinderPage(watcher_page)
    for finder in (holder_finder, watcher_finder):
        await finder.open(scene.clinic["clinic_id"], scene.service["service_id"], scene.day)
        await finder.wait_until_live()
    # A full navigation would replace `window`; this mark survives only in-place updates.
    await watcher_page.evaluate("() => { window.__sameDocument = true; }")
    await expect(watcher_finder.slot(scene.slot["slot_id"])).to_be_visible()

    assert await holder_finder.hold(scene.slot["slot_id"]) == "held"

    await expect(watcher_finder.slot(scene.slot["slot_id"])).to_have_count(0)
    await expect(watcher_finder.slot(scene.slots[1]["slot_id"])).to_be_visible()
    assert await watcher_page.evaluate("() => window.__sameDocument === true")

    # Released: the place comes back, live as well.
    await ConfirmPage(holder_page).release()
    await expect(watcher_finder.slot(scene.slot["slot_id"])).to_be_visible()
    assert await watcher_page.evaluate("() => window.__sameDocument === true")

"""The owner's pages in Indonesian and Japanese in a real browser: chosen from the browser's language, the
words, times and money of the finder, the hold and the booking come in that language, and each page fits a
360 px phone. (The catalogs' completeness is tests/i18n; this is what a person actually sees.)"""

from __future__ import annotations

import re

import asyncpg
import pytest
from playwright.async_api import expect

from tests.e2e.booking_data import booking_scene, owner_with_pet, sign_in
from tests.e2e.conftest import PHONE_VIEWPORT, LiveServer, NewContext, document_scroll_width, save_screenshot
from tests.e2e.pages import ConfirmPage, SlotFinderPage

# Written out here, not taken from the catalogs: what a reader of each language sees.
LANGUAGES = {
    "id-ID": {"lang": "id", "price": "Rp150.000", "confirm": "Konfirmasi", "zone": "WITA",
              "english_left": ("Confirm booking", "Discount", "To pay", "Release")},
    "ja-JP": {"lang": "ja", "price": "IDR", "confirm": "予約", "zone": "WITA",
              "english_left": ("Confirm booking", "Discount", "To pay", "Release")},
}


@pytest.mark.parametrize("browser_locale", sorted(LANGUAGES))
async def test_finder_hold_and_booking_in_the_browsers_language(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection, browser_locale: str) -> None:
    expected = LANGUAGES[browser_locale]
    scene = await booking_scene(live_db)
    owner = await owner_with_pet(live_db)
    context = await new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True, locale=browser_locale)
    await sign_in(context, live_server, owner)
    page = await context.new_page()

    finder = SlotFinderPage(page)
    await finder.open(scene.clinic["clinic_id"], scene.service["service_id"], scene.day)
    assert await page.locator("html").get_attribute("lang") == expected["lang"]
    assert expected["zone"] in await page.get_by_test_id("slot-list").inner_text()
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, f"languages/finder-360-{expected['lang']}")

    assert await finder.hold(scene.slot["slot_id"]) == "held"
    confirm = ConfirmPage(page)
    await expect(confirm.price_final).to_contain_text(expected["price"])
    assert "150" in (await confirm.price_final.inner_text())
    button = (await confirm.confirm_button.inner_text()).strip()
    assert expected["confirm"] in button, button
    body = await page.locator("main").inner_text()
    for english in expected["english_left"]:
        assert not re.search(rf"\b{re.escape(english)}\b", body), (english, body)
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, f"languages/confirm-360-{expected['lang']}")

    booking_id = await confirm.confirm()
    assert await live_db.fetchval("SELECT status FROM bookings WHERE booking_id = $1", booking_id) == "pending_payment"
    await page.goto(live_server.url(f"/bookings/{booking_id}"))
    code = await live_db.fetchval("SELECT booking_code FROM bookings WHERE booking_id = $1", booking_id)
    await expect(page.get_by_test_id("booking-code")).to_have_text(f"{code[:4]}-{code[4:]}")
    assert await page.locator("html").get_attribute("lang") == expected["lang"]
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, f"languages/booking-360-{expected['lang']}")

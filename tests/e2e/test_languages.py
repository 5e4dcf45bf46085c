"""The home page in a real browser in each language: picked from the browser's language, switched by clicking
the switcher (and remembered), Japanese drawn with real glyphs, and a layout that fits a 360 px phone."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page

from tests.e2e.conftest import PHONE_VIEWPORT, LiveServer, NewContext, document_scroll_width, save_screenshot
from tests.e2e.pages import HomePage

# The home page's heading in each language, written out here rather than taken from the catalogs.
HEADINGS = {
    "id": "Buat janji kunjungan untuk hewan peliharaan Anda",
    "en": "Book a visit for your pet",
    "ja": "ペットの診察を予約",
}
# How the services table writes a duration in each language (CLDR's short unit).
MINUTES = {"id": re.compile(r"^\d+ mnt$"), "en": re.compile(r"^\d+ min$"), "ja": re.compile(r"^\d+ 分$")}

# Draws each character of `text` alone on a canvas in the heading's font and returns the pixels' fingerprints.
# A font that lacks a glyph draws the same empty box (.notdef) for every character: distinct
# fingerprints mean the characters were drawn from real glyphs.
GLYPH_FINGERPRINTS = """
(text) => {
  const font = getComputedStyle(document.querySelector('h1')).font;
  return Array.from(text).map((character) => {
    const canvas = document.createElement('canvas');
    canvas.width = 64; canvas.height = 64;
    const context = canvas.getContext('2d');
    context.font = font;
    context.fillText(character, 8, 48);
    return canvas.toDataURL();
  });
}
"""


async def phone_page(new_context: NewContext, locale: str) -> Page:
    context = await new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True, locale=locale)
    return await context.new_page()


async def shown_language(page: Page) -> str:
    html_lang = await page.locator("html").get_attribute("lang")
    heading = (await page.locator("h1").inner_text()).strip()
    assert heading == HEADINGS[html_lang], f"<html lang={html_lang}> but the heading reads {heading!r}"
    return html_lang


async def check_phone_layout_and_save(page: Page, name: str) -> None:
    scroll_width = await document_scroll_width(page)
    assert scroll_width <= PHONE_VIEWPORT["width"], f"{name}: the page scrolls sideways ({scroll_width} px)"
    screenshot = await save_screenshot(page, f"languages/{name}")
    assert screenshot.stat().st_size > 0


async def test_a_japanese_browser_gets_japanese_drawn_with_real_glyphs(
    new_context: NewContext, live_db: asyncpg.Connection
) -> None:
    page = await phone_page(new_context, "ja-JP")
    home = HomePage(page)
    await home.reset()
    assert await shown_language(page) == "ja"
    assert await page.get_by_test_id("language-current").inner_text() == "日本語"

    fingerprints = await page.evaluate(GLYPH_FINGERPRINTS, "ペット診察予約")
    assert len(set(fingerprints)) == len(fingerprints), "Japanese characters were drawn as empty boxes"

    # The services come in Japanese too (an HTMX fragment: it carries no <html lang> of its own).
    clinic = await live_db.fetchrow("SELECT clinic_id FROM clinics ORDER BY name LIMIT 1")
    card = home.card_of(clinic["clinic_id"])
    await card.show_services()
    rows = await card.services_table.read_rows()
    assert rows and all(MINUTES["ja"].match(row.duration) for row in rows), rows
    assert all(row.price.startswith("IDR") for row in rows), rows
    await check_phone_layout_and_save(page, "home-360px-ja")


async def test_switching_language_by_clicking_the_switcher_is_remembered(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = await phone_page(new_context, "id-ID")
    home = HomePage(page)
    await home.reset()
    assert await shown_language(page) == "id"
    await check_phone_layout_and_save(page, "home-360px-id")

    for target in ("ja", "en"):
        async with page.expect_navigation():
            await page.get_by_test_id(f"language-{target}").click()
        assert page.url == live_server.url(home.url)  # back on the page the switcher was clicked on
        assert await shown_language(page) == target
        await check_phone_layout_and_save(page, f"home-360px-{target}-switched")

    # The browser still asks for Indonesian; the choice made with the switcher holds on the next visit.
    await home.reset()
    assert await shown_language(page) == "en"
    cookies = {cookie["name"]: cookie["value"] for cookie in await page.context.cookies()}
    assert cookies.get("vb_lang") == "en"

"""The home page in a real browser: the clinics, their services loaded in place by HTMX (or a plain page
without JavaScript), htmx served by us, and a layout that fits a 360 px phone."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

import asyncpg
from playwright.async_api import Page

from tests.e2e.conftest import PHONE_VIEWPORT, LiveServer, RequestLog, document_scroll_width, save_screenshot
from tests.e2e.pages import ClinicServicesPage, HomePage, ServiceRow

# Indonesia's three time zones by the names people use; written out here rather than taken from the app.
ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
ZONE_NAME_PATTERN = re.compile(r"\bWI(?:B|TA|T)\b")


def rupiah(amount: Decimal) -> str:
    """How an Indonesian reads a whole-rupiah price: ``Rp150.000``."""
    assert amount == amount.to_integral_value(), f"the demo prices are whole rupiah, got {amount}"
    return "Rp" + f"{int(amount):,}".replace(",", ".")


async def clinics_in_database(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT clinic_id, name, timezone FROM clinics ORDER BY name")


async def expected_service_rows(db: asyncpg.Connection, clinic_id) -> list[ServiceRow]:
    rows = await db.fetch(
        "SELECT name, duration_minutes, price, currency FROM services WHERE clinic_id = $1 AND is_active",
        clinic_id,
    )
    assert rows, "every demo clinic offers services"
    assert {row["currency"] for row in rows} == {"IDR"}
    return sorted(
        # The browser is Indonesian (id-ID): minutes are "mnt", Indonesian's short form (tests/e2e/test_languages.py
        # covers the other languages).
        (ServiceRow(row["name"], f"{row['duration_minutes']} mnt", rupiah(row["price"])) for row in rows),
        key=lambda row: row.name,
    )


async def test_home_lists_every_clinic_with_its_local_time_zone(page: Page, live_db: asyncpg.Connection):
    clinics = await clinics_in_database(live_db)
    # Other tests add clinics of their own to the shared database (the desk's day picks a zone where it is
    # daytime now, e.g. Europe/London in the Indonesian night): the demo's three zones are among them.
    assert set(ZONE_NAMES) <= {clinic["timezone"] for clinic in clinics}, "the demo covers the three zones"

    home = HomePage(page)
    await home.reset()

    cards = await home.cards()
    assert sorted([await card.read_name() for card in cards]) == sorted(clinic["name"] for clinic in clinics)
    for clinic in clinics:
        card = home.card_of(clinic["clinic_id"])
        assert await card.read_name() == clinic["name"]
        shown_zone_names = set(ZONE_NAME_PATTERN.findall(await card.read_timezone()))
        expected = {ZONE_NAMES[clinic["timezone"]]} if clinic["timezone"] in ZONE_NAMES else set()
        assert shown_zone_names == expected, clinic["name"]


async def test_show_services_loads_the_table_in_place_with_htmx(
    page: Page, live_server: LiveServer, live_db: asyncpg.Connection
):
    clinic = (await clinics_in_database(live_db))[0]
    home = HomePage(page)
    await home.reset()
    home_url = page.url
    # A full navigation would replace `window`; this mark only survives an in-place update.
    await page.evaluate("() => { window.__stillTheSamePage = true; }")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    card = home.card_of(clinic["clinic_id"])
    services_url = live_server.url(f"/clinics/{clinic['clinic_id']}/services")
    async with page.expect_request(lambda request: request.url == services_url) as request_info:
        await card.show_services()
    htmx_request = await request_info.value

    assert htmx_request.headers.get("hx-request") == "true"
    assert (await htmx_request.response()).status == 200
    assert page.url == home_url
    assert navigations == []
    assert await page.evaluate("() => window.__stillTheSamePage === true")
    assert await card.services_table.read_rows() == await expected_service_rows(live_db, clinic["clinic_id"])
    # Only the clicked clinic's panel was filled.
    assert await home.page.get_by_test_id("service-table").count() == 1


async def test_show_services_without_javascript_opens_the_full_services_page(
    no_js_page: Page, live_server: LiveServer, live_db: asyncpg.Connection
):
    clinic = (await clinics_in_database(live_db))[-1]
    home = HomePage(no_js_page)
    await home.reset()
    card = home.card_of(clinic["clinic_id"])

    async with no_js_page.expect_navigation() as navigation:
        await card.show_services_button.click()
    response = await navigation.value

    services_page = ClinicServicesPage(no_js_page, clinic["clinic_id"])
    assert response is not None and response.status == 200
    assert "hx-request" not in response.request.headers
    assert no_js_page.url == live_server.url(services_page.url)
    assert await services_page.read_clinic_name() == clinic["name"]
    assert await services_page.services_table.read_rows() == await expected_service_rows(
        live_db, clinic["clinic_id"]
    )
    # The full page carries the site's layout, not just the table fragment.
    assert await no_js_page.get_by_test_id("brand").count() == 1


async def test_htmx_is_served_by_us_and_no_request_leaves_the_machine(
    page: Page, live_server: LiveServer, live_db: asyncpg.Connection, request_log: RequestLog
):
    home = HomePage(page)
    async with page.expect_response(lambda response: response.url.endswith("/htmx.min.js")) as htmx_response_info:
        await home.reset()
    htmx_response = await htmx_response_info.value

    script_url = await home.htmx_script_url()
    assert urlsplit(script_url)[:2] == urlsplit(live_server.base_url)[:2], script_url
    assert urlsplit(script_url).path.startswith("/static/")
    assert htmx_response.url == script_url and htmx_response.status == 200
    assert await page.evaluate("() => typeof window.htmx?.ajax") == "function"

    # Exercise the HTMX path too, then look at everything the browser asked for.
    for clinic in await clinics_in_database(live_db):
        await home.card_of(clinic["clinic_id"]).show_services()
    assert script_url in request_log.urls
    assert len(request_log.urls) >= 5  # the page, its CSS and script, and three fragments
    assert request_log.foreign() == []


async def test_home_with_services_shown_fits_a_360_px_phone(phone_page: Page, live_db: asyncpg.Connection):
    home = HomePage(phone_page)
    await home.reset()
    for clinic in await clinics_in_database(live_db):
        await home.card_of(clinic["clinic_id"]).show_services()
    assert await phone_page.get_by_test_id("service-table").count() == len(await clinics_in_database(live_db))

    screenshot = await save_screenshot(phone_page, "home-360px-services-shown")
    assert screenshot.stat().st_size > 0

    assert await phone_page.evaluate("() => window.innerWidth") == PHONE_VIEWPORT["width"] == 360
    scroll_width = await document_scroll_width(phone_page)
    assert scroll_width <= 360, f"the page scrolls sideways: {scroll_width} px wide"

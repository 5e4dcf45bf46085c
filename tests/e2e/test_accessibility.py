"""axe-core (vendored, 4.10.3) finds no serious or critical violation on the owner's pages.

The app's CSP forbids inline and injected scripts, so the checking browser context bypasses CSP: only
to run axe itself, never for the app's own scripts. Every page is checked as an owner meets it, in English,
on a desktop screen and on a phone (the 360 px layout has its own contrast and target sizes)."""

from __future__ import annotations

import re

import asyncpg
import pytest
from playwright.async_api import Page

from tests.db.factories import make_session, make_user
from tests.e2e.conftest import E2E_DIR, PHONE_VIEWPORT, LiveServer, NewContext
from tests.e2e.owner_scenes import finder_url, own_clinic, sign_up_with_pet

AXE_SCRIPT = E2E_DIR / "vendor" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
DESK_VIEWPORT = {"width": 1366, "height": 768}
SESSION_COOKIE = "vb_session"
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

_RUN_AXE = """
async () => {
  const results = await axe.run(document, {resultTypes: ['violations']});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
  }));
}
"""


async def serious_violations(page: Page) -> list[dict]:
    """axe's violations of impact serious or critical on the page as it is now."""
    await page.add_script_tag(path=str(AXE_SCRIPT))
    violations = await page.evaluate(_RUN_AXE)
    return [violation for violation in violations if violation["impact"] in BLOCKING_IMPACTS]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_owner_pages_have_no_serious_accessibility_violations(
        new_context: NewContext, live_db: asyncpg.Connection, viewport: str) -> None:
    clinic = await own_clinic(live_db, slot_days=(6, 7), hour=14)
    (slot_id, day), (_other_slot, other_day) = clinic.slots
    options = {"viewport": PHONE_VIEWPORT, "is_mobile": True, "has_touch": True} if viewport == "phone" else {}
    context = await new_context(bypass_csp=True, locale="en-US", **options)
    page = await context.new_page()
    found: dict[str, list[dict]] = {}

    async def check(name: str) -> None:
        await page.wait_for_load_state("load")
        found[name] = await serious_violations(page)

    for name, path in (("home", "/"), ("login", "/login"), ("signup", "/signup")):
        await page.goto(path)
        await check(name)

    email = await sign_up_with_pet(page, pet_name="Axe")
    await check("profile")
    owner_id = await live_db.fetchval("SELECT user_id FROM users WHERE email = $1", email)
    pet_id = await live_db.fetchval("SELECT pet_id FROM pets WHERE owner_id = $1", owner_id)

    await page.goto(finder_url(clinic, day, pet_id))
    await page.get_by_test_id("slot-list").wait_for()
    await check("finder")
    await page.locator(f'[data-testid="hold-slot"][data-slot-id="{slot_id}"]').click()
    await page.wait_for_url(re.compile(rf"/reservations/{UUID_PATTERN}$"))
    await check("confirm")
    await page.get_by_test_id("confirm-button").click()
    await page.wait_for_url(re.compile(rf"/bookings/{UUID_PATTERN}/pay$"))
    booking_id = re.search(rf"/bookings/({UUID_PATTERN})/pay", page.url).group(1)
    await check("pay")

    for name, path in (("booking", f"/bookings/{booking_id}"), ("cancel", f"/bookings/{booking_id}/cancel"),
                       ("reschedule", f"/bookings/{booking_id}/reschedule?day={other_day.isoformat()}"),
                       ("my bookings", "/bookings")):
        await page.goto(path)
        await check(name)

    assert len(found) == 11
    assert {name: violations for name, violations in found.items() if violations} == {}


async def _staff_session(db: asyncpg.Connection, role: str, clinic_id) -> str:
    """A receptionist of the demo data's first clinic, or a manager of every clinic (the database health
    page is theirs alone), with a web session (no login form)."""
    clinic = {"clinic_id": clinic_id} if role == "receptionist" else None
    user = await make_user(db, role=role, clinic=clinic, name=f"Axe {role}")
    return await make_session(db, user)


async def test_desk_and_manager_pages_have_no_serious_accessibility_violations(
        new_context: NewContext, live_server: LiveServer, live_db: asyncpg.Connection) -> None:
    """The receptionist's and the manager's pages too, at the desk's 1366x768, on the demo clinic (which
    has slots and, with `make run`'s history, bookings)."""
    clinic_id = await live_db.fetchval("SELECT clinic_id FROM clinics WHERE name = 'VetBook Jakarta Kemang'")
    found: dict[str, list[dict]] = {}
    pages = {
        "receptionist": (("desk", "/desk"), ("desk booking form", "/desk/book"), ("slots", "/desk/slots"),
                         ("generate slots", "/desk/slots/generate")),
        "manager": (("analytics", "/manage/analytics"), ("database health", "/manage/database"), ("staff", "/staff")),
    }
    for role, paths in pages.items():
        context = await new_context(bypass_csp=True, locale="en-US", viewport=DESK_VIEWPORT)
        await context.add_cookies([{"name": SESSION_COOKIE, "value": await _staff_session(live_db, role, clinic_id),
                                    "url": live_server.base_url, "httpOnly": True, "sameSite": "Lax"}])
        page = await context.new_page()
        for name, path in paths:
            response = await page.goto(path)
            assert response is not None and response.status == 200, (name, response and response.status)
            await page.wait_for_load_state("load")
            found[name] = await serious_violations(page)
    assert len(found) == 7
    assert {name: violations for name, violations in found.items() if violations} == {}

"""A receptionist generates a week of slots from a template, runs it again (nothing new), and blocks a slot:
in a real Chromium at 1366 x 768 against the live server, checked against the database.

The test makes its own clinic, service, staff member and receptionist (unique names), so the demo clinics
that other tests use are untouched.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from tests.db.factories import make_clinic, make_service, make_staff, make_user
from tests.e2e.conftest import NewContext, document_scroll_width, save_screenshot
from tests.e2e.pages import GenerateSlotsPage, LoginPage, SlotListPage
from web.accounts.passwords import hash_password

DESK_VIEWPORT = {"width": 1366, "height": 768}
PASSWORD = "slots-desk-2026"
ZONE = "Asia/Makassar"


async def make_clinic_with_receptionist(db: asyncpg.Connection) -> dict:
    tag = uuid.uuid4().hex[:8]
    clinic = await make_clinic(db, name=f"Slots E2E {tag}", address="Jl. Slot 1", timezone=ZONE)
    service = await make_service(db, clinic, name=f"Check-up {tag}", price=120000)
    staff = await make_staff(db, clinic, name=f"drh. Slot {tag}")
    email = f"slots-{tag}@example.test"
    await make_user(db, role="receptionist", clinic=clinic, email=email, name="Slot Receptionist",
                    password_hash=hash_password(PASSWORD))
    return {"clinic_id": clinic["clinic_id"], "service_id": service["service_id"], "staff_id": staff["staff_id"],
            "email": email}


async def test_receptionist_generates_a_week_runs_it_again_and_blocks_a_slot(
        new_context: NewContext, live_db: asyncpg.Connection) -> None:
    world = await make_clinic_with_receptionist(live_db)
    context = await new_context(viewport=DESK_VIEWPORT, locale="en-US", timezone_id=ZONE)
    page = await context.new_page()
    clinic_id = world["clinic_id"]
    await LoginPage(page).log_in(world["email"], PASSWORD, f"/desk/slots?clinic={clinic_id}")

    slot_list = SlotListPage(page)
    await slot_list.open(clinic_id)
    await slot_list.generate_link.click()
    generator = GenerateSlotsPage(page)
    await generator.form.wait_for()
    first_day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    last_day = first_day + timedelta(days=6)
    template = {"weekdays": set(range(7)), "opening": "09:00", "closing": "11:00",
                "service_id": world["service_id"], "staff_id": world["staff_id"],
                "first_day": first_day, "last_day": last_day}
    await generator.fill(**template)
    await generator.submit()

    # 09:00-11:00 in the service's 30 minutes: 4 a day for 7 days, all shown.
    await slot_list.notice.wait_for()
    assert "28 new slots created; 0 already existed." in await slot_list.notice.inner_text()
    assert await slot_list.rows.count() == 28
    assert await document_scroll_width(page) <= DESK_VIEWPORT["width"]
    await save_screenshot(page, "desk/slots-generated")
    rows = await live_db.fetch("SELECT slot_id, date, start_time, status, staff_id FROM slots WHERE clinic_id = $1 "
                               "ORDER BY start_time", clinic_id)
    assert len(rows) == 28
    first = rows[0]
    local = first["start_time"].astimezone(ZoneInfo(ZONE))
    assert (first["date"], local.hour, local.minute) == (first_day, 9, 0)
    assert {row["staff_id"] for row in rows} == {world["staff_id"]}
    shown_time = await slot_list.row_of(first["slot_id"]).time.inner_text()
    assert "9:00 AM WITA" in shown_time.replace("\u202f", " ")  # Babel puts a narrow no-break space before AM

    await generator.open(clinic_id)
    await generator.fill(**template)
    await generator.submit()
    await slot_list.notice.wait_for()
    assert "0 new slots created; 28 already existed." in await slot_list.notice.inner_text()
    assert await live_db.fetchval("SELECT count(*) FROM slots WHERE clinic_id = $1", clinic_id) == 28

    await slot_list.block([first["slot_id"]], reason="maintenance")
    await slot_list.notice.wait_for()
    assert "1 slot blocked" in await slot_list.notice.inner_text()
    blocked_row = slot_list.row_of(first["slot_id"])
    assert await blocked_row.status_value() == "maintenance"
    assert "Blocked: maintenance" in await blocked_row.status.inner_text()
    statuses = await live_db.fetch("SELECT status, count(*) AS n FROM slots WHERE clinic_id = $1 GROUP BY status",
                                   clinic_id)
    assert {row["status"]: row["n"] for row in statuses} == {"maintenance": 1, "available": 27}
    await save_screenshot(page, "desk/slots-blocked")

    # The same staff member, another service, overlapping hours: refused with the clashing times listed.
    grooming = await live_db.fetchval("INSERT INTO services (clinic_id, name, duration_minutes, price) "
                                      "VALUES ($1, $2, 60, 90000) RETURNING service_id",
                                      clinic_id, f"Grooming {uuid.uuid4().hex[:6]}")
    await generator.open(clinic_id)
    await generator.fill(**{**template, "service_id": grooming, "opening": "10:00", "closing": "12:00",
                            "last_day": first_day})
    await generator.submit()
    await generator.error.wait_for()
    error_text = await generator.error.inner_text()
    assert "already has slots at overlapping times" in error_text
    assert f"{first_day.isoformat()} 10:00–10:30 WITA" in error_text
    assert await live_db.fetchval("SELECT count(*) FROM slots WHERE service_id = $1", grooming) == 0
    await save_screenshot(page, "desk/slots-generate-overlap")

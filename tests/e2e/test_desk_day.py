"""A receptionist's day at the desk in Chromium at 1366x768: the grid, check-in by a typed code, complete,
payment at the desk, a no-show, a walk-in for a new owner and a phone booking for a known one; and a second
page of the same day that updates live when a booking is made elsewhere. Every outcome is checked in the
database.

The test builds its own clinic (unique name) with its own receptionist, owners and slots today, in a time
zone where it is daytime now, so that it never touches the demo data other tests read. Owners book through
the app's API (the engine in the server process), as the mobile app would.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from playwright.async_api import ViewportSize

from tests.db.factories import (
    make_clinic,
    make_pet,
    make_service,
    make_session,
    make_slot,
    make_staff,
    make_user,
)
from tests.e2e.conftest import LiveServer, NewContext, document_scroll_width, save_screenshot
from tests.e2e.pages import DeskBookForm, DeskBookingPage, DeskDayPage, LoginPage
from web.accounts.passwords import hash_password
from web.booking.codes import display_booking_code

DESK_VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
PASSWORD = "desk-e2e-password-1"


def daytime_zone() -> str:
    """A zone where it is now between 01:00 and 20:59: slots a few hours ahead, and one moved a few
    minutes into the past, all stay on today's date."""
    for zone in ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Europe/London", "America/New_York",
                 "Pacific/Honolulu"):
        if 1 <= datetime.now(ZoneInfo(zone)).hour <= 20:
            return zone
    raise AssertionError("no zone in daytime")


@dataclass
class Owner:
    user_id: uuid.UUID
    name: str
    phone: str
    pet_id: uuid.UUID
    pet_name: str
    token: str


@dataclass
class Scene:
    clinic_id: uuid.UUID
    zone: str
    today: date
    receptionist_email: str
    slots: dict[str, dict]
    owners: list[Owner]


async def insert_slot(db: asyncpg.Connection, clinic_id, service_id, staff_id, start: datetime, capacity: int = 1) -> dict:
    return await make_slot(db, {"clinic_id": clinic_id, "timezone": str(start.tzinfo)}, {"service_id": service_id},
                           {"staff_id": staff_id} if staff_id else None, start=start, capacity=capacity,
                           remaining=capacity)


async def make_owner(db: asyncpg.Connection, name: str, pet_name: str) -> Owner:
    phone = f"+62 8{secrets.randbelow(10**10):010d}"
    user = await make_user(db, role="owner", name=name, phone=phone,
                           email=f"desk-e2e-{uuid.uuid4().hex[:10]}@example.test")
    pet = await make_pet(db, user, name=pet_name)
    token = await make_session(db, user, kind="api", lasts=timedelta(hours=2))
    return Owner(user["user_id"], name, phone, pet["pet_id"], pet_name, token)


async def build_scene(db: asyncpg.Connection) -> Scene:
    zone = daytime_zone()
    now = datetime.now(ZoneInfo(zone)).replace(second=0, microsecond=0)
    clinic = await make_clinic(db, name=f"Desk E2E {uuid.uuid4().hex[:6]}", address="Jl. Desk 1", timezone=zone)
    clinic_id = clinic["clinic_id"]
    service_id = (await make_service(db, clinic, name="Vaccination", price=150000))["service_id"]
    vet_a = (await make_staff(db, clinic, name="drh. Ayu"))["staff_id"]
    vet_b = (await make_staff(db, clinic, name="drh. Budi"))["staff_id"]
    email = f"desk-reception-{uuid.uuid4().hex[:8]}@example.test"
    await make_user(db, role="receptionist", clinic=clinic, email=email, name="Rina Reception",
                    password_hash=hash_password(PASSWORD))
    # On the half hour, 90 to 120 minutes from now: beyond the clinic's 60-minute notice for online holds.
    first = (now + timedelta(hours=2)).replace(minute=0 if now.minute < 30 else 30)
    slots = {
        "ayu": await insert_slot(db, clinic_id, service_id, vet_a, first),
        "budi": await insert_slot(db, clinic_id, service_id, vet_b, first),
        "ayu_later": await insert_slot(db, clinic_id, service_id, vet_a, first + timedelta(minutes=30)),
        "open": await insert_slot(db, clinic_id, service_id, None, first + timedelta(hours=1), capacity=3),
    }
    owners = [await make_owner(db, owner, pet) for owner, pet in
              (("Sari Wijaya", "Milo"), ("Budi Santoso", "Luna"), ("Dewi Lestari", "Kiko"))]
    return Scene(clinic_id, zone, now.date(), email, slots, owners)


async def book_through_the_api(server: LiveServer, owner: Owner, slot: dict) -> dict:
    """Hold and confirm as the owner's app does; the booking waits for payment."""
    headers = {"Authorization": f"Bearer {owner.token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, trust_env=False) as api:
        held = await api.post("/api/v1/reservations", json={"slot_id": str(slot["slot_id"]), "pet_id": str(owner.pet_id)})
        assert held.status_code == 201, held.text
        hold = held.json()
        confirmed = await api.post(f"/api/v1/reservations/{hold['reservation_id']}/confirm",
                                   json={"lock_token": hold["lock_token"]})
        assert confirmed.status_code == 201, confirmed.text
        return confirmed.json()


async def booking(db: asyncpg.Connection, booking_id) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", uuid.UUID(str(booking_id)))


async def test_a_receptionists_day(live_server: LiveServer, live_db: asyncpg.Connection, new_context: NewContext) -> None:
    scene = await build_scene(live_db)
    milo, luna, kiko = scene.owners
    first = await book_through_the_api(live_server, milo, scene.slots["ayu"])
    second = await book_through_the_api(live_server, luna, scene.slots["budi"])
    code = (await booking(live_db, first["booking_id"]))["booking_code"]

    context = await new_context(viewport=DESK_VIEWPORT, locale="en-US", timezone_id=scene.zone)
    page = await context.new_page()
    await LoginPage(page).log_in(scene.receptionist_email, PASSWORD)
    day = DeskDayPage(page)
    await day.nav_link.click()
    await day.root.wait_for()

    # The grid: both bookings in their vets' columns, with pet, owner, status and payment.
    assert await day.column_names() == ["drh. Ayu", "drh. Budi", "Unassigned"]
    assert await day.shown_booking_ids() == {first["booking_id"], second["booking_id"]}
    card = day.booking(first["booking_id"])
    assert await card.pet() == "Milo (Cat)"
    assert milo.name in await card.owner() and milo.phone in await card.owner()
    assert (await card.status(), await card.payment_status()) == ("pending_payment", "pending")
    assert await document_scroll_width(page) <= DESK_VIEWPORT["width"]
    await save_screenshot(page, "readme-desk-day-view", full_page=False)

    # Check-in by code: the box has the focus; typed lowercase with a dash, then Enter.
    assert await page.evaluate("() => document.activeElement?.dataset.testid") == "checkin-code"
    await day.scan(display_booking_code(code).lower())
    desk_booking = DeskBookingPage(page)
    assert await desk_booking.booking_id() == first["booking_id"]
    # Not paid yet: the desk takes the money, then checks in, then completes.
    await desk_booking.take_payment()
    await save_screenshot(page, "desk/booking-page", full_page=False)
    row = await booking(live_db, first["booking_id"])
    assert (row["status"], row["payment_status"]) == ("confirmed", "paid")
    payment = await live_db.fetchrow("SELECT payment_provider, status, amount FROM payment_records WHERE payment_id = $1",
                                     row["payment_id"])
    assert (payment["payment_provider"], payment["status"], payment["amount"]) == ("clinic", "completed", Decimal("150000"))
    await desk_booking.check_in()
    assert (await booking(live_db, first["booking_id"]))["status"] == "in_progress"
    await desk_booking.complete()
    row = await booking(live_db, first["booking_id"])
    assert row["status"] == "completed" and row["completed_at"] is not None

    # The other booking: payment at the desk, then a no-show once its time has passed.
    await desk_booking.back_to_day.click()
    await day.booking_link(second["booking_id"]).click()
    assert await desk_booking.booking_id() == second["booking_id"]
    await desk_booking.take_payment()
    assert (await booking(live_db, second["booking_id"]))["payment_status"] == "paid"
    started = datetime.now(ZoneInfo(scene.zone)) - timedelta(minutes=5)
    await live_db.execute("UPDATE slots SET start_time = $3, end_time = $4 WHERE slot_id = $1 AND date = $2",
                          scene.slots["budi"]["slot_id"], scene.slots["budi"]["date"], started, started + timedelta(minutes=30))
    await page.reload()
    await desk_booking.mark_no_show()
    assert (await booking(live_db, second["booking_id"]))["status"] == "no_show"

    # A walk-in: a new owner and pet, on the spot.
    await desk_booking.back_to_day.click()
    await day.new_booking_link.click()
    form = DeskBookForm(page)
    await form.root.wait_for()
    walk_in_phone = f"+62 813 {secrets.randbelow(10**8):08d}"
    await form.fill_new_owner("Wati Walk-in", walk_in_phone, "Kopi", "dog")
    await form.choose_slot(scene.slots["open"]["slot_id"])
    await form.choose_source("walk_in")
    await save_screenshot(page, "desk/walk-in-form", full_page=False)
    await form.submit()
    walk_in_id = await desk_booking.booking_id()
    walk_in = await live_db.fetchrow(
        "SELECT b.booking_source, b.status, b.slot_id, u.name, u.phone, p.name AS pet, p.species FROM bookings b "
        "JOIN users u ON u.user_id = b.user_id JOIN pets p ON p.pet_id = b.pet_id WHERE b.booking_id = $1",
        uuid.UUID(walk_in_id))
    assert dict(walk_in) == {"booking_source": "walk_in", "status": "pending_payment",
                             "slot_id": scene.slots["open"]["slot_id"], "name": "Wati Walk-in",
                             "phone": walk_in_phone, "pet": "Kopi", "species": "dog"}

    # A phone booking for an owner the clinic knows, found by phone number.
    await desk_booking.back_to_day.click()
    await day.new_booking_link.click()
    await form.search_owner(kiko.phone)
    await form.choose_owner(kiko.user_id)
    await form.choose_pet(kiko.pet_id)
    await form.choose_slot(scene.slots["ayu_later"]["slot_id"])
    await form.choose_source("phone")
    await form.submit()
    phone_id = await desk_booking.booking_id()
    phoned = await booking(live_db, phone_id)
    assert (phoned["booking_source"], phoned["user_id"], phoned["pet_id"], phoned["slot_id"]) == \
        ("phone", kiko.user_id, kiko.pet_id, scene.slots["ayu_later"]["slot_id"])

    # The day view shows all of it.
    await desk_booking.back_to_day.click()
    assert await day.shown_booking_ids() == {first["booking_id"], second["booking_id"], walk_in_id, phone_id}
    assert await day.booking(first["booking_id"]).status() == "completed"
    assert await day.booking(second["booking_id"]).status() == "no_show"


async def test_the_day_view_updates_live(live_server: LiveServer, live_db: asyncpg.Connection, new_context: NewContext) -> None:
    scene = await build_scene(live_db)
    context = await new_context(viewport=DESK_VIEWPORT, locale="en-US", timezone_id=scene.zone)
    page = await context.new_page()
    await LoginPage(page).log_in(scene.receptionist_email, PASSWORD)
    watcher = await context.new_page()
    day = DeskDayPage(watcher)
    await day.open()
    assert await day.shown_booking_ids() == set()
    # Wait until the stream is open (its first events make the grid refetch), then book elsewhere.
    await watcher.wait_for_function("() => document.querySelector('[sse-connect]')?.['htmx-internal-data']?.sseEventSource?.readyState === 1")
    made = await book_through_the_api(live_server, scene.owners[0], scene.slots["open"])
    await day.booking_link(made["booking_id"]).wait_for()
    assert await day.booking(made["booking_id"]).status() == "pending_payment"
    assert await day.shown_booking_ids() == {made["booking_id"]}

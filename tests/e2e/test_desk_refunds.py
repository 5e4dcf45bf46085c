"""A refund the desk pays back by hand, in Chromium: an owner's booking is paid in cash at the desk, the clinic
cancels it (100 % back; the gateway cannot return cash, so the refund waits in state ``manual``), the
receptionist finds it on the desk's refunds page with the owner's contact details, pays it back and marks it
paid with the transfer's reference; the owner's booking page then says the clinic paid it back. The refund is
checked in the database.

The test builds its own clinic (unique name) with its own receptionist, owner and a slot two days ahead at
10:00 clinic time (whatever the hour now: beyond the booking notice, on a day of its own), so that it never
touches the demo data other tests read. The owner books and the clinic cancels through the app's API (the
engine in the server process), as the mobile app would; the desk's part is done in the browser.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from playwright.async_api import ViewportSize, expect

from tests.db.factories import (
    make_clinic,
    make_pet,
    make_service,
    make_session,
    make_slot,
    make_staff,
    make_user,
)
from tests.e2e.booking_data import SESSION_COOKIE
from tests.e2e.conftest import LiveServer, NewContext, save_screenshot
from tests.e2e.pages import BookingPage, DeskBookingPage, DeskDayPage, DeskRefundsPage, LoginPage
from web.accounts.passwords import hash_password

DESK_VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
PASSWORD = "desk-refund-e2e-password-1"
ZONE = "Asia/Jakarta"
PRICE = Decimal("150000")


@dataclass
class Scene:
    clinic_id: uuid.UUID
    slot: dict
    receptionist_id: uuid.UUID
    receptionist_email: str
    receptionist_token: str
    owner_id: uuid.UUID
    owner_email: str
    owner_name: str
    owner_phone: str
    owner_pet_id: uuid.UUID
    owner_api_token: str
    owner_web_token: str


async def build_scene(db: asyncpg.Connection) -> Scene:
    """A clinic of its own with one single-place slot two days ahead at 10:00 clinic time, a receptionist who
    logs in with a password (and has an API token), and an owner with a pet, an API token and a web session."""
    tag = uuid.uuid4().hex[:8]
    clinic = await make_clinic(db, name=f"Desk Refunds E2E {tag}", address=f"Jl. Refund {tag[:3]}", timezone=ZONE)
    service = await make_service(db, clinic, name="Vaccination", price=PRICE)
    vet = await make_staff(db, clinic, name="drh. Ayu")
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=2)
    await db.execute("SELECT vetbook_create_month_partitions($1)", day)
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=ZoneInfo(ZONE))
    slot = await make_slot(db, clinic, service, vet, start=start, capacity=1, remaining=1)

    receptionist_email = f"refund-reception-{tag}@example.test"
    receptionist = await make_user(db, role="receptionist", clinic=clinic, email=receptionist_email,
                                   name="Rina Reception", password_hash=hash_password(PASSWORD))
    receptionist_token = await make_session(db, receptionist, kind="api", lasts=timedelta(hours=2))

    owner_name, owner_email = "Sari Wijaya", f"refund-owner-{tag}@example.test"
    owner_phone = f"+62 8{secrets.randbelow(10**10):010d}"
    owner = await make_user(db, role="owner", name=owner_name, email=owner_email, phone=owner_phone)
    pet = await make_pet(db, owner, name="Milo")
    return Scene(
        clinic_id=clinic["clinic_id"], slot=slot,
        receptionist_id=receptionist["user_id"], receptionist_email=receptionist_email,
        receptionist_token=receptionist_token,
        owner_id=owner["user_id"], owner_email=owner_email, owner_name=owner_name, owner_phone=owner_phone,
        owner_pet_id=pet["pet_id"],
        owner_api_token=await make_session(db, owner, kind="api", lasts=timedelta(hours=2)),
        owner_web_token=await make_session(db, owner, kind="web", lasts=timedelta(hours=2)),
    )


def api(server: LiveServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"},
                             trust_env=False)


async def book_through_the_api(server: LiveServer, scene: Scene) -> dict:
    """Hold and confirm as the owner's app does; the booking waits for payment."""
    async with api(server, scene.owner_api_token) as owner_app:
        held = await owner_app.post("/api/v1/reservations",
                                    json={"slot_id": str(scene.slot["slot_id"]), "pet_id": str(scene.owner_pet_id)})
        assert held.status_code == 201, held.text
        hold = held.json()
        confirmed = await owner_app.post(f"/api/v1/reservations/{hold['reservation_id']}/confirm",
                                         json={"lock_token": hold["lock_token"]})
        assert confirmed.status_code == 201, confirmed.text
        return confirmed.json()


async def cancel_as_the_clinic(server: LiveServer, scene: Scene, booking_id: str) -> dict:
    """The receptionist cancels the booking through the API (reason ``clinic_request``, its current version)."""
    async with api(server, scene.receptionist_token) as desk_app:
        current = await desk_app.get(f"/api/v1/bookings/{booking_id}")
        assert current.status_code == 200, current.text
        cancelled = await desk_app.post(f"/api/v1/bookings/{booking_id}/cancel",
                                        json={"reason": "clinic_request", "version": current.json()["version"]})
        assert cancelled.status_code == 200, cancelled.text
        return cancelled.json()


async def refunds_of(db: asyncpg.Connection, clinic_id: uuid.UUID, booking_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT refund_id, state, provider, reason, amount, paid_by_hand_by, paid_by_hand_at, succeeded_at, "
        "metadata->>'paid_by_hand_note' AS note FROM refunds WHERE clinic_id = $1 AND booking_id = $2",
        clinic_id, uuid.UUID(booking_id))


async def test_the_desk_pays_back_a_cash_refund_by_hand(
    live_server: LiveServer, live_db: asyncpg.Connection, new_context: NewContext
) -> None:
    scene = await build_scene(live_db)
    made = await book_through_the_api(live_server, scene)
    booking_id = made["booking_id"]
    assert (made["status"], made["payment_status"]) == ("pending_payment", "pending")

    # The receptionist takes the payment at the desk, in the browser.
    desk = await new_context(viewport=DESK_VIEWPORT, locale="en-US", timezone_id=ZONE)
    page = await desk.new_page()
    await LoginPage(page).log_in(scene.receptionist_email, PASSWORD)
    desk_booking = DeskBookingPage(page)
    await desk_booking.visit(f"/desk/bookings/{booking_id}", ready=desk_booking.root)
    await desk_booking.take_payment()
    row = await live_db.fetchrow("SELECT status, payment_status, payment_id FROM bookings WHERE booking_id = $1",
                                 uuid.UUID(booking_id))
    assert (row["status"], row["payment_status"]) == ("confirmed", "paid")
    payment = await live_db.fetchrow("SELECT payment_provider, status FROM payment_records WHERE payment_id = $1",
                                     row["payment_id"])
    assert (payment["payment_provider"], payment["status"]) == ("clinic", "completed")

    # The clinic cancels: all of it goes back, and the gateway cannot return cash, so a person must.
    cancelled = await cancel_as_the_clinic(live_server, scene, booking_id)
    assert (cancelled["status"], cancelled["payment_status"]) == ("cancelled", "refunded")
    [refund] = await refunds_of(live_db, scene.clinic_id, booking_id)
    assert (refund["state"], refund["provider"], refund["reason"], refund["amount"]) == \
        ("manual", "clinic", "clinic_cancellation", PRICE)
    refund_id = str(refund["refund_id"])

    # At the desk: the day page links to the refunds to pay; the row names the owner and how to reach them.
    day = DeskDayPage(page)
    await day.open(scene.clinic_id)
    await day.by_test_id("desk-refunds-link").click()
    refunds = DeskRefundsPage(page)
    await expect(refunds.root).to_be_visible()
    await expect(refunds.rows).to_have_count(1)
    row_on_page = refunds.refund(refund_id)
    await expect(row_on_page.root).to_have_attribute("data-state", "manual")
    await expect(row_on_page.root).to_contain_text(scene.owner_name)
    await expect(row_on_page.root).to_contain_text(scene.owner_email)
    await expect(row_on_page.root).to_contain_text(scene.owner_phone)
    await expect(row_on_page.amount).to_contain_text("150,000")
    await save_screenshot(page, "desk/refunds-to-pay", full_page=False)

    # Paid back by bank transfer; marked paid with the transfer's reference.
    note = f"BCA transfer {secrets.token_hex(4).upper()}"
    await row_on_page.mark_paid(note)
    await expect(refunds.done).to_be_visible()
    await expect(refunds.done).to_have_attribute("data-refund-id", refund_id)
    await expect(refunds.empty).to_be_visible()
    await expect(refunds.rows).to_have_count(0)

    [refund] = await refunds_of(live_db, scene.clinic_id, booking_id)
    assert refund["state"] == "succeeded"
    assert refund["paid_by_hand_by"] == scene.receptionist_id
    assert refund["paid_by_hand_at"] is not None and refund["succeeded_at"] is not None
    assert refund["note"] == note

    # The owner's booking page says the clinic paid it back.
    owner = await new_context(locale="en-US", timezone_id=ZONE)
    await owner.add_cookies([{"name": SESSION_COOKIE, "value": scene.owner_web_token, "url": live_server.base_url,
                              "httpOnly": True, "sameSite": "Lax"}])
    owner_page = await owner.new_page()
    booking_page = BookingPage(owner_page)
    await booking_page.open(booking_id)
    refund_state = booking_page.by_test_id("refund-state")
    await expect(refund_state).to_have_count(1)
    await expect(refund_state).to_have_attribute("data-state", "succeeded")
    await expect(refund_state).to_contain_text("paid back by the clinic on")

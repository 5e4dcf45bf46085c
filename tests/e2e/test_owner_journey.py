"""The whole owner journey in Chromium against the live server, on a phone: sign up, add a pet, find a
slot, hold it, confirm, pay in the sandbox gateway, see the QR code, move the visit, cancel it with the
refund shown first. The database is checked at every step; 360 px screenshots of the owner's pages are
saved (and a desktop one of the booking with its QR code for the README)."""

from __future__ import annotations

import re
from decimal import Decimal

import asyncpg
from playwright.async_api import expect

from tests.e2e.conftest import (
    DESKTOP_VIEWPORT,
    PHONE_VIEWPORT,
    NewContext,
    document_scroll_width,
    save_screenshot,
)
from tests.e2e.owner_scenes import PRICE, finder_url, own_clinic, sign_up_with_pet
from tests.e2e.pages import (
    BookingPage,
    CancelPage,
    MyBookingsPage,
    PayPage,
    ReschedulePage,
    SandboxGatewayPage,
)
from web.booking.codes import display_booking_code

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def booking_state(db: asyncpg.Connection, booking_id: str) -> dict:
    row = await db.fetchrow(
        "SELECT status, payment_status, slot_id, booking_code, final_amount, refunded_amount, version, "
        "payment_due_at FROM bookings WHERE booking_id = $1", booking_id)
    assert row is not None, booking_id
    return dict(row)


async def test_owner_books_pays_sees_the_qr_moves_and_cancels(new_context: NewContext,
                                                              live_db: asyncpg.Connection) -> None:
    clinic = await own_clinic(live_db, slot_days=(3, 4))
    (first_slot, first_day), (second_slot, second_day) = clinic.slots
    context = await new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True, locale="en-US",
                                timezone_id="Asia/Makassar")
    page = await context.new_page()

    # Sign up and add a pet: the account and the pet are in the database.
    email = await sign_up_with_pet(page, pet_name="Mochi")
    owner = await live_db.fetchrow("SELECT user_id, role FROM users WHERE email = $1", email)
    assert owner["role"] == "owner"
    pet_id = await live_db.fetchval("SELECT pet_id FROM pets WHERE owner_id = $1 AND name = 'Mochi'", owner["user_id"])
    assert pet_id is not None

    # Find the slot and hold it: a pending hold for this owner, the slot's place taken.
    await page.goto(finder_url(clinic, first_day, pet_id))
    await page.locator(f'[data-testid="hold-slot"][data-slot-id="{first_slot}"]').click()
    await page.wait_for_url(re.compile(rf"/reservations/{UUID_PATTERN}$"))
    hold = await live_db.fetchrow("SELECT status, slot_id FROM reservations WHERE user_id = $1", owner["user_id"])
    assert (hold["status"], hold["slot_id"]) == ("pending", first_slot)
    assert await live_db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", first_slot) == 0

    # Confirm: the booking waits for payment, and the pay page says how much and until when.
    await page.get_by_test_id("confirm-button").click()
    await page.wait_for_url(re.compile(rf"/bookings/{UUID_PATTERN}/pay$"))
    booking_id = re.search(rf"/bookings/({UUID_PATTERN})/pay", page.url).group(1)
    state = await booking_state(live_db, booking_id)
    assert (state["status"], state["payment_status"], state["final_amount"]) == ("pending_payment", "pending", PRICE)
    pay = PayPage(page)
    assert await pay.read_state() == "due"
    await expect(pay.amount).to_have_text("IDR180,000")
    await expect(pay.deadline).to_contain_text("WITA")
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, "owner/pay-360")

    # Pay in the sandbox gateway: the payment completes, the booking is confirmed and paid.
    await pay.sandbox_button.click()
    await page.wait_for_url(re.compile(rf"/sandbox/pay/{UUID_PATTERN}$"))
    gateway = SandboxGatewayPage(page)
    await gateway.pay_button.click()
    await expect(gateway.result).to_contain_text("Paid")
    state = await booking_state(live_db, booking_id)
    assert (state["status"], state["payment_status"]) == ("confirmed", "paid")
    assert await live_db.fetchval(
        "SELECT count(*) FROM payment_records WHERE booking_id = $1 AND status = 'completed'", booking_id) == 1
    await gateway.back_to_booking.click()
    assert await pay.read_state() == "paid"

    # The booking page: the QR code drawn on the server, the code as the database has it.
    await pay.booking_link.click()
    booking_page = BookingPage(page)
    await expect(booking_page.qr_svg).to_be_visible()
    assert await booking_page.qr.get_attribute("data-code") == state["booking_code"]
    assert await booking_page.read_code() == display_booking_code(state["booking_code"])
    await expect(booking_page.address).to_have_text(clinic.address)
    await expect(booking_page.time).to_contain_text("WITA")
    assert await booking_page.read_status() == "confirmed"
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, "owner/booking-qr-360")
    await page.set_viewport_size(DESKTOP_VIEWPORT)
    await save_screenshot(page, "readme-booking-qr", full_page=False)
    await page.set_viewport_size(PHONE_VIEWPORT)

    # Move it to the next day's slot: the old booking is rescheduled, the new one carries the payment.
    await booking_page.reschedule_link.click()
    reschedule = ReschedulePage(page)
    await reschedule.choose_day(second_day.isoformat())
    await reschedule.slot(second_slot).click()
    await page.wait_for_url(re.compile(rf"/bookings/{UUID_PATTERN}$"))
    new_booking_id = re.search(rf"/bookings/({UUID_PATTERN})$", page.url).group(1)
    assert new_booking_id != booking_id
    assert (await booking_state(live_db, booking_id))["status"] == "rescheduled"
    moved = await booking_state(live_db, new_booking_id)
    assert (moved["status"], moved["payment_status"], moved["slot_id"]) == ("confirmed", "paid", second_slot)
    assert await live_db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", first_slot) == 1
    assert await live_db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", second_slot) == 0
    assert await booking_page.read_code() == display_booking_code(moved["booking_code"])

    # Cancel: the refund shown before confirming is exactly what the database records afterwards.
    await booking_page.cancel_link.click()
    cancel = CancelPage(page)
    shown_refund = await cancel.read_refund()
    assert shown_refund == Decimal("162000")  # 90% before the clinic's refund deadline
    await expect(cancel.refund_amount).to_have_text("IDR162,000")
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, "owner/cancel-360")
    await cancel.cancel("schedule_conflict")
    await page.wait_for_url(re.compile(rf"/bookings/{new_booking_id}$"))
    cancelled = await booking_state(live_db, new_booking_id)
    assert (cancelled["status"], cancelled["payment_status"]) == ("cancelled", "partially_refunded")
    assert cancelled["refunded_amount"] == shown_refund
    assert await booking_page.read_status() == "cancelled"
    await expect(booking_page.refunded).to_have_text("IDR162,000")
    await expect(booking_page.cancel_link).to_have_count(0)
    assert await live_db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", second_slot) == 1

    # My bookings: both bookings, in the past-and-cancelled section, in words.
    await page.get_by_test_id("nav-bookings").click()
    my_bookings = MyBookingsPage(page)
    await expect(my_bookings.item(new_booking_id, my_bookings.past)).to_be_visible()
    await expect(my_bookings.item(booking_id, my_bookings.past)).to_be_visible()
    assert await my_bookings.status_of(new_booking_id) == ("cancelled", "partially_refunded")
    await expect(my_bookings.item(new_booking_id).get_by_test_id("booking-status")).to_have_text("Cancelled")
    assert await document_scroll_width(page) <= PHONE_VIEWPORT["width"]
    await save_screenshot(page, "owner/my-bookings-360")


async def test_the_journey_works_without_javascript(new_context: NewContext, live_db: asyncpg.Connection) -> None:
    """Plain forms and redirects: hold, confirm, choose to pay at the clinic, cancel."""
    clinic = await own_clinic(live_db, slot_days=(5,), hour=11)
    (slot_id, day), = clinic.slots
    context = await new_context(java_script_enabled=False, locale="en-US")
    page = await context.new_page()
    email = await sign_up_with_pet(page, pet_name="Kopi")
    owner_id = await live_db.fetchval("SELECT user_id FROM users WHERE email = $1", email)
    pet_id = await live_db.fetchval("SELECT pet_id FROM pets WHERE owner_id = $1", owner_id)

    await page.goto(finder_url(clinic, day, pet_id))
    await page.locator(f'[data-testid="hold-slot"][data-slot-id="{slot_id}"]').click()
    await page.wait_for_url(re.compile(rf"/reservations/{UUID_PATTERN}$"))
    await page.get_by_test_id("confirm-button").click()
    await page.wait_for_url(re.compile(rf"/bookings/{UUID_PATTERN}/pay$"))
    booking_id = re.search(rf"/bookings/({UUID_PATTERN})/pay", page.url).group(1)

    pay = PayPage(page)
    await pay.clinic_button.click()
    await page.wait_for_url(re.compile(rf"/bookings/{booking_id}$"))
    state = await booking_state(live_db, booking_id)
    start = await live_db.fetchval("SELECT start_time FROM slots WHERE slot_id = $1", slot_id)
    assert (state["status"], state["payment_due_at"]) == ("pending_payment", start)
    await pay.open(booking_id)
    assert await pay.read_state() == "at_desk"

    booking_page = BookingPage(page)
    await booking_page.open(booking_id)
    await expect(booking_page.qr_svg).to_have_count(1)
    await booking_page.cancel_link.click()
    cancel = CancelPage(page)
    assert await cancel.read_refund() == 0
    await cancel.cancel("pet_unwell")
    await page.wait_for_url(re.compile(rf"/bookings/{booking_id}$"))
    state = await booking_state(live_db, booking_id)
    assert (state["status"], state["payment_status"], state["refunded_amount"]) == ("cancelled", "failed", 0)

"""The owner's booking pages: my bookings, a booking with its QR code, paying, the sandbox gateway,
cancelling and rescheduling. Selectors are data-testids only."""

from __future__ import annotations

from decimal import Decimal

from playwright.async_api import Locator, Page


class MyBookingsPage:
    url = "/bookings"

    def __init__(self, page: Page):
        self.page = page
        self.upcoming = page.get_by_test_id("upcoming-section")
        self.past = page.get_by_test_id("past-section")

    async def open(self) -> None:
        await self.page.goto(self.url)

    def item(self, booking_id: object, section: Locator | None = None) -> Locator:
        return (section or self.page).locator(f'[data-testid="booking-item"][data-booking-id="{booking_id}"]')

    async def status_of(self, booking_id: object) -> tuple[str | None, str | None]:
        """The booking's (status, payment status) codes as the list marks them."""
        item = self.item(booking_id)
        return (await item.get_by_test_id("booking-status").get_attribute("data-status"),
                await item.get_by_test_id("payment-status").get_attribute("data-status"))


class BookingPage:
    def __init__(self, page: Page):
        self.page = page
        self.code = page.get_by_test_id("booking-code")
        self.qr = page.get_by_test_id("booking-qr")
        self.qr_svg = self.qr.locator("svg")
        self.status = page.get_by_test_id("booking-details").get_by_test_id("booking-status")
        self.payment_status = page.get_by_test_id("booking-details").get_by_test_id("payment-status")
        self.address = page.get_by_test_id("booking-address")
        self.time = page.get_by_test_id("booking-details").get_by_test_id("booking-time")
        self.refunded = page.get_by_test_id("booking-refunded")
        self.pay_link = page.get_by_test_id("link-pay")
        self.reschedule_link = page.get_by_test_id("link-reschedule")
        self.cancel_link = page.get_by_test_id("link-cancel")

    async def open(self, booking_id: object) -> None:
        await self.page.goto(f"/bookings/{booking_id}")

    async def read_code(self) -> str:
        return (await self.code.inner_text()).strip()

    async def read_status(self) -> str | None:
        return await self.status.get_attribute("data-status")


class PayPage:
    def __init__(self, page: Page):
        self.page = page
        self.state = page.get_by_test_id("pay-state")
        self.amount = page.get_by_test_id("pay-amount")
        self.deadline = page.get_by_test_id("payment-deadline")
        self.sandbox_button = page.get_by_test_id("pay-sandbox")
        self.clinic_button = page.get_by_test_id("pay-clinic")
        self.booking_link = page.get_by_test_id("back-to-booking")

    async def open(self, booking_id: object) -> None:
        await self.page.goto(f"/bookings/{booking_id}/pay")

    async def read_state(self) -> str | None:
        return await self.state.get_attribute("data-state")


class SandboxGatewayPage:
    """The built-in test gateway's page (/sandbox/pay/{payment_id})."""

    def __init__(self, page: Page):
        self.page = page
        self.pay_button = page.get_by_test_id("sandbox-pay")
        self.decline_button = page.get_by_test_id("sandbox-decline")
        self.result = page.get_by_test_id("sandbox-result")
        self.back_to_booking = page.get_by_test_id("sandbox-back-to-booking")


class CancelPage:
    def __init__(self, page: Page):
        self.page = page
        self.refund_amount = page.get_by_test_id("refund-amount")
        self.refund_policy = page.get_by_test_id("refund-policy")
        self.reason = page.get_by_test_id("field-reason")
        self.confirm_button = page.get_by_test_id("confirm-cancel")
        self.version_conflict = page.get_by_test_id("version-conflict")

    async def open(self, booking_id: object) -> None:
        await self.page.goto(f"/bookings/{booking_id}/cancel")

    async def read_refund(self) -> Decimal:
        return Decimal(await self.refund_amount.get_attribute("data-amount") or "NaN")

    async def cancel(self, reason: str) -> None:
        await self.reason.select_option(reason)
        await self.confirm_button.click()


class ReschedulePage:
    def __init__(self, page: Page):
        self.page = page
        self.slots = page.get_by_test_id("reschedule-slot")
        self.message = page.get_by_test_id("form-error")
        self.version_conflict = page.get_by_test_id("version-conflict")

    async def open(self, booking_id: object, day: object | None = None) -> None:
        await self.page.goto(f"/bookings/{booking_id}/reschedule" + (f"?day={day}" if day else ""))

    async def choose_day(self, day: object) -> None:
        await self.page.locator(f'[data-testid="day-link"][data-day="{day}"]').click()

    def slot(self, slot_id: object) -> Locator:
        return self.page.locator(f'[data-testid="reschedule-slot"][data-slot-id="{slot_id}"]')

"""The owner's booking pages: my bookings, a booking with its QR code, paying, the sandbox gateway,
cancelling and rescheduling. Selectors are data-testids only."""

from __future__ import annotations

from decimal import Decimal

from playwright.async_api import Locator

from tests.e2e.pages.base import PageObject, TestId, css_of, text_of


class MyBookingsPage(PageObject):
    url = "/bookings"
    past = TestId("past-section")

    async def open(self) -> None:
        await self.visit(self.url)

    def item(self, booking_id: object, section: Locator | None = None) -> Locator:
        return (section or self.page).locator(css_of("booking-item", booking_id=booking_id))

    async def status_of(self, booking_id: object) -> tuple[str | None, str | None]:
        """The booking's (status, payment status) codes as the list marks them."""
        item = self.item(booking_id)
        return (await item.get_by_test_id("booking-status").get_attribute("data-status"),
                await item.get_by_test_id("payment-status").get_attribute("data-status"))


class BookingPage(PageObject):
    details = TestId("booking-details")
    status = TestId("booking-status", within=details)
    time = TestId("booking-time", within=details)
    qr = TestId("booking-qr")
    address = TestId("booking-address")
    refunded = TestId("booking-refunded")
    reschedule_link = TestId("link-reschedule")
    cancel_link = TestId("link-cancel")

    @property
    def qr_svg(self) -> Locator:
        return self.qr.locator("svg")

    async def open(self, booking_id: object) -> None:
        await self.visit(f"/bookings/{booking_id}")

    async def read_code(self) -> str:
        return await text_of(self.by_test_id("booking-code"))

    async def read_status(self) -> str | None:
        return await self.status.get_attribute("data-status")


class PayPage(PageObject):
    amount = TestId("pay-amount")
    deadline = TestId("payment-deadline")
    sandbox_button = TestId("pay-sandbox")
    clinic_button = TestId("pay-clinic")
    booking_link = TestId("back-to-booking")

    async def open(self, booking_id: object) -> None:
        await self.visit(f"/bookings/{booking_id}/pay")

    async def read_state(self) -> str | None:
        return await self.by_test_id("pay-state").get_attribute("data-state")


class SandboxGatewayPage(PageObject):
    """The built-in test gateway's page (/sandbox/pay/{payment_id})."""

    pay_button = TestId("sandbox-pay")
    result = TestId("sandbox-result")
    back_to_booking = TestId("sandbox-back-to-booking")


class CancelPage(PageObject):
    refund_amount = TestId("refund-amount")

    async def open(self, booking_id: object) -> None:
        await self.visit(f"/bookings/{booking_id}/cancel")

    async def read_refund(self) -> Decimal:
        return Decimal(await self.refund_amount.get_attribute("data-amount") or "NaN")

    async def cancel(self, reason: str) -> None:
        await self.by_test_id("field-reason").select_option(reason)
        await self.by_test_id("confirm-cancel").click()


class ReschedulePage(PageObject):
    async def open(self, booking_id: object, day: object | None = None) -> None:
        await self.visit(f"/bookings/{booking_id}/reschedule" + (f"?day={day}" if day else ""))

    async def choose_day(self, day: object) -> None:
        await self.by_test_id("day-link", day=day).click()

    def slot(self, slot_id: object) -> Locator:
        return self.by_test_id("reschedule-slot", slot_id=slot_id)

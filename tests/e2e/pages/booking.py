"""The owner's booking pages: the slot finder (``/book``) and a hold's confirm page (``/reservations/{id}``).

Selectors are ``data-testid``s only. The finder swaps its parts with HTMX (pushing the URL) and keeps the
day's slot list live over server-sent events; without JavaScript the same URLs are plain pages and forms.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlencode

from playwright.async_api import Locator

from tests.e2e.pages.base import PageObject, TestId, css_of, text_of

RESERVATION_PATH = re.compile(r"/reservations/([0-9a-f-]{36})$")
PAY_PATH = re.compile(r"/bookings/([0-9a-f-]{36})/pay")
COUNTDOWN_TEXT = re.compile(r"^\d+:\d\d$")


def finder_path(clinic_id: object = None, service_id: object = None, day: date | None = None,
                pet_id: object = None) -> str:
    params = {key: str(value) for key, value in (
        ("clinic", clinic_id), ("service", service_id), ("date", day.isoformat() if day else None), ("pet", pet_id),
    ) if value}
    return "/book" + ("?" + urlencode(params) if params else "")


class SlotFinderPage(PageObject):
    """Choose a clinic, a service and a day; see the week and the day's free slots; hold one."""

    clinic_address = TestId("clinic-address")
    clinic_zone = TestId("clinic-zone")
    service_price = TestId("service-price")
    slot_list = TestId("slot-list")
    taken_message = TestId("slot-taken-message")

    async def open(self, clinic_id: object = None, service_id: object = None, day: date | None = None,
                   pet_id: object = None) -> None:
        await self.visit(finder_path(clinic_id, service_id, day, pet_id))

    async def wait_until_live(self) -> None:
        """Wait until the slot list was refetched once over its event stream (the stream sends one change
        right after it connects): from then on the list follows every change of the day."""
        await self.by_test_id("slot-list", refreshed="true").wait_for()

    async def choose_clinic(self, clinic_id: object) -> None:
        await self.by_test_id("choose-clinic").select_option(str(clinic_id))
        await self.page.wait_for_url(re.compile(rf"clinic={clinic_id}"))

    async def choose_service(self, service_id: object) -> None:
        await self.by_test_id("choose-service").select_option(str(service_id))
        await self.page.wait_for_url(re.compile(rf"service={service_id}"))

    def week_day(self, day: date) -> Locator:
        return self.by_test_id("week-day", date=day.isoformat())

    async def choose_day(self, day: date) -> None:
        """Click the day in the week strip (it must be in the strip shown)."""
        await self.week_day(day).click()
        await self.page.wait_for_url(re.compile(rf"date={day.isoformat()}"))
        await self.week_day(day).and_(self.page.locator('[aria-current="date"]')).wait_for()

    async def places_on(self, day: date) -> int:
        return int(await self.week_day(day).get_attribute("data-places") or 0)

    def slot(self, slot_id: object) -> Locator:
        """A slot of the day's list, bookable or not."""
        return self.slot_list.locator(css_of("slot", slot_id=slot_id))

    def hold_button(self, slot_id: object) -> Locator:
        return self.slot_list.locator(css_of("hold-slot", slot_id=slot_id))

    async def click_hold_at_once(self, slot_id: object) -> None:
        """Click the slot's hold button by one script that finds it and clicks it in the same turn: the live
        list may have been replaced a moment earlier, and a button found before that (an element handle) is
        detached, so its click would submit nothing ("form is not connected")."""
        clicked = await self.page.evaluate(
            """slotId => {
                const button = document.querySelector(
                    `[data-testid="slot-list"] [data-testid="hold-slot"][data-slot-id="${slotId}"]`);
                if (button) { button.click(); }
                return button !== null;
            }""", str(slot_id))
        assert clicked, f"no hold button for slot {slot_id}"

    async def offered_slot_ids(self) -> list[str]:
        return [await slot.get_attribute("data-slot-id") for slot in await self.slot_list.get_by_test_id("slot").all()]

    async def hold(self, slot_id: object) -> str:
        """Click the slot; return "held" (now on its confirm page) or "taken" (someone was quicker)."""
        await self.hold_button(slot_id).click()
        return await self.hold_outcome()

    async def hold_outcome(self) -> str:
        # What a click on a slot leads to: the confirm page, or the finder saying the slot is gone.
        await self.page.locator('[data-testid="confirm-form"], [data-testid="slot-taken-message"]').first.wait_for()
        return "held" if RESERVATION_PATH.search(self.page.url) else "taken"

    async def nearest_slot_ids(self) -> list[str]:
        return [await slot.get_attribute("data-slot-id") for slot in await self.by_test_id("nearest-slot").all()]

    async def add_pet(self, name: str, species: str) -> None:
        """The inline "add your pet" form (shown to an owner without pets); comes back to the finder."""
        form = self.by_test_id("add-pet-form")
        await form.get_by_test_id("field-name").fill(name)
        await form.get_by_test_id("field-species").select_option(species)
        async with self.page.expect_navigation():
            await form.get_by_test_id("add-pet-submit").click()


class ConfirmPage(PageObject):
    """A hold's page: the slot, a countdown to the hold's end, notes, the price, confirm or release."""

    summary_clinic = TestId("summary-clinic")
    summary_time = TestId("summary-time")
    summary_pet = TestId("summary-pet")
    hold_countdown = TestId("hold-countdown")
    countdown = TestId("countdown")
    price_total = TestId("price-total")
    price_discount = TestId("price-discount")
    price_final = TestId("price-final")
    confirm_button = TestId("confirm-button")
    hold_expired = TestId("hold-expired")

    def reservation_id(self) -> str:
        match = RESERVATION_PATH.search(self.page.url)
        assert match, f"not a confirm page: {self.page.url}"
        return match.group(1)

    async def open(self, reservation_id: object) -> None:
        await self.visit(f"/reservations/{reservation_id}")

    async def wait_for_ticking_countdown(self) -> str:
        """Wait until countdown.js shows minutes:seconds; return that text."""
        await self.page.wait_for_function(
            "el => /^\\d+:\\d\\d$/.test(el.textContent.trim())", arg=await self.countdown.element_handle())
        return await text_of(self.countdown)

    async def confirm(self, notes: str | None = None) -> str:
        """Confirm the hold; return the booking id from the payment page's address it leads to."""
        if notes is not None:
            await self.by_test_id("field-notes").fill(notes)
        await self.confirm_button.click()
        await self.page.wait_for_url(PAY_PATH)
        return PAY_PATH.search(self.page.url).group(1)

    async def release(self) -> None:
        await self.by_test_id("release-button").click()
        await self.page.wait_for_url(re.compile(r"/book\?"))

    async def try_again(self) -> None:
        await self.by_test_id("try-again").click()
        await self.page.wait_for_url(re.compile(r"/book\?"))

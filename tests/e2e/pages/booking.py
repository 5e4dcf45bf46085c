"""The owner's booking pages: the slot finder (``/book``) and a hold's confirm page (``/reservations/{id}``).

Selectors are ``data-testid``s only. The finder swaps its parts with HTMX (pushing the URL) and keeps the
day's slot list live over server-sent events; without JavaScript the same URLs are plain pages and forms.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlencode

from playwright.async_api import Locator, Page

RESERVATION_PATH = re.compile(r"/reservations/([0-9a-f-]{36})$")
PAY_PATH = re.compile(r"/bookings/([0-9a-f-]{36})/pay")
COUNTDOWN_TEXT = re.compile(r"^\d+:\d\d$")


def finder_path(clinic_id: object = None, service_id: object = None, day: date | None = None,
                pet_id: object = None) -> str:
    params = {key: str(value) for key, value in (
        ("clinic", clinic_id), ("service", service_id), ("date", day.isoformat() if day else None), ("pet", pet_id),
    ) if value}
    return "/book" + ("?" + urlencode(params) if params else "")


class SlotFinderPage:
    """Choose a clinic, a service and a day; see the week and the day's free slots; hold one."""

    def __init__(self, page: Page):
        self.page = page
        self.finder = page.get_by_test_id("finder")
        self.clinic_select = page.get_by_test_id("choose-clinic")
        self.clinic_address = page.get_by_test_id("clinic-address")
        self.clinic_zone = page.get_by_test_id("clinic-zone")
        self.service_select = page.get_by_test_id("choose-service")
        self.service_duration = page.get_by_test_id("service-duration")
        self.service_price = page.get_by_test_id("service-price")
        self.date_input = page.get_by_test_id("choose-date")
        self.pet_select = page.get_by_test_id("choose-pet")
        self.submit_button = page.get_by_test_id("finder-submit")
        self.week_days = page.get_by_test_id("week-day")
        self.next_week_link = page.get_by_test_id("week-next")
        self.previous_week_link = page.get_by_test_id("week-prev")
        self.slot_day = page.get_by_test_id("slot-day")
        self.slot_list = page.get_by_test_id("slot-list")
        self.live_slot_list = page.locator('[data-testid="slot-list"][data-refreshed="true"]')
        self.hold_buttons = page.get_by_test_id("hold-slot")
        self.no_slots = page.get_by_test_id("no-slots")
        self.taken_message = page.get_by_test_id("slot-taken-message")
        self.hold_error = page.get_by_test_id("hold-error")
        self.nearest_slots = page.get_by_test_id("nearest-slot")
        self.add_pet_form = page.get_by_test_id("add-pet-form")
        # What a click on a slot leads to: the confirm page, or the finder saying the slot is gone.
        self._hold_outcome = page.locator('[data-testid="confirm-form"], [data-testid="slot-taken-message"]')

    async def open(self, clinic_id: object = None, service_id: object = None, day: date | None = None,
                   pet_id: object = None) -> None:
        await self.page.goto(finder_path(clinic_id, service_id, day, pet_id))

    async def wait_until_live(self) -> None:
        """Wait until the slot list was refetched once over its event stream (the stream sends one change
        right after it connects): from then on the list follows every change of the day."""
        await self.live_slot_list.wait_for()

    async def choose_clinic(self, clinic_id: object) -> None:
        await self.clinic_select.select_option(str(clinic_id))
        await self.page.wait_for_url(re.compile(rf"clinic={clinic_id}"))

    async def choose_service(self, service_id: object) -> None:
        await self.service_select.select_option(str(service_id))
        await self.page.wait_for_url(re.compile(rf"service={service_id}"))

    def week_day(self, day: date) -> Locator:
        return self.page.locator(f'[data-testid="week-day"][data-date="{day.isoformat()}"]')

    async def choose_day(self, day: date) -> None:
        """Click the day in the week strip (it must be in the strip shown)."""
        await self.week_day(day).click()
        await self.page.wait_for_url(re.compile(rf"date={day.isoformat()}"))
        await self.week_day(day).and_(self.page.locator('[aria-current="date"]')).wait_for()

    async def places_on(self, day: date) -> int:
        return int(await self.week_day(day).get_attribute("data-places") or 0)

    def slot(self, slot_id: object) -> Locator:
        """A slot of the day's list, bookable or not."""
        return self.slot_list.locator(f'[data-testid="slot"][data-slot-id="{slot_id}"]')

    def hold_button(self, slot_id: object) -> Locator:
        return self.slot_list.locator(f'[data-testid="hold-slot"][data-slot-id="{slot_id}"]')

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
        await self._hold_outcome.first.wait_for()
        return "held" if RESERVATION_PATH.search(self.page.url) else "taken"

    async def nearest_slot_ids(self) -> list[str]:
        return [await slot.get_attribute("data-slot-id") for slot in await self.nearest_slots.all()]

    async def add_pet(self, name: str, species: str) -> None:
        """The inline "add your pet" form (shown to an owner without pets); comes back to the finder."""
        await self.add_pet_form.get_by_test_id("field-name").fill(name)
        await self.add_pet_form.get_by_test_id("field-species").select_option(species)
        async with self.page.expect_navigation():
            await self.add_pet_form.get_by_test_id("add-pet-submit").click()


class ConfirmPage:
    """A hold's page: the slot, a countdown to the hold's end, notes, the price, confirm or release."""

    def __init__(self, page: Page):
        self.page = page
        self.summary_clinic = page.get_by_test_id("summary-clinic")
        self.summary_address = page.get_by_test_id("summary-address")
        self.summary_time = page.get_by_test_id("summary-time")
        self.summary_service = page.get_by_test_id("summary-service")
        self.summary_pet = page.get_by_test_id("summary-pet")
        self.hold_countdown = page.get_by_test_id("hold-countdown")
        self.countdown = page.get_by_test_id("countdown")
        self.notes = page.get_by_test_id("field-notes")
        self.price_total = page.get_by_test_id("price-total")
        self.price_discount = page.get_by_test_id("price-discount")
        self.price_final = page.get_by_test_id("price-final")
        self.confirm_button = page.get_by_test_id("confirm-button")
        self.release_button = page.get_by_test_id("release-button")
        self.message = page.get_by_test_id("reservation-message")
        self.hold_expired = page.get_by_test_id("hold-expired")
        self.try_again_link = page.get_by_test_id("try-again")

    def reservation_id(self) -> str:
        match = RESERVATION_PATH.search(self.page.url)
        assert match, f"not a confirm page: {self.page.url}"
        return match.group(1)

    async def open(self, reservation_id: object) -> None:
        await self.page.goto(f"/reservations/{reservation_id}")

    async def wait_for_ticking_countdown(self) -> str:
        """Wait until countdown.js shows minutes:seconds; return that text."""
        await self.page.wait_for_function(
            "el => /^\\d+:\\d\\d$/.test(el.textContent.trim())", arg=await self.countdown.element_handle())
        return (await self.countdown.inner_text()).strip()

    async def confirm(self, notes: str | None = None) -> str:
        """Confirm the hold; return the booking id from the payment page's address it leads to."""
        if notes is not None:
            await self.notes.fill(notes)
        await self.confirm_button.click()
        await self.page.wait_for_url(PAY_PATH)
        return PAY_PATH.search(self.page.url).group(1)

    async def release(self) -> None:
        await self.release_button.click()
        await self.page.wait_for_url(re.compile(r"/book\?"))

    async def try_again(self) -> None:
        await self.try_again_link.click()
        await self.page.wait_for_url(re.compile(r"/book\?"))

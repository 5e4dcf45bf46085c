"""The receptionist's desk: the day view (grid + check-in box), the desk's booking page, and the walk-in /
phone booking form."""

from __future__ import annotations

from playwright.async_api import Locator

from tests.e2e.pages.base import PageObject, Part, TestId, css_of, text_of


class GridBookingCard(Part):
    async def status(self) -> str | None:
        return await self.by_test_id("booking-status").get_attribute("data-status")

    async def payment_status(self) -> str | None:
        return await self.by_test_id("payment-status").get_attribute("data-payment-status")

    async def pet(self) -> str:
        return await text_of(self.by_test_id("booking-pet"))

    async def owner(self) -> str:
        return await text_of(self.by_test_id("booking-owner"))


class DeskDayPage(PageObject):
    """``/desk``: the clinic's day as a grid; the check-in box has the focus when the page opens."""

    root = TestId("desk-day")
    grid = TestId("desk-grid")
    nav_link = TestId("nav-desk")
    new_booking_link = TestId("desk-new-booking")

    async def open(self, clinic_id: object | None = None, day: object | None = None) -> None:
        query = "&".join(part for part in (f"clinic={clinic_id}" if clinic_id else "",
                                           f"date={day}" if day else "") if part)
        await self.visit("/desk" + (f"?{query}" if query else ""), ready=self.root)

    def booking(self, booking_id: object) -> GridBookingCard:
        return GridBookingCard(self.booking_link(booking_id))

    def booking_link(self, booking_id: object) -> Locator:
        return self.grid.locator(css_of("grid-booking", booking_id=booking_id))

    async def shown_booking_ids(self) -> set[str]:
        ids = await self.grid.get_by_test_id("grid-booking").evaluate_all(
            "cards => cards.map(card => card.dataset.bookingId)")
        return set(ids)

    async def column_names(self) -> list[str]:
        return [name.strip() for name in await self.grid.get_by_test_id("grid-column").all_inner_texts()]

    async def scan(self, code: str) -> None:
        """Type a code into the focused check-in box and press Enter, as a USB scanner does."""
        await self.page.keyboard.type(code)
        await self.page.keyboard.press("Enter")
        await self.page.wait_for_load_state()


class DeskBookingPage(PageObject):
    """``/desk/bookings/{id}``: a booking's details and what the desk can do with it."""

    root = TestId("desk-booking")
    back_to_day = TestId("back-to-day")

    async def booking_id(self) -> str | None:
        await self.root.wait_for()
        return await self.root.get_attribute("data-booking-id")

    async def read_status(self) -> tuple[str | None, str | None]:
        return (await self.root.get_by_test_id("booking-status").get_attribute("data-status"),
                await self.root.get_by_test_id("payment-status").get_attribute("data-payment-status"))

    async def _press(self, button: str) -> None:
        await self.by_test_id(button).click()
        await self.by_test_id("desk-done").wait_for()

    async def take_payment(self) -> None:
        await self._press("take-payment")

    async def check_in(self) -> None:
        await self._press("check-in")

    async def complete(self) -> None:
        await self._press("complete")

    async def mark_no_show(self) -> None:
        await self._press("no-show")


class DeskBookForm(PageObject):
    """``/desk/book``: find or create the owner, pick a free slot, walk-in or phone."""

    root = TestId("desk-book")

    async def search_owner(self, text: str) -> None:
        await self.by_test_id("owner-search").fill(text)
        await self.by_test_id("owner-search-submit").click()
        await self.page.wait_for_load_state()

    async def choose_owner(self, owner_id: object) -> None:
        await self.by_test_id("owner-result", owner_id=owner_id).get_by_test_id("choose-owner").click()
        await self.by_test_id("chosen-owner").wait_for()

    async def fill_new_owner(self, name: str, phone: str, pet_name: str, species: str, email: str = "") -> None:
        for field, value in (("owner_name", name), ("owner_phone", phone), ("owner_email", email),
                             ("pet_name", pet_name)):
            await self.by_test_id(f"field-{field}").fill(value)
        await self.by_test_id("field-pet_species").select_option(species)

    async def choose_pet(self, pet_id: object) -> None:
        await self.by_test_id("field-pet_id").select_option(str(pet_id))

    async def choose_slot(self, slot_id: object) -> None:
        await self.by_test_id("field-slot_id").select_option(str(slot_id))

    async def choose_source(self, source: str) -> None:
        await self.by_test_id(f"source-{source}").check()

    async def submit(self) -> None:
        await self.by_test_id("book-submit").click()
        await self.page.wait_for_load_state()

"""The receptionist's desk: the day view (grid + check-in box), the desk's booking page, and the walk-in /
phone booking form."""

from __future__ import annotations

from playwright.async_api import Locator, Page


class GridBookingCard:
    def __init__(self, card: Locator):
        self.card = card

    async def status(self) -> str | None:
        return await self.card.get_by_test_id("booking-status").get_attribute("data-status")

    async def payment_status(self) -> str | None:
        return await self.card.get_by_test_id("payment-status").get_attribute("data-payment-status")

    async def pet(self) -> str:
        return (await self.card.get_by_test_id("booking-pet").inner_text()).strip()

    async def owner(self) -> str:
        return (await self.card.get_by_test_id("booking-owner").inner_text()).strip()


class DeskDayPage:
    """``/desk``: the clinic's day as a grid; the check-in box has the focus when the page opens."""

    def __init__(self, page: Page):
        self.page = page
        self.root = page.get_by_test_id("desk-day")
        self.grid = page.get_by_test_id("desk-grid")
        self.checkin_code = page.get_by_test_id("checkin-code")
        self.nav_link = page.get_by_test_id("nav-desk")
        self.new_booking_link = page.get_by_test_id("desk-new-booking")
        self.next_day = page.get_by_test_id("day-next")
        self.previous_day = page.get_by_test_id("day-previous")

    async def open(self, clinic_id: object | None = None, day: object | None = None) -> None:
        query = "&".join(part for part in (f"clinic={clinic_id}" if clinic_id else "",
                                           f"date={day}" if day else "") if part)
        await self.page.goto("/desk" + (f"?{query}" if query else ""))
        await self.root.wait_for()

    def booking(self, booking_id: object) -> GridBookingCard:
        return GridBookingCard(self.grid.locator(f'[data-testid="grid-booking"][data-booking-id="{booking_id}"]'))

    def booking_link(self, booking_id: object) -> Locator:
        return self.grid.locator(f'[data-testid="grid-booking"][data-booking-id="{booking_id}"]')

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


class DeskBookingPage:
    """``/desk/bookings/{id}``: a booking's details and what the desk can do with it."""

    def __init__(self, page: Page):
        self.page = page
        self.root = page.get_by_test_id("desk-booking")
        self.code = self.root.get_by_test_id("booking-code")
        self.status = self.root.get_by_test_id("booking-status")
        self.payment_status = self.root.get_by_test_id("payment-status")
        self.done = page.get_by_test_id("desk-done")
        self.error = page.get_by_test_id("desk-error")
        self.take_payment_button = page.get_by_test_id("take-payment")
        self.check_in_button = page.get_by_test_id("check-in")
        self.complete_button = page.get_by_test_id("complete")
        self.no_show_button = page.get_by_test_id("no-show")
        self.back_to_day = page.get_by_test_id("back-to-day")

    async def booking_id(self) -> str | None:
        await self.root.wait_for()
        return await self.root.get_attribute("data-booking-id")

    async def read_status(self) -> tuple[str | None, str | None]:
        return (await self.status.get_attribute("data-status"),
                await self.payment_status.get_attribute("data-payment-status"))

    async def _press(self, button: Locator) -> None:
        await button.click()
        await self.done.wait_for()

    async def take_payment(self) -> None:
        await self._press(self.take_payment_button)

    async def check_in(self) -> None:
        await self._press(self.check_in_button)

    async def complete(self) -> None:
        await self._press(self.complete_button)

    async def mark_no_show(self) -> None:
        await self._press(self.no_show_button)


class DeskBookForm:
    """``/desk/book``: find or create the owner, pick a free slot, walk-in or phone."""

    def __init__(self, page: Page):
        self.page = page
        self.root = page.get_by_test_id("desk-book")
        self.owner_search = page.get_by_test_id("owner-search")
        self.owner_results = page.get_by_test_id("owner-result")
        self.error = page.get_by_test_id("book-error")

    async def search_owner(self, text: str) -> None:
        await self.owner_search.fill(text)
        await self.page.get_by_test_id("owner-search-submit").click()
        await self.page.wait_for_load_state()

    async def choose_owner(self, owner_id: object) -> None:
        result = self.page.locator(f'[data-testid="owner-result"][data-owner-id="{owner_id}"]')
        await result.get_by_test_id("choose-owner").click()
        await self.page.get_by_test_id("chosen-owner").wait_for()

    async def fill_new_owner(self, name: str, phone: str, pet_name: str, species: str, email: str = "") -> None:
        await self.page.get_by_test_id("field-owner_name").fill(name)
        await self.page.get_by_test_id("field-owner_phone").fill(phone)
        await self.page.get_by_test_id("field-owner_email").fill(email)
        await self.page.get_by_test_id("field-pet_name").fill(pet_name)
        await self.page.get_by_test_id("field-pet_species").select_option(species)

    async def choose_pet(self, pet_id: object) -> None:
        await self.page.get_by_test_id("field-pet_id").select_option(str(pet_id))

    async def choose_slot(self, slot_id: object) -> None:
        await self.page.get_by_test_id("field-slot_id").select_option(str(slot_id))

    async def choose_source(self, source: str) -> None:
        await self.page.get_by_test_id(f"source-{source}").check()

    async def submit(self) -> None:
        await self.page.get_by_test_id("book-submit").click()
        await self.page.wait_for_load_state()

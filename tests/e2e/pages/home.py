"""The home page: one card per clinic, each with a "Show services" link that HTMX turns into an in-place load."""

from __future__ import annotations

from playwright.async_api import Locator, Page

from tests.e2e.pages.components import ServicesTable


class ClinicCard:
    def __init__(self, card: Locator):
        self.card = card
        self.name = card.get_by_test_id("clinic-name")
        self.timezone = card.get_by_test_id("clinic-timezone")
        self.show_services_button = card.get_by_test_id("show-services")
        self.services_panel = card.get_by_test_id("services-panel")
        self.services_table = ServicesTable(self.services_panel)

    async def clinic_id(self) -> str | None:
        return await self.card.get_attribute("data-clinic-id")

    async def read_name(self) -> str:
        return (await self.name.inner_text()).strip()

    async def read_timezone(self) -> str:
        return (await self.timezone.inner_text()).strip()

    async def show_services(self) -> None:
        """Click "Show services" and wait for the table (with JavaScript: loaded in place by HTMX)."""
        await self.show_services_button.click()
        await self.services_table.wait_until_visible()


class HomePage:
    url = "/"

    def __init__(self, page: Page):
        self.page = page
        self.clinic_list = page.get_by_test_id("clinic-list")
        self.clinic_cards = page.get_by_test_id("clinic-card")
        self.htmx_script = page.locator('script[src$="/htmx.min.js"]')

    async def reset(self) -> None:
        await self.page.goto(self.url)

    async def cards(self) -> list[ClinicCard]:
        return [ClinicCard(card) for card in await self.clinic_cards.all()]

    def card_of(self, clinic_id: object) -> ClinicCard:
        return ClinicCard(self.page.locator(f'[data-testid="clinic-card"][data-clinic-id="{clinic_id}"]'))

    async def htmx_script_url(self) -> str:
        """The absolute URL the browser resolved for the htmx script."""
        return await self.htmx_script.evaluate("script => script.src")

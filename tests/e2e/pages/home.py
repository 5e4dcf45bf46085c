"""The home page: one card per clinic, each with a "Show services" link that HTMX turns into an in-place load."""

from __future__ import annotations

from playwright.async_api import Locator

from tests.e2e.pages.base import PageObject, Part, TestId, text_of
from tests.e2e.pages.components import ServicesTable


class ClinicCard(Part):
    show_services_button = TestId("show-services")

    def __init__(self, card: Locator):
        super().__init__(card)
        self.services_table = ServicesTable(self.by_test_id("services-panel"))

    async def clinic_id(self) -> str | None:
        return await self.data("clinic-id")

    async def read_name(self) -> str:
        return await text_of(self.by_test_id("clinic-name"))

    async def read_timezone(self) -> str:
        return await text_of(self.by_test_id("clinic-timezone"))

    async def show_services(self) -> None:
        """Click "Show services" and wait for the table (with JavaScript: loaded in place by HTMX)."""
        await self.show_services_button.click()
        await self.services_table.wait_until_visible()


class HomePage(PageObject):
    url = "/"

    async def reset(self) -> None:
        await self.visit(self.url)

    async def cards(self) -> list[ClinicCard]:
        return [ClinicCard(card) for card in await self.by_test_id("clinic-card").all()]

    def card_of(self, clinic_id: object) -> ClinicCard:
        return ClinicCard(self.by_test_id("clinic-card", clinic_id=clinic_id))

    async def htmx_script_url(self) -> str:
        """The absolute URL the browser resolved for the htmx script."""
        return await self.page.locator('script[src$="/htmx.min.js"]').evaluate("script => script.src")

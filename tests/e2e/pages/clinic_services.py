"""The full page of one clinic's services: where "Show services" leads without JavaScript."""

from __future__ import annotations

from playwright.async_api import Page

from tests.e2e.pages.base import PageObject, text_of
from tests.e2e.pages.components import ServicesTable


class ClinicServicesPage(PageObject):
    def __init__(self, page: Page, clinic_id: object):
        super().__init__(page)
        self.url = f"/clinics/{clinic_id}/services"
        self.services_table = ServicesTable(page.locator("main"))

    async def reset(self) -> None:
        await self.visit(self.url)

    async def read_clinic_name(self) -> str:
        return await text_of(self.by_test_id("clinic-name"))

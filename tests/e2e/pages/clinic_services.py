"""The full page of one clinic's services: where "Show services" leads without JavaScript."""

from __future__ import annotations

from playwright.async_api import Page

from tests.e2e.pages.components import ServicesTable


class ClinicServicesPage:
    def __init__(self, page: Page, clinic_id: object):
        self.page = page
        self.url = f"/clinics/{clinic_id}/services"
        self.clinic_name = page.get_by_test_id("clinic-name")
        self.timezone = page.get_by_test_id("clinic-timezone")
        self.services_table = ServicesTable(page.locator("main"))

    async def reset(self) -> None:
        await self.page.goto(self.url)

    async def read_clinic_name(self) -> str:
        return (await self.clinic_name.inner_text()).strip()

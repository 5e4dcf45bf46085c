"""Parts shared by several pages."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Locator

from tests.e2e.pages.base import Part, TestId, text_of


@dataclass(frozen=True)
class ServiceRow:
    name: str
    duration: str
    price: str


class ServicesTable(Part):
    """The table of a clinic's services (``clinics/_services.html``), wherever it is shown (inside ``scope``)."""

    rows = TestId("service-row")

    def __init__(self, scope: Locator):
        super().__init__(scope.get_by_test_id("service-table"))

    async def wait_until_visible(self) -> None:
        await self.root.wait_for(state="visible")

    async def read_rows(self) -> list[ServiceRow]:
        rows = []
        for row in await self.rows.all():
            rows.append(ServiceRow(*[await text_of(row.get_by_test_id(f"service-{column}"))
                                     for column in ("name", "duration", "price")]))
        return rows

"""Parts shared by several pages."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Locator


@dataclass(frozen=True)
class ServiceRow:
    name: str
    duration: str
    price: str


class ServicesTable:
    """The table of a clinic's services (``clinics/_services.html``), wherever it is shown."""

    def __init__(self, scope: Locator):
        self.table = scope.get_by_test_id("service-table")
        self.rows = self.table.get_by_test_id("service-row")

    async def wait_until_visible(self) -> None:
        await self.table.wait_for(state="visible")

    async def read_rows(self) -> list[ServiceRow]:
        rows = []
        for row in await self.rows.all():
            rows.append(
                ServiceRow(
                    name=(await row.get_by_test_id("service-name").inner_text()).strip(),
                    duration=(await row.get_by_test_id("service-duration").inner_text()).strip(),
                    price=(await row.get_by_test_id("service-price").inner_text()).strip(),
                )
            )
        return rows

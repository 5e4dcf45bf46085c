"""The manager's analytics page (/manage/analytics) and database health page (/manage/database)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from playwright.async_api import Locator

from tests.e2e.pages.base import PageObject, TestId, text_of

KPI_KEYS = ("bookings", "completed", "cancelled", "no-show-rate", "gross-revenue", "refunds", "revenue", "gateway-fees",
            "net-revenue", "average-booking-value")


class AnalyticsPage(PageObject):
    url = "/manage/analytics"
    root = TestId("analytics-page")
    notice = TestId("analytics-notice")
    service_rows = TestId("service-row")
    trend_chart = TestId("trend-chart")
    service_chart = TestId("service-chart")
    how_we_count = TestId("how-we-count")
    database_link = TestId("nav-database-health")

    async def open(self, **filters: str) -> None:
        query = urlencode({key: value for key, value in filters.items() if value})
        await self.visit(self.url + (f"?{query}" if query else ""), ready=self.root)

    async def kpi_value(self, key: str) -> str:
        """The KPI's exact figure as the page holds it ('' for n/a)."""
        return await self.by_test_id(f"kpi-{key}").get_attribute("data-value") or ""

    async def kpi_previous(self, key: str) -> str:
        """The KPI's figure of the previous period ('' for n/a)."""
        return await self.by_test_id(f"kpi-{key}").get_attribute("data-previous") or ""

    async def kpi_text(self, key: str) -> str:
        return await text_of(self.by_test_id(f"kpi-{key}").get_by_test_id("kpi-value"))

    async def kpis(self) -> dict[str, str]:
        return {key: await self.kpi_value(key) for key in KPI_KEYS}

    async def filter(self, *, clinic: object | None = None, service: object | None = None,
                     first_day: str | None = None, last_day: str | None = None) -> None:
        """Choose filters in the form and press "Show" (a plain GET form: the page reloads)."""
        if first_day:
            await self.by_test_id("filter-first-day").fill(first_day)
        if last_day:
            await self.by_test_id("filter-last-day").fill(last_day)
        if clinic is not None:
            await self.by_test_id("filter-clinic").select_option(str(clinic))
        if service is not None:
            await self.by_test_id("filter-service").select_option(str(service))
        await self._reload_by(self.by_test_id("filter-apply"))

    async def download_csv(self) -> tuple[str, str]:
        """Click "Download CSV": (suggested file name, content)."""
        async with self.page.expect_download() as download_info:
            await self.by_test_id("download-csv").click()
        download = await download_info.value
        path = Path(await download.path())
        return download.suggested_filename, await asyncio.to_thread(path.read_text, encoding="utf-8")

    async def data_as_of(self) -> str:
        """The refresh time the page shows, as its ISO timestamp."""
        return await self.by_test_id("data-as-of").get_attribute("data-as-of") or ""

    async def refresh(self) -> None:
        await self._reload_by(self.by_test_id("refresh-now"))

    async def _reload_by(self, button: Locator) -> None:
        async with self.page.expect_navigation():
            await button.click()
        await self.root.wait_for()

    async def daily_bookings(self) -> dict[str, int]:
        return {await row.get_attribute("data-day"): int(await row.get_attribute("data-bookings"))
                for row in await self.by_test_id("daily-row").all()}

    async def service_revenues(self) -> dict[str, Decimal]:
        result = {}
        for row in await self.service_rows.all():
            cell = row.get_by_test_id("service-revenue")
            result[await row.get_attribute("data-service-id")] = Decimal(await cell.get_attribute("data-value"))
        return result


class DatabaseHealthPage(PageObject):
    url = "/manage/database"
    root = TestId("database-health-page")
    slow_statements = TestId("slow-statement")
    index_rows = TestId("index-row")
    cache_database = TestId("cache-database")

    async def open(self) -> None:
        await self.visit(self.url, ready=self.root)

    async def partition_parents(self) -> set[str]:
        return {await row.get_attribute("data-parent") for row in await self.by_test_id("partition-row").all()}

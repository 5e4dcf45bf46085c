"""The manager's analytics page (/manage/analytics) and database health page (/manage/database)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from playwright.async_api import Page

KPI_KEYS = ("bookings", "completed", "cancelled", "no-show-rate", "revenue", "average-booking-value")


class AnalyticsPage:
    url = "/manage/analytics"

    def __init__(self, page: Page):
        self.page = page
        self.root = page.get_by_test_id("analytics-page")
        self.first_day = page.get_by_test_id("filter-first-day")
        self.last_day = page.get_by_test_id("filter-last-day")
        self.clinic = page.get_by_test_id("filter-clinic")
        self.service = page.get_by_test_id("filter-service")
        self.apply_button = page.get_by_test_id("filter-apply")
        self.csv_link = page.get_by_test_id("download-csv")
        self.refresh_button = page.get_by_test_id("refresh-now")
        self.as_of = page.get_by_test_id("data-as-of")
        self.notice = page.get_by_test_id("analytics-notice")
        self.daily_rows = page.get_by_test_id("daily-row")
        self.service_rows = page.get_by_test_id("service-row")
        self.trend_chart = page.get_by_test_id("trend-chart")
        self.service_chart = page.get_by_test_id("service-chart")
        self.how_we_count = page.get_by_test_id("how-we-count")
        self.database_link = page.get_by_test_id("nav-database-health")

    async def open(self, **filters: str) -> None:
        query = urlencode({key: value for key, value in filters.items() if value})
        await self.page.goto(self.url + (f"?{query}" if query else ""))
        await self.root.wait_for()

    async def kpi_value(self, key: str) -> str:
        """The KPI's exact figure as the page holds it ('' for n/a)."""
        return await self.page.get_by_test_id(f"kpi-{key}").get_attribute("data-value") or ""

    async def kpi_previous(self, key: str) -> str:
        """The KPI's figure of the previous period ('' for n/a)."""
        return await self.page.get_by_test_id(f"kpi-{key}").get_attribute("data-previous") or ""

    async def kpi_text(self, key: str) -> str:
        return (await self.page.get_by_test_id(f"kpi-{key}").get_by_test_id("kpi-value").inner_text()).strip()

    async def kpis(self) -> dict[str, str]:
        return {key: await self.kpi_value(key) for key in KPI_KEYS}

    async def filter(self, *, clinic: object | None = None, service: object | None = None,
                     first_day: str | None = None, last_day: str | None = None) -> None:
        """Choose filters in the form and press "Show" (a plain GET form: the page reloads)."""
        if first_day:
            await self.first_day.fill(first_day)
        if last_day:
            await self.last_day.fill(last_day)
        if clinic is not None:
            await self.clinic.select_option(str(clinic))
        if service is not None:
            await self.service.select_option(str(service))
        async with self.page.expect_navigation():
            await self.apply_button.click()
        await self.root.wait_for()

    async def download_csv(self) -> tuple[str, str]:
        """Click "Download CSV": (suggested file name, content)."""
        async with self.page.expect_download() as download_info:
            await self.csv_link.click()
        download = await download_info.value
        path = Path(await download.path())
        return download.suggested_filename, await asyncio.to_thread(path.read_text, encoding="utf-8")

    async def data_as_of(self) -> str:
        """The refresh time the page shows, as its ISO timestamp."""
        return await self.as_of.get_attribute("data-as-of") or ""

    async def refresh(self) -> None:
        async with self.page.expect_navigation():
            await self.refresh_button.click()
        await self.root.wait_for()

    async def daily_bookings(self) -> dict[str, int]:
        return {await row.get_attribute("data-day"): int(await row.get_attribute("data-bookings"))
                for row in await self.daily_rows.all()}

    async def service_revenues(self) -> dict[str, Decimal]:
        result = {}
        for row in await self.service_rows.all():
            cell = row.get_by_test_id("service-revenue")
            result[await row.get_attribute("data-service-id")] = Decimal(await cell.get_attribute("data-value"))
        return result


class DatabaseHealthPage:
    url = "/manage/database"

    def __init__(self, page: Page):
        self.page = page
        self.root = page.get_by_test_id("database-health-page")
        self.slow_statements = page.get_by_test_id("slow-statement")
        self.statements_note = page.get_by_test_id("statements-note")
        self.partition_rows = page.get_by_test_id("partition-row")
        self.index_rows = page.get_by_test_id("index-row")
        self.dead_tuple_rows = page.get_by_test_id("dead-tuple-row")
        self.cache_database = page.get_by_test_id("cache-database")

    async def open(self) -> None:
        await self.page.goto(self.url)
        await self.root.wait_for()

    async def partition_parents(self) -> set[str]:
        return {await row.get_attribute("data-parent") for row in await self.partition_rows.all()}

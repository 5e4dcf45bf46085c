"""The desk's slot pages: the list of a clinic's slots (block/unblock) and the weekly-template generator."""

from __future__ import annotations

from datetime import date

from playwright.async_api import Locator, Page


class SlotRow:
    def __init__(self, row: Locator):
        self.row = row
        self.checkbox = row.get_by_test_id("slot-select")
        self.status = row.get_by_test_id("slot-status")

    async def slot_id(self) -> str | None:
        return await self.row.get_attribute("data-slot-id")

    async def status_value(self) -> str | None:
        return await self.row.get_attribute("data-status")


class SlotListPage:
    def __init__(self, page: Page):
        self.page = page
        self.root = page.get_by_test_id("slots-page")
        self.notice = page.get_by_test_id("slots-notice")
        self.error = page.get_by_test_id("slots-error")
        self.rows = page.get_by_test_id("slot-row")
        self.generate_link = page.get_by_test_id("slots-generate-link")
        self.reason = page.get_by_test_id("slots-reason")
        self.block_selected_button = page.get_by_test_id("slots-block-selected")
        self.unblock_selected_button = page.get_by_test_id("slots-unblock-selected")

    async def open(self, clinic_id: object, first_day: date | None = None, last_day: date | None = None) -> None:
        query = f"clinic={clinic_id}"
        if first_day:
            query += f"&from={first_day.isoformat()}"
        if last_day:
            query += f"&to={last_day.isoformat()}"
        await self.page.goto(f"/desk/slots?{query}")
        await self.root.wait_for()

    def row_of(self, slot_id: object) -> SlotRow:
        return SlotRow(self.page.locator(f'[data-testid="slot-row"][data-slot-id="{slot_id}"]'))

    async def all_rows(self) -> list[SlotRow]:
        return [SlotRow(row) for row in await self.rows.all()]

    async def block(self, slot_ids: list[object], reason: str = "maintenance") -> None:
        for slot_id in slot_ids:
            await self.row_of(slot_id).checkbox.check()
        await self.reason.select_option(reason)
        await self.block_selected_button.click()
        await self.page.wait_for_load_state()

    async def unblock(self, slot_ids: list[object]) -> None:
        for slot_id in slot_ids:
            await self.row_of(slot_id).checkbox.check()
        await self.unblock_selected_button.click()
        await self.page.wait_for_load_state()


class GenerateSlotsPage:
    def __init__(self, page: Page):
        self.page = page
        self.form = page.get_by_test_id("generate-form")
        self.error = page.get_by_test_id("generate-error")
        self.submit_button = page.get_by_test_id("generate-submit")

    async def open(self, clinic_id: object) -> None:
        await self.page.goto(f"/desk/slots/generate?clinic={clinic_id}")
        await self.form.wait_for()

    async def fill(self, *, weekdays: set[int], opening: str, closing: str, service_id: object,
                   staff_id: object | None, first_day: date, last_day: date, capacity: int = 1,
                   length_minutes: int | None = None) -> None:
        for weekday in range(7):
            box = self.page.get_by_test_id(f"weekday-{weekday}")
            if weekday in weekdays:
                await box.check()
            else:
                await box.uncheck()
        await self.page.get_by_test_id("field-opening").fill(opening)
        await self.page.get_by_test_id("field-closing").fill(closing)
        await self.page.get_by_test_id("field-service_id").select_option(str(service_id))
        await self.page.get_by_test_id("field-staff_id").select_option(str(staff_id) if staff_id else "")
        await self.page.get_by_test_id("field-length_minutes").fill(str(length_minutes or ""))
        await self.page.get_by_test_id("field-capacity").fill(str(capacity))
        await self.page.get_by_test_id("field-first_day").fill(first_day.isoformat())
        await self.page.get_by_test_id("field-last_day").fill(last_day.isoformat())

    async def submit(self) -> None:
        await self.submit_button.click()
        await self.page.wait_for_load_state()

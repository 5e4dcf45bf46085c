"""The desk's slot pages: the list of a clinic's slots (block/unblock) and the weekly-template generator."""

from __future__ import annotations

from datetime import date

from tests.e2e.pages.base import PageObject, Part, TestId


class SlotRow(Part):
    checkbox = TestId("slot-select")
    status = TestId("slot-status")
    time = TestId("slot-time")

    async def slot_id(self) -> str | None:
        return await self.data("slot-id")

    async def status_value(self) -> str | None:
        return await self.data("status")


class SlotListPage(PageObject):
    root = TestId("slots-page")
    notice = TestId("slots-notice")
    rows = TestId("slot-row")
    generate_link = TestId("slots-generate-link")

    async def open(self, clinic_id: object, first_day: date | None = None, last_day: date | None = None) -> None:
        query = f"clinic={clinic_id}"
        if first_day:
            query += f"&from={first_day.isoformat()}"
        if last_day:
            query += f"&to={last_day.isoformat()}"
        await self.visit(f"/desk/slots?{query}", ready=self.root)

    def row_of(self, slot_id: object) -> SlotRow:
        return SlotRow(self.by_test_id("slot-row", slot_id=slot_id))

    async def all_rows(self) -> list[SlotRow]:
        return [SlotRow(row) for row in await self.rows.all()]

    async def block(self, slot_ids: list[object], reason: str = "maintenance") -> None:
        await self._select(slot_ids)
        await self.by_test_id("slots-reason").select_option(reason)
        await self._press("slots-block-selected")

    async def unblock(self, slot_ids: list[object]) -> None:
        await self._select(slot_ids)
        await self._press("slots-unblock-selected")

    async def _select(self, slot_ids: list[object]) -> None:
        for slot_id in slot_ids:
            await self.row_of(slot_id).checkbox.check()

    async def _press(self, button: str) -> None:
        await self.by_test_id(button).click()
        await self.page.wait_for_load_state()


class GenerateSlotsPage(PageObject):
    form = TestId("generate-form")
    error = TestId("generate-error")

    async def open(self, clinic_id: object) -> None:
        await self.visit(f"/desk/slots/generate?clinic={clinic_id}", ready=self.form)

    async def fill(self, *, weekdays: set[int], opening: str, closing: str, service_id: object,
                   staff_id: object | None, first_day: date, last_day: date, capacity: int = 1,
                   length_minutes: int | None = None) -> None:
        for weekday in range(7):
            box = self.by_test_id(f"weekday-{weekday}")
            if weekday in weekdays:
                await box.check()
            else:
                await box.uncheck()
        await self._fill(opening=opening, closing=closing)
        await self.by_test_id("field-service_id").select_option(str(service_id))
        await self.by_test_id("field-staff_id").select_option(str(staff_id) if staff_id else "")
        await self._fill(length_minutes=str(length_minutes or ""), capacity=str(capacity),
                         first_day=first_day.isoformat(), last_day=last_day.isoformat())

    async def _fill(self, **values: str) -> None:
        for field, value in values.items():
            await self.by_test_id(f"field-{field}").fill(value)

    async def submit(self) -> None:
        await self.by_test_id("generate-submit").click()
        await self.page.wait_for_load_state()

"""The desk's refunds to pay by hand (``/desk/refunds``): one row per refund the gateway cannot return, with
the owner's contact details and a "Mark paid" form (note + button)."""

from __future__ import annotations

from playwright.async_api import Locator

from tests.e2e.pages.base import PageObject, Part, TestId, css_of


class RefundRow(Part):
    """A row of the list: ``data-refund-id``, ``data-state``, the owner's details and the "Mark paid" form."""

    form = TestId("refund-paid-form")
    amount = TestId("refund-amount")
    mark_paid_button = TestId("refund-paid", within=form)

    @property
    def note(self) -> Locator:
        return self.form.locator("input[name=note]")

    async def mark_paid(self, note: str = "") -> None:
        """Type ``note`` (e.g. the transfer's reference) and press "Mark paid"; the form posts and the page
        comes back (303) with the done notice."""
        await self.note.fill(note)
        await self.mark_paid_button.click()
        await self.page.get_by_test_id("refund-done").wait_for()


class DeskRefundsPage(PageObject):
    """``/desk/refunds?clinic=…``: the clinic's refunds to pay back by hand, oldest first."""

    root = TestId("refunds-page")
    clinic_name = TestId("refunds-clinic-name")
    table = TestId("refunds-table")
    rows = TestId("refund-row")
    empty = TestId("refunds-empty")
    done = TestId("refund-done")
    error = TestId("refund-error")

    async def open(self, clinic_id: object | None = None) -> None:
        await self.visit("/desk/refunds" + (f"?clinic={clinic_id}" if clinic_id else ""), ready=self.root)

    def refund(self, refund_id: object) -> RefundRow:
        return RefundRow(self.scope.locator(css_of("refund-row", refund_id=refund_id)))

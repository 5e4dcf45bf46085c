"""What every page object is made of: locators found by ``data-testid``, declared once.

- ``TestId("confirm-button")`` on a class is the locator ``get_by_test_id("confirm-button")`` of each instance,
  looked up inside the instance's scope (the page, or a part's own element), or inside another declared
  locator with ``within=``.
- ``PageObject(page)`` is a whole page; ``Part(locator)`` is a piece of one (a card, a row) whose test ids
  are looked up inside its own element, ``root``.
- ``by_test_id("slot", slot_id=…)`` finds the element with that test id and ``data-slot-id="…"``
  (``css_of`` writes that selector, for looking inside another locator).
"""

from __future__ import annotations

from playwright.async_api import Locator, Page


def css_of(test_id: str, **data: object) -> str:
    """CSS for ``data-testid="test_id"`` and, for each keyword, ``data-<key with dashes>="value"``."""
    return f'[data-testid="{test_id}"]' + "".join(
        f'[data-{key.replace("_", "-")}="{value}"]' for key, value in data.items())


async def text_of(locator: Locator) -> str:
    """The element's text as a person reads it (surrounding white space dropped)."""
    return (await locator.inner_text()).strip()


class TestId:
    """A declared locator: the element(s) with this ``data-testid`` in the page object's scope, or inside
    the ``within`` locator of the same page object."""

    __test__ = False  # a helper, not a test class for pytest to collect

    def __init__(self, test_id: str, within: TestId | None = None):
        self.test_id = test_id
        self.within = within

    def __get__(self, instance: PageObject | None, owner: type | None = None) -> Locator:
        if instance is None:
            return self  # looked up on the class: the declaration itself
        scope = self.within.__get__(instance) if self.within is not None else instance.scope
        return scope.get_by_test_id(self.test_id)


class PageObject:
    """A page a test drives in ``page`` (https://playwright.dev/docs/pom); its test ids are looked up in
    ``scope``, the whole page unless a part says otherwise."""

    def __init__(self, page: Page, scope: Page | Locator | None = None):
        self.page = page
        self.scope = scope if scope is not None else page

    def by_test_id(self, test_id: str, **data: object) -> Locator:
        """The element(s) with ``data-testid`` in this scope, narrowed to those whose ``data-*`` attributes
        have the given values (``booking_id=…`` is ``data-booking-id="…"``)."""
        if not data:
            return self.scope.get_by_test_id(test_id)
        return self.scope.locator(css_of(test_id, **data))

    async def visit(self, path: str, ready: Locator | None = None) -> None:
        """Go to ``path``; with ``ready``, wait until that element is there."""
        await self.page.goto(path)
        if ready is not None:
            await ready.wait_for()


class Part(PageObject):
    """A piece of a page (a card, a row, a table) found by its own locator, ``root``, inside which its test
    ids are looked up."""

    def __init__(self, root: Locator):
        super().__init__(root.page, scope=root)
        self.root = root

    async def data(self, name: str) -> str | None:
        """The root element's ``data-<name>`` attribute."""
        return await self.root.get_attribute(f"data-{name}")

"""End-to-end fixtures: the real app served on 127.0.0.1 and a real Chromium driven by Playwright.

One server per session (starting it costs seconds): a database cloned from the migrated template, the
demo data loaded into it, and ``vetbook serve`` as a child process. Tests that change data must put it
back themselves (the server is another process, so a rollback cannot undo its writes).

Playwright's async API is used, not pytest-playwright: the suite runs pytest-asyncio with one session
loop, and race tests open many browser contexts at once with ``asyncio.gather``.

Every test under tests/e2e/ gets the ``e2e`` marker (``pytest -m e2e`` / ``-m "not e2e"``).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.conftest import PROJECT_ROOT, cloned_database, connected, run_cli, vetbook_command
from tests.servers import LiveServer, running_app
from web.core.embedded_postgres import LocalPostgres

E2E_DIR = Path(__file__).resolve().parent
SCREENSHOT_DIR = PROJECT_ROOT / "test-artifacts" / "screenshots"
PHONE_VIEWPORT: ViewportSize = {"width": 360, "height": 740}
DESKTOP_VIEWPORT: ViewportSize = {"width": 1280, "height": 800}

# Debian's Chromium, because `playwright install` cannot download browsers here. Elsewhere (no such
# file) Playwright's own browser is used.
SYSTEM_CHROMIUM = Path(os.environ.get("VETBOOK_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_EXECUTABLE = str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.exists() else None
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No traffic of the browser's own: test traffic may only go to 127.0.0.1.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Resolve no host name but 127.0.0.1: a page that asks for anything else gets a DNS error instead of
    # reaching the network (the request log still records the attempt, and the test fails).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

# Only these hosts may be the target of a request made by a page under test.
LOCAL_HOSTS = {"127.0.0.1"}
# URLs that never leave the browser.
LOCAL_SCHEMES = {"about", "data", "blob"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Keep each phase's report on the test so that fixtures can tell, at teardown, whether it failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


# ------------------------------------------------------------------------------------------ the server


@pytest.fixture(scope="session")
def live_server(
    pg_server: LocalPostgres, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app with the demo data, served by a child process on a free port of 127.0.0.1."""
    with cloned_database(pg_server, template_database, "e2e") as database_url:
        run_cli(*vetbook_command("demo"), database_url=database_url)
        with running_app(database_url, tmp_path_factory.mktemp("e2e-server") / "server.log") as server:
            yield server


@pytest.fixture
async def live_db(live_server: LiveServer) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to the live server's database, for setting up and checking data."""
    async with connected(live_server.database_url) as connection:
        yield connection


# ----------------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM_EXECUTABLE, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class RequestLog:
    """Every URL the browser asked for during one test, from every context the test opened."""

    urls: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", lambda request: self.urls.append(request.url))

    def foreign(self) -> list[str]:
        """The requests whose target is not this machine's 127.0.0.1."""
        return [url for url in self.urls if not _is_local(url)]


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture
async def new_context(
    browser: Browser, live_server: LiveServer, request_log: RequestLog, request: pytest.FixtureRequest
) -> AsyncIterator[NewContext]:
    """Make browser contexts (separate cookie jars: separate people) on the live server.

    ``await new_context()`` for a desktop browser, ``viewport=PHONE_VIEWPORT`` for a phone,
    ``java_script_enabled=False`` for a browser without JavaScript; other keywords go to
    ``Browser.new_context``. Every request is recorded in ``request_log``; at the end the contexts are
    closed (with a screenshot of each open page if the test failed), and a test whose pages asked for
    anything outside 127.0.0.1 fails.
    """
    contexts: list[BrowserContext] = []

    async def make(**options) -> BrowserContext:
        options.setdefault("base_url", live_server.base_url)
        options.setdefault("viewport", DESKTOP_VIEWPORT)
        options.setdefault("locale", "id-ID")
        options.setdefault("timezone_id", "Asia/Jakarta")
        context = await browser.new_context(**options)
        context.set_default_timeout(10_000)
        request_log.attach(context)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        failed = _test_failed(request)
        for index, context in enumerate(contexts):
            if failed:
                for page_index, page in enumerate(context.pages):
                    await save_screenshot(page, f"failures/{request.node.name}-{index}-{page_index}")
            await context.close()
    foreign = request_log.foreign()
    assert not foreign, f"the browser sent requests away from 127.0.0.1: {foreign}"


@pytest.fixture
async def context(new_context: NewContext) -> BrowserContext:
    return await new_context()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
async def phone_page(new_context: NewContext) -> Page:
    """A page 360 x 740 CSS pixels: a small phone."""
    phone = await new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    return await phone.new_page()


@pytest.fixture
async def no_js_page(new_context: NewContext) -> Page:
    """A page of a browser with JavaScript turned off."""
    without_js = await new_context(java_script_enabled=False)
    return await without_js.new_page()


# --------------------------------------------------------------------------------------------- helpers


async def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page under test-artifacts/screenshots/ (git-ignored; CI keeps it) and return its path."""
    safe_name = re.sub(r"[^A-Za-z0-9_./-]+", "_", name).strip("/")
    path = SCREENSHOT_DIR / f"{safe_name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def document_scroll_width(page: Page) -> int:
    """The document's full width in CSS pixels: above the viewport's width, the page scrolls sideways."""
    return await page.evaluate("() => document.documentElement.scrollWidth")

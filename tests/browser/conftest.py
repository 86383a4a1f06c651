"""Fixtures of the browser tests: one Debian Chromium per test session (driven by Playwright
for Python), a fresh browser context and page per test, and the shop/dashboard helpers of
:mod:`tests.browser.dashboard`.

These tests are never skipped: without Chromium they fail, saying how to install it.
Every page a test opens is watched: a request beyond loopback (the dashboard must work
offline), an uncaught script error or a Content-Security-Policy violation fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

from tests.browser.dashboard import (
    CHROMIUM_ARGS,
    ChromiumMissing,
    Dashboard,
    Shop,
    chromium_path,
)

#: The issue's promise is "visible within 2 s"; the assertions wait up to 5 s so that a
#: loaded CI machine does not fail them, and still fail a page that never updates.
expect.set_options(timeout=5_000)

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    try:
        executable = chromium_path()
    except ChromiumMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    launched = playwright.chromium.launch(
        executable_path=executable, args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield launched
    finally:
        launched.close()


class PageWatch:
    """What the pages of one test did that they must not."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def request(self, request: Request) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK:
            self.problems.append(f"request beyond loopback: {request.method} {request.url}")

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.problems.append(f"CSP violation: {message.text}")

    def page_error(self, error: Exception) -> None:
        self.problems.append(f"uncaught script error: {error}")

    def attach(self, page: Page) -> None:
        page.on("console", self.console)
        page.on("pageerror", self.page_error)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (its own cookies); every page in it is watched."""
    watch = PageWatch()
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    opened.on("request", watch.request)
    opened.on("page", watch.attach)
    try:
        yield opened
    finally:
        opened.close()
    assert watch.problems == [], "\n".join(watch.problems)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A new page (tab) in the test's context."""
    return context.new_page()


@pytest.fixture(scope="module")
def example_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The bundled example catalog, set up by ``sellable example``; tests that use it
    must not change it (tests that change stock set up their own shop)."""
    return Shop.create(tmp_path_factory.mktemp("example-shop"))


@pytest.fixture(scope="module")
def example_dashboard(example_shop: Shop) -> Iterator[Dashboard]:
    """``sellable dashboard`` on :func:`example_shop`, on loopback."""
    with Dashboard(example_shop) as running:
        yield running


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    """A shop of the test's own, with the example catalog, free to change."""
    return Shop.create(tmp_path / "shop")

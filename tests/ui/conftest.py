"""The web UI in a real browser: Debian's Chromium driven by Playwright (no browser download).

A browser that cannot start fails the tests: install it with `scripts/system-deps.sh test`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.harness import Server

CHROMIUM = "/usr/bin/chromium"
#: what Chromium needs on a closed network (no sandbox as root, no calls home)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


#: how long an expectation or an action waits for the page (a deadline, not a measurement: a
#: loaded machine running the suite's other processes may take seconds to paint)
DEADLINE_MS = 30_000
expect.set_options(timeout=DEADLINE_MS)


# package scope, not session: Playwright's sync API keeps an event loop running in the thread
# while it lives, and tests of other packages that a worker runs afterwards call asyncio.run()
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/system-deps.sh test"
    # launch() starts Chromium on a fresh, empty --user-data-dir of its own (Playwright refuses
    # one passed in args); every test then opens a new context (cookies of its own)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def open_ui(browser: Browser, server: Server) -> Iterator[Callable[[str | None], Page]]:
    """A fresh browser context on the server's UI, logged in with ``token`` (or not at all).
    Dialogs (``alert``) are recorded on ``page.dialogs``: a test of injected markup asserts
    none fired."""
    contexts: list[BrowserContext] = []

    def open_page(token: str | None) -> Page:
        context = browser.new_context(base_url=server.url)
        context.set_default_timeout(DEADLINE_MS)
        contexts.append(context)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs  # type: ignore[attr-defined]
        page.goto("/")
        if token is not None:
            page.get_by_label("API token").fill(token)
            page.get_by_role("button", name="Log in").click()
            page.locator("#runs").wait_for()
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def user_token(server: Server) -> Callable[[str, str], str]:
    """An API token for a new user with ``role`` in project "default"."""

    def make(user: str, role: str) -> str:
        made = server.api.post("/tokens", json={"name": "ui", "user": user})
        assert made.status_code == 201, made.text
        added = server.http.put("/members", json={"user": user, "role": role})
        assert added.status_code in (200, 201), added.text
        return str(made.json()["token"])

    return make


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the test's tmp dir (kept as an artifact, not in the repo)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


#: set to write the README's screenshots (docs/img/*.png) when the tests that take them run
DOCS_SHOTS = os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1"
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"


def docs_screenshot(page: Page, name: str, top: Locator | None = None) -> None:
    """1100x700 of the page, from its top or from ``top``, as docs/img/NAME.png for the
    README; only when UPDATE_DOCS_SCREENSHOTS=1 (the repository keeps them small)."""
    if not DOCS_SHOTS:
        return
    page.set_viewport_size({"width": 1100, "height": 700})
    if top is None:
        page.evaluate("window.scrollTo(0, 0)")
    else:
        top.evaluate("el => el.scrollIntoView({ block: 'start' })")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / f"{name}.png"))

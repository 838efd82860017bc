"""Browser tests' helpers: the real API on a port, Debian's Chromium driven by Playwright.

The console is tested as an operator uses it: uvicorn serves ``create_app``
on a free port (in a thread of the test process), the worker of
tests/readside.py fills the store through Redis, and a headless Chromium
opens ``/console``. Playwright's own browser downloads are not used: the
tests drive the distribution's ``chromium`` (``CHROMIUM``), and skip with
the reason from ``browser_missing()`` where it or the playwright package is
absent. ``python -m tests.console_screenshots`` uses the same pieces.

Import the fixtures into a test module (``from tests.browser import ...``):
each ``<name>_fixture`` provides the fixture ``<name>``, so a test's parameter
does not shadow the import. ``console_api`` is module-scoped and needs a
``dataset`` fixture there. The ``browser`` itself is tests/conftest.py's: one
for the session, since Playwright's sync API runs one at a time in a process
(a second, imported into another module, would fail to start).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from tests.readside import TOKENS, api_settings, secret
from worker.api import create_app
from worker.dev.embedded import free_port

CHROMIUM = Path(os.environ.get("JOBTASK_CHROMIUM", "/usr/bin/chromium"))
# No sandbox (tests run as root in CI), nothing fetched from the network, no first-run UI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
# Tokens of the browser tests: the read tests' ones, and a domain the live tests change freely.
LIVE_DOMAIN = "domain-console-live"
CONSOLE_TOKENS = {**TOKENS, "token-live": {"domain_id": LIVE_DOMAIN}}
# What the API answers for a path it does not serve (worker.api's coded 404).
UNSUPPORTED = "ERROR_UNSUPPORTED_API"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "the playwright package is not installed (pip install '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)"
    return None


class ApiServer:
    """``create_app(settings)`` (or any ASGI app) served by uvicorn on a free port, in a thread."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()  # a given port: the same server back after a stop
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning",
            lifespan="on", timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"api-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def without_paths(app, *prefixes: str):
    """``app`` as a server that predates ``prefixes``: those paths answer its unknown-path 404.

    The console must work against such a server (today's, before the job and
    watch endpoints), so its tests can pin that down whatever the API grows.
    """

    async def older(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(prefixes):
            message = f"Unsupported API. (method = {scope['method']}, path = {scope['path']})"
            detail = {"code": UNSUPPORTED, "message": message}
            body = json.dumps({"detail": detail}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return older


# The endpoints of issues 9 and 10, absent from a server that predates them.
NEWER_PATHS = (
    "/cost-analysis/v1/auth/",
    "/cost-analysis/v1/job/",
    "/cost-analysis/v1/job-task/history",
    "/cost-analysis/v1/job-task/watch",
)


@contextmanager
def serving(app) -> Iterator[ApiServer]:
    server = ApiServer(app).start()
    try:
        yield server
    finally:
        server.stop()


def console_app(store_url: str, db_name: str, broker_url: str, tokens: dict | None = None, queue: str | None = None):
    """The API of one test database; ``queue``: the pipeline's, where a cancel must reach its worker."""
    overrides = {"queue": queue} if queue else {}
    return create_app(api_settings(store_url, db_name, broker_url, api_tokens=tokens or CONSOLE_TOKENS, **overrides))


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, under Playwright's sync API."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - absent where the tests skip

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """One browser tab on the console, with the steps an operator takes."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(15_000)

    def open(self, hash_route: str = "") -> Console:
        self.page.goto(f"{self.base_url}/console{hash_route}")
        return self

    def sign_in(self, token: str) -> Console:
        self.page.get_by_label("API token").fill(secret(token))
        self.page.get_by_role("button", name="Sign in").click()
        return self

    def signed_in(self) -> Console:
        self.page.get_by_role("button", name="Sign out").wait_for()
        return self

    def tasks(self):
        """The rows of the tasks table."""
        return self.page.locator("[data-testid=task-row]")

    def task_row(self, job_task_id: str):
        return self.page.locator(f"[data-testid=task-row][data-id='{job_task_id}']")

    def job_row(self, job_id: str):
        return self.page.locator(f"[data-testid=job-row][data-id='{job_id}']")

    def go(self, hash_route: str) -> Console:
        """Another view, as a link would go there (no reload)."""
        self.page.evaluate("route => { location.hash = route }", hash_route)
        return self

    def focused(self, selector: str) -> bool:
        return self.page.evaluate("s => Boolean(document.activeElement && document.activeElement.matches(s))", selector)

    def tab_to(self, selector: str, limit: int = 60) -> None:
        """Press Tab until the focus is on ``selector``: it is reachable by keyboard."""
        for _ in range(limit):
            if self.focused(selector):
                return
            self.page.keyboard.press("Tab")
        raise AssertionError(f"{selector} not reached in {limit} presses of Tab")

    def overflow(self) -> int:
        """How many pixels the page is wider than the window (0: no horizontal scrolling)."""
        return self.page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
        )


def expect(target):
    """Playwright's ``expect`` (its assertions wait), imported only where the tests run."""
    from playwright.sync_api import expect as playwright_expect  # noqa: PLC0415

    return playwright_expect(target)


# --- pytest fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="console_api")
def console_api_fixture(dataset, store_url, broker_url):
    """The read API of ``dataset``'s store, with the console, on a free port."""
    with serving(console_app(store_url, dataset.db_name, broker_url)) as server:
        yield server


@pytest.fixture(scope="module", name="older_console_api")
def older_console_api_fixture(dataset, store_url, broker_url):
    """The same API as a server without the job, scope, history and watch endpoints."""
    app = without_paths(console_app(store_url, dataset.db_name, broker_url), *NEWER_PATHS)
    with serving(app) as server:
        yield server


def open_console(browser, server: ApiServer, viewport: dict = WIDE):
    """A fresh tab (its own sessionStorage) on ``server``'s console; close its context after."""
    context = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-US")
    return context, Console(context.new_page(), server.url)


@pytest.fixture(name="console")
def console_fixture(browser, console_api):
    context, tab = open_console(browser, console_api)
    yield tab
    context.close()

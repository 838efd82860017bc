"""The operators' console in a real browser, against the real API, worker, Redis and store.

The dataset is tests/readside.py's (the seed's two JobTasks and the operator
tasks, sent as events through a Celery worker); uvicorn serves the API on a
free port and Debian's Chromium opens ``/console`` (tests/browser.py). The
browser tests skip, with the reason in pytest's summary, where Chromium or
playwright is absent; the serving tests at the top run everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.browser import (  # noqa: F401 - fixtures
    CONSOLE_TOKENS,
    LIVE_DOMAIN,
    NARROW,
    browser_missing,
    console_api_fixture,
    console_fixture,
    expect,
    older_console_api_fixture,
    open_console,
    serving,
)
from tests.readside import SEED_GET, SEED_SECOND, api_settings, secret, text, worker_dataset
from worker.api import create_app
from worker.api.console import console_files
from worker.dev.embedded import free_port

SEED_IDS = {SEED_GET["job_task_id"], SEED_SECOND["job_task_id"]}
needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


@pytest.fixture(scope="module")
def dataset(broker_url, store_url, tmp_path_factory):
    with worker_dataset(broker_url, store_url, tmp_path_factory.mktemp("console")) as pipeline:
        yield pipeline


# --- serving: no browser needed ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def http():
    settings = api_settings("mongodb://127.0.0.1:1/", "unused", "redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_console_page_is_served_with_its_script_and_style(http):
    page = http.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    # Everything the page loads comes from the API itself, relative to /console.
    loaded = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert sorted(loaded) == ["console/console.css", "console/console.js", "data:,"]
    script = http.get("/console/console.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert http.get("/console/console.css").headers["content-type"].startswith("text/css")


def test_only_the_consoles_own_files_are_served(http):
    for path in ("/console/nope.js", "/console/..%2Fapi.py", "/console/%2e%2e/console.py", "/console/../api.py"):
        response = http.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"]["code"] == "ERROR_UNSUPPORTED_API"
    assert set(console_files()) == {"index.html", "console.js", "console.css"}
    assert "/console" not in http.get("/openapi.json").json()["paths"]


# --- in the browser -------------------------------------------------------------------------------


@needs_browser
def test_a_token_signs_in_and_the_seeds_two_tasks_show(console):
    console.open().sign_in("token-seed").signed_in()
    console.page.get_by_role("link", name="Tasks", exact=True).click()
    rows = console.tasks()
    rows.first.wait_for()
    assert set(rows.evaluate_all("rows => rows.map(row => row.dataset.id)")) == SEED_IDS
    first = console.task_row(SEED_GET["job_task_id"])
    assert first.locator("[data-field=status]").inner_text().strip() == "Success"
    assert first.locator("[data-field=job_id]").inner_text() == SEED_GET["job_id"]
    assert first.locator("[data-field=options]").inner_text() == "month=202207 · platform=gcp"
    assert console.task_row(SEED_SECOND["job_task_id"]).locator("[data-field=created_count]").inner_text() == "5,756"
    assert console.page.locator("#view-tasks").get_by_test_id("range").inner_text() == "1–2 of 2"
    # The token stays in the tab's storage; no URL carries it, the watch stream's neither.
    assert console.page.evaluate("() => sessionStorage.getItem('jobtask.console.token')") == secret("token-seed")
    leaked = [url for url in console.requests if "token-seed" in url]
    assert not leaked and "token-seed" not in console.page.url
    assert not console.errors


@needs_browser
def test_a_wrong_token_shows_an_error_and_stays_at_the_prompt(console):
    console.open().sign_in("not-a-token")
    message = console.page.get_by_test_id("sign-in-message")
    message.wait_for()
    assert "refused" in message.inner_text() and "ERROR_AUTHENTICATE_FAILURE" in message.inner_text()
    assert console.page.get_by_label("API token").is_visible()
    assert console.page.evaluate("() => sessionStorage.getItem('jobtask.console.token')") is None


@needs_browser
def test_a_stored_token_that_is_refused_returns_to_the_prompt_saying_why(console):
    console.open().sign_in("token-seed").signed_in()
    # As if the token had been revoked since: the next load finds it refused.
    console.page.evaluate("() => sessionStorage.setItem('jobtask.console.token', 'revoked-token')")
    console.page.reload()
    message = console.page.get_by_test_id("sign-in-message")
    message.wait_for()
    assert "refused" in message.inner_text()
    assert console.page.evaluate("() => sessionStorage.getItem('jobtask.console.token')") is None


@needs_browser
def test_a_token_that_may_read_nothing_is_told_so(console):
    console.open().sign_in("token-nothing")
    message = console.page.get_by_test_id("sign-in-message")
    expect(message).to_contain_text("permission denied")
    expect(message).to_contain_text("ERROR_PERMISSION_DENIED")


@needs_browser
def test_an_unreachable_store_is_said_in_words_never_a_blank_table(browser, broker_url):
    dead_store = f"mongodb://127.0.0.1:{free_port()}/"
    settings = api_settings(dead_store, "unused", broker_url, api_tokens=CONSOLE_TOKENS, store_timeout_ms=300)
    with serving(create_app(settings)) as server:
        context, console = open_console(browser, server)
        try:
            console.open("#/tasks").sign_in("token-seed")
            # At the prompt (the token is checked with a read) or in the view, once scopes need no store.
            said = console.page.locator(
                "[data-testid=sign-in-message]:not([hidden]), #view-tasks [data-testid=view-error]:not([hidden])")
            expect(said).to_contain_text("the store cannot be reached", timeout=30_000)
            expect(said).to_contain_text("ERROR_DB_UNAVAILABLE")
        finally:
            context.close()


@needs_browser
def test_sign_out_forgets_the_token(console):
    console.open().sign_in("token-seed").signed_in()
    console.page.get_by_role("button", name="Sign out").click()
    console.page.get_by_label("API token").wait_for()
    assert console.page.evaluate("() => sessionStorage.getItem('jobtask.console.token')") is None
    assert console.tasks().count() == 0


@needs_browser
def test_a_task_row_changes_status_in_place_when_its_events_are_applied(console, dataset):
    job_task_id = "job-task-console-live1"
    events, ids = dataset.events, {"domain_id": LIVE_DOMAIN}
    events.created(job_task_id=job_task_id, job_id="job-live", data_source_id="ds-live",
                   options={"month": "202501"}, **ids)
    events.started(job_task_id, **ids)
    dataset.wait_until_idle()
    console.open("#/tasks").sign_in("token-live").signed_in()
    row = console.task_row(job_task_id)
    row.locator("[data-status=IN_PROGRESS]").wait_for()
    console.page.evaluate("() => { window.notReloaded = true }")

    events.progressed(job_task_id, created_count_delta=42, **ids)
    events.succeeded(job_task_id, occurred_at=text(datetime.now(UTC)), **ids)
    dataset.wait_until_idle()
    # Live, or by polling where the server has no stream yet: either way without a reload.
    row.locator("[data-field=status] [data-status=SUCCESS]").wait_for(timeout=30_000)
    assert row.locator("[data-field=created_count]").inner_text() == "42"
    assert row.locator("[data-field=finished_at] time").count() == 1
    assert console.page.evaluate("() => window.notReloaded") is True


@needs_browser
def test_a_task_opens_its_detail_and_history(console):
    console.open("#/tasks").sign_in("token-seed").signed_in()
    console.task_row(SEED_GET["job_task_id"]).locator("[data-field=options]").click()
    console.page.get_by_test_id("task-fields").get_by_text("ds-c96609f5afeb").wait_for()
    assert re.search(r"Task\s+job-task-3622d860a776", console.page.get_by_role("heading", level=1).inner_text())
    assert '"platform": "gcp"' in console.page.get_by_test_id("task-options").inner_text()
    # The timeline, or a readable word on why there is none: never a blank box.
    history = console.page.locator("[data-testid=history-item], [data-testid=history-error]:not([hidden])")
    history.first.wait_for()
    console.page.get_by_test_id("task-back").click()
    console.task_row(SEED_GET["job_task_id"]).wait_for()


@needs_browser
def test_against_a_server_without_jobs_the_jobs_view_says_so_and_tasks_still_work(browser, older_console_api):
    context, console = open_console(browser, older_console_api)
    try:
        console.open().sign_in("token-seed").signed_in()
        unsupported = console.page.get_by_test_id("table-unsupported")
        unsupported.wait_for()
        assert "does not serve Jobs" in unsupported.inner_text()
        connection = console.page.get_by_test_id("connection")
        connection.locator("text=Polling").wait_for()
        console.page.get_by_role("link", name="Tasks", exact=True).click()
        console.tasks().first.wait_for()
        assert console.tasks().count() == 2
        console.task_row(SEED_GET["job_task_id"]).get_by_role("link", name=SEED_GET["job_id"]).click()
        console.page.get_by_test_id("job-unavailable").wait_for()
        console.tasks().first.wait_for()
        assert set(console.tasks().evaluate_all("rows => rows.map(row => row.dataset.id)")) == {SEED_GET["job_task_id"]}
        console.task_row(SEED_GET["job_task_id"]).get_by_role("link", name=SEED_GET["job_task_id"]).click()
        expect(console.page.get_by_test_id("history-error")).to_contain_text("not serve task histories")
        assert not console.errors
    finally:
        context.close()


@needs_browser
def test_filters_live_in_the_url_and_survive_a_reload(console):
    console.open("#/tasks").sign_in("token-a").signed_in()
    console.tasks().first.wait_for()
    console.page.get_by_test_id("tasks-status").select_option("FAILURE")
    console.page.wait_for_function("() => document.querySelectorAll('[data-testid=task-row]').length === 1")
    assert console.task_row("job-task-a03").is_visible()
    assert console.page.url.endswith("#/tasks?status=FAILURE")
    console.page.reload()
    console.task_row("job-task-a03").wait_for()
    assert console.tasks().count() == 1
    assert console.page.get_by_test_id("tasks-status").input_value() == "FAILURE"


@needs_browser
def test_at_390_pixels_the_page_never_scrolls_sideways(browser, console_api):
    context, console = open_console(browser, console_api, NARROW)
    try:
        console.open()
        console.page.get_by_label("API token").wait_for()
        assert console.overflow() <= 0, "sign-in"
        console.sign_in("token-a").signed_in()
        for route, ready in (
            ("#/jobs", "[data-testid=jobs-table] tbody tr"),
            ("#/tasks", "[data-testid=task-row]"),
            ("#/jobs/job-1", "[data-testid=task-row]"),
            ("#/tasks/job-task-a01", "[data-testid=task-fields] dt"),
        ):
            console.go(route)
            console.page.locator(ready).first.wait_for()
            assert console.overflow() <= 0, route
        assert not console.errors
    finally:
        context.close()


@needs_browser
def test_the_token_form_and_the_rows_are_reachable_with_tab_and_enter(console):
    console.open("#/tasks")
    console.tab_to("#token")
    console.page.keyboard.type(secret("token-seed"))
    console.page.keyboard.press("Enter")
    console.signed_in()
    console.tasks().first.wait_for()
    row_link = f"[data-testid=task-row][data-id='{SEED_SECOND['job_task_id']}'] a[href^='#/tasks/']"
    console.tab_to(row_link)
    console.page.keyboard.press("Enter")
    console.page.get_by_test_id("task-fields").get_by_text(SEED_SECOND["data_source_id"]).wait_for()
    assert console.focused("#task-title"), "the detail's heading takes the focus"
    console.tab_to("#task-back")
    console.page.keyboard.press("Enter")
    console.task_row(SEED_SECOND["job_task_id"]).wait_for()

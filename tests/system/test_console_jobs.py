"""The console's Jobs in a real browser: progress, counts, live change, cancel, keyboard, 390 pixels.

The jobs are tests/console_data.py's, sent as events through a real Celery
worker; the API (tests/browser.py) sends a cancel to that worker's queue, so
a Cancel clicked in the page is applied by the worker like any event. The
tests that change jobs do it in a domain of their own (``LIVE``), so the
others read the table of console_data.py as it stands.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser import (
    NARROW,
    ApiServer,
    browser_missing,
    console_app,
    expect,
    open_console,
    serving,
)
from tests.console_data import EXPECTED, HISTORY_TASK, NEWEST_FIRST, OPS_TOKENS, RUNNING_JOB, drive_operations
from tests.harness import Pipeline, wait_for
from tests.readside import bearer, secret, text
from worker.contract.changes import is_entry_id, reset_entry

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

LIVE = "domain-ops-live"
UNDECLARED = "domain-ops-undeclared"
TOKENS = {
    **OPS_TOKENS,
    "token-undeclared": {"domain_id": UNDECLARED},
    "token-live-read": {"domain_id": LIVE},
    "token-live-cancel": {"domain_id": LIVE, "permissions": ["read", "cancel"]},
}
LABELS = {"PENDING": "Pending", "IN_PROGRESS": "In progress", "SUCCESS": "Success",
          "FAILURE": "Failure", "CANCELED": "Canceled", "TIMEOUT": "Timed out"}


@pytest.fixture(scope="module")
def dataset(broker_url, store_url, tmp_path_factory):
    pipeline = Pipeline(broker_url, store_url, tmp_path_factory.mktemp("console-jobs"))
    try:
        pipeline.start_worker(concurrency=2)
        drive_operations(pipeline)
        yield pipeline
    finally:
        pipeline.close()


@pytest.fixture(scope="module")
def api(dataset, store_url, broker_url):
    with serving(console_app(store_url, dataset.db_name, broker_url, TOKENS, dataset.queue)) as server:
        yield server


@pytest.fixture
def console(browser, api):
    context, tab = open_console(browser, api)
    yield tab
    context.close()


def running_job(dataset: Pipeline, job_id: str, tasks: int = 3) -> list[str]:
    """A job of ``LIVE`` declared with ``tasks`` tasks, all created and started; their ids."""
    events, ids = dataset.events, {"domain_id": LIVE}
    declared = datetime.now(UTC) - timedelta(minutes=10)
    events.job_created(job_id=job_id, data_source_id="ds-live", total_tasks=tasks,
                       options={"month": "202611"}, occurred_at=text(declared), **ids)
    task_ids = [f"job-task-{job_id.removeprefix('job-')}-{index}" for index in range(1, tasks + 1)]
    for index, job_task_id in enumerate(task_ids):
        events.created(job_task_id=job_task_id, job_id=job_id, data_source_id="ds-live",
                       occurred_at=text(declared + timedelta(seconds=index + 1)), **ids)
        events.started(job_task_id, occurred_at=text(declared + timedelta(minutes=1)), **ids)
    dataset.wait_until_idle()
    return task_ids


def progress_text(console, job_id: str) -> str:
    return console.job_row(job_id).locator("[data-testid=progress] .progress-text").inner_text()


# --- reading ------------------------------------------------------------------------------------


def test_each_job_shows_its_status_progress_counts_and_times(console):
    console.open("#/jobs").sign_in("token-ops").signed_in()
    rows = console.page.locator("[data-testid=job-row]")
    rows.first.wait_for()
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.id)") == NEWEST_FIRST
    assert console.page.locator("#view-jobs").get_by_test_id("range").inner_text() == "1–5 of 5"
    for job_id, (status, (finished, total), counts) in EXPECTED.items():
        row = console.job_row(job_id)
        badge = row.locator("[data-field=status] [data-testid=status]")
        assert badge.get_attribute("data-status") == status, job_id
        assert badge.inner_text().strip() == LABELS[status], job_id
        percent = finished * 100 // total
        assert progress_text(console, job_id) == f"{finished} of {total} · {percent}%", job_id
        bar = row.get_by_role("progressbar")
        assert (bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")) == (str(finished), str(total))
        fill = row.locator(".progress-fill").evaluate("node => node.style.width")
        assert fill == f"{percent}%", job_id
        shown = row.locator("[data-testid=task-counts] li").evaluate_all(
            "items => items.map(item => [item.dataset.status, item.textContent])")
        assert shown == [[name, f"{LABELS[name]}: {n}"] for name, n in sorted(
            counts.items(), key=lambda item: list(LABELS).index(item[0]))], job_id
        finished_cell = row.locator("[data-field=finished_at]").inner_text()
        if status == "IN_PROGRESS":
            assert re.fullmatch(r"running 2h 0\dm", finished_cell), finished_cell
        else:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d", finished_cell), finished_cell
    assert console.job_row(RUNNING_JOB).locator("[data-field=created_count]").inner_text() == "12,344"
    assert console.job_row(RUNNING_JOB).locator("[data-field=data_source_id]").inner_text() == "ds-aws-billing"
    assert console.page.get_by_test_id("cancel-job").count() == 0, "a read-only token sees no Cancel"
    assert not console.errors


def test_a_job_nobody_declared_says_its_total_is_unknown_rather_than_100_percent(console, dataset):
    """The seed's flow: a task with a job_id and no job.created; every task known has succeeded."""
    ids = {"domain_id": UNDECLARED}
    dataset.events.created(job_task_id="job-task-undeclared-1", job_id="job-undeclared", data_source_id="ds-1",
                           **ids)
    dataset.events.succeeded("job-task-undeclared-1", **ids)
    dataset.wait_until_idle()
    console.open("#/jobs").sign_in("token-undeclared").signed_in()
    row = console.job_row("job-undeclared")
    row.wait_for()
    assert progress_text(console, "job-undeclared") == "1 of 1 known · total not declared"
    bar = row.get_by_role("progressbar")
    assert "never declared" in bar.get_attribute("aria-valuetext")
    assert bar.get_attribute("title").startswith("no job.created declared this job's total")
    assert row.locator("[data-field=finished_at]").inner_text() == "waiting for job.created"
    assert not console.errors


def test_status_is_never_shown_by_colour_alone(console):
    console.open("#/jobs").sign_in("token-ops").signed_in()
    console.page.locator("[data-testid=job-row]").first.wait_for()
    # Each status has a word and a glyph of its own shape, in every badge and every count.
    glyphs = console.page.evaluate("""() => {
        const seen = {};
        for (const node of document.querySelectorAll('[data-testid=job-row] [data-status]')) {
            const svg = node.querySelector('svg');
            if (!svg) continue;
            (seen[node.dataset.status] ||= new Set()).add(svg.innerHTML);
        }
        return Object.fromEntries(Object.entries(seen).map(([status, shapes]) => [status, [...shapes]]));
    }""")
    assert set(glyphs) == set(LABELS), "every status appears in the data set"
    assert all(len(shapes) == 1 for shapes in glyphs.values()), "one glyph a status"
    assert len({shapes[0] for shapes in glyphs.values()}) == len(LABELS), "no two statuses share a glyph"
    for badge in console.page.locator("[data-testid=job-row] [data-testid=status]").all():
        assert badge.inner_text().strip() == LABELS[badge.get_attribute("data-status")]
    # The progress is a number in words as well as a bar.
    for bar in console.page.locator("[data-testid=job-row] [data-testid=progress]").all():
        assert re.fullmatch(r"\d+ of \d+ · \d+%", bar.locator(".progress-text").inner_text())


def test_filters_by_status_and_data_source_narrow_the_jobs(console):
    console.open("#/jobs").sign_in("token-ops").signed_in()
    console.page.locator("[data-testid=job-row]").first.wait_for()
    ids = "rows => rows.map(row => row.dataset.id)"
    console.page.get_by_test_id("jobs-status").select_option("FAILURE")
    console.page.wait_for_function("() => document.querySelectorAll('[data-testid=job-row]').length === 1")
    assert console.page.locator("[data-testid=job-row]").evaluate_all(ids) == ["job-azure-202611"]
    console.page.get_by_test_id("jobs-status").select_option("")
    console.page.get_by_test_id("jobs-data-source").select_option("ds-aws-billing")
    console.page.wait_for_function("() => document.querySelectorAll('[data-testid=job-row]').length === 2")
    assert console.page.locator("[data-testid=job-row]").evaluate_all(ids) == ["job-aws-202611", "job-aws-202610"]
    assert console.page.url.endswith("#/jobs?data_source_id=ds-aws-billing")
    console.page.get_by_test_id("jobs-status").select_option("TIMEOUT")
    expect(console.page.get_by_test_id("table-empty")).to_have_text("No jobs match these filters.")


def test_the_data_source_filter_offers_a_declared_job_without_tasks_yet(console, dataset):
    dataset.events.job_created(job_id="job-live-declared", data_source_id="ds-declared-only", total_tasks=2,
                               domain_id=LIVE)
    dataset.wait_until_idle()
    console.open("#/jobs").sign_in("token-live-read").signed_in()
    expect(console.job_row("job-live-declared").locator(".progress-text")).to_have_text("0 of 2 · 0%")
    choices = console.page.get_by_test_id("jobs-data-source").locator("option")
    expect(choices.filter(has_text="ds-declared-only")).to_have_count(1)
    console.page.get_by_test_id("jobs-data-source").select_option("ds-declared-only")
    console.page.wait_for_function("() => document.querySelectorAll('[data-testid=job-row]').length === 1")
    assert console.job_row("job-live-declared").is_visible()


def test_a_job_opens_its_tasks_under_its_progress(console):
    console.open("#/jobs").sign_in("token-ops").signed_in()
    console.job_row(RUNNING_JOB).locator("[data-field=created_count]").click()
    summary = console.page.get_by_test_id("job-summary")
    expect(summary.locator(".progress-text")).to_have_text("7 of 12 · 58%")
    console.tasks().nth(11).wait_for()
    assert console.tasks().count() == 12
    statuses = console.tasks().locator("[data-field=status] [data-testid=status]").evaluate_all(
        "nodes => nodes.map(node => node.dataset.status)")
    assert sorted(statuses) == sorted(["PENDING"] * 4 + ["IN_PROGRESS"] + ["SUCCESS"] * 7)
    # options, compact: key=value on one line
    assert console.tasks().first.locator("[data-field=options]").inner_text().startswith("month=202611 · account=")


def serves_history(api) -> bool:
    """Whether this API has ``POST job-task/history`` (branch live), asked as the page asks."""
    request = urllib.request.Request(
        f"{api.url}/cost-analysis/v1/job-task/history", method="POST",
        data=json.dumps({"job_task_id": HISTORY_TASK}).encode(),
        headers={**bearer("token-ops"), "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404 and json.load(error)["detail"]["code"] == "ERROR_UNSUPPORTED_API":
            return False
        raise


def test_a_tasks_history_timeline_marks_duplicates_and_ignored_events(console, api):
    console.open("#/jobs").sign_in("token-ops").signed_in()
    console.go(f"#/jobs/{RUNNING_JOB}")
    console.task_row(HISTORY_TASK).locator("[data-field=created_count]").click()
    console.page.get_by_test_id("task-fields").get_by_text("ds-aws-billing").wait_for()
    if not serves_history(api):
        # Never a blank box: the page says where the history is instead.
        expect(console.page.get_by_test_id("history-error")).to_contain_text(
            f"jobtask history {HISTORY_TASK} --domain domain-ops")
        pytest.skip("this API has no POST job-task/history yet: the timeline itself is not checked")
    items = console.page.get_by_test_id("history-item")
    items.nth(5).wait_for()
    shown = items.evaluate_all("""items => items.map(item => [
        item.querySelector('.event-kind').textContent, item.dataset.outcome,
        Boolean(item.querySelector('.no-effect-note'))])""")
    assert shown == [
        ["created", "applied", False], ["started", "applied", False], ["progressed", "applied", False],
        ["progressed", "duplicate", True], ["succeeded", "applied", False], ["timed_out", "ignored", True],
    ]
    assert console.page.locator("#history-count").inner_text() == "(6)"
    # Marked in words, not only by a colour or a dashed border.
    duplicate, ignored = (items.nth(index).inner_text().lower() for index in (3, 5))
    assert "duplicate" in duplicate and "no effect" in duplicate
    assert "ignored" in ignored and "no effect" in ignored
    assert "already ended by" in ignored, "the worker's reason is shown"
    assert not console.errors


# --- live ---------------------------------------------------------------------------------------


def job_lists(console) -> int:
    """How many times the page has asked for the list of jobs."""
    return sum(url.endswith("/job/list") for url in console.requests)


def test_a_progress_bar_moves_and_the_status_changes_without_a_reload(console, dataset):
    task_ids = running_job(dataset, "job-live-moving")
    console.open("#/jobs").sign_in("token-live-read").signed_in()
    row = console.job_row("job-live-moving")
    expect(row.locator(".progress-text")).to_have_text("0 of 3 · 0%")
    connection = console.page.get_by_test_id("connection")
    expect(connection).to_have_attribute("data-state", "live")
    expect(connection).to_have_text("Live")
    console.page.evaluate("() => { window.notReloaded = true }")
    lists = job_lists(console)

    dataset.events.succeeded(task_ids[0], created_count_delta=100, domain_id=LIVE)
    dataset.wait_until_idle()
    # From the watch stream: the row changes, and the page asked for no list to see it.
    expect(row.locator(".progress-text")).to_have_text("1 of 3 · 33%", timeout=30_000)
    assert job_lists(console) == lists, "the change came by the stream, not by a reload of the list"
    expect(row.locator("[data-field=created_count]")).to_have_text("100")
    expect(row.locator("[data-field=status] [data-testid=status]")).to_have_attribute("data-status", "IN_PROGRESS")

    for job_task_id in task_ids[1:]:
        dataset.events.succeeded(job_task_id, domain_id=LIVE)
    dataset.wait_until_idle()
    expect(row.locator("[data-field=status] [data-testid=status]")).to_have_attribute(
        "data-status", "SUCCESS", timeout=30_000)
    expect(row.locator(".progress-text")).to_have_text("3 of 3 · 100%")
    assert row.locator("[data-field=finished_at] time").count() == 1
    assert console.page.evaluate("() => window.notReloaded") is True
    assert not console.errors


def test_a_dropped_stream_is_shown_and_the_page_reconnects_and_catches_up(browser, dataset, store_url, broker_url):
    task_ids = running_job(dataset, "job-live-dropped", tasks=2)

    def app():
        return console_app(store_url, dataset.db_name, broker_url, TOKENS, dataset.queue)

    server = ApiServer(app()).start()
    context, console = open_console(browser, server)
    try:
        console.open("#/jobs").sign_in("token-live-read").signed_in()
        connection = console.page.get_by_test_id("connection")
        expect(connection).to_have_attribute("data-state", "live")
        row = console.job_row("job-live-dropped")
        expect(row.locator(".progress-text")).to_have_text("0 of 2 · 0%")

        server.stop()  # the API goes away: the page says so, and keeps what it shows
        expect(connection).to_have_attribute("data-state", "reconnecting", timeout=30_000)
        expect(connection).to_contain_text("Disconnected")
        assert row.is_visible()
        dataset.events.succeeded(task_ids[0], domain_id=LIVE)  # a change it cannot hear of now
        dataset.wait_until_idle()

        server = ApiServer(app(), port=server.port).start()  # back, at the same address
        expect(connection).to_have_attribute("data-state", "live", timeout=60_000)
        expect(row.locator(".progress-text")).to_have_text("1 of 2 · 50%", timeout=30_000)
        assert not console.errors
    finally:
        context.close()
        server.stop()


def test_the_stream_carries_the_token_in_a_header_never_in_a_url(browser, dataset, store_url, broker_url):
    """Read with fetch, as EventSource cannot send headers; live rows, reset and resuming as before."""
    task_ids = running_job(dataset, "job-live-header")

    def app():
        return console_app(store_url, dataset.db_name, broker_url, TOKENS, dataset.queue)

    first = app()
    server = ApiServer(first).start()
    context, console = open_console(browser, server)
    streams = []  # the watch stream's answers, with the requests that opened them
    console.page.on("response", lambda response: streams.append(response) if "/job-task/watch" in response.url
                    else None)
    try:
        console.open("#/jobs").sign_in("token-live-read").signed_in()
        connection = console.page.get_by_test_id("connection")
        expect(connection).to_have_attribute("data-state", "live")
        row = console.job_row("job-live-header")
        expect(row.locator(".progress-text")).to_have_text("0 of 3 · 0%")
        lists = job_lists(console)

        dataset.events.succeeded(task_ids[0], domain_id=LIVE)
        dataset.wait_until_idle()
        expect(row.locator(".progress-text")).to_have_text("1 of 3 · 33%", timeout=30_000)
        assert job_lists(console) == lists, "the change came by the stream"

        # event: reset (the worker could not publish a change): the page reloads what it shows.
        with console.page.expect_request(lambda request: request.url.endswith("/job/list")):
            dataset.redis.xadd(first.state.settings.change_stream, reset_entry())

        # Dropped: the page reconnects by itself, resuming from its Last-Event-ID.
        server.stop()
        expect(connection).to_have_attribute("data-state", "reconnecting", timeout=30_000)
        dataset.events.succeeded(task_ids[1], domain_id=LIVE)
        dataset.wait_until_idle()
        server = ApiServer(app(), port=server.port).start()
        expect(connection).to_have_attribute("data-state", "live", timeout=60_000)
        expect(row.locator(".progress-text")).to_have_text("2 of 3 · 66%", timeout=30_000)

        opened = [response.request.all_headers() for response in streams if response.status == 200]
        assert len(opened) >= 2, "the first stream and the one after the drop"
        assert all(headers["authorization"] == f"Bearer {secret('token-live-read')}" for headers in opened)
        assert "last-event-id" not in opened[0]
        assert is_entry_id(opened[-1]["last-event-id"]), opened[-1]
        assert any("/job-task/watch" in url for url in console.requests)
        leaked = [url for url in console.requests if "token-live-read" in url or "access_token" in url]
        assert not leaked, leaked
        assert not console.errors
    finally:
        context.close()
        server.stop()


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_is_offered_only_to_a_token_with_the_cancel_permission(console):
    console.open("#/jobs").sign_in("token-ops").signed_in()
    console.job_row(RUNNING_JOB).wait_for()
    assert console.page.get_by_test_id("cancel-job").count() == 0
    console.go(f"#/jobs/{RUNNING_JOB}")
    console.page.get_by_test_id("job-summary").locator("[data-testid=progress]").wait_for()
    assert console.page.get_by_test_id("cancel-job").count() == 0

    console.page.get_by_role("button", name="Sign out").click()
    console.open("#/jobs").sign_in("token-ops-cancel").signed_in()
    console.job_row(RUNNING_JOB).wait_for()
    # On the one running job only: the others have ended.
    buttons = console.page.get_by_test_id("cancel-job")
    expect(buttons).to_have_count(1)
    assert console.job_row(RUNNING_JOB).get_by_role("button", name=f"Cancel job {RUNNING_JOB}").is_visible()
    console.go(f"#/jobs/{RUNNING_JOB}")
    expect(console.page.get_by_test_id("job-summary").get_by_test_id("cancel-job")).to_be_visible()


def test_cancel_asks_for_a_reason_and_the_row_turns_canceled_in_place(console, dataset):
    task_ids = running_job(dataset, "job-live-cancel")
    dataset.events.succeeded(task_ids[0], domain_id=LIVE)
    dataset.wait_until_idle()
    console.open("#/jobs").sign_in("token-live-cancel").signed_in()
    row = console.job_row("job-live-cancel")
    expect(row.locator(".progress-text")).to_have_text("1 of 3 · 33%")
    console.page.evaluate("() => { window.notReloaded = true }")

    row.get_by_test_id("cancel-job").click()
    dialog = console.page.get_by_test_id("cancel-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#cancel-job-id")).to_have_text("job-live-cancel")
    dialog.get_by_test_id("cancel-dismiss").click()  # keep running: nothing sent
    expect(dialog).to_be_hidden()
    assert dataset.task(task_ids[1])["status"] == "IN_PROGRESS"

    row.get_by_test_id("cancel-job").click()
    dialog.get_by_test_id("cancel-confirm").click()  # no reason yet
    expect(dialog.locator("#cancel-message")).to_contain_text("Say why")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("cancel-reason").fill("wrong month")
    dialog.get_by_test_id("cancel-confirm").click()
    expect(dialog).to_be_hidden()
    expect(console.page.get_by_test_id("toast")).to_contain_text("Job job-live-cancel canceled.")
    badge = row.locator("[data-field=status] [data-testid=status]")
    expect(badge).to_have_attribute("data-status", "CANCELED", timeout=30_000)
    expect(badge).to_have_text("Canceled")
    expect(row.get_by_test_id("cancel-job")).to_have_count(0)
    # The worker applied it: the finished task kept its status, the running ones are canceled.
    wait_for(lambda: dataset.task(task_ids[2])["status"] == "CANCELED")
    assert dataset.task(task_ids[0])["status"] == "SUCCESS"
    expect(row.locator(".progress-text")).to_have_text("3 of 3 · 100%", timeout=30_000)
    assert console.page.evaluate("() => window.notReloaded") is True
    console.go("#/jobs/job-live-cancel")
    expect(console.page.get_by_test_id("job-summary")).to_contain_text("wrong month")
    assert not console.errors


def test_cancel_and_its_dialog_work_from_the_keyboard(console, dataset):
    running_job(dataset, "job-live-keys", tasks=1)
    console.open("#/jobs").sign_in("token-live-cancel").signed_in()
    button = "[data-testid=job-row][data-id='job-live-keys'] [data-testid=cancel-job]"
    console.page.locator(button).wait_for()
    console.tab_to(button)
    console.page.keyboard.press("Enter")
    expect(console.page.get_by_test_id("cancel-dialog")).to_be_visible()
    assert console.focused("#cancel-reason"), "the dialog opens on its reason"
    console.page.keyboard.press("Escape")
    expect(console.page.get_by_test_id("cancel-dialog")).to_be_hidden()
    assert console.focused(button), "closing returns the focus to the button that opened it"

    console.page.keyboard.press("Enter")
    console.page.keyboard.type("from the keyboard")
    console.page.keyboard.press("Tab")
    assert console.focused("#cancel-dismiss")
    console.page.keyboard.press("Tab")
    assert console.focused("#cancel-confirm")
    console.page.keyboard.press("Enter")
    expect(console.job_row("job-live-keys").locator("[data-field=status] [data-testid=status]")).to_have_attribute(
        "data-status", "CANCELED", timeout=30_000)
    assert not console.errors


# --- narrow -------------------------------------------------------------------------------------


def test_at_390_pixels_every_job_reads_whole_without_sideways_scrolling(browser, api):
    context, console = open_console(browser, api, NARROW)
    try:
        console.open("#/jobs").sign_in("token-ops-cancel").signed_in()
        console.page.locator("[data-testid=job-row]").nth(4).wait_for()
        assert console.overflow() <= 0
        for job_id, (status, _progress, _counts) in EXPECTED.items():
            row = console.job_row(job_id)
            for part in (row.get_by_test_id("status"), row.locator(".progress-text"),
                         row.locator("[data-field=data_source_id]")):
                box = part.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"], (job_id, box)
            assert row.get_by_test_id("status").inner_text().strip() == LABELS[status]
        cancel = console.job_row(RUNNING_JOB).get_by_test_id("cancel-job")
        box = cancel.bounding_box()
        assert box and box["x"] + box["width"] <= NARROW["width"] and box["height"] >= 24, box
        cancel.click()
        dialog = console.page.get_by_test_id("cancel-dialog")
        expect(dialog).to_be_visible()
        box = dialog.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"], box
        dialog.get_by_test_id("cancel-dismiss").click()
        assert not console.errors
    finally:
        context.close()

"""``python -m tests.console_screenshots [DIR]``: the console's main views as PNGs (default docs/).

The same stack as the browser tests (tests/browser.py): an embedded Redis and
store in a temporary directory, the worker applying tests/console_data.py's
morning of jobs, the API on a free port, Debian's Chromium. Each view is
taken at 1280x800 and at 390x844 (its first screen), signed in as that
domain's operator with the cancel permission; the cancel dialog at 1280x800.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.browser import NARROW, WIDE, Console, browser_missing, chromium, console_app, serving
from tests.console_data import HISTORY_TASK, OPS_TOKENS, RUNNING_JOB, drive_operations
from tests.harness import Pipeline
from worker.dev.embedded import EmbeddedRedis, EmbeddedStore

ROOT = Path(__file__).resolve().parent.parent
VIEWS = (
    # name, route, what to wait for
    ("jobs", "#/jobs", "[data-testid=job-row]"),
    ("job", f"#/jobs/{RUNNING_JOB}", "[data-testid=job-summary] [data-testid=progress]"),
    ("tasks", "#/tasks", "[data-testid=task-row]"),
    ("task", f"#/tasks/{HISTORY_TASK}", "[data-testid=history-item], [data-testid=history-error]:not([hidden])"),
)


def take(browser, base_url: str, out: Path) -> list[Path]:
    written = []
    for size_name, viewport in (("", WIDE), ("-narrow", NARROW)):
        context = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-US")
        console = Console(context.new_page(), base_url).open()
        console.page.get_by_label("API token").wait_for()
        if not size_name:
            written.append(out / "console-sign-in.png")
            console.page.screenshot(path=written[-1])
        console.sign_in("token-ops-cancel").signed_in()
        for name, route, ready in VIEWS:
            console.go(route)
            console.page.locator(ready).first.wait_for()
            console.page.wait_for_timeout(500)  # let the job summary and counts settle
            console.page.mouse.move(0, 0)  # no row lit up by the pointer
            written.append(out / f"console-{name}{size_name}.png")
            console.page.screenshot(path=written[-1])  # the first screen, as the operator sees it
        if not size_name:
            console.go("#/jobs")
            console.job_row(RUNNING_JOB).get_by_test_id("cancel-job").click()
            console.page.get_by_test_id("cancel-reason").fill("wrong month: the plugin reads 202610")
            console.page.mouse.move(0, 0)
            written.append(out / "console-cancel.png")
            console.page.screenshot(path=written[-1])
        context.close()
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs"
    reason = browser_missing()
    if reason:
        print(f"console_screenshots: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="console-shots-") as scratch:
        directory = Path(scratch)
        redis_server = EmbeddedRedis(directory / "redis").start()
        store = EmbeddedStore(directory / "store").start()
        pipeline = Pipeline(redis_server.url, store.url, directory)
        try:
            pipeline.start_worker(concurrency=2)
            drive_operations(pipeline)
            app = console_app(store.url, pipeline.db_name, redis_server.url, OPS_TOKENS, pipeline.queue)
            with serving(app) as server, chromium() as browser:
                for path in take(browser, server.url, out):
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        finally:
            pipeline.close()
            store.stop()
            redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""``python -m tests.console_screenshots [DIR]``: the console's main views as PNGs (default docs/).

The same stack as the browser tests (tests/browser.py): an embedded Redis and
store in a temporary directory, the worker applying tests/readside.py's
dataset, the API on a free port, Debian's Chromium. Each view is taken at
1280x800 and at 390 pixels wide, signed in as domain-a's operator.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.browser import NARROW, WIDE, Console, browser_missing, chromium, console_app, serving
from tests.readside import worker_dataset
from worker.dev.embedded import EmbeddedRedis, EmbeddedStore

ROOT = Path(__file__).resolve().parent.parent
VIEWS = (
    # name, route, what to wait for
    ("jobs", "#/jobs", "[data-testid=jobs-table] tbody tr"),
    ("tasks", "#/tasks", "[data-testid=task-row]"),
    ("job", "#/jobs/job-2", "[data-testid=task-row]"),
    ("task", "#/tasks/job-task-a03", "[data-testid=history-item], [data-testid=history-error]:not([hidden])"),
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
        console.sign_in("token-a").signed_in()
        for name, route, ready in VIEWS:
            console.go(route)
            console.page.locator(ready).first.wait_for()
            console.page.wait_for_timeout(300)  # let the job summary and counts settle
            written.append(out / f"console-{name}{size_name}.png")
            console.page.screenshot(path=written[-1], full_page=bool(size_name))
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
        try:
            with worker_dataset(redis_server.url, store.url, directory) as pipeline:
                app = console_app(store.url, pipeline.db_name, redis_server.url)
                with serving(app) as server, chromium() as browser:
                    for path in take(browser, server.url, out):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        finally:
            store.stop()
            redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Session servers and per-test pipelines; see tests/harness.py.

The suite starts its own redis-server and secantusdb on free ports, so it
passes on a machine where nothing listens on 6379 or 27017 and never touches
the data of ``make run``.
"""

from __future__ import annotations

import pytest

from tests.browser import browser_missing, chromium
from tests.harness import Pipeline
from worker.dev.embedded import EmbeddedRedis, EmbeddedStore
from worker.store.client import connect
from worker.store.collections import ensure_indexes


def pytest_report_header(config):
    reason = browser_missing()
    return f"browser tests: SKIPPED, {reason}" if reason else "browser tests: headless Chromium via Playwright"


def pytest_terminal_summary(terminalreporter):
    """Say it in one line at the end: a green run without the browser tests is not the whole suite."""
    reason = browser_missing()
    if reason:
        skipped = [report for report in terminalreporter.stats.get("skipped", []) if reason in str(report.longrepr)]
        terminalreporter.write_sep("=", f"{len(skipped)} browser tests skipped: {reason}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session (tests/browser.py); skips where there is none."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def redis_server(servers_dir):
    server = EmbeddedRedis(servers_dir / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def store_server(servers_dir):
    server = EmbeddedStore(servers_dir / "store").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def store_url(store_server) -> str:
    return store_server.url


@pytest.fixture
def mongo_db(store_url, request):
    """A fresh database with the worker's indexes, dropped after the test."""
    name = "m_" + request.node.name.lower().replace("[", "_")[:40].strip("_-")
    db = connect(store_url, name.replace("]", "").replace("-", "_"), timeout_ms=10_000)
    db.client.drop_database(db.name)
    ensure_indexes(db)
    yield db
    db.client.drop_database(db.name)
    db.client.close()


@pytest.fixture
def pipeline_factory(broker_url, store_url, tmp_path):
    """Pipelines whose workers the test starts itself (fault tests)."""
    made = []

    def make() -> Pipeline:
        made.append(Pipeline(broker_url, store_url, tmp_path))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture
def pipeline(pipeline_factory) -> Pipeline:
    """A pipeline with one running worker of two pool processes."""
    made = pipeline_factory()
    made.start_worker(concurrency=2)
    return made


@pytest.fixture
def private_broker(tmp_path):
    """A redis-server of this test's own, which the test may cut off or restart.

    The session's Redis is shared by every test, so faults of the broker are
    done on this one.
    """
    server = EmbeddedRedis(tmp_path / "private-redis").start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def private_pipeline(private_broker, store_url, tmp_path):
    """A pipeline (no worker started) whose broker is ``private_broker``."""
    made = Pipeline(private_broker.url, store_url, tmp_path)
    yield made
    made.close()

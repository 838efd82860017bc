"""One tenant's reads cannot hold another's: patterns that backtrack are refused, heavy reads are few per token.

On a store of its own (a read that held it would hold every test after it),
filled through the worker: domain A has tasks with long texts in their
options, domain B a few tasks. A's token sends what issue 17 saw stall the
store (nested quantifiers over a long text) and the heaviest patterns it is
allowed, from two threads, again and again; B's plain list must complete
meanwhile, while one of A's reads is still running. A third read of A's
while two are in progress is refused at once with 429 and ``Retry-After``.
Nothing is timed: only which request ends before which.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest
from pymongo import monitoring

from tests.harness import Pipeline
from tests.readside import ReadClient, TaskSpec, api_settings, at, drive, secret
from worker.dev.embedded import EmbeddedStore

TOKENS = {"token-heavy-a": {"domain_id": "domain-a"}, "token-plain-b": {"domain_id": "domain-b"}}
LONG_TEXT = "a" * 15_000  # an options text as long as a task may carry (16 KiB of options)
HEAVY_TASKS = 30
# The store reads its clock every 64 documents of a scan: domain A holds enough more tasks that a
# scan of it always reads the clock after its long texts.
LIGHT_TASKS = 130

# The shape issue 17 was stalled with: an alternation inside a repeated group, over a long word.
BACKTRACKING = [r"^(?:[\w-]|\w\w)*!", r"(a+)+!", r"\w*\w*\w*!"]
# The most work a pattern that is taken makes the store do on each text: from every position,
# as many characters as the shortest text it matches may have (MAX_PATTERN_LENGTH).
HEAVIEST_ALLOWED = r"a{255}!"


def regex_list(pattern: str) -> dict:
    return {"query": {"filter": [{"k": "options.note", "v": pattern, "o": "regex"}]}}


@pytest.fixture(scope="module")
def api(broker_url, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tenant-reads")
    with ExitStack() as stack:
        store = EmbeddedStore(directory / "store").start()
        stack.callback(store.stop, kill=True)  # last: even when a read holds it, the store goes
        pipeline = Pipeline(broker_url, store.url, directory)
        stack.callback(pipeline.close)
        pipeline.start_worker(concurrency=2)
        heavy = [TaskSpec(f"job-task-h{n:03d}", "domain-a", "job-h", "ds-h", at("2024-05-01T00:00:00.000Z"),
                          {"note": LONG_TEXT}) for n in range(HEAVY_TASKS)]
        light = [TaskSpec(f"job-task-l{n:03d}", "domain-a", "job-l", "ds-l", at("2024-04-01T00:00:00.000Z"))
                 for n in range(LIGHT_TASKS)]
        plain = [TaskSpec(f"job-task-p{n}", "domain-b", "job-p", "ds-p", at("2024-05-02T00:00:00.000Z"))
                 for n in range(3)]
        drive(pipeline, heavy + light + plain)
        client = ReadClient(api_settings(store.url, pipeline.db_name, broker_url, api_tokens=TOKENS,
                                         query_time_limit_ms=120_000, api_reads_per_token=2))
        stack.callback(client.close)
        yield client


def test_a_pattern_that_can_backtrack_is_refused_with_its_reason(api):
    for pattern in BACKTRACKING:
        detail = api.error("list", regex_list(pattern), token="token-heavy-a")
        assert detail["code"] == "ERROR_INVALID_PARAMETER"
        assert f"the regular expression {pattern!r} is refused" in detail["message"], detail
    assert api.ok("list", regex_list(HEAVIEST_ALLOWED), token="token-heavy-a")["total_count"] == 0


def test_the_heaviest_allowed_read_ends_at_its_time_limit(api):
    limited = ReadClient(api.settings.model_copy(update={"query_time_limit_ms": 50}))
    try:
        detail = limited.error("list", regex_list(HEAVIEST_ALLOWED), token="token-heavy-a", status=504)
        assert detail["code"] == "ERROR_QUERY_TIMEOUT"
    finally:
        limited.close()


class HeavyReader:
    """Two threads of token A sending the backtracking and the heaviest allowed lists, until stopped."""

    def __init__(self, api: ReadClient) -> None:
        self.api = api
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.spans: list[tuple[float, float, int]] = []  # (sent, answered, status) of each heavy read
        self.refused: list[int] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        while not self.stopping.is_set():
            status = self.api.post("list", regex_list(BACKTRACKING[0]), token="token-heavy-a").status_code
            with self.lock:
                self.refused.append(status)
            sent = time.monotonic()
            status = self.api.post("list", regex_list(HEAVIEST_ALLOWED), token="token-heavy-a").status_code
            with self.lock:
                self.spans.append((sent, time.monotonic(), status))

    def __enter__(self) -> HeavyReader:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_another_tenants_plain_list_completes_while_the_heaviest_allowed_read_runs(api):
    slots = api.http.app.state.read_slots
    with HeavyReader(api) as reader:
        deadline = time.monotonic() + 120
        while slots.in_progress(secret("token-heavy-a")) < 2:
            assert time.monotonic() < deadline, "token A's reads never ran two at once"
            time.sleep(0.01)
        listed = api.post("list", {"query": {}}, token="token-plain-b")
        b_answered = time.monotonic()
    assert listed.status_code == 200, listed.text
    assert {row["job_task_id"] for row in listed.json()["results"]} == {"job-task-p0", "job-task-p1", "job-task-p2"}
    # B's list ended while one of A's heavy reads, sent before it ended, was still running.
    assert any(sent < b_answered < answered for sent, answered, _ in reader.spans), reader.spans
    assert {status for _, _, status in reader.spans} == {200}
    assert set(reader.refused) == {400}


def test_a_token_runs_its_expensive_reads_two_at_once_and_a_third_is_refused_at_once(api):
    slots = api.http.app.state.read_slots
    held = [slots.acquire(secret("token-heavy-a")) for _ in range(2)]  # as two lists in progress would
    try:
        third = api.post("list", {"query": {}}, token="token-heavy-a")
        assert third.status_code == 429 and third.headers["Retry-After"] == "1"
        detail = third.json()["detail"]
        assert detail["code"] == "ERROR_TOO_MANY_REQUESTS" and "JOBTASK_API_READS_PER_TOKEN" in detail["message"]
        assert api.post("stat", {"query": {"distinct": "status"}}, token="token-heavy-a").status_code == 429
        # A get is read by its id and takes no slot; another token has slots of its own.
        assert api.post("get", {"job_task_id": "job-task-h000"}, token="token-heavy-a").status_code == 200
        assert api.post("list", {"query": {}}, token="token-plain-b").status_code == 200
    finally:
        for release in held:
            release()
    assert api.post("list", {"query": {"count_only": True}}, token="token-heavy-a").status_code == 200
    assert slots.in_progress() == 0


class ReadCommands(monitoring.CommandListener):
    """The read commands a client sends while ``recording`` (pymongo's listeners stay registered for good)."""

    READS = {"find", "aggregate", "count", "distinct"}

    def __init__(self, database: str) -> None:
        self.database, self.recording, self.seen = database, False, []

    def started(self, event) -> None:
        if self.recording and event.database_name == self.database and event.command_name in self.READS:
            self.seen.append((event.command_name, event.command.get("maxTimeMS")))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def test_every_read_the_api_sends_the_store_carries_its_time_limit(api):
    listener = ReadCommands(api.settings.mongo_db)
    monitoring.register(listener)  # before the client below is made: only clients made after hear it
    fresh = ReadClient(api.settings)
    try:
        listener.recording = True
        token = "token-plain-b"
        fresh.ok("get", {"job_task_id": "job-task-p0"}, token)
        fresh.ok("list", {"query": {"filter": [{"k": "job_task_id", "v": "^job-task-p", "o": "regex"}]}}, token)
        fresh.ok("stat", {"query": {"aggregate": [{"count": {"name": "n"}}], "page": {"limit": 1}}}, token)
        fresh.ok("stat", {"query": {"distinct": "status"}}, token)
        fresh.ok("history", {"job_task_id": "job-task-p0"}, token)
    finally:
        listener.recording = False
        fresh.close()
    assert {name for name, _ in listener.seen} == {"find", "aggregate", "distinct"}
    assert [limit for _, limit in listener.seen] == [api.settings.query_time_limit_ms] * len(listener.seen)

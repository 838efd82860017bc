"""Store faults at every round trip of a batch, as a network or a failover makes them.

The worker reaches the store through ``tests.store_proxy``, which fails the
next request of a chosen kind: the connection dies before the request
(``drop_request``) or before its reply (``drop_reply``: the write happened,
the worker cannot know), a write is acknowledged with a write concern error
and never lands (``rolled_back``), or a bulk's writes are refused with a
transient code (``transient_error``). Each case sends events that exercise
every step (events before their created, a created, another domain's event,
a resend of an applied event, a new event after the resend) and then checks
that the task is exactly what the rules say, that the history agrees with it
(a rebuild from the history gives the stored task), that nothing stays parked
and that no valid event was set aside.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.harness import wait_for
from tests.lifecycle_data import at, expected_task
from tests.store_proxy import StoreProxy
from worker.store import history

pytestmark = pytest.mark.slow

# Every kind of request a batch makes, with the step it serves.
ROUND_TRIPS = [
    ("find", "job_tasks"),                  # the batch's tasks, and the re-check after parking
    ("insert", "job_task_log"),             # the commit: one entry per task
    ("update", "job_tasks"),                # folding entries into task documents
    ("find", "job_task_log"),               # events logged before; catching up
    ("insert", "job_task_history"),          # parked records, the history
    ("find", "job_task_history"),            # events parked for a created
    ("update", "job_task_history"),          # parked records resolved
    ("insert", "job_task_dead_letters"),    # refused messages
]
WRITES = [trip for trip in ROUND_TRIPS if trip[0] in ("insert", "update")]
CASES = [(*trip, mode) for trip in ROUND_TRIPS for mode in ("drop_request", "drop_reply")]
CASES += [(*trip, mode) for trip in WRITES for mode in ("rolled_back", "transient_error")]


@pytest.fixture(scope="module")
def proxied(broker_url, store_url, store_server, tmp_path_factory):
    """One worker for the module, reaching the store through a proxy."""
    from tests.harness import Pipeline

    proxy = StoreProxy(store_server.port)
    pipeline = Pipeline(broker_url, store_url, tmp_path_factory.mktemp("proxied"))
    pipeline.start_worker(concurrency=2, JOBTASK_MONGO_URL=proxy.url)
    yield pipeline, proxy
    pipeline.close()
    proxy.close()


def phases(job_task_id: str) -> list[list[tuple[str, dict]]]:
    """A task's events in three sends: before its created, the created, after it."""
    common = {"domain_id": "domain-a", "job_task_id": job_task_id}
    early = [
        ("job_task.started", {**common, "event_id": "s1", "occurred_at": at(1000)}),
        ("job_task.progressed", {**common, "event_id": "p1", "created_count_delta": 5,
                                 "occurred_at": at(2000)}),
        ("job_task.progressed", {**common, "domain_id": "domain-z", "event_id": "x1",
                                 "created_count_delta": 900, "occurred_at": at(2500)}),
        ("job_task.succeeded", {**common, "event_id": "t1", "created_count_delta": 2,
                                "occurred_at": at(9000)}),
    ]
    created = [("job_task.created", {**common, "event_id": "c1", "job_id": "job-1",
                                     "data_source_id": "ds-1", "occurred_at": at(0)})]
    late = [
        early[1],  # p1 resent: a duplicate
        ("job_task.progressed", {**common, "event_id": "p2", "created_count_delta": 7,
                                 "occurred_at": at(3000)}),
    ]
    return [early, created, late]


def assert_settled_exactly(pipeline, job_task_id: str, sent: list[tuple[str, dict]]) -> None:
    stored = pipeline.task(job_task_id)
    assert stored == expected_task(sent)
    assert history.rebuild(pipeline.db, job_task_id).task == stored, "history and task disagree"
    records = pipeline.history(job_task_id=job_task_id)
    assert not [r for r in records if r["outcome"] == "parked"], "an event stayed parked"
    letters = pipeline.dead_letters(job_task_id=job_task_id)
    assert [letter["event_id"] for letter in letters] == ["x1"], "only the other domain's event is refused"
    accepted = Counter(kw["event_id"] for _, kw in sent if kw["domain_id"] == "domain-a")
    assert pipeline.logged_event_ids(job_task_id) == Counter(set(accepted)), "each event logged once"


@pytest.mark.parametrize(("command", "collection", "mode"), CASES,
                         ids=[f"{c}-{col}-{m}" for c, col, m in CASES])
def test_a_failed_round_trip_loses_and_doubles_nothing(proxied, command, collection, mode):
    pipeline, proxy = proxied
    job_task_id = f"job-task-{command}-{collection}-{mode}".replace("_", "-")
    fired_before = proxy.fired.count((command, collection, mode))
    sent = []
    for events in phases(job_task_id):
        # Twice: pymongo retries a failed read (and, on a replica set, a write) once itself.
        proxy.arm(command, collection, mode, times=2)
        for name, kwargs in events:
            pipeline.events.send_raw(name, kwargs)
        sent += events
        pipeline.wait_until_idle(timeout=60)
    assert proxy.fired.count((command, collection, mode)) > fired_before, "the fault never fired"
    proxy.faults.clear()
    assert_settled_exactly(pipeline, job_task_id, sent)


def test_held_events_reach_their_task_when_the_lookup_for_them_fails(proxied):
    """Issue 6, point 4: the created's batch fails while it looks for parked events."""
    pipeline, proxy = proxied
    job_task_id = "job-task-stranded"
    early, created, _ = phases(job_task_id)
    for name, kwargs in early:
        pipeline.events.send_raw(name, kwargs)
    pipeline.wait_until_idle()
    assert pipeline.task(job_task_id) is None
    proxy.arm("find", "job_task_history", "drop_request", times=2)  # past pymongo's own retry
    pipeline.events.send_raw(*created[0])
    pipeline.wait_until_idle()
    task = wait_for(lambda: pipeline.task(job_task_id))
    assert (task["status"], task["created_count"]) == ("SUCCESS", 7)
    assert_settled_exactly(pipeline, job_task_id, early + created + [early[1]])


def test_a_write_whose_concern_failed_is_written_again(proxied):
    """Issue 6, point 5: an acknowledged write that is rolled back does not count."""
    pipeline, proxy = proxied
    job_task_id = "job-task-rolled-back"
    _, created, _ = phases(job_task_id)
    proxy.arm("update", "job_tasks", "rolled_back", times=2)
    pipeline.events.send_raw(*created[0])
    pipeline.wait_until_idle()
    assert proxy.fired.count(("update", "job_tasks", "rolled_back")) >= 2
    task = pipeline.task(job_task_id)
    assert task is not None and task["status"] == "PENDING"


def test_a_transient_error_inside_a_bulk_write_never_dead_letters_a_valid_event(proxied):
    """Issue 6, point 6: code 11602 inside a BulkWriteError is a passing fault."""
    pipeline, proxy = proxied
    job_task_id = "job-task-transient"
    _, created, _ = phases(job_task_id)
    proxy.arm("insert", "job_task_history", "transient_error", times=3)
    pipeline.events.send_raw(*created[0])
    pipeline.wait_until_idle()
    assert pipeline.task(job_task_id)["status"] == "PENDING"
    assert pipeline.dead_letters(job_task_id=job_task_id) == []
    (record,) = pipeline.history(job_task_id=job_task_id)
    assert record["outcome"] == "applied"

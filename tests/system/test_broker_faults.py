"""Faults of the broker and of what arrives through it.

Each test runs a real worker against a redis-server of its own
(``private_broker``), so that it can cut every client connection
(``CLIENT KILL``) or kill Redis and start it again on the same port from its
append-only file, and then checks that the worker stayed up, reconnected by
itself, and that every task ends exactly as the rules say
(``tests.lifecycle_data.expected_task``), each event applied once.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter

import pytest

from tests.fault_streams import stream
from tests.harness import cut_broker_connections, wait_for
from tests.lifecycle_data import at, expected_task
from worker.settings import SettingsError, load_settings
from worker.store.collections import HISTORY

pytestmark = pytest.mark.slow


def send_through_outages(pipeline, events, pause_every: int = 20, pause: float = 0.05) -> threading.Thread:
    """Send in the background; a send the broker refused is sent again (same event_id)."""
    def run():
        for index, (name, kwargs) in enumerate(events):
            while True:
                try:
                    pipeline.events.send_raw(name, kwargs)
                    break
                except Exception:  # the broker is down: a producer retries
                    time.sleep(0.2)
            if index % pause_every == pause_every - 1:
                time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_exact(pipeline, events, once_applied: bool = True) -> None:
    """Every task is what the rules say, and its history applied each event once.

    ``once_applied=False`` only asks that each event is in the history: a
    worker killed between a batch's task writes and its history write leaves
    the event applied with only a later "duplicate" record (issue 6, point 4,
    on the pool side).
    """
    by_task: dict[str, list] = {}
    for name, kwargs in events:
        by_task.setdefault(kwargs["job_task_id"], []).append((name, kwargs))
    outcomes = Counter((record["job_task_id"], record["event_id"], record["outcome"])
                       for record in pipeline.history(outcome={"$in": ["applied", "duplicate"]}))
    for job_task_id, mine in by_task.items():
        assert pipeline.task(job_task_id) == expected_task(mine), job_task_id
        for _, kwargs in mine:
            applied = outcomes[(job_task_id, kwargs["event_id"], "applied")]
            recorded = applied + outcomes[(job_task_id, kwargs["event_id"], "duplicate")]
            assert applied == 1 if once_applied else recorded >= 1, "\n".join(
                [kwargs["event_id"]] + [" ".join(str(record.get(key)) for key in (
                    "message_id", "batch_id", "event_id", "outcome", "reason", "received_at", "processed_at"))
                    for record in pipeline.history(job_task_id=job_task_id)])


def applied_so_far(pipeline) -> int:
    return pipeline.db[HISTORY].count_documents({"outcome": "applied"})


def connections(worker) -> int:
    return worker.log().count("Connected to ")


def created_event(job_task_id: str, event_id: str = "c") -> dict:
    return {"domain_id": "domain-a", "job_task_id": job_task_id, "event_id": event_id,
            "job_id": "job-1", "data_source_id": "ds-1", "occurred_at": at(0)}


def test_a_lone_event_after_every_connection_was_cut_is_applied(private_broker, private_pipeline):
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2)
    pipeline.events.send_raw("job_task.created", created_event("job-task-before"))
    wait_for(lambda: pipeline.task("job-task-before"), timeout=30)

    cut_broker_connections(private_broker.url)
    wait_for(lambda: connections(worker) >= 2, timeout=30)
    # Sent at once: whether it reaches the buffer before or after the new
    # connection's flush is registered, only that flush sends its batch.
    pipeline.events.send_raw("job_task.created", created_event("job-task-lone"))
    # Applied in well under a second; a batch that never fills is never sent
    # if the periodic flush died with the old connection.
    wait_for(lambda: pipeline.task("job-task-lone"), timeout=10)
    assert worker.process.poll() is None


def test_connections_cut_again_and_again_mid_stream(private_broker, private_pipeline):
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2)
    events = stream("cut", tasks=30, progressed=10)
    sender = send_through_outages(pipeline, events)
    for round_ in range(1, 4):
        wait_for(lambda target=80 * round_: applied_so_far(pipeline) >= target, timeout=120)
        cut_broker_connections(private_broker.url)
    sender.join()
    pipeline.wait_until_idle(timeout=120)
    assert worker.process.poll() is None, worker.log()[-3000:]
    assert connections(worker) >= 4
    assert_exact(pipeline, events)


def test_redis_killed_and_restarted_mid_stream_loses_nothing(private_broker, private_pipeline):
    """SIGKILL of Redis: what a producer's send returned for is in the append-only file."""
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2)
    events = stream("restart", tasks=30, progressed=10)
    sender = send_through_outages(pipeline, events)
    for round_ in range(1, 4):
        wait_for(lambda target=80 * round_: applied_so_far(pipeline) >= target, timeout=120)
        private_broker.stop(kill=True)
        time.sleep(0.5)
        private_broker.start()
    sender.join()
    pipeline.wait_until_idle(timeout=120)
    assert worker.process.poll() is None, worker.log()[-5000:]
    assert "Unrecoverable error" not in worker.log()
    assert_exact(pipeline, events)


def test_a_mix_of_faults_ends_every_task_exactly(private_broker, private_pipeline, store_server):
    """Two workers; the connections cut, Redis killed, a worker killed, the store restarted."""
    pipeline = private_pipeline
    first = pipeline.start_worker(concurrency=2)
    pipeline.start_worker(concurrency=2)
    events = stream("mix", tasks=40, progressed=10)
    sender = send_through_outages(pipeline, events)

    def restart_redis():
        private_broker.stop(kill=True)
        private_broker.start()

    def restart_store():
        store_server.stop()
        time.sleep(1)
        store_server.start()

    faults = [lambda: cut_broker_connections(private_broker.url), restart_redis, first.kill, restart_store]
    for round_, fault in enumerate(faults, start=1):
        wait_for(lambda target=80 * round_: applied_so_far(pipeline) >= target, timeout=120)
        fault()
    pipeline.start_worker(concurrency=2)  # in the killed one's place
    sender.join()
    pipeline.wait_until_idle(timeout=180)
    assert_exact(pipeline, events, once_applied=False)
    assert all(worker.process.poll() is None for worker in pipeline.workers if worker is not first)


def test_messages_of_any_priority_are_consumed(private_pipeline):
    """A stock kombu producer puts a message of priority p in another list of the queue."""
    pipeline = private_pipeline
    pipeline.start_worker(concurrency=2)
    sent = {}
    for priority in range(10):
        job_task_id = f"job-task-pri-{priority}"
        pipeline.events.app.send_task("job_task.created", kwargs=created_event(job_task_id),
                                      queue=pipeline.queue, priority=priority)
        sent[job_task_id] = priority
    wait_for(lambda: all(pipeline.task(job_task_id) for job_task_id in sent), timeout=30)
    pipeline.wait_until_idle(timeout=30)


def test_anything_queued_that_is_no_event_ends_in_the_dead_letters(private_pipeline):
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2)
    unknown = pipeline.events.send_raw("job_task.exploded", created_event("job-task-x"))
    pipeline.redis.lpush(pipeline.queue, b"not a message \xff")
    pipeline.redis.lpush(pipeline.queue, json.dumps({"body": "e30=", "content-type": "application/json",
                                                     "properties": {"delivery_tag": "no-task-1",
                                                                    "body_encoding": "base64"}}))
    for tag, odd in (("odd-headers", {"headers": ["a", "list"]}), ("odd-body", {"body": "not base64!"})):
        pipeline.redis.lpush(pipeline.queue, json.dumps({
            "body": "e30=", "content-type": "application/json", "headers": {},
            "properties": {"delivery_tag": tag, "body_encoding": "base64"}, **odd}))
    pipeline.events.send_raw("job_task.created", created_event("job-task-after"))
    pipeline.wait_until_idle(timeout=60)

    letters = {letter["_id"]: letter for letter in pipeline.dead_letters()}
    assert "unknown event type 'job_task.exploded'" in letters[unknown]["reason"]
    others = [letter for letter in letters.values() if letter["_id"] != unknown]
    assert len(others) == 4, letters
    unreadable = [letter for letter in others if "could not be decoded" in letter["reason"]]
    assert len(unreadable) == 3
    assert any("not a message" in letter["payload"] for letter in unreadable)
    assert {"odd-headers", "odd-body"} <= {letter["_id"] for letter in unreadable}
    assert sum("not a Celery task message" in letter["reason"] for letter in others) == 1
    assert pipeline.task("job-task-after")["status"] == "PENDING"
    assert worker.process.poll() is None


def test_a_sweep_that_celery_would_refuse_ends_in_the_dead_letters(private_pipeline):
    """Named like the worker's own periodic task, but not in the form Celery runs: never dropped."""
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=1)
    pickled = pipeline.events.app.send_task("job_task.sweep", kwargs={}, queue=pipeline.queue,
                                            serializer="pickle").id
    shapeless = "sweep-shapeless-1"  # JSON, but its body is not [args, kwargs, embed]
    pipeline.redis.lpush(pipeline.queue, json.dumps({
        "body": "e30=", "content-type": "application/json", "content-encoding": "utf-8",
        "headers": {"task": "job_task.sweep", "id": shapeless},
        "properties": {"delivery_tag": "sweep-shapeless-tag", "body_encoding": "base64"}}))
    pipeline.events.send_raw("job_task.sweep", {})  # the real one still runs, as a task
    pipeline.events.send_raw("job_task.created", created_event("job-task-after-sweeps"))
    pipeline.wait_until_idle(timeout=60)

    letters = {letter["_id"]: letter for letter in pipeline.dead_letters()}
    assert set(letters) == {pickled, shapeless}, letters
    assert letters[pickled]["task_name"] == "job_task.sweep"
    assert letters[pickled]["field"] == "content_type" and "pickle" in letters[pickled]["reason"]
    assert "not a Celery task message" in letters[shapeless]["reason"]
    assert pipeline.redis.llen(pipeline.queue) == 0
    assert pipeline.task("job-task-after-sweeps")["status"] == "PENDING"
    assert worker.process.poll() is None


def test_unknown_task_names_through_a_store_outage(private_pipeline, store_server):
    """Kept until the store can take them, without stalling the consumer."""
    pipeline = private_pipeline
    pipeline.start_worker(concurrency=2)
    store_server.stop()
    try:
        unknown = [pipeline.events.send_raw("job_task.exploded", created_event(f"job-task-u{n}", f"u{n}"))
                   for n in range(20)]
        # The consumer keeps taking messages while the store is out (the old
        # handler waited for the store for each unknown name, in the consumer).
        wait_for(lambda: pipeline.redis.llen(pipeline.queue) == 0, timeout=10)
        time.sleep(2)
    finally:
        store_server.start()
    pipeline.wait_until_idle(timeout=120)
    letters = {letter["_id"]: letter for letter in pipeline.dead_letters()}
    for message_id in unknown:
        assert message_id in letters, f"unknown task {message_id} was lost"
        assert letters[message_id]["reason"] == "unknown event type 'job_task.exploded'"


def test_held_messages_are_not_redelivered_while_the_worker_lives(private_pipeline, store_server):
    """A store outage three times the visibility timeout: every message is delivered once.

    Each batch tries the store for about 3.5 s and is requeued; a message
    waits in the buffer for a few batches, longer than the visibility timeout.
    """
    pipeline = private_pipeline
    timings = {"JOBTASK_VISIBILITY_TIMEOUT": "6", "JOBTASK_STORE_RETRY_BUDGET": "0.5",
               "JOBTASK_STORE_TIMEOUT_MS": "3000"}
    worker = pipeline.start_worker(concurrency=2, **timings)
    events = stream("hold", tasks=20, progressed=10)
    store_server.stop()
    try:
        for name, kwargs in events:
            pipeline.events.send_raw(name, kwargs)
        time.sleep(20)
    finally:
        store_server.start()
    pipeline.wait_until_idle(timeout=120)
    assert_exact(pipeline, events)
    # Requeued (its batch gave up on the store) is fine; two copies at once is not.
    records = Counter(record["message_id"] for record in pipeline.history())
    assert set(records.values()) == {1}, [m for m, n in records.items() if n > 1][:5]
    assert worker.process.poll() is None


def test_a_warm_stop_during_a_store_outage_hands_everything_back(private_pipeline, store_server):
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2)
    events = stream("warm", tasks=20, progressed=10)
    store_server.stop()
    try:
        for name, kwargs in events:
            pipeline.events.send_raw(name, kwargs)
        wait_for(lambda: pipeline.redis.hlen("unacked") > 0, timeout=30)
        wait_for(lambda: "store unavailable" in worker.log(), timeout=30)  # batches are retrying the store
        worker.process.send_signal(signal.SIGTERM)
        # A warm stop waits for running batches: at most their time limit
        # (8.5 s with the tests' timings).
        worker.process.wait(timeout=60)
    finally:
        store_server.start()
    # Nothing was lost or left unacknowledged: all of it is queued again.
    assert pipeline.redis.hlen("unacked") == 0
    assert pipeline.backlog() == len(events)
    pipeline.start_worker(concurrency=2)
    pipeline.wait_until_idle(timeout=120)
    assert_exact(pipeline, events)


def test_the_settings_check_names_what_breaks_the_visibility_guarantee():
    with pytest.raises(SettingsError) as refused:
        load_settings(visibility_timeout=60, store_retry_budget=55, store_timeout_ms=5000)
    message = str(refused.value)
    for variable in ("JOBTASK_VISIBILITY_TIMEOUT", "JOBTASK_STORE_RETRY_BUDGET", "JOBTASK_STORE_TIMEOUT_MS"):
        assert variable in message
    assert load_settings(visibility_timeout=300, store_retry_budget=120).batch_time_limit < 300

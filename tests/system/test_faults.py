"""Faults: concurrent workers, a SIGKILLed worker, a store outage.

Each test sends a stream of events for many tasks, disturbs the worker or
the store in the middle of it, and then checks that every task is exactly
what the rules say: nothing lost (every event is in the task's log), nothing
doubled (``created_count`` exact, each event_id logged once).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from tests.fault_streams import applied_so_far, assert_exact, send_in_background, stream
from tests.harness import wait_for

pytestmark = pytest.mark.slow


def test_two_workers_on_one_queue_end_in_the_rules_state(pipeline_factory):
    pipeline = pipeline_factory()
    # Small batches and several workers: many updates of one task at once.
    for _ in range(2):
        pipeline.start_worker(concurrency=2, JOBTASK_BATCH_SIZE="4")
    events = stream("conc", tasks=8, progressed=30)
    send_in_background(pipeline, events, pause_every=1000).join()
    pipeline.wait_until_idle(timeout=240)
    assert_exact(pipeline, events)
    # Both workers took part.
    for worker in pipeline.workers:
        assert "settled" in worker.log(), worker.name


def test_a_killed_worker_loses_and_doubles_nothing(pipeline_factory):
    pipeline = pipeline_factory()
    first = pipeline.start_worker(concurrency=2)
    events = stream("kill", tasks=40, progressed=10)
    sender = send_in_background(pipeline, events)
    wait_for(lambda: applied_so_far(pipeline) >= 120, timeout=120)
    first.kill()  # SIGKILL the main process and its pool mid-stream
    sender.join()
    assert applied_so_far(pipeline) < len(events), "the kill came too late to test anything"
    pipeline.start_worker(concurrency=2)
    pipeline.wait_until_idle(timeout=240)
    assert_exact(pipeline, events)


def test_a_killed_pool_process_requeues_its_batch(pipeline_factory):
    pipeline = pipeline_factory()
    worker = pipeline.start_worker(concurrency=2)
    events = stream("child", tasks=30, progressed=10)
    sender = send_in_background(pipeline, events)
    wait_for(lambda: applied_so_far(pipeline) >= 60, timeout=120)
    for pid in worker.pool_pids():  # the pool replaces them; their batches come back
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    sender.join()
    pipeline.wait_until_idle(timeout=240)
    assert_exact(pipeline, events)
    assert worker.process.poll() is None, "the worker itself survives its pool processes"


def test_a_store_outage_loses_and_doubles_nothing(pipeline_factory, store_server):
    pipeline = pipeline_factory()
    pipeline.start_worker(concurrency=2)
    events = stream("outage", tasks=40, progressed=10)
    sender = send_in_background(pipeline, events)
    wait_for(lambda: applied_so_far(pipeline) >= 100, timeout=120)
    store_server.stop()
    # Longer than a batch's retry budget (5 s in tests): batches first retry,
    # then go back to the broker, and come round again until the store is up.
    time.sleep(8)
    store_server.start()
    sender.join()
    pipeline.wait_until_idle(timeout=240)
    assert_exact(pipeline, events)
    log = pipeline.workers[0].log()
    assert "store unavailable" in log and "requeued" in log

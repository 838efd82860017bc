"""Faults of the broker and of what arrives through it.

Each test runs a real worker against a redis-server of its own
(``private_broker``), so that it can cut every client connection
(``CLIENT KILL``) or kill Redis and start it again on the same port from its
append-only file, and then checks that the worker stayed up, reconnected by
itself, and that every task ends exactly as the rules say
(``tests.lifecycle_data.expected_task``), each event applied once.
"""

from __future__ import annotations

import pytest

from tests.harness import wait_for
from tests.lifecycle_data import at
from worker.settings import SettingsError, load_settings

pytestmark = pytest.mark.slow


def created_event(job_task_id: str, event_id: str = "c") -> dict:
    return {"domain_id": "domain-a", "job_task_id": job_task_id, "event_id": event_id,
            "job_id": "job-1", "data_source_id": "ds-1", "occurred_at": at(0)}


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


def test_the_settings_check_names_what_breaks_the_visibility_guarantee():
    with pytest.raises(SettingsError) as refused:
        load_settings(visibility_timeout=60, store_retry_budget=55, store_timeout_ms=5000)
    message = str(refused.value)
    for variable in ("JOBTASK_VISIBILITY_TIMEOUT", "JOBTASK_STORE_RETRY_BUDGET", "JOBTASK_STORE_TIMEOUT_MS"):
        assert variable in message
    assert load_settings(visibility_timeout=300, store_retry_budget=120).batch_time_limit < 300

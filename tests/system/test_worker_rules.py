"""The real worker against the pure rules: shuffled, duplicated deliveries
through Redis and Celery end in exactly the state ``lifecycle.fold`` gives."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lifecycle_data import deliveries, expected_task, parsed, task_events
from worker.contract.lifecycle import fold
from worker.store import history


@st.composite
def several_tasks(draw):
    """Events of three tasks, duplicated and shuffled together."""
    prefix = uuid.uuid4().hex[:8]
    events = []
    for index in range(3):
        events += draw(task_events(f"job-task-{prefix}-{index}"))
    return events, draw(deliveries(events))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=several_tasks())
def test_worker_state_equals_the_rules(pipeline, case):
    events, delivered = case
    for name, kwargs in delivered:
        pipeline.events.send_raw(name, kwargs)
    pipeline.wait_until_idle()

    for job_task_id in sorted({kwargs["job_task_id"] for _, kwargs in events}):
        mine = [(name, kw) for name, kw in events if kw["job_task_id"] == job_task_id]
        expected = expected_task(mine)
        assert pipeline.task(job_task_id) == expected
        assert fold(parsed([d for d in delivered if d[1]["job_task_id"] == job_task_id])).task == expected
        # The history holds every accepted event: the task rebuilds from it.
        assert history.rebuild(pipeline.db, job_task_id).task == expected


def test_every_delivery_is_recorded_once_with_what_it_did(pipeline):
    job_task_id = "job-task-audit"
    common = {"domain_id": "domain-a", "job_task_id": job_task_id}
    sent = [
        ("job_task.progressed", {**common, "event_id": "p1", "created_count_delta": 3,
                                 "occurred_at": "2024-05-01T10:00:02Z"}),
        ("job_task.created", {**common, "event_id": "c1", "job_id": "job-1",
                              "data_source_id": "ds-1", "occurred_at": "2024-05-01T10:00:00Z"}),
        ("job_task.progressed", {**common, "event_id": "p1", "created_count_delta": 3,
                                 "occurred_at": "2024-05-01T10:00:02Z"}),
        ("job_task.succeeded", {**common, "event_id": "s1", "occurred_at": "2024-05-01T10:00:05Z"}),
        ("job_task.failed", {**common, "event_id": "f1", "occurred_at": "2024-05-01T10:00:09Z",
                             "error_code": "E", "error_message": "late"}),
        ("job_task.progressed", {**common, "domain_id": "domain-b", "event_id": "p9",
                                 "created_count_delta": 7, "occurred_at": "2024-05-01T10:00:03Z"}),
    ]
    ids = []
    for name, kwargs in sent:  # one at a time, so the order of arrival is known
        ids.append(pipeline.events.send_raw(name, kwargs))
        pipeline.wait_until_idle(settle=0.05)

    records = {r["message_id"]: r for r in pipeline.history()}
    outcomes = [records[message_id]["outcome"] for message_id in ids]
    assert outcomes == ["applied", "applied", "duplicate", "applied", "ignored", "rejected"]
    assert "waiting" not in records[ids[0]].get("reason", "")
    assert records[ids[4]]["reason"] == "task already ended by s1"
    assert records[ids[5]]["reason"] == "domain_id does not match the job task's"
    (letter,) = pipeline.dead_letters()
    assert letter["_id"] == ids[5] and letter["domain_id"] == "domain-b"
    task = pipeline.task(job_task_id)
    assert (task["status"], task["created_count"]) == ("SUCCESS", 3)


def test_an_event_waits_for_its_created(pipeline):
    common = {"domain_id": "domain-a", "job_task_id": "job-task-early"}
    first = pipeline.events.send_raw("job_task.started", {**common, "event_id": "s1",
                                                          "occurred_at": "2024-05-01T10:00:01Z"})
    pipeline.wait_until_idle()
    assert pipeline.task("job-task-early") is None
    (record,) = pipeline.history(message_id=first)
    assert record["outcome"] == "parked"

    pipeline.events.send_raw("job_task.created", {**common, "event_id": "c1", "job_id": "j",
                                                  "data_source_id": "d",
                                                  "occurred_at": "2024-05-01T10:00:00Z"})
    pipeline.wait_until_idle()
    task = pipeline.task("job-task-early")
    assert task["status"] == "IN_PROGRESS"
    (record,) = pipeline.history(message_id=first)
    assert record["outcome"] == "applied" and "resolved_at" in record

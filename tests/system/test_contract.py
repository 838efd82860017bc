"""Contract: every bad message ends in the dead letters with a reason naming
the field, through the real worker, and the worker keeps serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

PAST = "2024-05-01T10:00:00.000Z"


def created(**overrides):
    event = {
        "event_id": "c1",
        "domain_id": "domain-a",
        "job_task_id": "job-task-000000000001",
        "job_id": "job-1",
        "data_source_id": "ds-1",
        "occurred_at": PAST,
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not ...}


def base(**overrides):
    event = {"event_id": "e1", "domain_id": "domain-a", "job_task_id": "job-task-000000000001",
             "occurred_at": PAST}
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not ...}


future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

# (task name, kwargs, the field the reason must name)
BAD_MESSAGES = [
    ("job_task.created", created(event_id=...), "event_id"),
    ("job_task.created", created(domain_id=...), "domain_id"),
    ("job_task.created", created(job_task_id=...), "job_task_id"),
    ("job_task.created", created(job_id=...), "job_id"),
    ("job_task.created", created(data_source_id=...), "data_source_id"),
    ("job_task.created", created(event_id=123), "event_id"),
    ("job_task.created", created(event_id=""), "event_id"),
    ("job_task.created", created(event_id="x" * 129), "event_id"),
    ("job_task.created", created(event_id="has space"), "event_id"),
    ("job_task.created", created(job_task_id="j" * 65), "job_task_id"),
    ("job_task.created", created(job_task_id="job/task"), "job_task_id"),
    ("job_task.created", created(domain_id=["domain-a"]), "domain_id"),
    ("job_task.created", created(options="month=202207"), "options"),
    ("job_task.created", created(options=[1, 2]), "options"),
    ("job_task.created", created(options={"blob": "x" * (16 * 1024)}), "options"),
    ("job_task.created", created(options={"$where": "sleep(1000)"}), "options"),
    ("job_task.created", created(options={"a.b": 1}), "options"),
    ("job_task.created", created(resource_group="PROJECT"), "resource_group"),
    ("job_task.created", created(resource_group="WORKSPACE"), "resource_group"),
    ("job_task.created", created(workspace_id=7), "workspace_id"),
    ("job_task.created", created(occurred_at="2024-05-01T10:00:00"), "occurred_at"),
    ("job_task.created", created(occurred_at=future), "occurred_at"),
    ("job_task.created", created(occurred_at="yesterday"), "occurred_at"),
    ("job_task.created", created(occurred_at=1714557600), "occurred_at"),
    ("job_task.created", created(priority="high"), "priority"),
    ("job_task.started", base(kind="started"), "kind"),
    ("job_task.started", base(job_id="job-1"), "job_id"),
    ("job_task.progressed", base(), "created_count_delta"),
    ("job_task.progressed", base(created_count_delta=-1), "created_count_delta"),
    ("job_task.progressed", base(created_count_delta="5"), "created_count_delta"),
    ("job_task.progressed", base(created_count_delta=2.5), "created_count_delta"),
    ("job_task.progressed", base(created_count_delta=True), "created_count_delta"),
    ("job_task.succeeded", base(created_count_delta=-3), "created_count_delta"),
    ("job_task.failed", base(error_message="boom"), "error_code"),
    ("job_task.failed", base(error_code="ERROR_X"), "error_message"),
    ("job_task.failed", base(error_code="ERROR_X", error_message="m" * 5000), "error_message"),
    ("job_task.canceled", base(reason=42), "reason"),
    ("job_task.canceled", base(domain_id=None), "domain_id"),
]


def test_every_bad_message_is_dead_lettered_with_the_field_named(pipeline):
    sent = {}
    for task_name, kwargs, field_name in BAD_MESSAGES:
        message_id = pipeline.events.send_raw(task_name, kwargs)
        sent[message_id] = (task_name, kwargs, field_name)
    positional = pipeline.events.send_raw("job_task.started", {}, args=["e9", "domain-a", "job-task-1"])
    unknown = pipeline.events.send_raw("job_task.exploded", base())
    pickled = pipeline.events.app.send_task(
        "job_task.started", kwargs=base(), queue=pipeline.queue, serializer="pickle"
    ).id
    # The worker is still serving: a valid task after all that is applied.
    job_task_id = pipeline.events.created(
        domain_id="domain-a", job_id="job-2", data_source_id="ds-2", occurred_at=PAST
    )
    pipeline.wait_until_idle()

    letters = {letter["_id"]: letter for letter in pipeline.dead_letters()}
    for message_id, (task_name, kwargs, field_name) in sent.items():
        letter = letters.get(message_id)
        assert letter is not None, f"{task_name} {kwargs} was not dead-lettered"
        assert letter["field"] == field_name, letter
        assert field_name in letter["reason"], letter
        assert letter["task_name"] == task_name
        assert letter["outcome"] == "rejected"
        assert letter["received_at"] <= letter["dead_lettered_at"]
        assert '"kwargs"' in letter["payload"]
    assert letters[positional]["field"] == "args"
    assert "keyword arguments only" in letters[positional]["reason"]
    assert letters[unknown]["field"] == "task"
    assert "job_task.exploded" in letters[unknown]["reason"]
    assert letters[pickled]["field"] == "content_type"
    assert "pickle" in letters[pickled]["reason"]

    # Each bad delivery is in the history too, as rejected; none became a task.
    rejected = {record["message_id"] for record in pipeline.history(outcome="rejected")}
    assert set(sent) | {positional, pickled} <= rejected
    assert pipeline.task("job-task-000000000001") is None
    assert pipeline.task(job_task_id)["status"] == "PENDING"


def test_oversized_payload_is_kept_cut(pipeline):
    message_id = pipeline.events.send_raw("job_task.created", created(options={"x": "y" * 200_000}))
    pipeline.wait_until_idle()
    (letter,) = pipeline.dead_letters(_id=message_id)
    assert letter["payload_truncated"] is True
    assert len(letter["payload"]) == 64 * 1024
    assert "options" in letter["reason"]


@pytest.mark.parametrize("resource_group, workspace_id, expected", [
    (None, None, "DOMAIN"),
    (None, "workspace-1", "WORKSPACE"),
    ("DOMAIN", "workspace-1", "DOMAIN"),
])
def test_resource_group_defaults(pipeline, resource_group, workspace_id, expected):
    job_task_id = pipeline.events.created(
        domain_id="domain-a", job_id="job-1", data_source_id="ds-1",
        workspace_id=workspace_id, resource_group=resource_group,
    )
    pipeline.wait_until_idle()
    task = pipeline.task(job_task_id)
    assert task["resource_group"] == expected
    assert task.get("workspace_id") == workspace_id

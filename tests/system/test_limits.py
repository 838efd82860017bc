"""Limits that hold: a log entry's size, and a task's event limit with its own reason."""

from __future__ import annotations

from datetime import UTC, datetime

import bson

from worker.contract.events import Created
from worker.contract.lifecycle import Summary, Terminal
from worker.settings import Settings
from worker.store.log import MAX_ENTRY_BYTES, LogEntry, LoggedEvent
from worker.store.tasks import founding_fields

MONGODB_DOCUMENT_LIMIT = 16 * 1024 * 1024


def test_the_largest_log_entry_stays_far_below_the_document_limit():
    largest_batch = Settings.model_fields["batch_size"].metadata
    batch_size = next(rule.le for rule in largest_batch if hasattr(rule, "le"))
    task = "t" * 64
    now = datetime.now(UTC)
    created = Created(event_id="c" * 128, domain_id="d" * 64, job_task_id=task, job_id="j" * 64,
                      data_source_id="s" * 64, workspace_id="w" * 64,
                      options={"k": "x" * (16 * 1024 - 20)})
    entry = LogEntry(
        job_task_id=task,
        version=10**9,
        batch_id="b" * 32,
        events=tuple(LoggedEvent(f"{n:0128d}", "f" * 32, "sha256:" + "m" * 64) for n in range(batch_size)),
        contribution=Summary(now, now, 10**12, now, Terminal(now, "e" * 128, "FAILURE", "E" * 128, "x" * 4096, 0)),
        founding=founding_fields(created, "i" * 32, part=10**9),
    )
    size = len(bson.encode(entry.doc()))
    assert size <= MAX_ENTRY_BYTES <= MONGODB_DOCUMENT_LIMIT // 2


def test_a_task_refuses_events_past_its_limit_naming_the_limit(pipeline_factory):
    pipeline = pipeline_factory()
    pipeline.start_worker(concurrency=1, JOBTASK_MAX_EVENTS_PER_TASK="10")
    common = {"domain_id": "domain-a", "job_task_id": "job-task-busy"}
    pipeline.events.send_raw("job_task.created", {**common, "event_id": "c", "job_id": "j",
                                                  "data_source_id": "d"})
    for number in range(11):
        pipeline.events.send_raw("job_task.progressed", {**common, "event_id": f"p{number}",
                                                         "created_count_delta": 1})
    pipeline.wait_until_idle()
    assert pipeline.task("job-task-busy")["created_count"] == 9
    refused = pipeline.history(job_task_id="job-task-busy", outcome="rejected")
    assert len(refused) == 2
    assert {record["reason"] for record in refused} == {
        "the job task has reached its limit of 10 events (JOBTASK_MAX_EVENTS_PER_TASK)"}
    assert len(pipeline.dead_letters(job_task_id="job-task-busy")) == 2

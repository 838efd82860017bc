"""A Job's document stays small whatever its size: one summary per part, never a view per task.

MongoDB refuses a document over 16 MiB. The largest Job (MAX_TASKS_PER_JOB
tasks, every task in a status of its own part, the most events a Job
accepts) is built through the pure rules and encoded as the worker would
first write it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bson

from worker.contract.events import MAX_TASKS_PER_JOB
from worker.contract.job_parts import PART_SIZE, PartState, TaskView, part_of, plan_part
from worker.contract.jobs import MAX_JOB_EVENTS, Ending, JobState, LoggedJobEvent, job_fields, with_parts
from worker.store.jobs import JobRow, job_update

BASE = datetime(2026, 11, 1, tzinfo=UTC)


def test_the_largest_job_is_a_document_far_below_the_limit():
    parts: dict[int, PartState] = {}
    for number in range(MAX_TASKS_PER_JOB):
        part = part_of(number)
        moment = BASE + timedelta(seconds=number)
        view = TaskView(3, "SUCCESS", 10, moment, moment, moment, frozenset({"cancel"}))
        parts[part] = plan_part(parts.get(part, PartState(part)), [(f"job-task-{number:08d}", view)], {})
    state = JobState("job-huge", "domain-a", endings=(Ending("CANCELED", "cancel", BASE),))
    state = with_parts(state, {number: part.summary() for number, part in parts.items()})
    events = {f"event-{number:06d}": LoggedJobEvent("f" * 32, f"message-{number:06d}")
              for number in range(MAX_JOB_EVENTS)}
    update = job_update(None, JobRow(1, state, events))
    size = len(bson.encode(update._doc["$set"]))
    assert len(parts) == -(-MAX_TASKS_PER_JOB // PART_SIZE)
    assert size < 512 * 1024, f"{size} bytes"  # far below 16 MiB: 1/32 of it
    fields = job_fields(state)
    assert (fields["total_tasks"], fields["task_counts"]["SUCCESS"]) == (MAX_TASKS_PER_JOB, MAX_TASKS_PER_JOB)
    assert fields["created_count"] == 10 * MAX_TASKS_PER_JOB and state.pending_parts() == []
    assert max(len(part.tasks) for part in parts.values()) == PART_SIZE  # what a batch rewrites at most, a part

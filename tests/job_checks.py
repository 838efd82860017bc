"""A Job restated plainly from its stored tasks, for the tests that check Jobs through the real worker."""

from __future__ import annotations

from worker.contract.lifecycle import STATUSES, TERMINAL_STATUSES
from worker.store.jobs import stored_job


def expected_job(pipeline, job_id: str, declared: int | None = None, ending: tuple | None = None,
                 declared_at=None) -> dict:
    """Issue 9 read plainly: a Job from its stored tasks, its declaration and its ending."""
    tasks = list(pipeline.db.job_tasks.find({"job_id": job_id}))
    counts = dict.fromkeys(STATUSES, 0)
    for task in tasks:
        counts[task["status"]] += 1
    total = max(declared, len(tasks)) if declared is not None else len(tasks)
    finished = sum(counts[status] for status in TERMINAL_STATUSES)
    job = {"job_id": job_id, "total_tasks": total, "remained_tasks": total - finished,
           "task_counts": counts, "created_count": sum(task["created_count"] for task in tasks)}
    if ending is not None:
        job["status"] = ending[0]
    elif declared is not None and total == finished:
        job["status"] = "SUCCESS" if counts["SUCCESS"] == total else "FAILURE"
        job["finished_at"] = max((task["finished_at"] for task in tasks), default=declared_at)
    else:
        job["status"] = "IN_PROGRESS"
    return job


def assert_job_is(pipeline, job_id: str, **rules) -> dict:
    stored = stored_job(pipeline.db, job_id)
    expected = expected_job(pipeline, job_id, **rules)
    assert {key: stored.get(key) for key in expected} == expected
    return stored

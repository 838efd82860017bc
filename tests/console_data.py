"""An operator's morning, as events: the Jobs the console's browser tests and screenshots show.

Five collection runs of one domain, declared with ``job.created`` and driven
through the worker like a scheduler and its plugins would, with times in the
last few hours (so "running 2h 05m" reads true):

job                 data source      tasks  state                                   status
job-aws-202611      ds-aws-billing   12     7 done, 1 running, 4 pending            IN_PROGRESS, 7 of 12
job-gcp-202611      ds-gcp-billing   6      all succeeded                           SUCCESS
job-azure-202611    ds-azure-ea      4      3 succeeded, 1 failed                   FAILURE
job-aws-202610      ds-aws-billing   3      1 done, then canceled by an operator    CANCELED
job-oci-202611      ds-oci           2      running when the scheduler timed it out TIMEOUT

``job-task-aws-202611-01``'s history has every kind of delivery: applied, a
redelivery of its progressed event (``duplicate``) and a progressed event
and a timeout that came after it had succeeded (``ignored``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.harness import Pipeline
from tests.readside import text

OPS_DOMAIN = "domain-ops"
OPS_TOKENS = {
    "token-ops": {"domain_id": OPS_DOMAIN},
    "token-ops-cancel": {"domain_id": OPS_DOMAIN, "permissions": ["read", "cancel"]},
}
RUNNING_JOB = "job-aws-202611"
HISTORY_TASK = "job-task-aws-202611-01"
MINUTE = timedelta(minutes=1)
# job_id: (data source, tasks, month, minutes ago it was declared)
JOBS = {
    "job-aws-202611": ("ds-aws-billing", 12, "202611", 125),
    "job-gcp-202611": ("ds-gcp-billing", 6, "202611", 190),
    "job-azure-202611": ("ds-azure-ea", 4, "202611", 240),
    "job-aws-202610": ("ds-aws-billing", 3, "202610", 300),
    "job-oci-202611": ("ds-oci", 2, "202611", 420),
}
# What each job shows, for the assertions: status, (finished, total), task counts.
EXPECTED = {
    "job-aws-202611": ("IN_PROGRESS", (7, 12), {"SUCCESS": 7, "IN_PROGRESS": 1, "PENDING": 4}),
    "job-gcp-202611": ("SUCCESS", (6, 6), {"SUCCESS": 6}),
    "job-azure-202611": ("FAILURE", (4, 4), {"SUCCESS": 3, "FAILURE": 1}),
    "job-aws-202610": ("CANCELED", (3, 3), {"SUCCESS": 1, "CANCELED": 2}),
    "job-oci-202611": ("TIMEOUT", (2, 2), {"TIMEOUT": 2}),
}
NEWEST_FIRST = list(JOBS)


def task_id(job_id: str, index: int) -> str:
    """``job-task-aws-202611-01``: the job's name and the task's number in it."""
    return f"job-task-{job_id.removeprefix('job-')}-{index:02d}"


def drive_operations(pipeline: Pipeline, now: datetime | None = None) -> None:
    """Send the table's events through ``pipeline``'s worker and wait until they are applied."""
    now = now or datetime.now(UTC)
    events, ids = pipeline.events, {"domain_id": OPS_DOMAIN}
    for job_id, (source, total, month, ago) in JOBS.items():
        declared = now - ago * MINUTE
        events.job_created(job_id=job_id, data_source_id=source, total_tasks=total,
                           options={"month": month}, occurred_at=text(declared), **ids)
        for index in range(1, total + 1):
            job_task_id = task_id(job_id, index)
            created = declared + index * timedelta(seconds=20)
            account = f"{int('4' * 12) + index * 7919:012d}"
            events.created(job_task_id=job_task_id, job_id=job_id, data_source_id=source,
                           options={"month": month, "account": account}, occurred_at=text(created), **ids)
            _drive_task(pipeline, job_id, index, job_task_id, created)
        if job_id == "job-aws-202610":
            events.job_canceled(job_id, reason="wrong month: re-run for 202611",
                                occurred_at=text(declared + 20 * MINUTE), **ids)
        if job_id == "job-oci-202611":
            events.job_timed_out(job_id, reason="no progress for 2 hours",
                                 occurred_at=text(declared + 180 * MINUTE), **ids)
    pipeline.wait_until_idle()


def _drive_task(pipeline: Pipeline, job_id: str, index: int, job_task_id: str, created: datetime) -> None:
    events, ids = pipeline.events, {"domain_id": OPS_DOMAIN}

    def at(minutes: float) -> dict:
        return {"occurred_at": text(created + minutes * MINUTE), **ids}

    if job_id == "job-aws-202611" and index > 8:
        return  # pending: created only
    events.started(job_task_id, **at(1))
    if job_id == "job-aws-202611" and index == 8:
        events.progressed(job_task_id, created_count_delta=1200, **at(4))
        return  # still running
    if job_id == "job-aws-202610" and index > 1:
        return  # running when the job was canceled
    if job_id == "job-oci-202611":
        events.progressed(job_task_id, created_count_delta=50 * index, **at(5))
        return  # running when the job timed out
    progressed = events.progressed(job_task_id, created_count_delta=1000 + 137 * index, **at(3))
    if job_task_id == HISTORY_TASK:
        # The broker delivers the same event again (a producer's retry): a duplicate. Once the
        # first is applied, so it is received later and the timeline's order is this one.
        pipeline.wait_until_idle()
        events.progressed(job_task_id, created_count_delta=1137, event_id=progressed, **at(3))
    if job_id == "job-azure-202611" and index == 4:
        events.failed(job_task_id, error_code="ERROR_PLUGIN_AUTH", error_message="the EA key has expired",
                      **at(6))
        return
    events.succeeded(job_task_id, created_count_delta=11 * index, **at(8))
    if job_task_id == HISTORY_TASK:
        # A sweep's timeout for a task that had already succeeded: the earlier end wins, this is ignored.
        events.timed_out(job_task_id, reason="no progress for 60 minutes", **at(70))

"""The sweep: find the stale tasks and overdue Jobs, and send the events that end them.

``sweep`` reads (``worker.store.sweep``), per domain, the IN_PROGRESS and PENDING tasks whose
``_applied_at`` (the worker's clock, ``worker.store.tasks.task_update``) is older than
their timeout, and the IN_PROGRESS Jobs stored (``_created_on``) more than
the job timeout ago, and hands the event that ends each
(``contract.sweep``) to ``send``, the producer SDK's: the events travel the
queue and the rules of any producer's, so the sweep itself writes nothing.
A sweep that fails half way leaves nothing to undo; the next one sends
again, under the same event ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymongo.database import Database

from worker.contract.sweep import (
    Timeouts,
    job_timed_out,
    task_timed_out,
)
from worker.store.sweep import overdue_jobs, stale_tasks

logger = logging.getLogger(__name__)

# send(kind, kwargs): validates and sends one event, as the producer SDK's
# JobTaskEvents.send does (kinds as it names them).
Send = Callable[[str, dict], object]
TASK_TIMED_OUT = "timed_out"
JOB_TIMED_OUT = "job.timed_out"


@dataclass
class SweepReport:
    """What one sweep sent: the tasks and Jobs it timed out, by id."""

    tasks: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


def sweep(db: Database, send: Send, timeouts: Timeouts, now: datetime | None = None) -> SweepReport:
    """Send a timed_out for every stale task and overdue Job; returns what it sent."""
    now = now or datetime.now(UTC)
    report = SweepReport()
    for job in overdue_jobs(db, now, timeouts):
        send(JOB_TIMED_OUT, job_timed_out(job["job_id"], job["domain_id"], job["_created_on"], timeouts))
        report.jobs.append(job["job_id"])
    for task in stale_tasks(db, now, timeouts):
        send(TASK_TIMED_OUT, task_timed_out(task["job_task_id"], task["domain_id"], task["status"],
                                            task["_applied_at"], timeouts))
        report.tasks.append(task["job_task_id"])
    if report.tasks or report.jobs:
        logger.info("sweep timed out %d tasks and %d jobs", len(report.tasks), len(report.jobs))
    return report

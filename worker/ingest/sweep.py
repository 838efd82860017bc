"""The sweep's store side: find the stale tasks and overdue Jobs, and send the events that end them.

``sweep`` reads, per domain, the IN_PROGRESS and PENDING tasks whose
``_applied_at`` (the worker's clock, ``store.task_update``) is older than
their timeout, and the IN_PROGRESS Jobs stored (``_created_on``) more than
the job timeout ago, and hands the event that ends each
(``contract.sweep``) to ``send``, the producer SDK's: the events travel the
queue and the rules of any producer's, so the sweep itself writes nothing.
A sweep that fails half way leaves nothing to undo; the next one sends
again, under the same event ids.

The reads are index-backed and touch only what may be stale: the domains
(a distinct scan of ``job_tasks``' ``domain_created``), a domain's tasks of
one status through ``domain_status_created`` (its PENDING and IN_PROGRESS
tasks: the work in flight, not the history), and the running Jobs through
``jobs``' partial ``running_created_on`` (``jobs.ensure_job_indexes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymongo.database import Database

from worker.contract.lifecycle import IN_PROGRESS
from worker.contract.sweep import (
    SWEPT_STATUSES,
    Timeouts,
    is_overdue,
    is_stale,
    job_timed_out,
    stale_before,
    task_timed_out,
)
from worker.ingest.jobs import JOBS
from worker.ingest.store import JOB_TASKS

logger = logging.getLogger(__name__)

# send(kind, kwargs): validates and sends one event, as the producer SDK's
# JobTaskEvents.send does (kinds as it names them).
Send = Callable[[str, dict], object]
TASK_TIMED_OUT = "timed_out"
JOB_TIMED_OUT = "job.timed_out"
# Stale tasks read per round trip; each is one small document.
PAGE = 500


@dataclass
class SweepReport:
    """What one sweep sent: the tasks and Jobs it timed out, by id."""

    tasks: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


def domains(db: Database) -> list[str]:
    """Every domain that has tasks.

    On MongoDB a distinct scan of ``domain_created``: one index seek per
    domain. (secantusdb reads the collection for it, once per sweep.)
    """
    return sorted(db[JOB_TASKS].distinct("domain_id"))


def stale_tasks(db: Database, now: datetime, timeouts: Timeouts) -> Iterator[dict]:
    """Tasks of every domain stale at ``now``: job_task_id, domain_id, status, _applied_at."""
    fields = {"_id": 0, "job_task_id": 1, "domain_id": 1, "status": 1, "_applied_at": 1}
    for domain_id in domains(db):
        for status in SWEPT_STATUSES:
            timeout = timeouts.of_status(status)
            assert timeout is not None  # every swept status has one
            cutoff = stale_before(now, timeout)
            query = {"domain_id": domain_id, "status": status, "_applied_at": {"$lt": cutoff}}
            for task in db[JOB_TASKS].find(query, fields).batch_size(PAGE):
                if is_stale(task["status"], task["_applied_at"], now, timeouts):  # the rule decides
                    yield task


def overdue_jobs(db: Database, now: datetime, timeouts: Timeouts) -> Iterator[dict]:
    """Jobs IN_PROGRESS at ``now`` that the worker stored more than the job timeout ago."""
    query = {"status": IN_PROGRESS, "_created_on": {"$lt": stale_before(now, timeouts.job)}}
    fields = {"_id": 0, "job_id": 1, "domain_id": 1, "status": 1, "_created_on": 1}
    for job in db[JOBS].find(query, fields).batch_size(PAGE):
        if is_overdue(job["status"], job["_created_on"], now, timeouts):  # the rule decides
            yield job


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

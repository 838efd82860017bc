"""The sweep's reads: the tasks that stopped reporting and the Jobs that ran too long.

They are index-backed and touch only what may be stale: the domains (a
distinct scan of ``job_tasks``' ``domain_created``), a domain's tasks of
one status through ``domain_status_created`` (its PENDING and IN_PROGRESS
tasks: the work in flight, not the history), and the running Jobs through
``jobs``' partial ``running_created_on``. The rules (``contract.sweep``)
decide what is stale; these only narrow what they look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pymongo.database import Database

from worker.contract.jobs import ERROR_JOB_NOT_DECLARED
from worker.contract.lifecycle import IN_PROGRESS
from worker.contract.sweep import SWEPT_STATUSES, Timeouts, is_overdue, is_stale, stale_before
from worker.store.collections import JOB_TASKS, JOBS, domains_in

# Stale tasks read per round trip; each is one small document.
PAGE = 500


def domains(db: Database) -> list[str]:
    """Every domain that has tasks (``collections.domains_in``)."""
    return domains_in(db[JOB_TASKS])


def stale_tasks(db: Database, now: datetime, timeouts: Timeouts) -> Iterator[dict]:
    """Tasks of every domain stale at ``now``: job_task_id, domain_id, status, _applied_at."""
    fields = {"_id": 0, "job_task_id": 1, "domain_id": 1, "status": 1, "_applied_at": 1}
    for domain_id in domains(db):
        for status in SWEPT_STATUSES:
            timeout = timeouts.of_status(status)
            assert timeout is not None  # every swept status has one
            cutoff = stale_before(now, timeout)
            # The domain's tasks of this status through domain_status_created: the
            # work in flight. The cutoff is applied here, as a filter on a field
            # outside the index would make the embedded store read every task.
            query = {"domain_id": domain_id, "status": status}
            for task in db[JOB_TASKS].find(query, fields).batch_size(PAGE):
                if task["_applied_at"] < cutoff and is_stale(task["status"], task["_applied_at"], now, timeouts):
                    yield task


def overdue_jobs(db: Database, now: datetime, timeouts: Timeouts) -> Iterator[dict]:
    """Jobs IN_PROGRESS at ``now`` that the worker stored more than the job timeout ago."""
    query = {"status": IN_PROGRESS, "_created_on": {"$lt": stale_before(now, timeouts.job)}}
    fields = {"_id": 0, "job_id": 1, "domain_id": 1, "status": 1, "_created_on": 1, "error_code": 1,
              "remained_tasks": 1}
    for job in db[JOBS].find(query, fields).batch_size(PAGE):
        waits = job.get("error_code") == ERROR_JOB_NOT_DECLARED and job.get("remained_tasks") == 0
        if is_overdue(job["status"], job["_created_on"], now, timeouts, waits):  # the rule decides
            yield job

"""``/cost-analysis/v1/job-task/...``: the JobTask's get, list, stat and a task's history.

The history is ``worker.read.history.task_history`` (shared with ``jobtask
history``): every delivery of a task's events in the order they occurred,
scoped like get. The watch stream of the same prefix is ``worker.api.watch``.
"""

from __future__ import annotations

from fastapi import APIRouter

from worker.api.models import TaskHistoryInfo
from worker.api.openapi import Documented
from worker.api.reads import READ_ERRORS, add_reads, endpoint
from worker.read.history import TaskHistoryRequest, task_history
from worker.read.resource import JOB_TASK

PREFIX = "/cost-analysis/v1/job-task"


def job_task_router(documented: Documented) -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    add_reads(router, JOB_TASK, documented)
    router.add_api_route(
        "/history", endpoint(task_history), methods=["POST"], name="job_task_history",
        summary="Every delivery of a task's events, in the order they occurred, and its outcome",
        openapi_extra=documented.post(TaskHistoryRequest, TaskHistoryInfo, READ_ERRORS),
    )
    return router

"""A task's deliveries, as the worker recorded them: the history read, for every face.

``task_history`` answers ``POST .../job-task/history``: each delivery of a
task's events in the order they occurred (``occurred_at``, then
``received_at``), with its type, event_id, times, outcome and reason, paged
like ``list``. It is scoped like ``get``: a task the caller may not read is
``ERROR_NOT_FOUND``, the same answer as for a task that does not exist. A
task not created yet (its events parked, waiting for its ``created``) shows
what the caller's domain sent for it, to a domain-wide caller only, since
no workspace is known before the ``created``.

``task_deliveries`` is the same read without the body, for the CLI
(``jobtask history``), which prints every record.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SkipValidation
from pymongo.database import Database

from worker.contract.errors import ERROR_NOT_FOUND
from worker.read.models import Page, RequestBase, _blank_is_missing, _Strict
from worker.read.parse import parse
from worker.read.query import Scope, in_scope, page_window
from worker.read.resource import JOB_TASK
from worker.settings import Settings
from worker.store import reads
from worker.store.collections import HISTORY
from worker.store.documents import plain
from worker.store.history import owned_by

# Oldest first by when it happened; a producer's clock may repeat a time, so
# arrival breaks ties, then the record's key (one record per delivery and batch).
DELIVERY_ORDER = [("occurred_at", 1), ("received_at", 1), ("_id", 1)]
# What a record shows, in this order; the others (payload, fingerprint, batch) stay in the store.
DELIVERY_FIELDS = ("type", "kind", "event_id", "occurred_at", "received_at", "outcome", "reason",
                   "message_id", "job_id")


class HistoryQuery(_Strict):
    """Which deliveries: a page of them (all, up to the server's cap, without one)."""

    page: SkipValidation[Page | None] = None


class TaskHistoryRequest(RequestBase):
    """The deliveries of one JobTask."""

    job_task_id: Annotated[str, BeforeValidator(_blank_is_missing), Field(min_length=1)]
    query: HistoryQuery | None = Field(None, description="Default: the first page of the server's size")


def task_history(db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings) -> dict[str, Any]:
    """``{"results": [...], "total_count": n}`` for a history request; see the module docstring."""
    request = parse(TaskHistoryRequest, body)
    skip, limit, _ = page_window(request.query.page if request.query else None, settings.max_page_size)
    records, total_count = task_deliveries(db, scope, request.job_task_id, settings, skip, limit)
    return {"results": records, "total_count": total_count}


def task_deliveries(db: Database[dict[str, Any]], scope: Scope, job_task_id: str, settings: Settings,
                    skip: int = 0, limit: int = 0) -> tuple[list[dict[str, Any]], int]:
    """(records in occurrence order, how many there are); ``limit`` 0 is all of them."""
    limit_ms = settings.query_time_limit_ms
    placement = {"domain_id": 1, "workspace_id": 1, "resource_group": 1}
    task = reads.find_one(db, JOB_TASK.collection, {"_id": job_task_id}, placement, limit_ms)
    if task is None:
        if scope.workspace_ids is not None:
            raise ERROR_NOT_FOUND(key=JOB_TASK.id_field, value=job_task_id)
        # Not created yet: only what this domain sent for it.
        query = {"_id": owned_by(job_task_id), "domain_id": scope.domain_id}
    elif not in_scope(scope, task):
        raise ERROR_NOT_FOUND(key=JOB_TASK.id_field, value=job_task_id)
    else:
        query = {"_id": owned_by(job_task_id)}
    total_count = reads.count(db, HISTORY, query, limit_ms)
    if task is None and total_count == 0:
        raise ERROR_NOT_FOUND(key=JOB_TASK.id_field, value=job_task_id)
    found = reads.find_page(db, HISTORY, query, {"event": 0, "payload": 0}, DELIVERY_ORDER, skip, limit, limit_ms)
    return [delivery_info(record) for record in found], total_count


def delivery_info(record: dict[str, Any]) -> dict[str, Any]:
    """One history record as the API returns it: its type is the event's task name."""
    shown = {**record, "type": record.get("task_name")}
    return {name: plain(shown[name]) for name in DELIVERY_FIELDS if shown.get(name) is not None}

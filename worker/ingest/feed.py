"""The change feed's writer: a settled batch's JobTasks and Jobs, to a Redis stream on the broker.

``publish_changes`` runs in the pool process once a batch's writes are
stored, before its messages are acknowledged. It reads the documents the
batch changed (one ``find`` per collection) and adds one entry each to
``Settings.change_stream`` in one pipelined round trip (``XADD`` with an
approximate ``MAXLEN`` of ``JOBTASK_WATCH_BACKLOG``); the entry format is
``worker.contract.changes``.

It never fails a batch: a store or broker error (or any other) is logged (once per
outage) and the changes are dropped. The process then owes watchers a
``reset`` entry, added before its next changes, which tells each watcher to
reload what it shows: a lost change is never a silent gap.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import redis
from pymongo.database import Database

from worker.contract.changes import JOB, JOB_TASK, change_entry, reset_entry
from worker.ingest.jobs import JOBS
from worker.ingest.store import JOB_TASKS
from worker.settings import Settings

logger = logging.getLogger(__name__)

# A Job's internal maps grow with its tasks and events; the feed needs none of them.
JOB_INTERNALS = {"_tasks": 0, "_events": 0, "_state": 0}
BROKER_TIMEOUT = 2.0  # seconds: a broker that does not answer costs a batch this much at most


class _ProcessFeed:
    """This process's broker client (never shared across a fork) and what it owes watchers."""

    def __init__(self) -> None:
        self.owner: tuple[int, str] | None = None  # the process and URL the client was made for
        self.client: redis.Redis | None = None
        self.owes_reset = False
        self.failing = False

    def broker(self, settings: Settings) -> redis.Redis:
        assert settings.broker_url is not None  # a worker has one
        if self.owner != (os.getpid(), settings.broker_url) or self.client is None:
            self.owner = (os.getpid(), settings.broker_url)
            self.client = redis.Redis.from_url(
                settings.broker_url, socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT
            )
        return self.client

    def dropped(self, what: str, exc: Exception) -> None:
        self.owes_reset = True
        if not self.failing:  # once per outage, not once per batch
            logger.warning("change feed: %s (%s: %s); watchers will be told to reload",
                           what, type(exc).__name__, exc)
        self.failing = True

    def sent(self) -> None:
        if self.failing:
            logger.info("change feed: publishing again")
        self.owes_reset = self.failing = False


_feed = _ProcessFeed()


def changed_entries(db: Database, job_task_ids: set[str], job_ids: set[str]) -> list[dict[str, str]]:
    """The stream entries for these tasks and jobs, as they are stored now."""
    entries = []
    if job_task_ids:
        tasks = db[JOB_TASKS].find({"_id": {"$in": sorted(job_task_ids)}})
        entries += [change_entry(JOB_TASK, doc) for doc in sorted(tasks, key=lambda doc: doc["_id"])]
    if job_ids:
        jobs = db[JOBS].find({"_id": {"$in": sorted(job_ids)}}, JOB_INTERNALS)
        entries += [change_entry(JOB, doc) for doc in sorted(jobs, key=lambda doc: doc["_id"])]
    return entries


def publish_changes(db: Database, settings: Settings, job_task_ids: set[str], job_ids: set[str]) -> None:
    """Announce what a settled batch changed; never raises (see the module docstring)."""
    if not settings.broker_url or not (job_task_ids or job_ids or _feed.owes_reset):
        return
    try:
        entries = changed_entries(db, job_task_ids, job_ids)
    except Exception as exc:  # noqa: BLE001 - the feed never fails a batch
        _feed.dropped("the changed documents could not be read", exc)
        return
    if _feed.owes_reset:
        entries.insert(0, reset_entry())
    try:
        pipe = _feed.broker(settings).pipeline(transaction=False)
        for entry in entries:
            fields: dict[Any, Any] = entry  # redis-py's field type is a union dict[str, str] is not
            pipe.xadd(settings.change_stream, fields, maxlen=settings.watch_backlog, approximate=True)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - the feed never fails a batch
        _feed.dropped("the broker refused the changes", exc)
        return
    _feed.sent()

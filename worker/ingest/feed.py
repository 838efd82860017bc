"""The change feed's writer: a settled batch's JobTasks and Jobs, to a Redis stream on the broker.

``publish_changes`` runs in the pool process once a batch's writes are
stored, before its messages are acknowledged. It reads the documents the
batch changed (one ``find`` per collection, shaped as ``get`` returns them) and adds one entry each to
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
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.contract.changes import JOB, JOB_TASK, change_entry, reset_entry
from worker.settings import Settings
from worker.store.jobs import public_jobs
from worker.store.tasks import public_tasks

logger = logging.getLogger(__name__)

BROKER_TIMEOUT = 2.0  # seconds: a broker that does not answer costs a batch this much at most


def feed_options(settings: Settings) -> dict:
    """The broker connection's options: JOBTASK_PEER_TIMEOUT's, with waits of BROKER_TIMEOUT at most.

    A publish waits for the broker while the batch's messages are held, so it
    gives up sooner than the bound: half of BROKER_TIMEOUT per attempt, and
    one more attempt on a new connection, so that a connection gone silent
    (a failover since the last batch) costs no change.
    """
    options = settings.redis_options
    options["socket_timeout"] = options["socket_connect_timeout"] = min(BROKER_TIMEOUT / 2, settings.peer_timeout)
    options["retry"] = Retry(NoBackoff(), 1)
    return options


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
            self.client = redis.Redis.from_url(settings.broker_url, **feed_options(settings))
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
    """The stream entries for these tasks and jobs, as they are stored now (each as get returns it)."""
    entries = [change_entry(JOB_TASK, task) for task in public_tasks(db, job_task_ids)]
    return entries + [change_entry(JOB, job) for job in public_jobs(db, job_ids)]


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

"""The pool-process side of a batch: settle it in the store, say what to ack.

``run_batch`` is what ``worker.batching`` sends to a pool process. It
retries the batch through store outages (``worker.retry``) and answers, per
message, ``ack`` once the message's outcome is stored or ``requeue`` when it
could not be, so that the broker redelivers it.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime

from pymongo.database import Database

from worker import history, lifecycle
from worker.batching import ACK, REQUEUE
from worker.history import Delivery
from worker.processor import BatchResult, process_batch
from worker.retry import Backoff, StoreUnavailable, retry_transient
from worker.settings import Settings, get_settings
from worker.store import connect

logger = logging.getLogger(__name__)

_databases: dict[int, Database] = {}


def process_database(settings: Settings) -> Database:
    """One client per process: a MongoClient must not cross a fork."""
    pid = os.getpid()
    if pid not in _databases:
        if not settings.mongo_url:
            raise RuntimeError("JOBTASK_MONGO_URL is not set")
        _databases.clear()
        _databases[pid] = connect(
            settings.mongo_url, settings.mongo_db, settings.store_timeout_ms, app="jobtask-worker"
        )
    return _databases[pid]


def _deliveries(raw: list[tuple]) -> list[Delivery]:
    return [
        Delivery(message_id, task_name, args, kwargs if isinstance(kwargs, dict) else {"kwargs": kwargs},
                 received_at if isinstance(received_at, datetime) else datetime.fromisoformat(received_at),
                 refusal)
        for message_id, task_name, args, kwargs, received_at, refusal in raw
    ]


def _settle(db: Database, deliveries: list[Delivery], settings: Settings) -> BatchResult:
    batch_id = uuid.uuid4().hex
    backoff = Backoff(settings.store_retry_base, settings.store_retry_cap, settings.store_retry_budget)
    return retry_transient(
        lambda: process_batch(db, deliveries, batch_id, settings.max_events_per_task), backoff
    )


def _dead_letter_internal(delivery: Delivery, exc: Exception, settings: Settings) -> str:
    """A message that fails for no known reason is set aside, not retried forever."""
    outcome = lifecycle.Outcome(lifecycle.REJECTED, f"internal error: {type(exc).__name__}: {exc}")
    try:
        db = process_database(settings)
        history.write_history(db, [history.history_record(delivery, "internal", outcome)])
        history.write_dead_letters(db, [history.dead_letter_record(delivery, outcome, None, None)])
        return ACK
    except Exception:
        logger.exception("could not dead-letter message %s; requeued", delivery.message_id)
        return REQUEUE


def run_batch(raw: list[tuple]) -> list[str]:
    """Settle a batch; on an unexpected error, settle its messages one by one."""
    settings = get_settings()
    deliveries = _deliveries(raw)
    try:
        db = process_database(settings)
        result = _settle(db, deliveries, settings)
    except StoreUnavailable as exc:
        logger.error("batch of %d requeued: %s", len(deliveries), exc)
        return [REQUEUE] * len(deliveries)
    except Exception as exc:
        if len(deliveries) == 1:
            logger.exception("message %s could not be settled", deliveries[0].message_id)
            return [_dead_letter_internal(deliveries[0], exc, settings)]
        logger.exception("batch of %d failed; settling its messages one by one", len(deliveries))
        return [run_batch([item])[0] for item in raw]
    applied = result.count(lifecycle.APPLIED)
    logger.info("batch of %d settled: %d applied", len(deliveries), applied)
    return [ACK] * len(deliveries)


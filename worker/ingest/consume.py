"""The pool-process side of a batch: settle it in the store, say what to ack.

``run_batch`` is what ``worker.ingest.batching`` sends to a pool process. It
retries the batch through store outages (``worker.ingest.retry``) and answers, per
message, ``ack`` once the message's outcome is stored or ``requeue`` when it
could not be, so that the broker redelivers it; with the decisions it reports
each outcome and the store retries (``worker.observe.report``), which the main
process counts and logs.

One deadline covers the whole call, the one-by-one fallback included: it
returns within JOBTASK_STORE_RETRY_BUDGET plus one store operation's
timeout, so the main process can hold a batch's messages for a known time.
A message is set aside as an internal error only when it fails on its own
for a reason that is not the store's availability.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from datetime import UTC, datetime

from pymongo.database import Database

from worker.contract import lifecycle
from worker.ingest import history
from worker.ingest.feed import publish_changes
from worker.ingest.history import Delivery
from worker.ingest.items import ending_message_id
from worker.ingest.processor import BatchResult, process_batch
from worker.ingest.retry import Backoff, StoreUnavailable, is_transient, retry_transient
from worker.mongo import connect
from worker.observe.report import JOB_ENDING, PARKED_EARLIER, BatchReport, MessageOutcome, message_outcome
from worker.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ACK = "ack"
REQUEUE = "requeue"
MAX_MESSAGE_ID = 128  # longer ids (any producer may set one) are kept as a digest

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


def _message_id(raw: str) -> str:
    text = str(raw)
    if len(text) <= MAX_MESSAGE_ID:
        return text
    return "sha256:" + hashlib.sha256(text.encode(errors="replace")).hexdigest()


def deliveries_of(raw: list[tuple]) -> list[Delivery]:
    return [
        Delivery(_message_id(message_id), task_name, args,
                 kwargs if isinstance(kwargs, dict) else {"kwargs": kwargs},
                 received_at if isinstance(received_at, datetime) else datetime.fromisoformat(received_at),
                 refusal)
        for message_id, task_name, args, kwargs, received_at, refusal in raw
    ]


class Settler:
    """Settles deliveries in the store before one deadline (monotonic clock)."""

    def __init__(self, settings: Settings, deadline: float) -> None:
        self.settings = settings
        self.deadline = deadline
        self.backoff = Backoff(settings.store_retry_base, settings.store_retry_cap,
                               settings.store_retry_budget)
        self.outcomes: list[MessageOutcome] = []  # what was settled, for the report
        self.store_retries = 0

    def _sleep(self, seconds: float) -> None:
        """Between two attempts of a store operation: counted for the metrics."""
        self.store_retries += 1
        time.sleep(seconds)

    def settle(self, deliveries: list[Delivery]) -> BatchResult:
        """The whole batch, retried through transient errors under one batch id."""
        db = process_database(self.settings)
        batch_id = uuid.uuid4().hex
        max_events = self.settings.max_events_per_task
        derive_jobs = self.settings.derive_jobs
        return retry_transient(lambda: process_batch(db, deliveries, batch_id, max_events, derive_jobs),
                               self.backoff, sleep=self._sleep, deadline=self.deadline)

    def set_aside(self, delivery: Delivery, exc: Exception) -> str:
        """A message that fails on its own, not for the store: dead-letter it, never loop on it."""
        outcome = lifecycle.Outcome(lifecycle.REJECTED, f"internal error: {type(exc).__name__}: {exc}")

        def record() -> None:
            db = process_database(self.settings)
            history.write_history(db, [history.history_record(delivery, "internal", outcome)])
            history.write_dead_letters(db, [history.dead_letter_record(delivery, outcome, None, None)])

        try:
            retry_transient(record, self.backoff, sleep=self._sleep, deadline=self.deadline)
            self.outcomes.append(_reported(delivery, outcome, None))
            return ACK
        except Exception:
            logger.exception("could not dead-letter message %s; requeued", delivery.message_id)
            return REQUEUE

    def decide(self, deliveries: list[Delivery]) -> list[str]:
        """``ack`` or ``requeue`` per delivery; splits a batch that fails for no store reason."""
        try:
            result = self.settle(deliveries)
        except StoreUnavailable as exc:
            logger.error("batch of %d requeued: %s", len(deliveries), exc)
            return [REQUEUE] * len(deliveries)
        except Exception as exc:
            if is_transient(exc):  # the deadline came first
                logger.error("batch of %d requeued: %s", len(deliveries), exc)
                return [REQUEUE] * len(deliveries)
            if len(deliveries) == 1:
                logger.exception("message %s could not be settled", deliveries[0].message_id)
                return [self.set_aside(deliveries[0], exc)]
            logger.exception("batch of %d failed; settling its messages one by one", len(deliveries))
            return [self.decide_one(delivery) for delivery in deliveries]
        # Stored: announce it to watchers (never fails; see worker.ingest.feed).
        publish_changes(process_database(self.settings), self.settings, result.tasks, result.jobs)
        self.outcomes += reported_outcomes(deliveries, result.outcomes)
        logger.debug("batch of %d settled: %d applied", len(deliveries), result.count(lifecycle.APPLIED))
        return [ACK] * len(deliveries)

    def decide_one(self, delivery: Delivery) -> str:
        if time.monotonic() >= self.deadline:
            return REQUEUE  # out of time: the broker brings it back
        return self.decide([delivery])[0]


def _reported(delivery: Delivery, outcome: lifecycle.Outcome, source: str | None) -> MessageOutcome:
    return message_outcome(delivery.message_id, delivery.task_name, delivery.kwargs, delivery.received_at,
                           outcome, datetime.now(UTC), source)


def reported_outcomes(deliveries: list[Delivery],
                      outcomes: list[tuple[Delivery, lifecycle.Outcome]]) -> list[MessageOutcome]:
    """One entry per message of the batch (its last outcome), and those of other events it settled.

    A message of the batch is told by identity: a parked record taken up again
    or a Job's ending builds a Delivery of its own.
    """
    own = {id(delivery) for delivery in deliveries}
    last: dict[int, lifecycle.Outcome] = {}
    others = []
    for delivery, outcome in outcomes:
        if id(delivery) in own:
            last[id(delivery)] = outcome
            continue
        kwargs = delivery.kwargs  # a dict: deliveries_of made it one
        ending = delivery.message_id == ending_message_id(kwargs.get("event_id"), kwargs.get("job_task_id"))
        others.append(_reported(delivery, outcome, JOB_ENDING if ending else PARKED_EARLIER))
    mine = [_reported(delivery, last[id(delivery)], None) for delivery in deliveries if id(delivery) in last]
    return mine + others


def run_batch(raw: list[tuple]) -> BatchReport:
    """Settle a batch; on an unexpected error, settle its messages one by one."""
    settings = get_settings()
    deadline = time.monotonic() + settings.store_retry_budget
    settler = Settler(settings, deadline)
    decisions = settler.decide(deliveries_of(raw))
    return BatchReport(decisions, settler.outcomes, settler.store_retries)

"""The pool-process side of a batch: run it in the store, say what to ack.

``run_batch`` is what ``worker.ingest.batching`` sends to a pool process. It
retries the batch through store outages (``worker.store.retry``) and answers, per
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

import logging
import os
import time
from datetime import UTC, datetime

from pymongo.database import Database

from worker.contract.delivery import ACK, MESSAGE, REQUEUE, Delivery
from worker.contract.outcomes import APPLIED, Outcome, internal_error
from worker.ingest.feed import publish_changes
from worker.ingest.processor import BatchResult, process_batch
from worker.observe.report import BatchReport, MessageOutcome, message_outcome
from worker.settings import Settings, get_settings
from worker.store import dead_letters, history
from worker.store.client import connect
from worker.store.retry import Backoff, StoreUnavailable, is_transient, retry_transient

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
            settings.mongo_url, settings.mongo_db, settings.store_timeout_ms, app="jobtask-worker",
            socket_timeout_ms=settings.store_socket_timeout_ms(),
        )
    return _databases[pid]


class BatchRunner:
    """Runs one batch's deliveries in the store before one deadline (monotonic clock)."""

    def __init__(self, settings: Settings, batch_id: str, deadline: float) -> None:
        self.settings = settings
        self.batch_id = batch_id  # the main process's id of the batch; its history records carry it
        self.deadline = deadline
        self.attempts = 0  # of the batch or a part of it, each under an id of its own
        self.backoff = Backoff(settings.store_retry_base, settings.store_retry_cap,
                               settings.store_retry_budget)
        self.outcomes: list[MessageOutcome] = []  # what was settled, for the report
        self.store_retries = 0

    def _sleep(self, seconds: float) -> None:
        """Between two attempts of a store operation: counted for the metrics."""
        self.store_retries += 1
        time.sleep(seconds)

    def apply(self, deliveries: list[Delivery]) -> BatchResult:
        """The deliveries, retried through transient errors under one id."""
        db = process_database(self.settings)
        batch_id = self.batch_id if not self.attempts else f"{self.batch_id}.{self.attempts}"
        self.attempts += 1
        max_events = self.settings.max_events_per_task
        derive_jobs = self.settings.derive_jobs
        return retry_transient(lambda: process_batch(db, deliveries, batch_id, max_events, derive_jobs),
                               self.backoff, sleep=self._sleep, deadline=self.deadline)

    def set_aside(self, delivery: Delivery, exc: Exception) -> str:
        """A message that fails on its own, not for the store: dead-letter it, never loop on it."""
        outcome = internal_error(exc)

        def record() -> None:
            db = process_database(self.settings)
            history.write_history(db, [history.history_record(delivery, "internal", outcome)])
            dead_letters.write_dead_letters(db, [dead_letters.dead_letter_record(delivery, outcome, None, None)])

        try:
            retry_transient(record, self.backoff, sleep=self._sleep, deadline=self.deadline)
            self.outcomes.append(message_outcome(delivery, outcome, datetime.now(UTC)))
            return ACK
        except Exception:
            logger.exception("could not dead-letter message %s; requeued", delivery.message_id)
            return REQUEUE

    def decide(self, deliveries: list[Delivery]) -> list[str]:
        """``ack`` or ``requeue`` per delivery; splits a batch that fails for no store reason."""
        try:
            result = self.apply(deliveries)
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
        logger.debug("batch of %d settled: %d applied", len(deliveries), result.count(APPLIED))
        return [REQUEUE if delivery.message_id in result.requeue else ACK for delivery in deliveries]

    def decide_one(self, delivery: Delivery) -> str:
        if time.monotonic() >= self.deadline:
            return REQUEUE  # out of time: the broker brings it back
        return self.decide([delivery])[0]


def reported_outcomes(deliveries: list[Delivery], outcomes: list[tuple[Delivery, Outcome]]) -> list[MessageOutcome]:
    """One entry per message of the batch (its last outcome), and those of other events it settled."""
    processed_at = datetime.now(UTC)
    last: dict[str, Outcome] = {}
    others = []
    for delivery, outcome in outcomes:
        if delivery.source == MESSAGE:
            last[delivery.message_id] = outcome
        else:
            others.append(message_outcome(delivery, outcome, processed_at))
    mine = [message_outcome(delivery, last[delivery.message_id], processed_at)
            for delivery in deliveries if delivery.message_id in last]
    return mine + others


def run_batch(deliveries: list[Delivery], batch_id: str) -> BatchReport:
    """Run a batch; on an unexpected error, run its messages one by one."""
    settings = get_settings()
    deadline = time.monotonic() + settings.store_retry_budget
    runner = BatchRunner(settings, batch_id, deadline)
    decisions = runner.decide(deliveries)
    return BatchReport(decisions, runner.outcomes, runner.store_retries)

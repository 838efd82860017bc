"""What the worker's main process does when a batch is sent and when it is settled.

``BatchObserver`` is called by the buffer (``worker.ingest.batching``) at the
two moments: it sends the Celery task events (``task_events``), counts
(``metrics``) and writes the log lines (``logs``). It never raises into the
buffer: a failure here is logged, and the messages are settled all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from worker.contract.delivery import ACK, MESSAGE, Delivery
from worker.observe import logs, task_events
from worker.observe.metrics import WorkerMetrics
from worker.observe.report import BatchReport, MessageOutcome

logger = logging.getLogger(__name__)


class BatchObserver:
    """Metrics, task events and log lines for the batches of one worker.

    metrics: where to count (None: not counted).
    dispatcher_of: returns the consumer's current Celery event dispatcher
    (it changes with each broker connection), or None.
    """

    def __init__(self, metrics: WorkerMetrics | None, dispatcher_of: Callable[[], Any]) -> None:
        self.metrics = metrics
        self.dispatcher_of = dispatcher_of

    def batch_sent(self, deliveries: list[Delivery]) -> None:
        try:
            task_events.batch_sent(self.dispatcher_of(), deliveries)
        except Exception:
            logger.exception("could not send the task events of a batch")

    def batch_settled(self, deliveries: list[Delivery], decisions: list[str], seconds: float,
                      report: BatchReport | None) -> None:
        try:
            self._settled(deliveries, decisions, seconds, report)
        except Exception:
            logger.exception("could not count or log a settled batch")

    def _settled(self, deliveries: list[Delivery], decisions: list[str], seconds: float,
                 report: BatchReport | None) -> None:
        outcomes = report.outcomes if report is not None else []
        own: dict[str, MessageOutcome] = {o.message_id: o for o in outcomes if o.source == MESSAGE}
        acked = sum(decision == ACK for decision in decisions)
        if self.metrics is not None:
            self.metrics.batch_settled(len(deliveries), seconds, report, len(decisions) - acked)
        for outcome in outcomes:
            logs.log_outcome(outcome)
        logs.log_batch(len(deliveries), seconds, acked, len(decisions) - acked)
        dispatcher = self.dispatcher_of()
        if task_events.sends_task_events(dispatcher):
            for delivery, decision in zip(deliveries, decisions, strict=True):
                task_events.message_settled(dispatcher, delivery.message_id, decision == ACK,
                                            own.get(delivery.message_id), seconds)

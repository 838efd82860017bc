"""The Prometheus metrics of the worker and of the API, each in a registry of its own.

Every counter starts at 0 when its process starts, as Prometheus expects
(``rate`` and ``increase`` handle the reset). The worker counts in its main
process from the pool's batch reports (``worker.observe.report``), so the
numbers are exact across pool processes; see docs/OPERATIONS.md for what
each metric means.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from worker.contract.delivery import MESSAGE
from worker.contract.outcomes import KINDS
from worker.observe.report import BatchReport

logger = logging.getLogger(__name__)

# Lag of an event from occurred_at to applied: from milliseconds to a day.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
BATCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
HTTP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Outcomes whose series exist from the start, so an alert on them sees 0, not nothing.
OUTCOMES = KINDS


def process_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC metrics of this process."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class WorkerMetrics:
    """The worker's counters and histograms, fed by the main process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or process_registry()
        r = self.registry
        self.events = Counter("jobtask_events", "Event messages settled, by task name and outcome",
                              ["type", "outcome"], registry=r)
        self.settled_later = Counter(
            "jobtask_settled_later", "Events settled that were no message of their batch: "
            "parked events taken up when their created came, task events a Job's ending sends",
            ["type", "outcome", "source"], registry=r)
        self.lag = Histogram("jobtask_event_lag_seconds", "Applied time minus occurred_at",
                             ["type"], buckets=LAG_BUCKETS, registry=r)
        self.batch_seconds = Histogram("jobtask_batch_seconds", "Time from sending a batch to a "
                                       "pool process to its messages being settled",
                                       buckets=BATCH_SECONDS_BUCKETS, registry=r)
        self.batch_size = Histogram("jobtask_batch_size", "Messages per batch",
                                    buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.store_retries = Counter("jobtask_store_retries", "Retries of a batch after a "
                                     "transient store error", registry=r)
        self.requeued = Counter("jobtask_requeued", "Messages handed back to the broker unsettled",
                                registry=r)
        self.dead_letters = Counter("jobtask_dead_letters", "Messages sent to the dead letters, "
                                    "by reason", ["reason"], registry=r)
        self.store_retries.inc(0)
        self.requeued.inc(0)
        for outcome in OUTCOMES:
            self.events.labels("job_task.created", outcome)
        self.dead_letters.labels("invalid")
        self.dead_letters.labels("conflict")

    def batch_settled(self, size: int, seconds: float, report: BatchReport | None,
                      requeued: int) -> None:
        """Count one settled batch; ``report`` is None when the pool process was lost."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        if requeued:
            self.requeued.inc(requeued)
        if report is None:
            return
        if report.store_retries:
            self.store_retries.inc(report.store_retries)
        for outcome in report.outcomes:
            if outcome.source == MESSAGE:
                self.events.labels(outcome.type, outcome.outcome).inc()
            else:
                self.settled_later.labels(outcome.type, outcome.outcome, outcome.source).inc()
            if outcome.lag_seconds is not None:
                self.lag.labels(outcome.type).observe(outcome.lag_seconds)
            if outcome.dead_letter:
                self.dead_letters.labels(outcome.dead_letter_code).inc()


def serve(registry: CollectorRegistry, port: int, host: str = "0.0.0.0") -> bool:
    """Serve ``registry`` on ``port`` in a thread; a port in use is logged, not fatal."""
    if not port:
        return False
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        logger.error("metrics not served: port %d: %s (set JOBTASK_METRICS_PORT, 0 turns them off)",
                     port, exc)
        return False
    logger.info("metrics on http://%s:%d/metrics", host, port)
    return True

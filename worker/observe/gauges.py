"""Gauges read on scrape: the broker's waiting messages, and tasks and jobs per status.

A scrape reads at most once per ``max_age`` seconds; in between it answers
from what it read last, so Prometheus scraping every few seconds (or several
Prometheus servers) costs the store one aggregate per collection per 15 s at
most. A read that fails keeps the last numbers and is logged once; a
read whose peer is known not to answer (``available``, from
``worker.observe.peers``) is not tried, since it would only wait, and the
last numbers stay too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from worker.contract.lifecycle import STATUSES
from worker.store import jobs, tasks

logger = logging.getLogger(__name__)

STORE_MAX_AGE = 15.0
QUEUE_MAX_AGE = 2.0
# kombu's Redis transport keeps a queue's priorities in lists named queue + sep + step
# (worker.ingest.transport reads the same lists).
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = range(1, 10)


class Cached:
    """A read's last answer, renewed when older than ``max_age`` (thread safe)."""

    def __init__(self, read: Callable[[], dict], max_age: float, what: str,
                 available: Callable[[], bool] | None = None) -> None:
        self.read, self.max_age, self.what, self.available = read, max_age, what, available
        self.value: dict = {}
        self.read_at: float | None = None
        self.failing = False
        self.lock = threading.Lock()

    def get(self) -> dict:
        with self.lock:
            now = time.monotonic()
            due = self.read_at is None or now - self.read_at >= self.max_age
            if due and (self.available is None or self.available()):
                self.read_at = now
                try:
                    self.value = self.read()
                    self.failing = False
                except Exception as exc:  # noqa: BLE001 - a scrape must answer anyway
                    if not self.failing:
                        logger.warning("could not read %s for the metrics: %r", self.what, exc)
                    self.failing = True
            return self.value


def statuses_of(rows: list[dict]) -> dict[str, int]:
    """Documents per status, every task status present (0 when none), from ``count_by_status`` rows."""
    counts = {status: 0 for status in STATUSES}
    for row in rows:
        counts[str(row["_id"])] = int(row["n"])
    return counts


class StoreGauges(Collector):
    """``jobtask_tasks{status}`` and ``jobtask_jobs{status}``, from one aggregate each."""

    def __init__(self, db_of: Callable[[], Any], max_age: float = STORE_MAX_AGE,
                 available: Callable[[], bool] | None = None) -> None:
        self.tasks = Cached(lambda: statuses_of(tasks.count_by_status(db_of())), max_age, "tasks per status",
                            available)
        self.jobs = Cached(lambda: statuses_of(jobs.count_by_status(db_of())), max_age, "jobs per status",
                           available)

    def describe(self):
        return [GaugeMetricFamily("jobtask_tasks", "JobTasks per status"),
                GaugeMetricFamily("jobtask_jobs", "Jobs per status")]

    def collect(self):
        for name, what, cached in (("jobtask_tasks", "JobTasks", self.tasks),
                                   ("jobtask_jobs", "Jobs", self.jobs)):
            family = GaugeMetricFamily(name, f"{what} per status (read at most every "
                                       f"{cached.max_age:g} s)", labels=["status"])
            for status, count in sorted(cached.get().items()):
                family.add_metric([status], count)
            yield family


def waiting_messages(broker, queue: str) -> int:
    """Messages waiting in ``queue`` (all its priority lists), not those a worker holds."""
    keys = [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]
    pipe = broker.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
    return sum(pipe.execute())


class QueueGauge(Collector):
    """``jobtask_queue_messages{queue}``: the broker's waiting messages."""

    def __init__(self, broker_of: Callable[[], object], queues: list[str],
                 max_age: float = QUEUE_MAX_AGE, available: Callable[[], bool] | None = None) -> None:
        self.queues = list(queues)
        self.cached = Cached(lambda: {queue: waiting_messages(broker_of(), queue) for queue in self.queues},
                             max_age, "the queue length", available)

    def describe(self):
        return [GaugeMetricFamily("jobtask_queue_messages", "Messages waiting in the queue")]

    def collect(self):
        family = GaugeMetricFamily("jobtask_queue_messages", "Messages waiting in the broker's queue "
                                   "(not those a worker holds)", labels=["queue"])
        for queue, count in self.cached.get().items():
            family.add_metric([queue], count)
        yield family

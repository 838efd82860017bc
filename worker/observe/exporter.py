"""The worker's metrics endpoint, on JOBTASK_METRICS_PORT (9808; 0 turns it off).

One ``WorkerMetrics`` per worker process, fed by its main process
(``batches``), plus the gauges read on scrape (``gauges``): the queue from
the broker, tasks and jobs per status from the store. The endpoint starts
once the pool's processes are forked, so none of them inherits its thread.
"""

from __future__ import annotations

import threading

import redis
from pymongo.database import Database

from worker.observe.gauges import QueueGauge, StoreGauges
from worker.observe.metrics import WorkerMetrics, serve
from worker.settings import Settings
from worker.store.client import connect

_lock = threading.Lock()
_metrics: WorkerMetrics | None = None


def worker_metrics() -> WorkerMetrics:
    """This process's worker metrics, made on first use."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = WorkerMetrics()
        return _metrics


class _Clients:
    """The broker and store clients of the gauges, made on the first scrape (after the fork)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self._broker: redis.Redis | None = None
        self._db: Database | None = None

    def broker(self) -> redis.Redis:
        with self.lock:
            if self._broker is None:
                self._broker = redis.Redis.from_url(self.settings.broker_url or "", socket_timeout=2,
                                                    socket_connect_timeout=2)
            return self._broker

    def db(self) -> Database:
        with self.lock:
            if self._db is None:
                self._db = connect(self.settings.mongo_url or "", self.settings.mongo_db,
                                   self.settings.store_timeout_ms, app="jobtask-metrics")
            return self._db


def serve_worker_metrics(settings: Settings, queues: list[str]) -> bool:
    """Add the gauges to this process's metrics and serve them; False when off or the port is taken."""
    if not settings.metrics_port:
        return False
    metrics = worker_metrics()
    clients = _Clients(settings)
    metrics.registry.register(QueueGauge(clients.broker, queues))
    metrics.registry.register(StoreGauges(clients.db))
    return serve(metrics.registry, settings.metrics_port, settings.metrics_host)

"""The worker's metrics endpoint, on JOBTASK_METRICS_PORT (9808; 0 turns it off).

One ``WorkerMetrics`` per worker process, fed by its main process
(``batches``), plus the gauges read on scrape (``gauges``): the queue from
the broker, tasks and jobs per status from the store; and whether each
peer answers (``peers``), from probes which the gauges' reads heed too,
so that a scrape never waits on a peer known to be silent. The
endpoint starts once the pool's processes are forked, so none of them
inherits its threads.
"""

from __future__ import annotations

import threading

import redis
from pymongo.database import Database

from worker.observe.gauges import QueueGauge, StoreGauges
from worker.observe.metrics import WorkerMetrics, serve
from worker.observe.peers import PeerGauges, PeerProbe
from worker.settings import Settings
from worker.store.client import connect, ping

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
    """The broker and store clients of the gauges and the probes, made on first use (after the fork)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self._broker: redis.Redis | None = None
        self._db: Database | None = None

    def broker(self) -> redis.Redis:
        with self.lock:
            if self._broker is None:
                options = {**self.settings.redis_options, "socket_timeout": min(2.0, self.settings.peer_timeout)}
                self._broker = redis.Redis.from_url(self.settings.broker_url or "", **options)
            return self._broker

    def db(self) -> Database:
        with self.lock:
            if self._db is None:
                self._db = connect(self.settings.mongo_url or "", self.settings.mongo_db,
                                   self.settings.store_timeout_ms, app="jobtask-metrics",
                                   socket_timeout_ms=self.settings.store_socket_timeout_ms())
            return self._db


def peer_probes(settings: Settings, clients: _Clients) -> list[PeerProbe]:
    """The broker's and the store's probes (started), each giving up after JOBTASK_PEER_TIMEOUT."""
    bound = settings.peer_timeout
    probe_broker = redis.Redis.from_url(settings.broker_url or "", **{**settings.redis_options,
                                                                      "health_check_interval": 0})
    return [PeerProbe("broker", probe_broker.ping, bound).start(),
            PeerProbe("store", lambda: ping(clients.db(), bound), bound).start()]


def serve_worker_metrics(settings: Settings, queues: list[str]) -> bool:
    """Add the gauges to this process's metrics and serve them; False when off or the port is taken."""
    if not settings.metrics_port:
        return False
    metrics = worker_metrics()
    clients = _Clients(settings)
    broker, store = probes = peer_probes(settings, clients)
    metrics.registry.register(PeerGauges(probes))
    metrics.registry.register(QueueGauge(clients.broker, queues, available=broker.up))
    metrics.registry.register(StoreGauges(clients.db, available=store.up))
    return serve(metrics.registry, settings.metrics_port, settings.metrics_host)

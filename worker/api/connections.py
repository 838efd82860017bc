"""The API process's store and broker clients, made on first use and then shared by its requests."""

from __future__ import annotations

import threading

import redis
from pymongo.database import Database
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.client import JobTaskEvents
from worker.contract.errors import ERROR_DB_UNAVAILABLE
from worker.observe.peers import PeerProbe
from worker.settings import Settings
from worker.store.client import connect, ping

BROKER_TIMEOUT = 1.5  # seconds: /healthz's broker ping gives up after this (worker.api.health)


class Connections:
    """The store, the broker and the producer SDK of one API process; ``close`` lets them be made anew."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._db: Database | None = None
        self._broker: redis.Redis | None = None
        self._events: JobTaskEvents | None = None
        self.sending = threading.Lock()  # one Celery producer, shared by the request threads

    def db(self) -> Database:
        if self._db is None:
            if not self.settings.mongo_url:
                raise ERROR_DB_UNAVAILABLE(reason="JOBTASK_MONGO_URL is not set")
            with self._lock:
                if self._db is None:
                    self._db = connect(self.settings.mongo_url, self.settings.mongo_db,
                                       timeout_ms=self.settings.store_timeout_ms, app="jobtask-api",
                                       socket_timeout_ms=self.settings.store_socket_timeout_ms(
                                           self.settings.query_time_limit_ms))
        return self._db

    def broker(self) -> redis.Redis:
        if self._broker is None:
            if not self.settings.broker_url:
                raise RuntimeError("JOBTASK_BROKER_URL is not set")
            with self._lock:
                if self._broker is None:
                    # Its one command is a ping: no health check before it, and no retry
                    # (redis-py retries three times with a backoff of seconds by default,
                    # which would outlast /healthz's limit on a peer that refuses).
                    options = {**self.settings.redis_options, "socket_timeout": BROKER_TIMEOUT,
                               "socket_connect_timeout": BROKER_TIMEOUT, "health_check_interval": 0,
                               "retry": Retry(NoBackoff(), 0)}
                    self._broker = redis.Redis.from_url(self.settings.broker_url, **options)
        return self._broker

    def events(self) -> JobTaskEvents:
        """The producer SDK on the broker, for the events the API sends (a job's cancel)."""
        if self._events is None:
            if not self.settings.broker_url:
                raise RuntimeError("JOBTASK_BROKER_URL is not set")
            with self._lock:
                if self._events is None:
                    self._events = JobTaskEvents(self.settings.broker_url, self.settings.queue,
                                                 transport_options=self.settings.redis_options)
        return self._events

    def peer_probes(self) -> list[PeerProbe]:
        """Started probes of the store and the broker, for GET /metrics (``worker.observe.peers``)."""
        bound = self.settings.peer_timeout
        probes = [PeerProbe("store", lambda: ping(self.db(), bound), bound)]
        if self.settings.broker_url:
            probes.append(PeerProbe("broker", lambda: self.broker().ping(), bound))
        return [probe.start() for probe in probes]

    def close(self) -> None:
        """Close every client; the next request makes new ones (an app whose lifespan restarts)."""
        with self._lock:
            events, db, broker = self._events, self._db, self._broker
            self._events = self._db = self._broker = None
        if events is not None:
            events.close()
        if db is not None:
            db.client.close()
        if broker is not None:
            broker.close()

"""The store's client: one pymongo connection made the same way by every face.

Times come back timezone-aware (UTC), and every wait is bounded, so an
unreachable or silent store fails fast and is retried (worker) or reported
(API, CLI) rather than hanging: server selection and connecting by
JOBTASK_STORE_TIMEOUT_MS, an unanswered request by the socket timeout
(JOBTASK_PEER_TIMEOUT, ``Settings.store_socket_timeout_ms``), and the
server's monitor checks it every third of that, so a store that went silent
is marked unknown and its pooled connections dropped.
"""

from __future__ import annotations

from typing import Any

import pymongo
from pymongo.database import Database

DEFAULT_SOCKET_TIMEOUT_MS = 30_000


def connect(mongo_url: str, database: str, timeout_ms: int = 5_000, app: str = "jobtask",
            socket_timeout_ms: int = DEFAULT_SOCKET_TIMEOUT_MS) -> Database:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_url,
        appname=app,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=socket_timeout_ms,
        heartbeatFrequencyMS=min(10_000, max(500, socket_timeout_ms // 3)),
    )
    return client[database]


def ping(db: Database, seconds: float) -> None:
    """One round trip to the store that gives up after ``seconds``, whatever its sockets do."""
    with pymongo.timeout(seconds):
        db.client.admin.command("ping")


def bounded(seconds: float):
    """A context in which every store operation of this thread gives up after ``seconds`` (pymongo's timeout)."""
    return pymongo.timeout(seconds)

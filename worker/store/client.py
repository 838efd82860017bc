"""The store's client: one pymongo connection made the same way by every face.

Times come back timezone-aware (UTC), and every wait is bounded by
JOBTASK_STORE_TIMEOUT_MS, so an unreachable store fails fast and is retried
(worker) or reported (API, CLI) rather than hanging.
"""

from __future__ import annotations

from typing import Any

import pymongo
from pymongo.database import Database


def connect(mongo_url: str, database: str, timeout_ms: int = 5_000, app: str = "jobtask") -> Database:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_url,
        appname=app,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, 30_000),
    )
    return client[database]

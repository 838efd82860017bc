"""The read API's queries run against the store, each bounded by its time limit; driver errors as coded errors.

The read path (``worker.read``) translates a SpaceONE query into a plan
(filter, sort, page, pipeline); these functions run it on a resource's
collection with the server-side limit ``JOBTASK_QUERY_TIME_LIMIT_MS``
(``maxTimeMS``) and turn every driver failure into a coded error: the time
limit 504, an unreachable store 503, a query the store refuses 400, never a
raw exception. The store's own message may name the database, a collection or
an index; those are the deployment's, not the caller's, so they are left out
of what the caller reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo.database import Database
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

from worker.contract.errors import ERROR_DB_QUERY, ERROR_DB_UNAVAILABLE, ERROR_QUERY_TIMEOUT
from worker.store.collections import DEAD_LETTERS, FORMER_HISTORY, HISTORY, JOB_PARTS, JOB_TASKS, JOBS, LOG

MAX_TIME_MS_EXPIRED = 50  # MongoDB's error code for a query past its maxTimeMS
Document = dict[str, Any]


# Names of the deployment a store message may carry besides the database's: its collections.
INTERNAL_NAMES = (JOB_TASKS, LOG, HISTORY, DEAD_LETTERS, JOBS, JOB_PARTS, FORMER_HISTORY)


@contextmanager
def store_errors(limit_ms: int, database: str = "") -> Iterator[None]:
    """Driver exceptions as coded errors: 504 on the time limit, 503 unreachable, else 400."""
    try:
        yield
    except ExecutionTimeout:
        raise ERROR_QUERY_TIMEOUT(limit_ms=limit_ms) from None
    except OperationFailure as exc:
        if exc.code == MAX_TIME_MS_EXPIRED:
            raise ERROR_QUERY_TIMEOUT(limit_ms=limit_ms) from None
        message = (exc.details or {}).get("errmsg")
        reason = without_internal_names(message, database) if isinstance(message, str) and message else None
        raise ERROR_DB_QUERY(reason=reason or f"the store refused the query (code {exc.code})") from None
    except ConnectionFailure as exc:
        raise ERROR_DB_UNAVAILABLE(reason=type(exc).__name__) from None
    except PyMongoError as exc:
        raise ERROR_DB_QUERY(reason=f"the store failed the query ({type(exc).__name__})") from None


def without_internal_names(message: str, database: str) -> str:
    """``message`` with the database's namespaces (``db.collection``) and the collections' names left out."""
    if database:
        message = re.sub(rf"(?<![\w.-]){re.escape(database)}(\.[\w$.-]+)?", "<namespace>", message)
    names = "|".join(re.escape(name) for name in sorted(INTERNAL_NAMES, key=len, reverse=True))
    return re.sub(rf"(?<![\w.-])({names})(?![\w-])", "<name>", message)


def find_one(db: Database[Document], collection: str, query: Document, projection: Any,
             limit_ms: int) -> Document | None:
    with store_errors(limit_ms, db.name):
        return db[collection].find_one(query, projection, max_time_ms=limit_ms)


def count(db: Database[Document], collection: str, query: Document, limit_ms: int) -> int:
    with store_errors(limit_ms, db.name):
        return db[collection].count_documents(query, maxTimeMS=limit_ms)


def find_page(db: Database[Document], collection: str, query: Document, projection: Any,
              sort: list[tuple[str, int]], skip: int, limit: int, limit_ms: int) -> list[Document]:
    """One page of documents in ``sort`` order; ``limit`` 0 is all of them."""
    with store_errors(limit_ms, db.name):
        cursor = db[collection].find(query, projection).sort(sort).skip(skip).limit(limit).max_time_ms(limit_ms)
        return list(cursor)


def aggregate(db: Database[Document], collection: str, pipeline: list[Document], limit_ms: int) -> list[Document]:
    with store_errors(limit_ms, db.name):
        return list(db[collection].aggregate(pipeline, maxTimeMS=limit_ms))


def aggregate_window(db: Database[Document], collection: str, pipeline: list[Document], skip: int, limit: int,
                     limit_ms: int) -> tuple[list[Document], int]:
    """The rows ``skip`` to ``skip + limit`` of one run of ``pipeline``, and how many rows it gave.

    One run rather than one for the page and one for a ``$count``: the
    grouping, which costs as much as the documents it reads, is done once;
    rows outside the window are counted as they stream by, never kept.
    """
    window: list[Document] = []
    total = 0
    with store_errors(limit_ms):
        for row in db[collection].aggregate(pipeline, maxTimeMS=limit_ms):
            if skip <= total < skip + limit:
                window.append(row)
            total += 1
    return window, total


def distinct(db: Database[Document], collection: str, key: str, query: Document, limit_ms: int) -> list[Any]:
    with store_errors(limit_ms, db.name):
        return db[collection].distinct(key, query, maxTimeMS=limit_ms)

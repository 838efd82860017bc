"""Reading a resource: ``get``, ``list`` and ``stat`` over the store, for every face.

The HTTP API, the CLI and the tests call these three plain functions with
the ``Resource`` to read (``worker.read.resource.JOB_TASK``), a pymongo
``Database``, the caller's ``Scope`` and the request body as a dict; they
return the response body as a dict. Translation and validation happen in
``worker.read.query`` / ``worker.read.stat_query``; this module runs the plan with the
server-side time limit (``query_time_limit_ms``) and the page cap
(``max_page_size``) and shapes the documents like the seed: the resource's
fields in its order, timestamps as ``2022-07-17T16:00:08.266Z``, absent
fields left out.
Store failures come back as coded errors (timeout 504, unreachable 503, a
query MongoDB refuses 400), never as a raw driver exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

from worker.read.errors import (
    ERROR_DB_QUERY,
    ERROR_DB_UNAVAILABLE,
    ERROR_NOT_FOUND,
    ERROR_QUERY_TIMEOUT,
)
from worker.read.query import Scope, plan_get, plan_list, projection_for
from worker.read.resource import Resource
from worker.read.stat_query import StatPlan, plan_stat
from worker.settings import Settings

__all__ = ["Scope", "get_item", "list_items", "stat_items"]

_MAX_TIME_MS_EXPIRED = 50


def get_item(
    resource: Resource, db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings
) -> dict[str, Any]:
    """One document the caller may see, or ERROR_NOT_FOUND (also for other domains')."""
    item_id, query = plan_get(resource, body, scope)
    with _store_errors(settings):
        document = db[resource.collection].find_one(
            query, projection_for(resource, None, False), max_time_ms=settings.query_time_limit_ms
        )
    if document is None:
        raise ERROR_NOT_FOUND(key=resource.id_field, value=item_id)
    return item_info(resource, document)


def list_items(
    resource: Resource, db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``{"results": [...], "total_count": n}``; total_count counts what the caller may see."""
    plan = plan_list(resource, body, scope, settings.max_page_size, now or _utcnow())
    collection = db[resource.collection]
    with _store_errors(settings):
        total_count = collection.count_documents(
            plan.filter, maxTimeMS=settings.query_time_limit_ms
        )
        if plan.count_only:
            return {"results": [], "total_count": total_count}
        cursor = (
            collection.find(plan.filter, plan.projection)
            .sort(plan.sort)
            .skip(plan.skip)
            .limit(plan.limit)
            .max_time_ms(settings.query_time_limit_ms)
        )
        results = [item_info(resource, document) for document in cursor]
    return {"results": results, "total_count": total_count}


def stat_items(
    resource: Resource, db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``{"results": [...]}`` plus ``total_count`` when ``page.limit`` > 0."""
    plan = plan_stat(resource, body, scope, settings.max_page_size, now or _utcnow())
    collection = db[resource.collection]
    with _store_errors(settings):
        if plan.distinct is not None:
            return _distinct(collection, plan.distinct, plan, settings)
        return _aggregate(collection, plan, settings)


def _aggregate(collection: Collection[dict[str, Any]], plan: StatPlan, settings: Settings) -> dict[str, Any]:
    pipeline = [{"$match": plan.match}, *plan.stages]
    response: dict[str, Any] = {}
    if plan.with_total:
        # Counted apart from the page (as SpaceONE does) rather than in one
        # $facet, whose single output document is bounded at 16 MB.
        counted = list(collection.aggregate(
            [*pipeline, {"$count": "n"}], maxTimeMS=settings.query_time_limit_ms
        ))
        response["total_count"] = counted[0]["n"] if counted else 0
        if plan.skip:
            pipeline.append({"$skip": plan.skip})
    pipeline.append({"$limit": plan.limit})
    cursor = collection.aggregate(pipeline, maxTimeMS=settings.query_time_limit_ms)
    return {"results": [stat_row(row) for row in cursor], **response}


def _distinct(collection: Collection[dict[str, Any]], key: str, plan: StatPlan, settings: Settings) -> dict[str, Any]:
    values = collection.distinct(key, plan.match, maxTimeMS=settings.query_time_limit_ms)
    values = sorted(values, key=_sort_key)
    response: dict[str, Any] = {}
    if plan.with_total:
        response["total_count"] = len(values)
    window = values[plan.skip : plan.skip + plan.limit]
    return {"results": [_plain(value) for value in window], **response}


def _sort_key(value: Any) -> tuple[Any, ...]:
    # Mixed types cannot be compared; order by type first, like MongoDB does.
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (3, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, datetime):
        return (4, _timestamp(value))
    return (5, repr(value))


# --- shaping ----------------------------------------------------------------------------------------


def item_info(resource: Resource, document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the API returns it: the resource's field order, values present only."""
    info = {}
    for name in resource.fields:
        value = document.get(name)
        if value is not None:
            info[name] = _plain(value)
    return info


def stat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One aggregate row: group keys flattened from ``_id``, internal fields dropped."""
    flat: dict[str, Any] = {}
    group = row.get("_id")
    if isinstance(group, dict):
        flat.update(group)
    for key, value in row.items():
        if key != "_id":
            flat[key] = value
    return {key: _plain(value) for key, value in flat.items() if not key.startswith("_")}


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ``...T16:00:08.266Z``, ObjectIds as text, recursively."""
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _store_errors(settings: Settings) -> Iterator[None]:
    """Driver exceptions as coded errors: 504 on the time limit, 503 unreachable, else 400."""
    try:
        yield
    except ExecutionTimeout:
        raise ERROR_QUERY_TIMEOUT(limit_ms=settings.query_time_limit_ms) from None
    except OperationFailure as exc:
        if exc.code == _MAX_TIME_MS_EXPIRED:
            raise ERROR_QUERY_TIMEOUT(limit_ms=settings.query_time_limit_ms) from None
        reason = (exc.details or {}).get("errmsg") or str(exc)
        raise ERROR_DB_QUERY(reason=reason) from None
    except ConnectionFailure as exc:
        raise ERROR_DB_UNAVAILABLE(reason=type(exc).__name__) from None
    except PyMongoError as exc:
        raise ERROR_DB_QUERY(reason=str(exc)) from None

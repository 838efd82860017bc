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
The queries run through ``worker.store.reads``, which bounds each by the
time limit and turns store failures into coded errors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from worker.contract.errors import ERROR_NOT_FOUND
from worker.read.query import Scope, in_scope, plan_get, plan_list, projection_for
from worker.read.resource import Resource
from worker.read.stat_query import StatPlan, plan_stat
from worker.settings import Settings
from worker.store import reads
from worker.store.documents import plain, public_document, timestamp_text

__all__ = ["Scope", "get_item", "list_items", "stat_items"]


def get_item(
    resource: Resource, db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings
) -> dict[str, Any]:
    """One document the caller may see, or ERROR_NOT_FOUND (also for other domains')."""
    item_id, query = plan_get(resource, body, scope)
    document = reads.find_one(db, resource.collection, query, projection_for(resource, None, False),
                              settings.query_time_limit_ms)
    if document is None or not in_scope(scope, document):
        raise ERROR_NOT_FOUND(key=resource.id_field, value=item_id)
    return item_info(resource, document)


def list_items(
    resource: Resource, db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``{"results": [...], "total_count": n}``; total_count counts what the caller may see."""
    plan = plan_list(resource, body, scope, settings.max_page_size, now or _utcnow())
    limit_ms = settings.query_time_limit_ms
    total_count = reads.count(db, resource.collection, plan.filter, limit_ms)
    if plan.count_only:
        return {"results": [], "total_count": total_count}
    documents = reads.find_page(db, resource.collection, plan.filter, plan.projection, plan.sort,
                                plan.skip, plan.limit, limit_ms)
    results = [item_info(resource, document) for document in documents]
    return {"results": results, "total_count": total_count}


def stat_items(
    resource: Resource, db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``{"results": [...]}`` plus ``total_count`` when ``page.limit`` > 0."""
    plan = plan_stat(resource, body, scope, settings.max_page_size, now or _utcnow())
    if plan.distinct is not None:
        return _distinct(db, resource.collection, plan.distinct, plan, settings)
    return _aggregate(db, resource.collection, plan, settings)


def _aggregate(db: Database[dict[str, Any]], collection: str, plan: StatPlan, settings: Settings) -> dict[str, Any]:
    pipeline = [{"$match": plan.match}, *plan.stages]
    if plan.with_total:
        # total_count counts the rows, as SpaceONE does: one run gives both.
        rows, total = reads.aggregate_window(db, collection, pipeline, plan.skip, plan.limit,
                                             settings.query_time_limit_ms)
        return {"results": [stat_row(row) for row in rows], "total_count": total}
    rows = reads.aggregate(db, collection, [*pipeline, {"$limit": plan.limit}], settings.query_time_limit_ms)
    return {"results": [stat_row(row) for row in rows]}


def _distinct(db: Database[dict[str, Any]], collection: str, key: str, plan: StatPlan,
              settings: Settings) -> dict[str, Any]:
    values = reads.distinct(db, collection, key, plan.match, settings.query_time_limit_ms)
    values = sorted(values, key=_sort_key)
    response: dict[str, Any] = {}
    if plan.with_total:
        response["total_count"] = len(values)
    window = values[plan.skip : plan.skip + plan.limit]
    return {"results": [plain(value) for value in window], **response}


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
        return (4, timestamp_text(value))
    return (5, repr(value))


# --- shaping ----------------------------------------------------------------------------------------


def item_info(resource: Resource, document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the API returns it (``worker.store.documents``)."""
    return public_document(resource.fields, document)


def stat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One aggregate row: group keys flattened from ``_id``, internal fields dropped."""
    flat: dict[str, Any] = {}
    group = row.get("_id")
    if isinstance(group, dict):
        flat.update(group)
    for key, value in row.items():
        if key != "_id":
            flat[key] = value
    return {key: plain(value) for key, value in flat.items() if not key.startswith("_")}


def _utcnow() -> datetime:
    return datetime.now(UTC)

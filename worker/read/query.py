"""SpaceONE ``Query`` → MongoDB find plan for one resource, with every validation; no I/O.

The read API speaks SpaceONE core's query language (``filter``/``filter_or``
of ``{k, v, o}``, ``sort``, ``page``, ``only``, ``minimal``, ``count_only``,
``keyword``). This module turns a request body into a plan that
``worker.read.reads`` runs, for the ``Resource`` it is given. The body's shape is
checked against its model (``worker.read.models`` through
``worker.read.parse``); keys are checked by ``worker.read.fields``,
conditions built by ``worker.read.conditions``; ``StatisticsQuery`` lives in
``worker.read.stat_query``. The caller's scope is put at the top of every filter
and user clauses can never replace it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from worker.contract.errors import (
    ERROR_INVALID_PARAMETER,
    ERROR_INVALID_PARAMETER_TYPE,
    ERROR_REQUIRED_PARAMETER,
)
from worker.contract.readers import READER_FIELD, readers_of
from worker.read.conditions import build_condition
from worker.read.fields import KeyResolver, field_path, field_ref
from worker.read.language import INT32
from worker.read.models import request_models
from worker.read.parse import parse
from worker.read.resource import Resource


@dataclass(frozen=True)
class Scope:
    """What a caller may read: one domain, optionally narrowed to workspaces.

    ``permissions`` is what its token may do there: ``read`` always, and
    ``cancel`` for a token allowed to cancel jobs (``worker.commands.cancel``).
    """

    domain_id: str
    workspace_ids: tuple[str, ...] | None = None
    permissions: tuple[str, ...] = ("read",)


@dataclass(frozen=True)
class FindPlan:
    """A validated list request, ready for ``find`` and ``count_documents``."""

    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    skip: int
    limit: int
    projection: dict[str, Any]
    count_only: bool


def list_param(value: Any, key: str) -> list[Any]:
    """A list parameter; absent is empty, anything else but a list is refused."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ERROR_INVALID_PARAMETER_TYPE(key=key, type="list")
    return value


def user_clauses(resource: Resource, query: Any, resolve: KeyResolver, now: datetime) -> list[dict[str, Any]]:
    """A parsed query's ``filter`` (ANDed), ``filter_or`` (ORed, then ANDed) and ``keyword``."""
    clauses = [build_condition(item, resolve, now, "query.filter") for item in query.filter or []]
    either = [build_condition(item, resolve, now, "query.filter_or") for item in query.filter_or or []]
    if len(either) == 1:
        clauses.append(either[0])
    elif either:
        clauses.append(_one_of(either))
    keyword = (query.keyword or "").strip()
    if keyword:
        clauses.append({resource.id_field: {"$regex": re.escape(keyword), "$options": "i"}})
    # The resource id is the document's _id: asked of both, found by key.
    clauses += [{"_id": clause[resource.id_field]} for clause in clauses
                if _equal_text(clause.get(resource.id_field))]
    return clauses


def _one_of(either: list[dict[str, Any]]) -> dict[str, Any]:
    """ORed clauses; equalities of one key as that key's ``$in`` (the same match, planned on an index)."""
    keys = {key for clause in either for key in clause}
    if len(keys) == 1 and all(_equal_scalar(condition) for clause in either for condition in clause.values()):
        (key,) = keys
        return {key: {"$in": list(dict.fromkeys(clause[key]["$eq"] for clause in either))}}
    return {"$or": either}


# Values whose equality is the same bare as under $eq (a bare list or document would match otherwise).
_SCALARS = (str, int, float, bool, datetime)


def _equal_scalar(condition: Any) -> bool:
    return isinstance(condition, dict) and set(condition) == {"$eq"} and isinstance(condition["$eq"], _SCALARS)


def _equal_text(condition: Any) -> bool:
    return _equal_scalar(condition) and isinstance(condition["$eq"], str)


def param_clauses(request: Any, names: tuple[str, ...], id_field: str | None = None) -> list[dict[str, Any]]:
    """A parsed request's parameters such as ``status`` as equality clauses (unset: none).

    A document's ``_id`` is its resource id (``job_task_id``, ``job_id``), so
    the id parameter is also asked of ``_id``: the same answer, found by the
    index every collection has.
    """
    clauses = []
    for name in names:
        value = getattr(request, name)
        if value:
            clauses.append({name: {"$eq": value}})
            if name == id_field:
                clauses.append({"_id": {"$eq": value}})
    return clauses


# --- scope and the final filter ---------------------------------------------------------------


def scope_filter(scope: Scope) -> dict[str, Any]:
    """The caller's tenancy: its domain, and for a workspace token its workspaces plus DOMAIN tasks."""
    scoped: dict[str, Any] = {"domain_id": scope.domain_id}
    if scope.workspace_ids is not None:
        # workspace_id in the token's workspaces, or resource_group DOMAIN, as
        # the documents' reader keys say it (worker.contract.readers).
        scoped[READER_FIELD] = {"$in": readers_of(scope.workspace_ids)}
    return scoped


def in_scope(scope: Scope, document: dict[str, Any]) -> bool:
    """Whether ``scope_filter`` matches ``document``, for one already read (history, watch)."""
    if document.get("domain_id") != scope.domain_id:
        return False
    return scope.workspace_ids is None or (
        document.get("workspace_id") in scope.workspace_ids or document.get("resource_group") == "DOMAIN"
    )


def scoped_filter(scope: Scope, clauses: list[dict[str, Any]]) -> dict[str, Any]:
    """The scope at the top, each user clause ANDed beside it; none can replace it.

    A clause goes at the top level under a key not already there (or beside
    another range on the same key), any other lands in ``$and``: top-level
    keys are ANDed by MongoDB just like ``$and``, so the meaning is the same
    either way, and MongoDB plans both alike. secantusdb (the embedded
    store) plans only a filter without top-level operators on an index, and
    an equality beside a range only when it is bare, so clauses are put in
    the form it plans (``_plannable``) where that keeps their meaning, and
    ``_id`` first, which it then finds by key.
    """
    combined = scope_filter(scope)
    nested = []
    for clause in clauses + _implied_readers(clauses):
        if READER_FIELD in clause and READER_FIELD in combined:  # the scope's keys, narrowed
            asked = clause[READER_FIELD]["$in"]
            combined[READER_FIELD] = {"$in": [key for key in combined[READER_FIELD]["$in"] if key in asked]}
            continue
        ((key, condition),) = clause.items()
        plannable = _plannable(condition)
        if plannable is None:
            nested.append(clause)
        elif key not in combined:
            combined[key] = plannable
        elif _is_range(plannable) and _is_range(combined[key]) and combined[key].keys().isdisjoint(plannable):
            combined[key] = {**combined[key], **plannable}
        else:
            nested.append(clause)
    if nested:
        combined["$and"] = nested
    if "_id" in combined:
        combined = {"_id": combined.pop("_id"), **combined}
    return combined


def _implied_readers(clauses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A workspace's documents carry its reader key or the domain's: asked too, so found on the reader index."""
    return [{READER_FIELD: {"$in": readers_of((clause["workspace_id"]["$eq"],))}} for clause in clauses
            if _equal_text(clause.get("workspace_id"))]


_RANGES = frozenset({"$lt", "$lte", "$gt", "$gte"})
_MILLISECOND = timedelta(milliseconds=1)


def _is_range(condition: Any) -> bool:
    return isinstance(condition, dict) and not _RANGES.isdisjoint(condition)


def _plannable(condition: Any) -> Any:
    """``condition`` as the top level takes it, or None where it must stay in ``$and``.

    - ``{"$eq": v}`` of a scalar is ``v`` (the same match for a scalar);
    - a range of datetimes has exclusive bounds: secantusdb drops the
      boundary of an inclusive range on an index's middle key, and a BSON
      datetime counts milliseconds, so ``$gte t`` is ``$gt t - 1 ms``;
      other ranges stay nested (correct, scanned).
    """
    if not isinstance(condition, dict):
        return condition
    if _equal_scalar(condition):
        return condition["$eq"]
    if not _is_range(condition):
        return condition
    if not _RANGES.issuperset(condition) or not all(isinstance(v, datetime) for v in condition.values()):
        return None
    exclusive = {}
    try:
        for operator, moment in condition.items():
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            if operator == "$gte":
                exclusive["$gt"] = moment - _MILLISECOND
            elif operator == "$lte":
                exclusive["$lt"] = moment + _MILLISECOND
            else:
                exclusive[operator] = moment
    except OverflowError:  # a bound at the end of the calendar: kept as it is, nested
        return None
    return exclusive if len(exclusive) == len(condition) else None


# --- sort, page, projection -------------------------------------------------------------------------


def sort_spec(sort: Any, resolve: KeyResolver, where: str = "query.sort") -> list[tuple[str, int]]:
    """``[{key, desc}]`` (or one object) as MongoDB sort pairs, without the tiebreaker."""
    if sort is None:
        return []
    items = [sort] if isinstance(sort, dict) else sort
    if not isinstance(items, list):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="list")
    pairs: list[tuple[str, int]] = []
    for item in items:
        if not isinstance(item, dict):
            raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="list of {key, desc}")
        if item.get("key") is None:
            raise ERROR_REQUIRED_PARAMETER(key=f"{where}.key")
        path, _ = resolve(item["key"], f"{where}.key")
        desc = item.get("desc", False)
        if not isinstance(desc, bool):
            raise ERROR_INVALID_PARAMETER_TYPE(key=f"{where}.desc", type="bool")
        if path not in (existing for existing, _ in pairs):
            pairs.append((path, -1 if desc else 1))
    return pairs


def page_window(page: Any, max_page_size: int, where: str = "query.page") -> tuple[int, int, bool]:
    """(skip, limit, paged): start is 1-based (below 1 counts as 1), used only when limit > 0.

    Without a positive limit the result is still capped at ``max_page_size``.
    """
    if page is None:
        return 0, max_page_size, False
    if not isinstance(page, dict):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="object")
    start = _int32(page.get("start", 1), f"{where}.start")
    limit = _int32(page.get("limit", 0), f"{where}.limit")
    if limit <= 0:
        return 0, max_page_size, False
    return max(start, 1) - 1, min(limit, max_page_size), True


def _int32(value: Any, where: str) -> int:
    if value is None:
        return 0
    return int32(value, where, INT32[0])


def int32(value: Any, where: str, minimum: int) -> int:
    """An integer from ``minimum`` to int32's maximum; ``60.0`` is ``60``, as a JSON Schema integer is."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="int")
    if not minimum <= value <= INT32[1]:
        reason = "out of the int32 range" if minimum == INT32[0] else f"must be between {minimum} and {INT32[1]}"
        raise ERROR_INVALID_PARAMETER(key=where, reason=reason)
    return value


def projection_for(resource: Resource, only: list[Any] | None, minimal: bool) -> dict[str, Any]:
    """Inclusion of public fields only, so ``_id`` and internal fields never leave the store."""
    if minimal:
        paths = list(resource.minimal_fields)
    else:
        paths = [field_path(resource, path, "query.only") for path in only or []] or list(resource.fields)
    # A path under another selected one would be a projection path collision.
    kept = [p for p in dict.fromkeys(paths) if not any(p.startswith(f"{q}.") for q in paths)]
    return {"_id": 0, **{path: 1 for path in kept}}


# --- plans ---------------------------------------------------------------------------------------------


def plan_get(resource: Resource, body: Any, scope: Scope) -> tuple[str, dict[str, Any]]:
    """(id, filter) for ``get``; ``workspace_id`` narrows like in list.

    The filter holds the caller's domain but not its workspaces: a document
    found by its id is checked with ``in_scope`` by the reader, so the store
    finds it by key, never through an ``$or`` it would scan for.
    """
    request = parse(request_models(resource).get, body)
    clauses = param_clauses(request, resource.get_params, resource.id_field)
    return getattr(request, resource.id_field), scoped_filter(Scope(scope.domain_id), clauses)


def plan_list(resource: Resource, body: Any, scope: Scope, max_page_size: int, now: datetime) -> FindPlan:
    """A list request (parameters plus ``query``) as a scoped, paged, sorted find."""
    models = request_models(resource)
    request = parse(models.list, body)
    query: Any = request.query or models.query()  # a model made at run time (request_models)
    resolve = field_ref(resource)
    clauses = (param_clauses(request, resource.param_filters, resource.id_field)
               + user_clauses(resource, query, resolve, now))
    sort = sort_spec(query.sort, resolve) or list(resource.default_sort)
    if resource.tiebreaker[0] not in (path for path, _ in sort):
        sort.append(resource.tiebreaker)
    skip, limit, _ = page_window(query.page, max_page_size)
    return FindPlan(
        filter=scoped_filter(scope, clauses),
        sort=sort,
        skip=skip,
        limit=limit,
        projection=projection_for(resource, query.only, bool(query.minimal)),
        count_only=bool(query.count_only),
    )

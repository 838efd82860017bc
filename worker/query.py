"""SpaceONE ``Query`` → MongoDB find plan, with every validation; no I/O.

The read API speaks SpaceONE core's query language (``filter``/``filter_or``
of ``{k, v, o}``, ``sort``, ``page``, ``only``, ``minimal``, ``count_only``,
``keyword``). This module turns a request body into a plan that
``worker.read`` runs. Keys and bodies are guarded by ``worker.query_fields``,
conditions built by ``worker.query_conditions``; ``StatisticsQuery`` lives in
``worker.stat_query``. The caller's scope is put at the top of every filter
and user clauses can never replace it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.errors import (
    ERROR_INVALID_PARAMETER,
    ERROR_INVALID_PARAMETER_TYPE,
    ERROR_REQUIRED_PARAMETER,
)
from worker.query_conditions import build_condition
from worker.query_fields import (
    JOB_TASK_FIELDS,
    MINIMAL_FIELDS,
    STATUSES,
    KeyResolver,
    check_body,
    document_ref,
    field_path,
)

TIEBREAKER = ("job_task_id", 1)
DEFAULT_SORT = (("created_at", -1), TIEBREAKER)
# Request parameters that narrow a list (and stat) like an ``eq`` filter.
PARAM_FILTERS = ("job_task_id", "status", "workspace_id", "job_id", "data_source_id")
LIST_QUERY_KEYS = frozenset(
    {"filter", "filter_or", "sort", "page", "only", "minimal", "count_only", "keyword"}
)

# SpaceONE's page fields are int32; bigger values could not even reach BSON.
INT32 = (-(2**31), 2**31 - 1)

@dataclass(frozen=True)
class Scope:
    """What a caller may read: one domain, optionally narrowed to workspaces."""

    domain_id: str
    workspace_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FindPlan:
    """A validated list request, ready for ``find`` and ``count_documents``."""

    filter: dict
    sort: list[tuple[str, int]]
    skip: int
    limit: int
    projection: dict
    count_only: bool


def list_param(value: Any, key: str) -> list:
    """A list parameter; absent is empty, anything else but a list is refused."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ERROR_INVALID_PARAMETER_TYPE(key=key, type="list")
    return value


def user_clauses(query: dict, resolve: KeyResolver, now: datetime) -> list[dict]:
    """``filter`` (ANDed), ``filter_or`` (ORed, then ANDed) and ``keyword`` as clauses."""
    clauses = [
        build_condition(item, resolve, now, "query.filter")
        for item in list_param(query.get("filter"), "query.filter")
    ]
    either = [
        build_condition(item, resolve, now, "query.filter_or")
        for item in list_param(query.get("filter_or"), "query.filter_or")
    ]
    if len(either) == 1:
        clauses.append(either[0])
    elif either:
        clauses.append({"$or": either})
    keyword = query.get("keyword")
    if keyword is not None:
        if not isinstance(keyword, str):
            raise ERROR_INVALID_PARAMETER_TYPE(key="query.keyword", type="str")
        if keyword.strip():
            clauses.append({"job_task_id": {"$regex": re.escape(keyword.strip()), "$options": "i"}})
    return clauses


def param_clauses(body: dict, names: tuple[str, ...] = PARAM_FILTERS) -> list[dict]:
    """Request parameters such as ``status`` as equality clauses (empty means unset)."""
    clauses = []
    for name in names:
        value = body.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ERROR_INVALID_PARAMETER_TYPE(key=name, type="str")
        if name == "status" and value not in STATUSES:
            raise ERROR_INVALID_PARAMETER(key="status", reason=f"must be one of {', '.join(STATUSES)}")
        clauses.append({name: {"$eq": value}})
    return clauses


# --- scope and the final filter ---------------------------------------------------------------


def scope_filter(scope: Scope) -> dict:
    """The caller's tenancy: its domain, and for a workspace token its workspaces plus DOMAIN tasks."""
    scoped: dict = {"domain_id": scope.domain_id}
    if scope.workspace_ids is not None:
        scoped["$or"] = [
            {"workspace_id": {"$in": list(scope.workspace_ids)}},
            {"resource_group": "DOMAIN"},
        ]
    return scoped


def scoped_filter(scope: Scope, clauses: list[dict]) -> dict:
    """The scope at the top, each user clause ANDed beside it; none can replace it.

    A clause goes at the top level only under a key not already there (so
    plain ``domain_id + status`` reaches the planner as simple predicates); any
    other lands in ``$and``. Top-level keys are ANDed by MongoDB just like
    ``$and``, so the meaning is the same either way.

    Range clauses always go to ``$and``. MongoDB plans them identically, but
    secantusdb (the embedded store) only plans top-level predicates on an
    index and mis-bounds an inclusive range on the middle key of a compound
    index (``created_at $gte`` on ``{domain_id, created_at: -1,
    job_task_id}`` drops the boundary value); nested, it scans and is right.
    """
    combined = scope_filter(scope)
    nested = []
    for clause in clauses:
        ((key, condition),) = clause.items()
        if key in combined or _is_range(condition):
            nested.append(clause)
        else:
            combined[key] = condition
    if nested:
        combined["$and"] = nested
    return combined


# --- sort, page, projection -------------------------------------------------------------------------


_RANGES = frozenset({"$lt", "$lte", "$gt", "$gte"})


def _is_range(condition: Any) -> bool:
    return isinstance(condition, dict) and not _RANGES.isdisjoint(condition)


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
    if isinstance(value, bool) or not isinstance(value, int):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="int")
    if not INT32[0] <= value <= INT32[1]:
        raise ERROR_INVALID_PARAMETER(key=where, reason="out of the int32 range")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="bool")
    return value


def projection_for(only: Any, minimal: bool) -> dict:
    """Inclusion of public fields only, so ``_id`` and internal fields never leave the store."""
    if minimal:
        paths = list(MINIMAL_FIELDS)
    else:
        requested = list_param(only, "query.only")
        paths = [field_path(path, "query.only") for path in requested] or list(JOB_TASK_FIELDS)
    # A path under another selected one would be a projection path collision.
    kept = [p for p in dict.fromkeys(paths) if not any(p.startswith(f"{q}.") for q in paths)]
    return {"_id": 0, **{path: 1 for path in kept}}


# --- plans ---------------------------------------------------------------------------------------------


def check_params(body: Any, allowed: frozenset[str]) -> dict:
    """The body as an object with known parameters; ``domain_id`` is accepted and ignored.

    The caller's domain always comes from its token, never from the body.
    """
    body = check_body(body)
    unknown = sorted(set(body) - allowed - {"domain_id"})
    if unknown:
        raise ERROR_INVALID_PARAMETER(
            key=unknown[0], reason=f"unknown parameter (use {', '.join(sorted(allowed))})"
        )
    return body


GET_PARAMS = frozenset({"job_task_id", "workspace_id"})
LIST_PARAMS = frozenset({*PARAM_FILTERS, "query"})


def plan_get(body: Any, scope: Scope) -> tuple[str, dict]:
    """(job_task_id, filter) for ``get``; ``workspace_id`` narrows like in list."""
    body = check_params(body, GET_PARAMS)
    job_task_id = body.get("job_task_id")
    if job_task_id is None or job_task_id == "":
        raise ERROR_REQUIRED_PARAMETER(key="job_task_id")
    if not isinstance(job_task_id, str):
        raise ERROR_INVALID_PARAMETER_TYPE(key="job_task_id", type="str")
    clauses = param_clauses(body, ("job_task_id", "workspace_id"))
    return job_task_id, scoped_filter(scope, clauses)


def query_of(body: dict, allowed: frozenset[str], required: bool = False) -> dict:
    """The body's ``query`` object, with only the keys its message type knows."""
    query = body.get("query")
    if query is None:
        if required:
            raise ERROR_REQUIRED_PARAMETER(key="query")
        return {}
    if not isinstance(query, dict):
        raise ERROR_INVALID_PARAMETER_TYPE(key="query", type="object")
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ERROR_INVALID_PARAMETER(
            key=f"query.{unknown[0]}", reason=f"not supported here (use {', '.join(sorted(allowed))})"
        )
    return query


def plan_list(body: Any, scope: Scope, max_page_size: int, now: datetime) -> FindPlan:
    """A list request (parameters plus ``query``) as a scoped, paged, sorted find."""
    body = check_params(body, LIST_PARAMS)
    query = query_of(body, LIST_QUERY_KEYS)
    clauses = param_clauses(body) + user_clauses(query, document_ref, now)
    sort = sort_spec(query.get("sort"), document_ref) or list(DEFAULT_SORT[:1])
    if TIEBREAKER[0] not in (path for path, _ in sort):
        sort.append(TIEBREAKER)
    skip, limit, _ = page_window(query.get("page"), max_page_size)
    return FindPlan(
        filter=scoped_filter(scope, clauses),
        sort=sort,
        skip=skip,
        limit=limit,
        projection=projection_for(query.get("only"), _bool(query.get("minimal"), "query.minimal")),
        count_only=_bool(query.get("count_only"), "query.count_only"),
    )

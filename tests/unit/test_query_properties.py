"""Properties of the query translation: any body is a safe plan or a coded error.

Hypothesis builds near-valid and hostile queries; whatever comes out is either
a ``CodedError`` with a SpaceONE code and status 400, or a plan with the
caller's scope on top whose every MongoDB operator is one of ours, whose
field references are checked paths (no ``$$`` variables, no internal fields).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.query_data import QUERY
from worker.api.errors import http_status
from worker.contract.errors import CodedError
from worker.read.query import Scope, plan_list
from worker.read.resource import JOB_TASK
from worker.read.stat_query import plan_stat

NOW = datetime(2024, 3, 14, 15, 9, 26, tzinfo=UTC)
DOMAIN = Scope("domain-1")
WORKSPACES = Scope("domain-1", ("ws-1", "ws-2"))

# --- properties: any body gives a safe plan or a coded error -----------------------------------------

ALLOWED_OPERATORS = {
    "$eq",
    "$ne",
    "$exists",
    "$regex",
    "$options",
    "$not",
    "$in",
    "$nin",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$elemMatch",
    "$or",
    "$and",
    "$literal",
    "$cond",
    "$sum",
    "$avg",
    "$max",
    "$min",
    "$first",
    "$last",
    "$push",
    "$addToSet",
    "$mergeObjects",
    "$year",
    "$month",
    "$dayOfMonth",
    "$dateToString",
    "$size",
    "$arrayToObject",
    "$objectToArray",
    "$add",
    "$subtract",
    "$multiply",
    "$divide",
    "$unwind",
    "$group",
    "$count",
    "$sort",
    "$project",
    "$limit",
    "$skip",
    "$match",
}
def operator_keys(value) -> set[str]:
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("$"):
                found.add(key)
            found |= operator_keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= operator_keys(item)
    return found


def assert_scoped(match: dict, scope: Scope) -> None:
    assert match["domain_id"] == scope.domain_id
    if scope.workspace_ids is not None:
        assert match["_reader"] == {"$in": ["*", *(f"ws:{workspace}" for workspace in scope.workspace_ids)]}


@settings(max_examples=400, deadline=None)
@given(query=QUERY, scope=st.sampled_from([DOMAIN, WORKSPACES]))
def test_any_list_query_is_a_scoped_whitelisted_plan_or_a_coded_error(query, scope):
    query = {key: value for key, value in query.items() if key not in ("aggregate", "distinct")}
    try:
        plan = plan_list(JOB_TASK, {"query": query}, scope, 100, NOW)
    except CodedError as error:
        assert error.code.startswith("ERROR_") and http_status(error) == 400
        return
    assert_scoped(plan.filter, scope)
    assert operator_keys(plan.filter) <= ALLOWED_OPERATORS
    assert all(not path.startswith(("$", "_")) for path in plan.projection if path != "_id")
    assert 1 <= plan.limit <= 100


@settings(max_examples=400, deadline=None)
@given(query=QUERY, scope=st.sampled_from([DOMAIN, WORKSPACES]))
def test_any_stat_query_is_a_scoped_whitelisted_pipeline_or_a_coded_error(query, scope):
    query = {
        key: value for key, value in query.items() if key not in ("sort", "only", "minimal", "count_only")
    }
    try:
        plan = plan_stat(JOB_TASK, {"query": query}, scope, 100, NOW)
    except CodedError as error:
        assert error.code.startswith("ERROR_") and http_status(error) == 400
        return
    assert_scoped(plan.match, scope)
    assert operator_keys(plan.match) | operator_keys(plan.stages) <= ALLOWED_OPERATORS
    for text in _strings(plan.stages):
        # A field reference is "$" plus a checked path; no "$$" variables, no internal fields.
        if text.startswith("$"):
            assert not text.startswith("$$") and not re.match(r"^\$_(?!id\.)", text), text


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "$literal":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)

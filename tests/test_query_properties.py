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
KEYS = st.sampled_from(
    [
        "status",
        "options.a",
        "options",
        "created_at",
        "job_task_id",
        "domain_id",
        "$where",
        "_applied",
        "options.$x",
        "",
        "a.b",
        "n",
        "tag",
    ]
)
OPS = st.sampled_from(
    [
        "eq",
        "not",
        "exists",
        "contain",
        "not_contain",
        "in",
        "not_in",
        "contain_in",
        "not_contain_in",
        "lt",
        "lte",
        "gt",
        "gte",
        "match",
        "regex",
        "regex_in",
        "datetime_lt",
        "timediff_gte",
        "bogus",
    ]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["now-1d", "2024-01-01T00:00:00Z", "$where", "("]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | KEYS, inner, max_size=3)
    ),
    max_leaves=8,
)
CONDITION = st.fixed_dictionaries({}, optional={"k": KEYS | JSON, "v": JSON, "o": OPS | JSON})
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "key": KEYS | JSON,
        "name": KEYS | JSON,
        "operator": st.sampled_from(["count", "sum", "push", "size", "add", "divide", "first", "x"]) | JSON,
        "fields": st.lists(KEYS | st.integers() | JSON, max_size=3),
        "date_format": st.sampled_from(["year", "%Y"]),
        "conditions": st.lists(CONDITION, max_size=2),
    },
)
STAGE = st.one_of(
    st.fixed_dictionaries(
        {
            "group": st.fixed_dictionaries(
                {}, optional={"keys": st.lists(SPEC, max_size=2), "fields": st.lists(SPEC, max_size=2)}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "project": st.fixed_dictionaries(
                {}, optional={"fields": st.lists(SPEC, max_size=2), "exclude_keys": st.booleans()}
            )
        }
    ),
    st.fixed_dictionaries({"match": st.fixed_dictionaries({"filter": st.lists(CONDITION, max_size=2)})}),
    st.dictionaries(
        st.sampled_from(["unwind", "count", "sort", "limit", "skip", "bogus"]), JSON, min_size=1, max_size=1
    ),
)
QUERY = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.lists(CONDITION, max_size=3) | JSON,
        "filter_or": st.lists(CONDITION, max_size=2),
        "sort": JSON | st.lists(st.fixed_dictionaries({"key": KEYS, "desc": st.booleans()}), max_size=2),
        "page": st.fixed_dictionaries({}, optional={"start": st.integers(), "limit": st.integers()}) | JSON,
        "only": st.lists(KEYS, max_size=2),
        "minimal": JSON,
        "count_only": JSON,
        "keyword": JSON,
        "aggregate": st.lists(STAGE, max_size=4) | JSON,
        "distinct": KEYS | JSON,
    },
)


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
        assert match["$or"] == [
            {"workspace_id": {"$in": list(scope.workspace_ids)}},
            {"resource_group": "DOMAIN"},
        ]


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

"""The pure translation of SpaceONE queries: every filter operator, list option, error code.

No store here: these tests pin what ``worker.read.query`` builds. Stages of
StatisticsQuery are in tests/unit/test_stat_query.py, hypothesis properties over
hostile bodies in tests/unit/test_query_properties.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.contract.errors import CodedError
from worker.read.conditions import build_condition, parse_timediff
from worker.read.fields import field_ref
from worker.read.query import (
    Scope,
    page_window,
    plan_get,
    plan_list,
    projection_for,
    scoped_filter,
)
from worker.read.resource import JOB_TASK
from worker.read.stat_query import plan_stat

NOW = datetime(2024, 3, 14, 15, 9, 26, tzinfo=UTC)  # a Thursday
DOMAIN = Scope("domain-1")
WORKSPACES = Scope("domain-1", ("ws-1", "ws-2"))
UTC = UTC
document_ref = field_ref(JOB_TASK)


def cond(k, v, o):
    return build_condition({"k": k, "v": v, "o": o}, document_ref, NOW)


def code_of(call) -> str:
    with pytest.raises(CodedError) as caught:
        call()
    return caught.value.code


def list_plan(query=None, scope=DOMAIN, max_page_size=1000, **params):
    return plan_list(JOB_TASK, {**params, "query": query or {}}, scope, max_page_size, NOW)


def stat_plan(query, scope=DOMAIN, max_page_size=1000):
    return plan_stat(JOB_TASK, {"query": query}, scope, max_page_size, NOW)


# --- filter operators ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, v, o, expected",
    [
        ("status", "SUCCESS", "eq", {"status": {"$eq": "SUCCESS"}}),
        ("workspace_id", None, "eq", {"workspace_id": {"$eq": None}}),
        ("status", "SUCCESS", "not", {"status": {"$ne": "SUCCESS"}}),
        ("error_code", True, "exists", {"error_code": {"$exists": True}}),
        ("options.platform", "a.b", "contain", {"options.platform": {"$regex": r"a\.b", "$options": "i"}}),
        ("job_id", "x", "not_contain", {"job_id": {"$not": {"$regex": "x", "$options": "i"}}}),
        ("status", ["A", "B"], "in", {"status": {"$in": ["A", "B"]}}),
        ("status", ["A"], "not_in", {"status": {"$nin": ["A"]}}),
        ("job_id", ["a", "b+"], "contain_in", {"job_id": {"$regex": r"(?:a)|(?:b\+)", "$options": "i"}}),
        ("job_id", [], "contain_in", {"job_id": {"$in": []}}),
        ("job_id", ["a"], "not_contain_in", {"job_id": {"$not": {"$regex": "(?:a)", "$options": "i"}}}),
        ("job_id", [], "not_contain_in", {"job_id": {"$nin": []}}),
        ("created_count", 5, "lt", {"created_count": {"$lt": 5}}),
        ("created_count", 5, "lte", {"created_count": {"$lte": 5}}),
        ("created_count", 5, "gt", {"created_count": {"$gt": 5}}),
        ("created_count", 5, "gte", {"created_count": {"$gte": 5}}),
        ("options.items", {"name": "ec2"}, "match", {"options.items": {"$elemMatch": {"name": "ec2"}}}),
        ("job_task_id", "^job-", "regex", {"job_task_id": {"$regex": "^job-", "$options": "i"}}),
        ("job_id", ["^a$", "b"], "regex_in", {"job_id": {"$regex": "(?:^a$)|(?:b)", "$options": "i"}}),
        ("job_id", [], "regex_in", {"job_id": {"$in": []}}),
    ],
)
def test_each_operator_builds_its_clause(k, v, o, expected):
    assert cond(k, v, o) == expected


def test_key_value_operator_may_be_spelled_out():
    spelled = {"key": "status", "value": "SUCCESS", "operator": "eq"}
    assert build_condition(spelled, document_ref, NOW) == cond("status", "SUCCESS", "eq")


@pytest.mark.parametrize(
    "o, mongo",
    [("datetime_lt", "$lt"), ("datetime_lte", "$lte"), ("datetime_gt", "$gt"), ("datetime_gte", "$gte")],
)
def test_datetime_operators_parse_iso8601_as_utc(o, mongo):
    expected = datetime(2022, 7, 17, 16, 0, 8, 266000, tzinfo=UTC)
    assert cond("created_at", "2022-07-17T16:00:08.266Z", o) == {"created_at": {mongo: expected}}
    assert cond("created_at", "2022-07-17T18:00:08.266+02:00", o) == {"created_at": {mongo: expected}}
    naive = cond("created_at", "2022-07-17T16:00:08.266", o)["created_at"][mongo]
    assert naive == expected


def test_datetime_fields_compare_as_datetimes_with_plain_operators():
    moment = datetime(2024, 3, 1, tzinfo=UTC)
    assert cond("created_at", "2024-03-01", "eq") == {"created_at": {"$eq": moment}}
    assert cond("finished_at", "2024-03-01T00:00:00Z", "lt") == {"finished_at": {"$lt": moment}}
    assert cond("updated_at", ["2024-03-01T00:00:00Z"], "in") == {"updated_at": {"$in": [moment]}}
    # Not a datetime field: the text stays a text.
    assert cond("options.start", "2024-03-01", "eq") == {"options.start": {"$eq": "2024-03-01"}}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("now", NOW),
        ("now-1d", NOW - timedelta(days=1)),
        ("now+2h", NOW + timedelta(hours=2)),
        ("now - 30m", NOW - timedelta(minutes=30)),
        ("now-10s", NOW - timedelta(seconds=10)),
        ("now/d", datetime(2024, 3, 14, tzinfo=UTC)),
        ("now/d-1w", datetime(2024, 3, 7, tzinfo=UTC)),
        ("now/w", datetime(2024, 3, 11, tzinfo=UTC)),  # Monday
        ("now/m", datetime(2024, 3, 1, tzinfo=UTC)),
        ("now/m+1d", datetime(2024, 3, 2, tzinfo=UTC)),
    ],
)
def test_timediff_values(value, expected):
    assert parse_timediff(value, NOW) == expected


@pytest.mark.parametrize(
    "o, mongo",
    [("timediff_lt", "$lt"), ("timediff_lte", "$lte"), ("timediff_gt", "$gt"), ("timediff_gte", "$gte")],
)
def test_timediff_operators(o, mongo):
    assert cond("created_at", "now/d", o) == {"created_at": {mongo: datetime(2024, 3, 14, tzinfo=UTC)}}


@pytest.mark.parametrize("value", ["yesterday", "now-1y", "now/y", "now-", "now-99999999999d", 5, None])
def test_bad_timediff_is_a_db_query_error(value):
    assert code_of(lambda: cond("created_at", value, "timediff_lt")) == "ERROR_DB_QUERY"


@pytest.mark.parametrize(
    "k, v, o, code",
    [
        ("status", ["A"], "eq", "ERROR_OPERATOR_VALUE_TYPE"),
        ("status", ["A"], "regex", "ERROR_OPERATOR_VALUE_TYPE"),
        ("created_at", ["now"], "timediff_lt", "ERROR_OPERATOR_VALUE_TYPE"),
        ("status", "A", "in", "ERROR_OPERATOR_LIST_VALUE_TYPE"),
        ("status", "A", "not_contain_in", "ERROR_OPERATOR_LIST_VALUE_TYPE"),
        ("status", "A", "regex_in", "ERROR_OPERATOR_LIST_VALUE_TYPE"),
        ("options.items", "ec2", "match", "ERROR_OPERATOR_DICT_VALUE_TYPE"),
        ("error_code", "yes", "exists", "ERROR_OPERATOR_BOOLEAN_TYPE"),
        ("status", "A", "like", "ERROR_DB_QUERY"),
        ("status", "A", None, "ERROR_DB_QUERY"),
        (None, "A", "eq", "ERROR_DB_QUERY"),
        ("created_at", "not a date", "datetime_lt", "ERROR_DB_QUERY"),
        ("created_at", "not a date", "eq", "ERROR_DB_QUERY"),
        ("job_id", "(", "regex", "ERROR_DB_QUERY"),
        ("job_id", {"a": 1}, "contain", "ERROR_INVALID_PARAMETER_TYPE"),
        ("job_id", 5, "regex", "ERROR_INVALID_PARAMETER_TYPE"),
        ("$where", "1", "eq", "ERROR_INVALID_PARAMETER"),
        ("options.$gt", "1", "eq", "ERROR_INVALID_PARAMETER"),
        ("_applied", "1", "eq", "ERROR_INVALID_PARAMETER"),
        ("_id", "1", "eq", "ERROR_INVALID_PARAMETER"),
        ("unknown", "1", "eq", "ERROR_INVALID_PARAMETER"),
        ("status.x", "1", "eq", "ERROR_INVALID_PARAMETER"),
        ("options..x", "1", "eq", "ERROR_INVALID_PARAMETER"),
        (5, "1", "eq", "ERROR_INVALID_PARAMETER_TYPE"),
    ],
)
def test_condition_errors(k, v, o, code):
    assert code_of(lambda: cond(k, v, o)) == code


def test_item_without_value_or_not_an_object_is_a_db_query_error():
    assert code_of(lambda: build_condition({"k": "status", "o": "eq"}, document_ref, NOW)) == "ERROR_DB_QUERY"
    assert code_of(lambda: build_condition("status=1", document_ref, NOW)) == "ERROR_DB_QUERY"


# --- the list plan -------------------------------------------------------------------------------


def test_default_list_is_scoped_newest_first_with_tiebreaker_and_capped():
    plan = list_plan(max_page_size=50)
    assert plan.filter == {"domain_id": "domain-1"}
    assert plan.sort == [("created_at", -1), ("job_task_id", 1)]
    assert (plan.skip, plan.limit, plan.count_only) == (0, 50, False)
    assert plan.projection["_id"] == 0 and "_applied" not in plan.projection


def test_parameters_filter_like_eq_and_domain_id_in_body_is_ignored():
    plan = plan_list(
        JOB_TASK, {"status": "FAILURE", "job_id": "j", "domain_id": "other", "query": {}}, DOMAIN, 100, NOW
    )
    # A scalar's equality at the top level is bare: the same match, and the form the embedded store plans.
    assert plan.filter == {"domain_id": "domain-1", "status": "FAILURE", "job_id": "j"}


def test_user_clauses_never_replace_the_scope():
    plan = list_plan({"filter": [{"k": "domain_id", "v": "other", "o": "eq"}]})
    assert plan.filter == {"domain_id": "domain-1", "$and": [{"domain_id": {"$eq": "other"}}]}
    plan = list_plan(
        {"filter_or": [{"k": "domain_id", "v": "x", "o": "eq"}, {"k": "status", "v": "A", "o": "eq"}]},
        scope=WORKSPACES,
    )
    assert plan.filter["domain_id"] == "domain-1"
    assert plan.filter["_reader"] == {"$in": ["*", "ws:ws-1", "ws:ws-2"]}
    assert plan.filter["$or"] == [{"domain_id": {"$eq": "x"}}, {"status": {"$eq": "A"}}]


def test_filter_and_filter_or_and_keyword_combine():
    plan = list_plan(
        {
            "filter": [{"k": "status", "v": "A", "o": "eq"}, {"k": "status", "v": "B", "o": "not"}],
            "filter_or": [{"k": "job_id", "v": "j", "o": "eq"}],
            "keyword": " a.b ",
        }
    )
    assert plan.filter == {
        "domain_id": "domain-1",
        "status": "A",
        "job_id": "j",
        "job_task_id": {"$regex": r"a\.b", "$options": "i"},
        "$and": [{"status": {"$ne": "B"}}],
    }


def test_sort_page_only_minimal_count_only():
    plan = list_plan(
        {
            "sort": {"key": "created_count", "desc": True},
            "page": {"start": 3, "limit": 5},
            "only": ["status", "options.month", "options"],
            "count_only": True,
        }
    )
    assert plan.sort == [("created_count", -1), ("job_task_id", 1)]
    assert (plan.skip, plan.limit, plan.count_only) == (2, 5, True)
    assert plan.projection == {"_id": 0, "status": 1, "options": 1}
    plan = list_plan({"sort": [{"key": "job_task_id", "desc": True}], "minimal": True})
    assert plan.sort == [("job_task_id", -1)]
    assert set(plan.projection) == {
        "_id",
        "job_task_id",
        "status",
        "created_count",
        "job_id",
        "data_source_id",
        "workspace_id",
    }


@pytest.mark.parametrize(
    "page, window",
    [
        (None, (0, 100, False)),
        ({}, (0, 100, False)),
        ({"start": 0, "limit": 10}, (0, 10, True)),
        ({"start": -5, "limit": 10}, (0, 10, True)),
        ({"start": 4, "limit": 0}, (0, 100, False)),
        ({"start": 2, "limit": 5000}, (1, 100, True)),
        ({"limit": -1}, (0, 100, False)),
    ],
)
def test_page_window(page, window):
    assert page_window(page, 100) == window


@pytest.mark.parametrize(
    "body, code",
    [
        ({"query": []}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"filter": {}}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"page": {"limit": "10"}}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"page": {"limit": True}}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"page": {"start": 2**40, "limit": 1}}}, "ERROR_INVALID_PARAMETER"),
        ({"query": {"sort": [{"desc": True}]}}, "ERROR_REQUIRED_PARAMETER"),
        ({"query": {"sort": [{"key": "status", "desc": "yes"}]}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"sort": "status"}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"sort": [{"key": "_applied"}]}}, "ERROR_INVALID_PARAMETER"),
        ({"query": {"only": ["_id"]}}, "ERROR_INVALID_PARAMETER"),
        ({"query": {"only": "status"}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"minimal": 1}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"count_only": "true"}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"keyword": 5}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"query": {"aggregate": []}}, "ERROR_INVALID_PARAMETER"),
        ({"query": {"$where": "1"}}, "ERROR_INVALID_PARAMETER"),
        ({"query": {"filter": [{"k": "options.x", "v": {"$gt": 1}, "o": "eq"}]}}, "ERROR_INVALID_PARAMETER"),
        (
            {"query": {"filter": [{"k": "options.x", "v": {"$where": "sleep(1)"}, "o": "match"}]}},
            "ERROR_INVALID_PARAMETER",
        ),
        ({"query": {"filter": [{"k": "job_id", "v": "\ud800", "o": "eq"}]}}, "ERROR_INVALID_PARAMETER"),
        ({"query": {"filter": [{"k": "created_count", "v": 2**70, "o": "gt"}]}}, "ERROR_INVALID_PARAMETER"),
        ({"status": "DONE"}, "ERROR_INVALID_PARAMETER"),
        ({"status": 1}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"job_id": ["a"]}, "ERROR_INVALID_PARAMETER_TYPE"),
        ({"querry": {}}, "ERROR_INVALID_PARAMETER"),
        ([], "ERROR_INVALID_PARAMETER_TYPE"),
    ],
)
def test_list_body_errors(body, code):
    assert code_of(lambda: plan_list(JOB_TASK, body, DOMAIN, 100, NOW)) == code


def test_deep_nesting_is_refused_before_anything_recurses():
    value: dict = {}
    for _ in range(200):
        value = {"a": value}
    assert (
        code_of(lambda: list_plan({"filter": [{"k": "options", "v": value, "o": "eq"}]}))
        == "ERROR_INVALID_PARAMETER"
    )


def test_get_plan():
    job_task_id, query = plan_get(JOB_TASK, {"job_task_id": "t", "workspace_id": "ws-1"}, WORKSPACES)
    assert job_task_id == "t"
    # Found by key; the token's workspaces are checked on the document found (worker.read.reads).
    assert list(query) == ["_id", "domain_id", "job_task_id", "workspace_id", "_reader"]
    assert query["_id"] == "t" and query["domain_id"] == "domain-1" and query["workspace_id"] == "ws-1"
    assert code_of(lambda: plan_get(JOB_TASK, {}, DOMAIN)) == "ERROR_REQUIRED_PARAMETER"
    assert code_of(lambda: plan_get(JOB_TASK, {"job_task_id": 1}, DOMAIN)) == "ERROR_INVALID_PARAMETER_TYPE"
    assert (code_of(lambda: plan_get(JOB_TASK, {"job_task_id": "t", "query": {}}, DOMAIN))
            == "ERROR_INVALID_PARAMETER")


def test_projection_drops_paths_under_selected_ones():
    only = ["options.a", "options", "options.b.c"]
    assert projection_for(JOB_TASK, only, False) == {"_id": 0, "options": 1}


def test_scoped_filter_keeps_scope_keys_first_and_nests_collisions():
    combined = scoped_filter(WORKSPACES, [{"domain_id": {"$eq": "x"}}, {"status": {"$eq": "A"}}])
    assert list(combined)[:2] == ["domain_id", "_reader"]
    assert combined["_reader"] == {"$in": ["*", "ws:ws-1", "ws:ws-2"]}
    assert combined["$and"] == [{"domain_id": {"$eq": "x"}}]


def test_a_workspace_filter_narrows_the_reader_keys_and_never_widens_them():
    narrowed = scoped_filter(WORKSPACES, [{"workspace_id": {"$eq": "ws-2"}}])
    assert narrowed["_reader"] == {"$in": ["*", "ws:ws-2"]} and narrowed["workspace_id"] == "ws-2"
    outside = scoped_filter(WORKSPACES, [{"workspace_id": {"$eq": "ws-9"}}])
    assert outside["_reader"] == {"$in": ["*"]} and outside["workspace_id"] == "ws-9"
    domain = scoped_filter(DOMAIN, [{"workspace_id": {"$eq": "ws-9"}}])
    assert domain == {"domain_id": "domain-1", "workspace_id": "ws-9", "_reader": {"$in": ["*", "ws:ws-9"]}}

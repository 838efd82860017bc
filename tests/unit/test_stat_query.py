"""The pure translation of SpaceONE StatisticsQuery: every stage, operator and error.

Companion of tests/unit/test_query.py (filters and list); no store here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.contract.errors import CodedError
from worker.read.query import Scope
from worker.read.resource import JOB_TASK
from worker.read.stat_query import plan_stat

NOW = datetime(2024, 3, 14, 15, 9, 26, tzinfo=UTC)
DOMAIN = Scope("domain-1")


def code_of(call) -> str:
    with pytest.raises(CodedError) as caught:
        call()
    return caught.value.code


def stat_plan(query, scope=DOMAIN, max_page_size=1000):
    return plan_stat(JOB_TASK, {"query": query}, scope, max_page_size, NOW)


# --- the stat plan -------------------------------------------------------------------------------


def test_stat_needs_query_and_aggregate_or_distinct():
    assert code_of(lambda: plan_stat(JOB_TASK, {}, DOMAIN, 10, NOW)) == "ERROR_REQUIRED_PARAMETER"
    with pytest.raises(CodedError) as caught:
        stat_plan({"filter": []})
    assert caught.value.code == "ERROR_REQUIRED_PARAMETER" and "key = aggregate" in caught.value.message


def test_group_keys_fields_and_date_formats():
    plan = stat_plan(
        {
            "aggregate": [
                {
                    "group": {
                        "keys": [
                            {"key": "status", "name": "status"},
                            {"key": "created_at", "name": "year", "date_format": "year"},
                            {"key": "created_at", "name": "month", "date_format": "month"},
                            {"key": "created_at", "name": "day", "date_format": "day"},
                            {"key": "created_at", "name": "ym", "date_format": "%Y-%m"},
                        ],
                        "fields": [
                            {"operator": "count", "name": "n"},
                            {
                                "operator": "count",
                                "name": "big",
                                "conditions": [{"k": "created_count", "v": 5, "o": "gt"}],
                            },
                            {"operator": "sum", "key": "created_count", "name": "total"},
                            {"operator": "average", "key": "created_count", "name": "avg"},
                            {"operator": "max", "key": "created_count", "name": "max"},
                            {"operator": "min", "key": "created_count", "name": "min"},
                            {"operator": "first", "key": "job_task_id", "name": "first"},
                            {"operator": "last", "key": "job_task_id", "name": "last"},
                            {"operator": "push", "key": "job_id", "name": "jobs"},
                            {
                                "operator": "push",
                                "name": "rows",
                                "fields": [{"key": "job_id", "name": "job"}],
                            },
                            {"operator": "add_to_set", "key": "data_source_id", "name": "sources"},
                            {"operator": "merge_objects", "key": "options", "name": "merged"},
                        ],
                    }
                }
            ]
        }
    )
    assert plan.match == {"domain_id": "domain-1"}
    (group,) = plan.stages
    assert group["$group"]["_id"] == {
        "status": "$status",
        "year": {"$year": "$created_at"},
        "month": {"$month": "$created_at"},
        "day": {"$dayOfMonth": "$created_at"},
        "ym": {"$dateToString": {"format": "%Y-%m", "date": "$created_at"}},
    }
    fields = {name: rule for name, rule in group["$group"].items() if name != "_id"}
    assert fields == {
        "n": {"$sum": 1},
        "big": {"$sum": {"$cond": [{"$and": [{"$gt": ["$created_count", {"$literal": 5}]}]}, 1, 0]}},
        "total": {"$sum": "$created_count"},
        "avg": {"$avg": "$created_count"},
        "max": {"$max": "$created_count"},
        "min": {"$min": "$created_count"},
        "first": {"$first": "$job_task_id"},
        "last": {"$last": "$job_task_id"},
        "jobs": {"$push": "$job_id"},
        "rows": {"$push": {"job": "$job_id"}},
        "sources": {"$addToSet": "$data_source_id"},
        "merged": {"$mergeObjects": "$options"},
    }


def test_stages_after_group_resolve_group_keys_under_id():
    plan = stat_plan(
        {
            "aggregate": [
                {"unwind": {"path": "options.tags"}},
                {
                    "group": {
                        "keys": [{"key": "options.tags", "name": "tag"}],
                        "fields": [{"operator": "push", "key": "created_count", "name": "counts"}],
                    }
                },
                {"match": {"filter": [{"k": "tag", "v": "cpu", "o": "eq"}]}},
                {
                    "project": {
                        "fields": [
                            {"key": "tag", "name": "label"},
                            {"key": "counts", "operator": "size", "name": "n"},
                            {"key": "counts", "operator": "sum", "name": "total"},
                            {
                                "operator": "multiply",
                                "name": "x",
                                "fields": [{"operator": "add", "fields": [1, 2]}, 2],
                            },
                        ]
                    }
                },
                {"sort": [{"key": "tag", "desc": True}]},
                {"skip": 1},
                {"limit": 2},
                {"count": {"name": "rows"}},
            ]
        }
    )
    unwind, group, match, project, sort, skip, limit, count = plan.stages
    assert unwind == {"$unwind": "$options.tags"}
    assert match == {"$match": {"$and": [{"_id.tag": {"$eq": "cpu"}}]}}
    assert project["$project"]["label"] == "$_id.tag"
    assert project["$project"]["n"] == {"$size": "$counts"}
    assert project["$project"]["x"] == {"$multiply": [{"$add": [1, 2]}, 2]}
    assert sort == {"$sort": {"_id.tag": -1}}
    assert (skip, limit, count) == ({"$skip": 1}, {"$limit": 2}, {"$count": "rows"})


def test_project_operators_and_exclude_keys():
    plan = stat_plan(
        {
            "aggregate": [
                {
                    "project": {
                        "fields": [
                            {"operator": "add", "name": "a", "fields": ["created_count", 1]},
                            {"operator": "subtract", "name": "s", "fields": ["created_count", 1]},
                            {"operator": "multiply", "name": "m", "fields": ["created_count", 2, 3]},
                            {"operator": "divide", "name": "d", "fields": ["created_count", 2]},
                            {"operator": "object_to_array", "key": "options", "name": "pairs"},
                        ],
                        "exclude_keys": True,
                    }
                },
                {"project": {"fields": [{"operator": "array_to_object", "key": "pairs", "name": "back"}]}},
            ]
        }
    )
    first, second = plan.stages
    assert first["$project"] == {
        "a": {"$add": ["$created_count", 1]},
        "s": {"$subtract": ["$created_count", 1]},
        "m": {"$multiply": ["$created_count", 2, 3]},
        "d": {"$divide": ["$created_count", 2]},
        "pairs": {"$objectToArray": "$options"},
        "_id": 0,
    }
    assert second["$project"] == {"back": {"$arrayToObject": "$pairs"}}


def test_condition_values_stay_literals():
    plan = stat_plan(
        {
            "aggregate": [
                {
                    "group": {
                        "fields": [
                            {
                                "operator": "sum",
                                "key": "created_count",
                                "name": "x",
                                "conditions": [{"k": "status", "v": "$domain_id", "o": "eq"}],
                            }
                        ]
                    }
                }
            ]
        }
    )
    (group,) = plan.stages
    assert group["$group"]["_id"] is None
    assert group["$group"]["x"]["$sum"]["$cond"][0] == {
        "$and": [{"$eq": ["$status", {"$literal": "$domain_id"}]}]
    }


def test_distinct_and_page():
    plan = stat_plan(
        {"distinct": "options.month", "page": {"start": 2, "limit": 3}, "keyword": "a"}, max_page_size=2
    )
    assert plan.distinct == "options.month" and (plan.skip, plan.limit, plan.with_total) == (1, 2, True)
    assert plan.match["job_task_id"] == {"$regex": "a", "$options": "i"}


@pytest.mark.parametrize(
    "aggregate, code",
    [
        ({"group": {}}, "ERROR_INVALID_PARAMETER_TYPE"),
        ([{"bogus": {}}], "ERROR_REQUIRED_PARAMETER"),
        ([{"limit": 1, "skip": 1}], "ERROR_INVALID_PARAMETER"),
        ([{"unwind": {}}], "ERROR_REQUIRED_PARAMETER"),
        ([{"unwind": {"path": "_applied"}}], "ERROR_INVALID_PARAMETER"),
        ([{"group": {}}], "ERROR_REQUIRED_PARAMETER"),
        ([{"group": {"keys": [{"name": "x"}]}}], "ERROR_DB_QUERY"),
        ([{"group": {"keys": [{"key": "status"}]}}], "ERROR_DB_QUERY"),
        ([{"group": {"keys": [{"key": "status", "name": "_id"}]}}], "ERROR_INVALID_PARAMETER"),
        ([{"group": {"keys": [{"key": "status", "name": "a.b"}]}}], "ERROR_INVALID_PARAMETER"),
        (
            [{"group": {"keys": [{"key": "status", "name": "x"}, {"key": "job_id", "name": "x"}]}}],
            "ERROR_INVALID_PARAMETER",
        ),
        (
            [{"group": {"keys": [{"key": "created_at", "name": "x", "date_format": 1}]}}],
            "ERROR_INVALID_PARAMETER_TYPE",
        ),
        (
            [{"group": {"fields": [{"operator": "median", "key": "created_count", "name": "x"}]}}],
            "ERROR_DB_QUERY",
        ),
        ([{"group": {"fields": [{"operator": "sum", "name": "x"}]}}], "ERROR_DB_QUERY"),
        (
            [
                {
                    "group": {
                        "fields": [
                            {
                                "operator": "max",
                                "key": "created_count",
                                "name": "x",
                                "conditions": [{"k": "status", "v": "A", "o": "eq"}],
                            }
                        ]
                    }
                }
            ],
            "ERROR_DB_QUERY",
        ),
        (
            [
                {
                    "group": {
                        "fields": [
                            {
                                "operator": "count",
                                "name": "x",
                                "conditions": [{"k": "status", "v": "A", "o": "regex"}],
                            }
                        ]
                    }
                }
            ],
            "ERROR_DB_QUERY",
        ),
        (
            [
                {
                    "group": {
                        "fields": [
                            {"operator": "count", "name": "x", "conditions": [{"k": "status", "o": "eq"}]}
                        ]
                    }
                }
            ],
            "ERROR_DB_QUERY",
        ),
        (
            [{"group": {"keys": [{"key": "status", "name": "s"}]}}, {"sort": [{"key": "job_id"}]}],
            "ERROR_INVALID_PARAMETER",
        ),
        ([{"count": {}}], "ERROR_REQUIRED_PARAMETER"),
        ([{"sort": []}], "ERROR_REQUIRED_PARAMETER"),
        ([{"project": {"fields": []}}], "ERROR_REQUIRED_PARAMETER"),
        ([{"project": {"fields": [{"name": "x"}]}}], "ERROR_DB_QUERY"),
        (
            [{"project": {"fields": [{"key": "status", "name": "x"}], "exclude_keys": "y"}}],
            "ERROR_INVALID_PARAMETER_TYPE",
        ),
        ([{"project": {"fields": [{"key": "status", "name": "x", "operator": "concat"}]}}], "ERROR_DB_QUERY"),
        (
            [{"project": {"fields": [{"name": "x", "operator": "subtract", "fields": ["created_count"]}]}}],
            "ERROR_DB_QUERY",
        ),
        ([{"project": {"fields": [{"name": "x", "operator": "add", "fields": [True]}]}}], "ERROR_DB_QUERY"),
        ([{"project": {"fields": [{"name": "x", "operator": "add"}]}}], "ERROR_DB_QUERY"),
        ([{"limit": 0}], "ERROR_INVALID_PARAMETER"),
        ([{"limit": "1"}], "ERROR_INVALID_PARAMETER_TYPE"),
        ([{"skip": -1}], "ERROR_INVALID_PARAMETER"),
        ([{"match": {"filter": [{"k": "status", "v": "A", "o": "nope"}]}}], "ERROR_DB_QUERY"),
        ([{"match": {"filter": {}}}], "ERROR_INVALID_PARAMETER_TYPE"),
    ],
)
def test_stat_errors(aggregate, code):
    assert code_of(lambda: stat_plan({"aggregate": aggregate})) == code


@pytest.mark.parametrize("key", ["s.\x00", "s.$x", "s..x", "_id", "$s", 5])
def test_keys_after_a_group_are_checked_like_document_keys(key):
    group = {"group": {"keys": [{"key": "status", "name": "s"}]}}
    code = code_of(lambda: stat_plan({"aggregate": [group, {"sort": {"key": key}}]}))
    assert code.startswith("ERROR_INVALID_PARAMETER")


def test_distinct_key_is_checked():
    assert code_of(lambda: stat_plan({"distinct": "_applied"})) == "ERROR_INVALID_PARAMETER"
    assert code_of(lambda: stat_plan({"distinct": 3})) == "ERROR_INVALID_PARAMETER_TYPE"



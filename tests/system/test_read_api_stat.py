"""StatisticsQuery over HTTP on the worker-built dataset: every stage and operator.

Companion of tests/system/test_read_api.py, on the same kind of dataset
(tests/readside.py): domain-a's eight tasks, a08 created two hours ago.
"""

from __future__ import annotations

import pytest

from tests.readside import ReadClient, api_settings, stat, worker_dataset


@pytest.fixture(scope="module")
def api(broker_url, store_url, tmp_path_factory):
    with worker_dataset(broker_url, store_url, tmp_path_factory.mktemp("read-stat")) as pipeline:
        client = ReadClient(api_settings(store_url, pipeline.db_name, broker_url))
        yield client
        client.close()


# --- every stat stage ----------------------------------------------------------------------------


OLD = [{"k": "created_at", "v": "now-1d", "o": "timediff_lt"}]  # a01..a07, fixed dates


def rows_by(response: dict, key: str) -> dict:
    return {row.pop(key): row for row in response["results"]}


def test_group_count_and_accumulators(api):
    counts = stat(api, {"aggregate": [{"group": {"keys": [{"key": "status", "name": "status"}],
                                                 "fields": [{"operator": "count", "name": "n"}]}}]})
    assert {row["status"]: row["n"] for row in counts["results"]} == {
        "SUCCESS": 3, "FAILURE": 1, "CANCELED": 1, "IN_PROGRESS": 1, "PENDING": 1, "TIMEOUT": 1}
    sources = stat(api, {"aggregate": [
        {"group": {"keys": [{"key": "data_source_id", "name": "source"}], "fields": [
            {"operator": "sum", "key": "created_count", "name": "total"},
            {"operator": "average", "key": "created_count", "name": "avg"},
            {"operator": "max", "key": "created_count", "name": "max"},
            {"operator": "min", "key": "created_count", "name": "min"},
            {"operator": "count", "name": "made", "conditions": [{"k": "created_count", "v": 0, "o": "gt"}]},
            {"operator": "add_to_set", "key": "status", "name": "statuses"},
        ]}}]})
    aws = rows_by(sources, "source")["ds-aws"]
    assert (aws["total"], aws["avg"], aws["max"], aws["min"], aws["made"]) == (72, 18, 40, 2, 4)
    assert sorted(aws["statuses"]) == ["SUCCESS", "TIMEOUT"]


def test_first_last_push_merge_objects_after_sort(api):
    jobs = stat(api, {"filter": OLD, "aggregate": [
        {"sort": [{"key": "created_at"}]},
        {"group": {"keys": [{"key": "job_id", "name": "job"}], "fields": [
            {"operator": "first", "key": "job_task_id", "name": "first"},
            {"operator": "last", "key": "job_task_id", "name": "last"},
            {"operator": "push", "name": "tasks", "fields": [{"key": "job_task_id", "name": "id"},
                                                              {"key": "created_at", "name": "at"}]},
            {"operator": "merge_objects", "key": "options", "name": "options"},
        ]}},
        {"sort": [{"key": "job"}]},
    ]})
    job1 = rows_by(jobs, "job")["job-1"]
    assert (job1["first"], job1["last"]) == ("job-task-a01", "job-task-a03")
    assert job1["tasks"][0] == {"id": "job-task-a01", "at": "2024-03-01T10:00:00.000Z"}
    assert job1["options"]["platform"] == "gcp" and job1["options"]["month"] == "202403"


def test_group_by_date_formats(api):
    def grouped(date_format):
        response = stat(api, {"filter": OLD, "aggregate": [{"group": {
            "keys": [{"key": "created_at", "name": "period", "date_format": date_format}],
            "fields": [{"operator": "count", "name": "n"}]}}]})
        return {row["period"]: row["n"] for row in response["results"]}

    assert grouped("year") == {2024: 7}
    assert grouped("month") == {1: 1, 2: 3, 3: 3}
    assert grouped("day") == {31: 1, 15: 1, 20: 2, 1: 2, 2: 1}
    assert grouped("%Y-%m") == {"2024-01": 1, "2024-02": 3, "2024-03": 3}
    assert grouped("%Y-%m-%d %H:%M, week %V") == {
        "2024-01-31 23:30, week 05": 1, "2024-02-15 08:00, week 07": 1, "2024-02-20 08:00, week 08": 2,
        "2024-03-01 10:00, week 09": 1, "2024-03-01 11:00, week 09": 1, "2024-03-02 09:00, week 09": 1}


@pytest.mark.parametrize("date_format", ["$domain_id", "$$NOW", "%Y$status", "%a", "%", "%Y<%m>", "x" * 65])
def test_a_date_format_is_the_stores_specifiers_and_plain_characters_only(api, date_format):
    # The format reaches the store as it is: never a field path or a variable, nothing it would refuse.
    response = api.post("stat", {"query": {"aggregate": [{"group": {
        "keys": [{"key": "created_at", "name": "period", "date_format": date_format}],
        "fields": [{"operator": "count", "name": "n"}]}}]}})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail["code"] == "ERROR_INVALID_PARAMETER" and "key = aggregate.group.keys.date_format" in detail["message"]
    assert "%b %d %j" in detail["message"]


def test_a_query_the_store_refuses_is_told_without_the_deployments_names(api):
    detail = api.error("stat", {"query": {"aggregate": [{"group": {
        "keys": [{"key": "options.month", "name": "year", "date_format": "year"}]}}]}})
    assert detail["code"] == "ERROR_DB_QUERY" and "can't convert from BSON type string to Date" in detail["message"]
    assert api.settings.mongo_db not in detail["message"] and "job_tasks" not in detail["message"]


def test_unwind_count_match_limit_skip(api):
    tags = stat(api, {"aggregate": [
        {"unwind": {"path": "options.tags"}},
        {"group": {"keys": [{"key": "options.tags", "name": "tag"}], "fields": [{"operator": "count", "name": "n"}]}},
        {"sort": [{"key": "tag"}]},
    ]})
    assert tags["results"] == [{"tag": "cpu", "n": 2}, {"tag": "gpu", "n": 1}]
    assert stat(api, {"aggregate": [{"count": {"name": "n"}}]})["results"] == [{"n": 8}]
    busy = stat(api, {"aggregate": [
        {"group": {"keys": [{"key": "job_id", "name": "job"}], "fields": [{"operator": "count", "name": "n"}]}},
        {"match": {"filter": [{"k": "n", "v": 2, "o": "gt"}]}},
        {"sort": [{"key": "job"}]}, {"skip": 1}, {"limit": 1},
    ]})
    assert busy["results"] == [{"job": "job-2", "n": 3}]


def test_project_operators(api):
    sizes = stat(api, {"aggregate": [
        {"group": {"keys": [{"key": "job_id", "name": "job"}],
                   "fields": [{"operator": "push", "key": "created_count", "name": "counts"}]}},
        {"project": {"fields": [{"key": "counts", "operator": "size", "name": "n"},
                                {"key": "counts", "operator": "sum", "name": "total"}]}},
        {"sort": [{"key": "job"}]},
    ]})
    assert sizes["results"][0] == {"job": "job-1", "n": 3, "total": 30}
    arithmetic = stat(api, {"filter": [{"k": "job_task_id", "v": "job-task-a02", "o": "eq"}], "aggregate": [
        {"project": {"exclude_keys": True, "fields": [
            {"operator": "add", "name": "add", "fields": ["created_count", 1]},
            {"operator": "subtract", "name": "sub", "fields": ["created_count", 5]},
            {"operator": "multiply", "name": "mul", "fields": ["created_count", 2]},
            {"operator": "divide", "name": "div", "fields": ["created_count", {"operator": "add", "fields": [3, 1]}]},
            {"operator": "object_to_array", "key": "options", "name": "pairs"},
        ]}},
        {"project": {"fields": [{"key": "add", "name": "add"}, {"operator": "array_to_object", "key": "pairs",
                                                                 "name": "options"}]}},
    ]})
    (row,) = arithmetic["results"]
    assert row["add"] == 21 and row["options"]["platform"] == "aws"
    plain = stat(api, {"filter": [{"k": "job_task_id", "v": "job-task-a02", "o": "eq"}], "aggregate": [
        {"project": {"exclude_keys": True, "fields": [
            {"operator": "subtract", "name": "sub", "fields": ["created_count", 5]},
            {"operator": "multiply", "name": "mul", "fields": ["created_count", 2]},
            {"operator": "divide", "name": "div", "fields": ["created_count", 4]}]}}]})
    assert plain["results"] == [{"sub": 15, "mul": 40, "div": 5}]


def test_project_keeps_group_keys_unless_excluded(api):
    base = [{"group": {"keys": [{"key": "status", "name": "status"}], "fields": [{"operator": "count", "name": "n"}]}}]
    kept = stat(api, {"aggregate": [*base, {"project": {"fields": [{"key": "n", "name": "count"}]}}]})
    assert all(set(row) == {"status", "count"} for row in kept["results"])
    dropped = stat(api, {"aggregate": [*base, {"project": {"fields": [{"key": "n", "name": "count"}],
                                                           "exclude_keys": True}}]})
    assert all(set(row) == {"count"} for row in dropped["results"])


def test_stat_page_gives_total_count_and_distinct_is_sorted(api):
    paged = stat(api, {"aggregate": [
        {"group": {"keys": [{"key": "status", "name": "status"}]}}, {"sort": [{"key": "status"}]}],
        "page": {"start": 2, "limit": 2}})
    assert paged == {"results": [{"status": "FAILURE"}, {"status": "IN_PROGRESS"}], "total_count": 6}
    assert stat(api, {"distinct": "data_source_id"}) == {"results": ["ds-aws", "ds-azure", "ds-gcp"]}
    assert stat(api, {"distinct": "status", "page": {"start": 2, "limit": 2}}) == {
        "results": ["FAILURE", "IN_PROGRESS"], "total_count": 6}
    assert stat(api, {"distinct": "created_at", "filter": [{"k": "job_id", "v": "job-2", "o": "eq"}]}) == {
        "results": ["2024-02-15T08:00:00.000Z", "2024-02-20T08:00:00.000Z"]}


def test_raw_rows_of_a_stat_never_show_internal_fields(api):
    rows = stat(api, {"aggregate": [{"sort": [{"key": "job_task_id"}]}, {"limit": 2}]})["results"]
    assert [row["job_task_id"] for row in rows] == ["job-task-a01", "job-task-a02"]
    assert not any(key.startswith("_") for row in rows for key in row)

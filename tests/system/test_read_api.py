"""The read API over HTTP on a real store filled by the real worker.

One dataset per module (the fixtures of tests/readside.py): the seed's two JobTasks and a
dozen tasks of two other domains, all sent as lifecycle events through Redis
to a Celery worker. Then ``get`` / ``list`` / ``stat`` are asked over HTTP
(FastAPI's TestClient on ``create_app``) with the tokens of tests/readside.py.
The stages of ``stat`` are in tests/system/test_read_api_stat.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.readside import (
    DOMAIN_A,
    DOMAIN_B,
    SEED_GET,
    SEED_SECOND,
    ReadClient,
    api_settings,
    start_test_command_store,
    stat,
    worker_dataset,
)
from worker.dev.embedded import free_port
from worker.read.query import Scope, plan_list
from worker.read.resource import JOB_TASK
from worker.store.client import connect
from worker.store.collections import ensure_indexes

WS1_VISIBLE = {"job-task-a01", "job-task-a02", "job-task-a03", "job-task-a06", "job-task-a07", "job-task-a08"}


@pytest.fixture(scope="module")
def dataset(broker_url, store_url, tmp_path_factory):
    with worker_dataset(broker_url, store_url, tmp_path_factory.mktemp("read-api")) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def api(dataset, store_url, broker_url):
    client = ReadClient(api_settings(store_url, dataset.db_name, broker_url))
    yield client
    client.close()


def ids_of(response: dict) -> list[str]:
    return [row["job_task_id"] for row in response["results"]]


def ids_where(api: ReadClient, k, v, o, token="token-a") -> set[str]:
    return api.ids({"query": {"filter": [{"k": k, "v": v, "o": o}]}}, token)


# --- the seed's examples -------------------------------------------------------------------------


def without_resource_group(info: dict) -> dict:
    # The seed's example predates resource_group; the worker sets it (DOMAIN
    # for a task created without workspace_id) and we return it: JobTaskInfo
    # lists it. Everything the example shows must match exactly.
    assert info.pop("resource_group") == "DOMAIN"
    return info


def test_get_returns_the_seed_example_field_for_field(api):
    body = {"job_task_id": "job-task-3622d860a776"}
    assert without_resource_group(api.ok("get", body, "token-seed")) == SEED_GET


def test_list_returns_the_seed_example_counting_only_what_the_caller_sees(api):
    response = api.ok("list", {"query": {}}, "token-seed")
    assert [without_resource_group(row) for row in response["results"]] == [SEED_GET, SEED_SECOND]
    assert response["total_count"] == 2


# --- list options --------------------------------------------------------------------------------


def test_default_order_is_newest_first_with_job_task_id_breaking_ties(api):
    order = ids_of(api.ok("list", {"query": {}}))
    # a05 and a06 were created at the same instant.
    assert order == ["job-task-a08", "job-task-a03", "job-task-a02", "job-task-a01",
                     "job-task-a05", "job-task-a06", "job-task-a04", "job-task-a07"]


def test_page_sort_only_minimal_count_only_keyword(api):
    page = api.ok("list", {"query": {"page": {"start": 2, "limit": 3}}})
    assert ids_of(page) == ["job-task-a03", "job-task-a02", "job-task-a01"] and page["total_count"] == 8
    assert ids_of(api.ok("list", {"query": {"page": {"start": 0, "limit": 1}}})) == ["job-task-a08"]
    by_count = api.ok("list", {"query": {"sort": {"key": "created_count", "desc": True}, "page": {"limit": 2}}})
    assert ids_of(by_count) == ["job-task-a08", "job-task-a02"]
    ascending = api.ok("list", {"query": {"sort": [{"key": "options.platform"}, {"key": "created_at", "desc": True}]}})
    assert ids_of(ascending)[:2] == ["job-task-a06", "job-task-a08"]  # missing first, then "AWS-China"
    only = api.ok("list", {"query": {"only": ["status", "options.month"], "keyword": "A01"}})
    assert only == {"results": [{"status": "SUCCESS", "options": {"month": "202403"}}], "total_count": 1}
    minimal = api.ok("list", {"query": {"minimal": True, "keyword": "a02"}})["results"][0]
    assert minimal == {"job_task_id": "job-task-a02", "status": "SUCCESS", "created_count": 20,
                       "job_id": "job-1", "data_source_id": "ds-aws", "workspace_id": "ws-1"}
    assert api.ok("list", {"query": {"count_only": True}}) == {"results": [], "total_count": 8}


def test_request_parameters_filter(api):
    assert api.ids({"status": "SUCCESS"}) == {"job-task-a01", "job-task-a02", "job-task-a08"}
    assert api.ids({"job_id": "job-2", "data_source_id": "ds-azure"}) == {"job-task-a05", "job-task-a06"}
    assert api.ids({"workspace_id": "ws-2"}) == {"job-task-a04", "job-task-a05"}
    assert api.ids({"job_task_id": "job-task-a07"}) == {"job-task-a07"}


def test_failed_task_carries_its_error_and_pending_task_has_no_times(api):
    failed = api.ok("get", {"job_task_id": "job-task-a03"})
    assert (failed["status"], failed["error_code"], failed["error_message"]) == (
        "FAILURE", "ERROR_PLUGIN", "quota exceeded")
    pending = api.ok("get", {"job_task_id": "job-task-a06"})
    assert pending["status"] == "PENDING" and pending["created_count"] == 0
    assert not {"started_at", "finished_at", "error_code", "error_message", "workspace_id"} & set(pending)


def test_page_size_is_capped(dataset, store_url, broker_url):
    capped = ReadClient(api_settings(store_url, dataset.db_name, broker_url, max_page_size=3))
    try:
        response = capped.ok("list", {"query": {"page": {"limit": 100}}})
        assert len(response["results"]) == 3 and response["total_count"] == 8
        assert len(capped.ok("list", {})["results"]) == 3
    finally:
        capped.close()


# --- every filter operator -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, v, o, expected",
    [
        ("status", "SUCCESS", "eq", {"a01", "a02", "a08"}),
        ("workspace_id", None, "eq", {"a01", "a06", "a08"}),
        ("status", "SUCCESS", "not", {"a03", "a04", "a05", "a06", "a07"}),
        # a07 timed out: it reads back with ERROR_JOB_TASK_TIMEOUT (issue 9).
        ("error_code", True, "exists", {"a03", "a07"}),
        ("started_at", False, "exists", {"a04", "a06"}),
        ("options.platform", "aws", "contain", {"a01", "a02", "a07", "a08"}),
        ("options.tags", "GPU", "contain", {"a01"}),
        ("options.platform", "aws", "not_contain", {"a03", "a04", "a05", "a06"}),
        ("status", ["FAILURE", "CANCELED"], "in", {"a03", "a04"}),
        ("status", ["SUCCESS", "PENDING", "IN_PROGRESS"], "not_in", {"a03", "a04", "a07"}),
        ("data_source_id", ["AZ", "gcp"], "contain_in", {"a03", "a04", "a05", "a06"}),
        ("data_source_id", ["aws", "gcp"], "not_contain_in", {"a05", "a06"}),
        ("created_count", 5, "lt", {"a03", "a04", "a06", "a07"}),
        ("created_count", 5, "lte", {"a03", "a04", "a05", "a06", "a07"}),
        ("created_count", 10, "gt", {"a02", "a08"}),
        ("created_count", 10, "gte", {"a01", "a02", "a08"}),
        ("options.items", {"name": "ec2", "size": 3}, "match", {"a01"}),
        ("options.items", {"name": "ec2"}, "match", {"a01", "a02"}),
        ("job_task_id", "^job-task-a0[1-3]$", "regex", {"a01", "a02", "a03"}),
        ("job_task_id", "JOB-TASK-A01", "regex", {"a01"}),
        ("options.platform", ["^gcp$", "^azure$"], "regex_in", {"a03", "a04", "a05"}),
        ("created_at", "2024-02-20T08:00:00.000Z", "datetime_lt", {"a04", "a07"}),
        ("created_at", "2024-02-20T08:00:00.000Z", "datetime_lte", {"a04", "a05", "a06", "a07"}),
        ("created_at", "2024-03-01T10:00:00Z", "datetime_gt", {"a02", "a03", "a08"}),
        ("created_at", "2024-03-01T11:00:00+01:00", "datetime_gte", {"a01", "a02", "a03", "a08"}),
        ("created_at", "now-1d", "timediff_gte", {"a08"}),
        ("created_at", "now/m-62d", "timediff_gt", {"a08"}),
        ("created_at", "now-1d", "timediff_lt", {"a01", "a02", "a03", "a04", "a05", "a06", "a07"}),
        ("updated_at", "now-1w", "timediff_lte", {"a01", "a02", "a03", "a04", "a05", "a06", "a07"}),
        ("created_at", "2024-03-01T10:00:00.000Z", "eq", {"a01"}),
        ("finished_at", "2024-02-01T00:00:00Z", "lt", set()),  # a07 finished at exactly that instant
        ("finished_at", "2024-02-01T00:00:00Z", "lte", {"a07"}),
        ("created_at", ["2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"], "in", {"a01", "a02"}),
    ],
)
def test_every_operator_on_the_worker_built_dataset(api, k, v, o, expected):
    assert ids_where(api, k, v, o) == {f"job-task-{short}" for short in expected}


def test_filter_or_is_ored_then_anded_with_filter(api):
    either = [{"k": "status", "v": "FAILURE", "o": "eq"}, {"k": "status", "v": "CANCELED", "o": "eq"}]
    assert api.ids({"query": {"filter_or": either}}) == {"job-task-a03", "job-task-a04"}
    both = {"filter": [{"key": "job_id", "value": "job-1", "operator": "eq"}], "filter_or": either}
    assert api.ids({"query": both}) == {"job-task-a03"}


# --- tenancy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    {},
    {"filter_or": [{"k": "domain_id", "v": DOMAIN_A, "o": "eq"}, {"k": "status", "v": "SUCCESS", "o": "eq"}]},
    {"filter": [{"k": "domain_id", "v": DOMAIN_A, "o": "eq"}]},
    {"filter": [{"k": "job_task_id", "v": ".*", "o": "regex"}]},
    {"filter": [{"k": "options.items", "v": {"name": "ec2"}, "o": "match"}]},
    {"filter": [{"k": "domain_id", "v": [DOMAIN_A, DOMAIN_B], "o": "in"}]},
    {"keyword": "job-task"},
])
def test_another_domain_is_never_listed_or_counted(api, query):
    response = api.ok("list", {"query": query, "domain_id": DOMAIN_A}, "token-b")
    assert {row["domain_id"] for row in response["results"]} <= {DOMAIN_B}
    assert response["total_count"] == len(response["results"]) <= 2


def test_another_domain_is_never_aggregated(api):
    assert stat(api, {"distinct": "domain_id"}, "token-b") == {"results": [DOMAIN_B]}
    everything = stat(api, {"filter_or": [{"k": "domain_id", "v": DOMAIN_A, "o": "eq"}], "aggregate": [
        {"group": {"keys": [{"key": "domain_id", "name": "domain"}], "fields": [{"operator": "count", "name": "n"}]}}]},
        "token-b")
    assert everything == {"results": []}
    assert stat(api, {"aggregate": [{"count": {"name": "n"}}]}, "token-b")["results"] == [{"n": 2}]
    ids = stat(api, {"distinct": "job_task_id", "filter": [{"k": "job_task_id", "v": "a0", "o": "regex"}]}, "token-b")
    assert ids == {"results": []}


def test_another_domains_task_is_indistinguishable_from_a_missing_one(api):
    foreign = api.error("get", {"job_task_id": "job-task-a01", "domain_id": DOMAIN_A}, "token-b", 404)
    missing = api.error("get", {"job_task_id": "job-task-zz"}, "token-b", 404)
    assert foreign == {"code": "ERROR_NOT_FOUND",
                       "message": "Resource cannot be found or access is denied. (job_task_id = job-task-a01)"}
    assert missing["message"].replace("job-task-zz", "X") == foreign["message"].replace("job-task-a01", "X")


def test_workspace_token_sees_its_workspaces_and_domain_level_tasks(api):
    assert api.ids({"query": {}}, "token-a-ws1") == WS1_VISIBLE
    assert api.ok("list", {"query": {"count_only": True}}, "token-a-ws1")["total_count"] == 6
    assert api.ok("get", {"job_task_id": "job-task-a06"}, "token-a-ws1")["resource_group"] == "DOMAIN"
    api.error("get", {"job_task_id": "job-task-a04"}, "token-a-ws1", 404)
    api.error("get", {"job_task_id": "job-task-a02", "workspace_id": "ws-2"}, "token-a-ws1", 404)
    assert api.ids({"workspace_id": "ws-2"}, "token-a-ws1") == set()
    assert api.ids({"query": {"filter": [{"k": "workspace_id", "v": "ws-2", "o": "eq"}]}}, "token-a-ws1") == set()
    assert api.ids({"query": {"filter_or": [{"k": "workspace_id", "v": ["ws-2"], "o": "in"}]}}, "token-a-ws1") == set()
    assert stat(api, {"distinct": "workspace_id"}, "token-a-ws1") == {"results": ["ws-1"]}
    assert stat(api, {"distinct": "workspace_id", "filter": [{"k": "workspace_id", "v": "ws-2", "o": "eq"}]},
                "token-a-ws1") == {"results": []}
    total_of_created = {"operator": "sum", "key": "created_count", "name": "t"}
    total = stat(api, {"aggregate": [{"group": {"fields": [total_of_created]}}]}, "token-a-ws1")
    assert total == {"results": [{"t": 10 + 20 + 0 + 0 + 2 + 40}]}


# --- indexes -------------------------------------------------------------------------------------


def test_filtered_sorted_paged_list_on_domain_and_status_uses_an_index(api, dataset):
    body = {"status": "SUCCESS", "query": {"page": {"start": 2, "limit": 1}}}
    plan = plan_list(JOB_TASK, body, Scope(DOMAIN_A), 1000, datetime.now(UTC))
    cursor = (dataset.db.job_tasks.find(plan.filter, plan.projection).sort(plan.sort)
              .skip(plan.skip).limit(plan.limit))
    winning = str(cursor.explain()["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in winning and "COLLSCAN" not in winning, winning
    assert "domain_id" in winning and "status" in winning
    # ...and it is the plan the API runs.
    assert ids_of(api.ok("list", body)) == ["job-task-a02"]


# --- errors from real requests -------------------------------------------------------------------


@pytest.mark.parametrize("method, body, code", [
    ("get", {}, "ERROR_REQUIRED_PARAMETER"),
    ("stat", {}, "ERROR_REQUIRED_PARAMETER"),
    ("stat", {"query": {"filter": []}}, "ERROR_REQUIRED_PARAMETER"),
    ("get", {"job_task_id": 7}, "ERROR_INVALID_PARAMETER_TYPE"),
    ("list", {"query": "status=SUCCESS"}, "ERROR_INVALID_PARAMETER_TYPE"),
    ("list", {"status": "DONE"}, "ERROR_INVALID_PARAMETER"),
    ("list", {"query": {"filter": [{"k": "$where", "v": "sleep(100)", "o": "eq"}]}}, "ERROR_INVALID_PARAMETER"),
    ("list", {"query": {"filter": [{"k": "job_id", "v": {"$function": {}}, "o": "eq"}]}}, "ERROR_INVALID_PARAMETER"),
    ("list", {"query": {"filter": [{"k": "_applied", "v": 1, "o": "exists"}]}}, "ERROR_INVALID_PARAMETER"),
    ("list", {"query": {"filter": [{"k": "status", "v": ["A"], "o": "eq"}]}}, "ERROR_OPERATOR_VALUE_TYPE"),
    ("list", {"query": {"filter": [{"k": "status", "v": "A", "o": "in"}]}}, "ERROR_OPERATOR_LIST_VALUE_TYPE"),
    ("list", {"query": {"filter": [{"k": "options.items", "v": "x", "o": "match"}]}}, "ERROR_OPERATOR_DICT_VALUE_TYPE"),
    ("list", {"query": {"filter": [{"k": "error_code", "v": "y", "o": "exists"}]}}, "ERROR_OPERATOR_BOOLEAN_TYPE"),
    ("list", {"query": {"filter": [{"k": "status", "v": "A", "o": "like"}]}}, "ERROR_DB_QUERY"),
    ("list", {"query": {"filter": [{"k": "status", "o": "eq"}]}}, "ERROR_DB_QUERY"),
    ("list", {"query": {"filter": [{"k": "created_at", "v": "soon", "o": "timediff_lt"}]}}, "ERROR_DB_QUERY"),
    # Refused by the store itself ($size of a non-array), still a coded 400.
    ("stat", {"query": {"aggregate": [{"project": {"fields": [{"key": "options", "operator": "size", "name": "n"}]}}]}},
     "ERROR_DB_QUERY"),
    ("list", b"{not json", "ERROR_INVALID_PARAMETER"),
    ("list", b"[1, 2]", "ERROR_INVALID_PARAMETER_TYPE"),
])
def test_error_codes_from_real_requests(api, method, body, code):
    assert api.error(method, body)["code"] == code


def test_authentication_and_permission(api):
    assert api.error("list", {}, token=None, status=401)["code"] == "ERROR_AUTHENTICATE_FAILURE"
    assert api.error("list", {}, token="not-a-token", status=401)["code"] == "ERROR_AUTHENTICATE_FAILURE"
    basic = api.http.post("/cost-analysis/v1/job-task/list", json={}, headers={"Authorization": "Basic dG9rZW4tYQ=="})
    assert basic.status_code == 401 and basic.json()["detail"]["code"] == "ERROR_AUTHENTICATE_FAILURE"
    assert api.error("list", {}, token="token-nothing", status=403)["code"] == "ERROR_PERMISSION_DENIED"


def test_unknown_paths_and_methods_are_coded(api):
    unknown = api.post("delete", {})
    assert unknown.status_code == 404 and unknown.json()["detail"]["code"] == "ERROR_UNSUPPORTED_API"
    wrong_method = api.http.get("/cost-analysis/v1/job-task/list")
    assert wrong_method.status_code == 405 and wrong_method.json()["detail"]["code"] == "ERROR_UNSUPPORTED_API"


def test_openapi_document_lists_the_three_methods(api):
    document = api.http.get("/openapi.json").json()
    for method in ("get", "list", "stat"):
        operation = document["paths"][f"/cost-analysis/v1/job-task/{method}"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].startswith(
            "#/components/schemas/")
    assert "JobTaskInfo" in document["components"]["schemas"]


# --- the store's and broker's health, and the time limit ----------------------------------------


def test_healthz_names_what_is_unreachable(api, dataset, store_url, broker_url):
    healthy = api.http.get("/healthz")
    assert healthy.status_code == 200 and healthy.json() == {"status": "ok", "store": "ok", "broker": "ok"}
    no_broker = ReadClient(api_settings(store_url, dataset.db_name, f"redis://127.0.0.1:{free_port()}/0"))
    no_store = ReadClient(api_settings(f"mongodb://127.0.0.1:{free_port()}/", dataset.db_name, broker_url,
                                       store_timeout_ms=300))
    try:
        broken = no_broker.http.get("/healthz")
        assert broken.status_code == 503
        assert broken.json()["store"] == "ok" and broken.json()["broker"].startswith("unreachable")
        broken = no_store.http.get("/healthz")
        assert broken.status_code == 503
        assert broken.json()["broker"] == "ok" and broken.json()["store"].startswith("unreachable")
        assert no_store.error("list", {}, status=503)["code"] == "ERROR_DB_UNAVAILABLE"
    finally:
        no_broker.close()
        no_store.close()


def test_every_query_carries_the_time_limit_and_overrunning_it_is_a_504(tmp_path, broker_url):
    # MongoDB's maxTimeAlwaysTimeOut failpoint expires every operation that
    # has a maxTimeMS (and only those): each read below must carry one.
    store = start_test_command_store(tmp_path / "store")
    db = connect(store.url, "time_limits")
    client = ReadClient(api_settings(store.url, "time_limits", broker_url, query_time_limit_ms=2_000))
    try:
        ensure_indexes(db)
        assert client.ok("list", {}) == {"results": [], "total_count": 0}
        db.client.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode="alwaysOn")
        for method, body in [
            ("get", {"job_task_id": "job-task-x"}),
            ("list", {}),
            ("list", {"query": {"count_only": True}}),
            ("stat", {"query": {"distinct": "status"}}),
            ("stat", {"query": {"aggregate": [{"count": {"name": "n"}}]}}),
            ("stat", {"query": {"aggregate": [{"count": {"name": "n"}}], "page": {"limit": 1}}}),
        ]:
            detail = client.error(method, body, status=504)
            assert detail["code"] == "ERROR_QUERY_TIMEOUT" and "2000 ms" in detail["message"]
        db.client.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode="off")
        assert client.ok("list", {}) == {"results": [], "total_count": 0}
    finally:
        client.close()
        db.client.close()
        store.stop()

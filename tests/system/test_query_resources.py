"""The read side serves any ``Resource``: a second descriptor plans, describes and routes its own fields.

``JOB`` is the Job of issue 9 as a read-side descriptor (its routes are
asked here on an empty collection of the real store; tests/system/test_job_api.py
reads Jobs the worker derived). Its queries must resolve against its fields,
not the JobTask's; its request models, routes and CLI commands come from the
same factories as the JobTask's; and what ``/openapi.json`` lists is what
the translation accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.readside import ReadClient, api_settings, bearer
from worker.cli import jobtask as cli
from worker.contract.errors import CodedError
from worker.read.language import FILTER_OPERATORS, GROUP_OPERATORS, PROJECT_OPERATORS
from worker.read.models import STAGES
from worker.read.query import Scope, plan_get, plan_list
from worker.read.resource import JOB, JOB_TASK
from worker.read.stat_query import plan_stat

NOW = datetime(2024, 3, 14, 15, 9, 26, tzinfo=UTC)
DOMAIN = Scope("domain-1")

def error_of(call) -> CodedError:
    with pytest.raises(CodedError) as caught:
        call()
    return caught.value


# --- planning against the second resource's fields ------------------------------------------------


def test_a_second_resource_plans_against_its_own_fields():
    body = {
        "status": "FAILURE",
        "data_source_id": "ds-1",
        "query": {
            "filter": [
                {"k": "remained_tasks", "v": 0, "o": "gt"},
                {"k": "finished_at", "v": "2024-03-01T00:00:00Z", "o": "datetime_lt"},
                {"k": "task_counts.FAILURE", "v": 1, "o": "gte"},
            ],
            "keyword": "job-7",
            "sort": [{"key": "total_tasks", "desc": True}],
            "page": {"start": 2, "limit": 5},
        },
    }
    plan = plan_list(JOB, body, DOMAIN, 100, NOW)
    assert plan.filter == {
        "domain_id": "domain-1",
        "status": "FAILURE",
        "data_source_id": "ds-1",
        "finished_at": {"$lt": datetime(2024, 3, 1, tzinfo=UTC)},
        "job_id": {"$regex": "job\\-7", "$options": "i"},
        "$and": [
            {"remained_tasks": {"$gt": 0}},
            {"task_counts.FAILURE": {"$gte": 1}},
        ],
    }
    assert plan.sort == [("total_tasks", -1), ("job_id", 1)]
    assert (plan.skip, plan.limit) == (1, 5)
    assert list(plan.projection) == ["_id", *JOB.fields]


def test_a_second_resource_has_its_own_defaults_minimal_fields_and_get():
    plan = plan_list(JOB, {"query": {"minimal": True}}, DOMAIN, 100, NOW)
    assert plan.sort == [("created_at", -1), ("job_id", 1)]
    assert set(plan.projection) == {"_id", *JOB.minimal_fields}
    job_id, query = plan_get(JOB, {"job_id": "job-1"}, DOMAIN)
    # The id is also asked of _id: a document's _id is its resource id.
    assert job_id == "job-1" and query == {"_id": "job-1", "domain_id": "domain-1", "job_id": "job-1"}
    assert error_of(lambda: plan_get(JOB, {"job_task_id": "t"}, DOMAIN)).code == "ERROR_INVALID_PARAMETER"
    missing = error_of(lambda: plan_get(JOB, {}, DOMAIN))
    assert missing.code == "ERROR_REQUIRED_PARAMETER" and "key = job_id" in missing.message


@pytest.mark.parametrize("body", [
    {"query": {"filter": [{"k": "job_task_id", "v": "t", "o": "eq"}]}},
    {"query": {"sort": [{"key": "started_at"}]}},
    {"query": {"only": ["created_count", "job_task_id"]}},
    {"query": {"filter": [{"k": "status.x", "v": 1, "o": "eq"}]}},
    {"job_task_id": "t"},
    {"status": "PENDING"},
])
def test_the_other_resources_fields_and_statuses_are_refused(body):
    error = error_of(lambda: plan_list(JOB, body, DOMAIN, 100, NOW))
    assert error.code == "ERROR_INVALID_PARAMETER"
    assert "JobTask" not in error.message


def test_field_errors_name_the_resource_and_its_fields():
    message = error_of(lambda: plan_list(JOB, {"query": {"only": ["nope"]}}, DOMAIN, 100, NOW)).message
    assert "'nope' is not a Job field" in message and "total_tasks" in message
    assert "or options.<path>, or task_counts.<path>" in message
    # The same key is a JobTask field.
    assert plan_list(JOB_TASK, {"status": "PENDING"}, DOMAIN, 100, NOW).filter["status"] == "PENDING"


def test_stat_of_a_second_resource_resolves_its_fields():
    query = {"aggregate": [
        {"group": {"keys": [{"key": "status", "name": "status"}],
                   "fields": [{"operator": "sum", "key": "remained_tasks", "name": "left"}]}},
        {"sort": {"key": "left", "desc": True}},
    ]}
    plan = plan_stat(JOB, {"query": query, "data_source_id": "ds-1"}, DOMAIN, 100, NOW)
    assert plan.match == {"domain_id": "domain-1", "data_source_id": "ds-1"}
    assert plan.stages == [
        {"$group": {"_id": {"status": "$status"}, "left": {"$sum": "$remained_tasks"}}},
        {"$sort": {"left": -1}},
    ]
    assert plan_stat(JOB, {"query": {"distinct": "task_counts.SUCCESS"}}, DOMAIN, 10, NOW).distinct == (
        "task_counts.SUCCESS")
    refused = {"query": {"aggregate": [{"unwind": {"path": "started_at"}}]}}
    assert error_of(lambda: plan_stat(JOB, refused, DOMAIN, 10, NOW)).code == "ERROR_INVALID_PARAMETER"


# --- one description for what is accepted --------------------------------------------------------


@pytest.mark.parametrize("name, options", [
    ("unwind", {"path": "options.tags"}),
    ("group", {"keys": [{"key": "status", "name": "status"}]}),
    ("count", {"name": "n"}),
    ("sort", [{"key": "created_count"}]),
    ("project", {"fields": [{"key": "status", "name": "s"}]}),
    ("limit", 5),
    ("skip", 1),
    ("match", {"filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}]}),
])
def test_every_described_stage_is_translated(name, options):
    assert name in STAGES
    plan = plan_stat(JOB_TASK, {"query": {"aggregate": [{name: options}]}}, DOMAIN, 10, NOW)
    assert len(plan.stages) == 1 and next(iter(plan.stages[0])).startswith("$")


def test_openapi_lists_both_resources_with_what_the_translation_accepts(store_url, broker_url):
    client = ReadClient(api_settings(store_url, "resources_openapi", broker_url))
    try:
        document = client.http.get("/openapi.json").json()
        schemas = document["components"]["schemas"]
        for resource, prefix, request in [(JOB_TASK, "job-task", "ListJobTasksRequest"),
                                          (JOB, "job", "ListJobsRequest")]:
            body = document["paths"][f"/cost-analysis/v1/{prefix}/list"]["post"]["requestBody"]
            assert body["content"]["application/json"]["schema"]["$ref"] == f"#/components/schemas/{request}"
            condition = schemas[f"{resource.name}Condition"]["properties"]
            assert condition["o"]["enum"] == list(FILTER_OPERATORS)
            assert condition["k"]["anyOf"][0]["enum"] == list(resource.fields)
            status = schemas[request]["properties"]["status"]["anyOf"][0]
            assert status["enum"] == list(resource.statuses)
        assert schemas["JobInfo"]["properties"]["total_tasks"]["type"] == "integer"
        assert schemas["JobsInfo"]["properties"]["results"]["items"]["$ref"] == "#/components/schemas/JobInfo"
        stages = schemas["JobStatisticsQuery"]["properties"]["aggregate"]["anyOf"][0]["items"]["anyOf"]
        assert [ref["$ref"].rsplit("/", 1)[1] for ref in stages] == [f"{n.title()}Stage" for n in STAGES]
        assert schemas["GroupField"]["properties"]["operator"]["enum"] == list(GROUP_OPERATORS)
        project_operator = schemas["ProjectField"]["properties"]["operator"]["anyOf"][0]
        assert project_operator["enum"] == list(PROJECT_OPERATORS)
    finally:
        client.close()


def test_a_second_resources_routes_read_its_collection_with_the_same_errors(store_url, broker_url):
    client = ReadClient(api_settings(store_url, "resources_routes", broker_url))
    try:
        def post(method, body, token="token-a"):
            return client.http.post(f"/cost-analysis/v1/job/{method}", json=body,
                                    headers=bearer(token))

        assert post("list", {"query": {}}).json() == {"results": [], "total_count": 0}
        assert post("stat", {"query": {"distinct": "status"}}).json() == {"results": []}
        missing = post("get", {"job_id": "job-1"})
        assert missing.status_code == 404 and missing.json()["detail"] == {
            "code": "ERROR_NOT_FOUND",
            "message": "Resource cannot be found or access is denied. (job_id = job-1)",
        }
        wrong = post("list", {"query": {"filter": [{"k": "job_task_id", "v": "t", "o": "eq"}]}})
        assert wrong.status_code == 400 and wrong.json()["detail"]["code"] == "ERROR_INVALID_PARAMETER"
        assert post("list", {}, token="nope").status_code == 401
        assert post("list", {}, token="token-nothing").status_code == 403
    finally:
        client.close()


def test_a_second_resources_cli_commands_come_from_its_descriptor():
    parser, _subparsers = cli.build_parser()
    args = parser.parse_args(
        ["job", "list", "--domain", "d", "--status", "SUCCESS", "--data-source-id", "ds"])
    assert (args.status, args.data_source_id, args.workspace_id) == (["SUCCESS"], "ds", None)
    assert parser.parse_args(["job", "get", "job-1", "--domain", "d"]).job_id == "job-1"
    with pytest.raises(SystemExit):
        parser.parse_args(["job", "list", "--domain", "d", "--status", "PENDING"])
    with pytest.raises(SystemExit):
        parser.parse_args(["job", "list", "--domain", "d", "--job-task-id", "t"])

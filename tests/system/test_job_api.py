"""Jobs over HTTP and the CLI: get / list / stat, the token's scope, and a Job's cancel.

One dataset per module, every document made by the real worker: the JobTasks
of tests/readside.py (seed, domain-a, domain-b), four Jobs declared by
``job.created`` (below), and domain-c's Jobs that the cancel tests cancel.
Reads of Jobs are asked with the scoping, paging and error cases of the
JobTask reads; ``/job-task/list`` filtered by ``job_id`` must agree with
``/job/get``; a cancel sent over HTTP or from the shell must turn the Job's
running tasks CANCELED through the worker.

Jobs of domain-a (declared one minute before their first task):

job    placement  data source  total  tasks (status)                         Job
job-4  ws-1       ds-aws       0      none                                   SUCCESS (newest)
job-1  DOMAIN     ds-aws       3      a01 SUCCESS, a02 SUCCESS, a03 FAILURE  FAILURE
job-2  ws-2       ds-gcp       3      a04 CANCELED, a05 IN_PROGRESS, a06 PENDING  IN_PROGRESS
job-3  ws-1       ds-aws       2      a07 TIMEOUT, a08 SUCCESS               FAILURE (oldest)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser import browser_missing, expect, open_console, serving
from tests.harness import Pipeline, wait_for
from tests.readside import (
    DOMAIN_A,
    DOMAIN_B,
    TOKENS,
    ReadClient,
    TaskSpec,
    api_settings,
    at,
    bearer,
    cli_runner,
    configured,
    drive,
    operator_specs,
    secret,
    seed_specs,
    text,
)
from worker.api import create_app
from worker.contract.lifecycle import STATUSES, TERMINAL_STATUSES
from worker.settings import SettingsError, load_settings

JOB_PATH = "/cost-analysis/v1/job"
DOMAIN_C = "domain-c"
CANCEL_TOKENS = {
    **TOKENS,
    "token-a-cancel": {"domain_id": DOMAIN_A, "permissions": ["read", "cancel"]},
    "token-c": {"domain_id": DOMAIN_C},
    "token-c-cancel": {"domain_id": DOMAIN_C, "permissions": ["cancel", "read"]},
    "token-c-ws1-cancel": {"domain_id": DOMAIN_C, "workspace_ids": ["ws-1"], "permissions": ["read", "cancel"]},
}
# job_id -> (domain, data source, workspace, total_tasks, declared at)
DECLARED = {
    "job-1": (DOMAIN_A, "ds-aws", None, 3, at("2024-03-01T09:59:00.000Z")),
    "job-2": (DOMAIN_A, "ds-gcp", "ws-2", 3, at("2024-02-15T07:59:00.000Z")),
    "job-3": (DOMAIN_A, "ds-aws", "ws-1", 2, at("2024-01-31T23:29:00.000Z")),
    "job-4": (DOMAIN_A, "ds-aws", "ws-1", 0, at("2024-03-05T00:00:00.000Z")),
    "job-9": (DOMAIN_B, "ds-aws", None, 2, at("2024-03-01T10:29:00.000Z")),
    # domain-c, for a token of ws-1 that may cancel (cancel_specs): a DOMAIN-level job with a task
    # in ws-1 and one in ws-2, a ws-1 job with one in ws-2, and a ws-1 job wholly in ws-1.
    "job-c4": (DOMAIN_C, "ds-c", None, 2, datetime.now(UTC) - timedelta(hours=2)),
    "job-c5": (DOMAIN_C, "ds-c", "ws-1", 1, datetime.now(UTC) - timedelta(hours=2)),
    "job-c6": (DOMAIN_C, "ds-c", "ws-1", 2, datetime.now(UTC) - timedelta(hours=2)),
}
NEWEST_FIRST = ["job-4", "job-1", "job-2", "job-3"]


def cancel_specs() -> list[TaskSpec]:
    """domain-c: job-c1 (one task done, one running, one pending), job-c2 in ws-2, job-c3 for the CLI,
    job-c4 to job-c6 (declared in DECLARED) for a token limited to ws-1."""
    base = datetime.now(UTC) - timedelta(hours=1)
    minute = timedelta(minutes=1)
    return [
        TaskSpec("job-task-c11", DOMAIN_C, "job-c1", "ds-c", base, started_after=minute,
                 end=("succeeded", 2 * minute, {"created_count_delta": 3})),
        TaskSpec("job-task-c12", DOMAIN_C, "job-c1", "ds-c", base + minute, started_after=minute),
        TaskSpec("job-task-c13", DOMAIN_C, "job-c1", "ds-c", base + 2 * minute),
        TaskSpec("job-task-c21", DOMAIN_C, "job-c2", "ds-c", base, workspace_id="ws-2", started_after=minute),
        TaskSpec("job-task-c31", DOMAIN_C, "job-c3", "ds-c", base, started_after=minute),
        TaskSpec("job-task-c41", DOMAIN_C, "job-c4", "ds-c", base, workspace_id="ws-1", started_after=minute),
        TaskSpec("job-task-c42", DOMAIN_C, "job-c4", "ds-c", base, workspace_id="ws-2", started_after=minute),
        TaskSpec("job-task-c51", DOMAIN_C, "job-c5", "ds-c", base, workspace_id="ws-1", started_after=minute),
        TaskSpec("job-task-c61", DOMAIN_C, "job-c6", "ds-c", base, workspace_id="ws-1", started_after=minute),
        TaskSpec("job-task-c62", DOMAIN_C, "job-c6", "ds-c", base, workspace_id="ws-2", started_after=minute),
    ]


@pytest.fixture(scope="module")
def dataset(broker_url, store_url, tmp_path_factory):
    pipeline = Pipeline(broker_url, store_url, tmp_path_factory.mktemp("job-api"))
    try:
        pipeline.start_worker(concurrency=2)
        for job_id, (domain, source, workspace, total, declared_at) in DECLARED.items():
            pipeline.events.job_created(domain_id=domain, job_id=job_id, data_source_id=source,
                                        total_tasks=total, workspace_id=workspace,
                                        occurred_at=text(declared_at))
        drive(pipeline, seed_specs() + operator_specs(datetime.now(UTC)) + cancel_specs())
        yield pipeline
    finally:
        pipeline.close()


@pytest.fixture(scope="module")
def settings(dataset, store_url, broker_url):
    return api_settings(store_url, dataset.db_name, broker_url, api_tokens=CANCEL_TOKENS, queue=dataset.queue)


@pytest.fixture(scope="module")
def jobs(settings):
    client = ReadClient(settings, JOB_PATH, "job_id")
    yield client
    client.close()


@pytest.fixture(scope="module")
def tasks(settings):
    client = ReadClient(settings)
    yield client
    client.close()


def job_ids(response: dict) -> list[str]:
    return [row["job_id"] for row in response["results"]]


# --- get ------------------------------------------------------------------------------------


def test_get_returns_the_derived_job(jobs):
    job = jobs.ok("get", {"job_id": "job-1"})
    assert job == {
        "job_id": "job-1",
        "status": "FAILURE",
        "total_tasks": 3,
        "remained_tasks": 0,
        "task_counts": {"PENDING": 0, "IN_PROGRESS": 0, "SUCCESS": 2, "FAILURE": 1, "TIMEOUT": 0,
                        "CANCELED": 0},
        "created_count": 30,
        "data_source_id": "ds-aws",
        "domain_id": DOMAIN_A,
        "resource_group": "DOMAIN",
        "error_code": "ERROR_JOB_TASK",
        "error_message": "1 failed of 3 job tasks",
        "created_at": "2024-03-01T09:59:00.000Z",
        "updated_at": "2024-03-02T09:05:00.000Z",
        "finished_at": "2024-03-02T09:05:00.000Z",
        "options": {},  # what its job.created declared
    }
    assert list(job)[:3] == ["job_id", "status", "total_tasks"], "fields in the Job's order"
    assert jobs.ok("get", {"job_id": "job-4"})["status"] == "SUCCESS"
    running = jobs.ok("get", {"job_id": "job-2"})
    assert (running["status"], running["remained_tasks"], running["workspace_id"]) == ("IN_PROGRESS", 2, "ws-2")
    assert "finished_at" not in running, "a field without a value is left out"


@pytest.mark.parametrize("token, job_id", [
    ("token-a", "job-9"),          # another domain's
    ("token-b", "job-1"),
    ("token-a-ws1", "job-2"),      # outside the token's workspaces
    ("token-a", "job-nope"),       # no such job
    ("token-a", "job-85cf2c385252"),  # the seed's, of its own domain
])
def test_get_outside_the_scope_is_not_found_like_a_missing_job(jobs, token, job_id):
    detail = jobs.error("get", {"job_id": job_id}, token, status=404)
    assert detail == {"code": "ERROR_NOT_FOUND",
                      "message": f"Resource cannot be found or access is denied. (job_id = {job_id})"}


def test_get_is_narrowed_by_workspace_and_needs_the_id(jobs):
    assert jobs.ok("get", {"job_id": "job-3", "workspace_id": "ws-1"})["job_id"] == "job-3"
    jobs.error("get", {"job_id": "job-3", "workspace_id": "ws-2"}, status=404)
    assert jobs.error("get", {})["code"] == "ERROR_REQUIRED_PARAMETER"
    assert jobs.error("get", {"job_task_id": "job-task-a01", "job_id": "job-1"})["code"] == "ERROR_INVALID_PARAMETER"
    assert jobs.error("get", {"job_id": "job-1"}, token=None, status=401)["code"] == "ERROR_AUTHENTICATE_FAILURE"
    refused = jobs.error("get", {"job_id": "job-1"}, token="token-nothing", status=403)
    assert refused["code"] == "ERROR_PERMISSION_DENIED"


def test_the_seed_jobs_exist_undeclared(jobs):
    job = jobs.ok("get", {"job_id": "job-85cf2c385252"}, "token-seed")
    # No job.created: the tasks so far are its total, and it cannot finish.
    assert (job["status"], job["total_tasks"], job["remained_tasks"]) == ("IN_PROGRESS", 1, 0)


# --- list ------------------------------------------------------------------------------------


def test_list_is_newest_first_and_counts_only_the_callers_jobs(jobs):
    response = jobs.ok("list", {"query": {}})
    assert job_ids(response) == NEWEST_FIRST and response["total_count"] == 4
    assert job_ids(jobs.ok("list", {}, "token-b")) == ["job-9"]
    ws1 = jobs.ok("list", {"query": {}}, "token-a-ws1")
    assert job_ids(ws1) == ["job-4", "job-1", "job-3"] and ws1["total_count"] == 3


@pytest.mark.parametrize("params, expected", [
    ({"status": "FAILURE"}, ["job-1", "job-3"]),
    ({"status": "IN_PROGRESS"}, ["job-2"]),
    ({"data_source_id": "ds-gcp"}, ["job-2"]),
    ({"workspace_id": "ws-1"}, ["job-4", "job-3"]),
    ({"job_id": "job-3"}, ["job-3"]),
    ({"job_id": "job-9"}, []),  # another domain's, named
    ({"query": {"filter": [{"k": "task_counts.FAILURE", "v": 1, "o": "gte"}]}}, ["job-1"]),
    ({"query": {"filter": [{"k": "remained_tasks", "v": 0, "o": "gt"}]}}, ["job-2"]),
    ({"query": {"filter": [{"k": "created_at", "v": "2024-03-01T00:00:00Z", "o": "datetime_gte"}]}},
     ["job-4", "job-1"]),
    ({"query": {"keyword": "JOB-2"}}, ["job-2"]),
    ({"query": {"sort": [{"key": "total_tasks", "desc": True}]}}, ["job-1", "job-2", "job-3", "job-4"]),
])
def test_list_filters(jobs, params, expected):
    assert job_ids(jobs.ok("list", params)) == expected


def test_list_pages_and_caps_like_job_task(jobs, settings):
    page = jobs.ok("list", {"query": {"page": {"start": 3, "limit": 2}}})  # 1-based
    assert job_ids(page) == ["job-2", "job-3"] and page["total_count"] == 4
    assert jobs.ok("list", {"query": {"count_only": True}}) == {"results": [], "total_count": 4}
    minimal = jobs.ok("list", {"query": {"minimal": True}})["results"][0]
    assert set(minimal) <= {"job_id", "status", "total_tasks", "remained_tasks", "data_source_id", "workspace_id"}
    capped = ReadClient(settings.model_copy(update={"max_page_size": 3}), JOB_PATH, "job_id")
    try:
        response = capped.ok("list", {"query": {"page": {"limit": 100}}})
        assert job_ids(response) == NEWEST_FIRST[:3] and response["total_count"] == 4
    finally:
        capped.close()


@pytest.mark.parametrize("body, code", [
    ({"query": {"filter": [{"k": "job_task_id", "v": "t", "o": "eq"}]}}, "ERROR_INVALID_PARAMETER"),
    ({"query": {"sort": [{"key": "started_at"}]}}, "ERROR_INVALID_PARAMETER"),
    ({"status": "PENDING"}, "ERROR_INVALID_PARAMETER"),
    ({"job_task_id": "job-task-a01"}, "ERROR_INVALID_PARAMETER"),
    ({"query": {"filter": [{"k": "$where", "v": "1", "o": "eq"}]}}, "ERROR_INVALID_PARAMETER"),
    ({"query": {"page": {"limit": "10"}}}, "ERROR_INVALID_PARAMETER_TYPE"),
    ({"query": {"filter": [{"k": "status", "v": ["SUCCESS"], "o": "eq"}]}}, "ERROR_OPERATOR_VALUE_TYPE"),
])
def test_list_refuses_bad_queries_with_coded_errors(jobs, body, code):
    assert jobs.error("list", body)["code"] == code


# --- stat ----------------------------------------------------------------------------------------

BY_STATUS = {"aggregate": [{"group": {"keys": [{"key": "status", "name": "status"}],
                                      "fields": [{"operator": "count", "name": "jobs"}]}},
                           {"sort": {"key": "status"}}]}


def test_stat_counts_by_status_within_the_scope(jobs):
    rows = jobs.ok("stat", {"query": BY_STATUS})["results"]
    assert rows == [{"status": "FAILURE", "jobs": 2}, {"status": "IN_PROGRESS", "jobs": 1},
                    {"status": "SUCCESS", "jobs": 1}]
    rows = jobs.ok("stat", {"query": BY_STATUS}, "token-a-ws1")["results"]
    assert rows == [{"status": "FAILURE", "jobs": 2}, {"status": "SUCCESS", "jobs": 1}]
    assert jobs.ok("stat", {"query": {"distinct": "data_source_id"}}) == {"results": ["ds-aws", "ds-gcp"]}
    summed = {"aggregate": [{"group": {"fields": [{"operator": "sum", "key": "task_counts.SUCCESS",
                                                   "name": "succeeded"}]}}]}
    assert jobs.ok("stat", {"query": summed})["results"] == [{"succeeded": 3}]


def test_stat_refuses_what_job_task_refuses(jobs):
    assert jobs.error("stat", {})["code"] == "ERROR_REQUIRED_PARAMETER"
    bad = {"query": {"aggregate": [{"group": {"keys": [{"key": "job_task_id", "name": "t"}]}}]}}
    assert jobs.error("stat", bad)["code"] == "ERROR_INVALID_PARAMETER"


# --- the two resources agree ------------------------------------------------------------------------


@pytest.mark.parametrize("token, job_id", [
    ("token-a", "job-1"), ("token-a", "job-2"), ("token-a", "job-3"), ("token-a", "job-4"),
    ("token-b", "job-9"), ("token-seed", "job-85cf2c385252"), ("token-c", "job-c2"),
])
def test_job_task_list_by_job_id_agrees_with_job_get(jobs, tasks, token, job_id):
    job = jobs.ok("get", {"job_id": job_id}, token)
    listed = tasks.ok("list", {"job_id": job_id}, token)
    counts = dict.fromkeys(STATUSES, 0)
    for task in listed["results"]:
        counts[task["status"]] += 1
    assert listed["total_count"] == sum(job["task_counts"].values())
    assert counts == job["task_counts"]
    assert job["remained_tasks"] == job["total_tasks"] - sum(counts[s] for s in TERMINAL_STATUSES)
    assert job["created_count"] == sum(task["created_count"] for task in listed["results"])


# --- the token's scope ---------------------------------------------------------------------------


def test_auth_scope_returns_the_tokens_scope(jobs):
    def scope(token):
        headers = bearer(token) if token else {}
        return jobs.http.get("/cost-analysis/v1/auth/scope", headers=headers)

    assert scope("token-a").json() == {"domain_id": DOMAIN_A, "workspace_ids": None, "permissions": ["read"]}
    assert scope("token-a-ws1").json()["workspace_ids"] == ["ws-1"]
    assert scope("token-c-cancel").json()["permissions"] == ["read", "cancel"]
    assert scope(None).status_code == 401 and scope("nope").json()["detail"]["code"] == "ERROR_AUTHENTICATE_FAILURE"
    assert scope("token-nothing").status_code == 403


def test_permissions_are_validated_in_the_settings():
    def tokens(permissions):
        return load_settings(api_tokens={secret("t"): {"domain_id": "d", "permissions": permissions}})

    assert tokens(["cancel", "read"]).api_tokens[secret("t")].permissions == ["read", "cancel"]
    default = load_settings(api_tokens=configured({"t": {"domain_id": "d"}}))
    assert default.api_tokens[secret("t")].permissions == ["read"]
    for bad in (["read", "write"], ["cancel"], "read"):
        with pytest.raises(SettingsError, match="JOBTASK_API_TOKENS"):
            tokens(bad)


def test_openapi_lists_the_job_paths(jobs):
    document = jobs.http.get("/openapi.json").json()
    for method in ("get", "list", "stat", "cancel"):
        assert f"{JOB_PATH}/{method}" in document["paths"]
    cancel = document["paths"][f"{JOB_PATH}/cancel"]["post"]
    assert cancel["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CancelJobRequest")
    assert cancel["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobInfo")
    assert "403" in cancel["responses"]
    schemas = document["components"]["schemas"]
    assert set(schemas["CancelJobRequest"]["properties"]) >= {"job_id", "reason"}
    assert "/cost-analysis/v1/auth/scope" in document["paths"]
    assert schemas["ScopeInfo"]["properties"]["permissions"]["items"]["enum"] == ["read", "cancel"]


# --- cancel ---------------------------------------------------------------------------------------


def cancel(jobs: ReadClient, body: dict, token: str):
    return jobs.http.post(f"{JOB_PATH}/cancel", json=body, headers=bearer(token))


def test_cancel_needs_the_cancel_permission(jobs, dataset):
    refused = cancel(jobs, {"job_id": "job-c1", "reason": "no"}, "token-c")
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "ERROR_PERMISSION_DENIED"
    assert "cancel" in refused.json()["detail"]["message"]
    assert jobs.ok("get", {"job_id": "job-c1"}, "token-c")["status"] == "IN_PROGRESS"


@pytest.mark.parametrize("token, job_id", [
    ("token-a-cancel", "job-c1"),        # another domain's job
    ("token-c-ws1-cancel", "job-c2"),    # outside the token's workspaces
    ("token-c-cancel", "job-nope"),
])
def test_cancel_of_a_job_out_of_scope_is_not_found(jobs, token, job_id):
    response = cancel(jobs, {"job_id": job_id}, token)
    assert response.status_code == 404
    assert response.json()["detail"] == {
        "code": "ERROR_NOT_FOUND", "message": f"Resource cannot be found or access is denied. (job_id = {job_id})"}


def test_cancel_refuses_bad_bodies_and_finished_jobs(jobs):
    assert cancel(jobs, {}, "token-c-cancel").json()["detail"]["code"] == "ERROR_REQUIRED_PARAMETER"
    unknown = cancel(jobs, {"job_id": "job-c1", "force": True}, "token-c-cancel")
    assert unknown.status_code == 400 and unknown.json()["detail"]["code"] == "ERROR_INVALID_PARAMETER"
    long_reason = cancel(jobs, {"job_id": "job-c1", "reason": "x" * 4097}, "token-c-cancel")
    assert long_reason.status_code == 400
    finished = cancel(jobs, {"job_id": "job-1"}, "token-a-cancel")
    assert finished.status_code == 400 and finished.json()["detail"] == {
        "code": "ERROR_JOB_STATE", "message": "Only running jobs can be canceled. (job_state = FAILURE)"}


def test_cancel_over_http_cancels_the_running_tasks_through_the_worker(jobs, tasks, dataset):
    response = cancel(jobs, {"job_id": "job-c1", "reason": "wrong month"}, "token-c-cancel")
    assert response.status_code == 200, response.text
    assert response.json()["job_id"] == "job-c1"
    assert response.json()["status"] in ("IN_PROGRESS", "CANCELED")  # applied asynchronously
    wait_for(lambda: jobs.ok("get", {"job_id": "job-c1"}, "token-c")["status"] == "CANCELED")
    dataset.wait_until_idle()
    job = jobs.ok("get", {"job_id": "job-c1"}, "token-c")
    assert job["error_message"] == "wrong month"
    statuses = {t["job_task_id"]: t["status"] for t in tasks.ok("list", {"job_id": "job-c1"}, "token-c")["results"]}
    # A task that had succeeded before the cancel stays SUCCESS; the others are CANCELED.
    assert statuses == {"job-task-c11": "SUCCESS", "job-task-c12": "CANCELED", "job-task-c13": "CANCELED"}
    assert job["task_counts"]["CANCELED"] == 2 and job["remained_tasks"] == 0
    # The cancel went out for the caller's domain, as a job.canceled with an event_id of its own.
    (applied,) = dataset.history(task_name="job.canceled", job_id="job-c1")
    assert (applied["outcome"], applied["domain_id"]) == ("applied", DOMAIN_C)
    assert applied["event"]["reason"] == "wrong month" and len(applied["event_id"]) == 32
    again = cancel(jobs, {"job_id": "job-c1"}, "token-c-cancel")
    assert again.status_code == 400 and again.json()["detail"]["code"] == "ERROR_JOB_STATE"
    # Other domains' jobs and domain-c's other jobs are untouched.
    assert jobs.ok("get", {"job_id": "job-c2"}, "token-c")["status"] == "IN_PROGRESS"
    assert jobs.ok("get", {"job_id": "job-2"})["status"] == "IN_PROGRESS"


def test_a_workspace_token_cancels_only_a_job_wholly_in_its_workspaces(jobs, tasks, dataset):
    ws1 = "token-c-ws1-cancel"
    # job-c7: in ws-1, its one task too, but DOMAIN-level: the domain's, like job-c4.
    dataset.events.job_created(domain_id=DOMAIN_C, job_id="job-c7", data_source_id="ds-c", total_tasks=1,
                               workspace_id="ws-1")
    dataset.events.created(job_task_id="job-task-c71", domain_id=DOMAIN_C, job_id="job-c7", data_source_id="ds-c",
                           workspace_id="ws-1", resource_group="DOMAIN")
    dataset.wait_until_idle()
    # It reads the DOMAIN-level job-c4, but not its task in ws-2, which a cancel would end.
    assert jobs.ok("get", {"job_id": "job-c4"}, ws1)["resource_group"] == "DOMAIN"
    assert [t["job_task_id"] for t in tasks.ok("list", {"job_id": "job-c4"}, ws1)["results"]] == ["job-task-c41"]
    for job_id in ("job-c4", "job-c6", "job-c7"):  # DOMAIN-level; a task in ws-2; a DOMAIN-level task
        refused = cancel(jobs, {"job_id": job_id, "reason": "not mine to end"}, ws1)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"]["code"] == "ERROR_PERMISSION_DENIED"
        assert "token of the whole domain" in refused.json()["detail"]["message"]
    # A job wholly in ws-1 is still the token's to cancel.
    assert cancel(jobs, {"job_id": "job-c5"}, ws1).status_code == 200
    wait_for(lambda: dataset.task("job-task-c51")["status"] == "CANCELED")
    dataset.wait_until_idle()
    for job_id in ("job-c4", "job-c6", "job-c7"):
        assert dataset.history(task_name="job.canceled", job_id=job_id) == [], "no cancel was sent"
        assert jobs.ok("get", {"job_id": job_id}, "token-c")["status"] == "IN_PROGRESS"
    assert {dataset.task(t)["status"] for t in ("job-task-c41", "job-task-c42", "job-task-c62")} == {"IN_PROGRESS"}


# --- the CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def jobtask(dataset, monkeypatch, capsys):
    return cli_runner(monkeypatch, capsys, mongo_url=dataset.store_url, mongo_db=dataset.db_name,
                      broker_url=dataset.broker_url, queue=dataset.queue)


def test_cli_job_get_list_and_stat(jobtask):
    code, out, _ = jobtask("job", "get", "job-1", "--domain", DOMAIN_A)
    assert code == 0 and "status          FAILURE" in out and "remained_tasks  0" in out
    code, out, _ = jobtask("job", "list", "--domain", DOMAIN_A)
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["JOB_ID", "STATUS", "TOTAL_TASKS", "REMAINED_TASKS"]
    assert [line.split()[0] for line in lines[1:-1]] == NEWEST_FIRST
    assert lines[-1] == "4 shown of total_count 4"
    code, out, _ = jobtask("job", "list", "--domain", DOMAIN_A, "--status", "FAILURE", "--json")
    assert job_ids(json.loads(out)) == ["job-1", "job-3"]
    code, out, _ = jobtask("job", "stat", "--domain", DOMAIN_A, "--query", '{"distinct": "status"}')
    assert code == 0 and out.split() == ["VALUE", "FAILURE", "IN_PROGRESS", "SUCCESS"]
    code, out, err = jobtask("job", "get", "job-9", "--domain", DOMAIN_A)
    assert code == 1 and err.startswith("ERROR_NOT_FOUND")


def test_cli_cancel(jobtask, dataset, jobs):
    code, _, err = jobtask("job", "cancel", "job-c3", "--domain", DOMAIN_A)
    assert code == 1 and err.startswith("ERROR_NOT_FOUND"), "another domain's job"
    code, out, err = jobtask("job", "cancel", "job-c3", "--domain", DOMAIN_C, "--reason", "from the shell",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["job_id"] == "job-c3"
    wait_for(lambda: dataset.task("job-task-c31")["status"] == "CANCELED")
    job = jobs.ok("get", {"job_id": "job-c3"}, "token-c")
    assert (job["status"], job["error_message"]) == ("CANCELED", "from the shell")
    code, _, err = jobtask("job", "cancel", "job-c3", "--domain", DOMAIN_C)
    assert code == 1 and err.startswith("ERROR_JOB_STATE")


def test_cli_cancel_for_a_workspace_keeps_the_apis_rule(jobtask, dataset):
    code, _, err = jobtask("job", "cancel", "job-c6", "--domain", DOMAIN_C, "--workspace-id", "ws-1")
    assert code == 1 and err.startswith("ERROR_PERMISSION_DENIED"), err
    assert "token of the whole domain" in err
    code, _, err = jobtask("job", "cancel", "job-c2", "--domain", DOMAIN_C, "--workspace-id", "ws-1")
    assert code == 1 and err.startswith("ERROR_NOT_FOUND"), "a job of ws-2 only"
    dataset.wait_until_idle()
    assert dataset.history(task_name="job.canceled", job_id="job-c6") == []
    assert dataset.task("job-task-c62")["status"] == "IN_PROGRESS"


# --- the console, unchanged, on these endpoints ------------------------------------------------------

needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


@needs_browser
def test_the_console_lists_jobs_and_cancels_one_with_a_cancel_token(browser, settings, dataset):
    with serving(create_app(settings)) as server:
        context, console = open_console(browser, server)
        try:
            console.open("#/jobs").sign_in("token-c").signed_in()
            console.job_row("job-c2").wait_for()
            assert console.job_row("job-c2").get_by_test_id("cancel-job").count() == 0, "read only: no Cancel"
            console.page.get_by_role("button", name="Sign out").click()
            # Limited to ws-1: Cancel on a running job of ws-1 only, none on the DOMAIN-level job-c4.
            console.sign_in("token-c-ws1-cancel").signed_in()
            expect(console.job_row("job-c6").get_by_test_id("cancel-job")).to_be_visible()
            assert console.job_row("job-c4").get_by_test_id("status").get_attribute("data-status") == "IN_PROGRESS"
            assert console.job_row("job-c4").get_by_test_id("cancel-job").count() == 0
            console.page.get_by_role("button", name="Sign out").click()
            console.sign_in("token-c-cancel").signed_in()
            expect(console.page.locator("#scope")).to_contain_text("cancel")
            console.job_row("job-c2").get_by_test_id("cancel-job").click()
            console.page.get_by_test_id("cancel-reason").fill("from the console")
            console.page.get_by_test_id("cancel-confirm").click()
            expect(console.page.locator("#toast")).to_contain_text("Job job-c2 canceled.")
            wait_for(lambda: dataset.task("job-task-c21")["status"] == "CANCELED")
            console.page.reload()
            expect(console.job_row("job-c2").get_by_test_id("status")).to_have_attribute("data-status", "CANCELED")
            assert not console.errors
        finally:
            context.close()

"""``POST /cost-analysis/v1/job-task/history`` on what a real worker recorded.

Events travel through Redis to a Celery worker; the API (``create_app`` in
a TestClient) reads the history it wrote: in the order the events occurred,
with their outcomes, paged like list, scoped like get.
"""

from __future__ import annotations

import pytest

from tests.readside import TOKENS, ReadClient, api_settings

TASK = "job-task-hist01"
COMMON = {"domain_id": "domain-a", "job_task_id": TASK}
CREATED = {**COMMON, "event_id": "c1", "job_id": "job-h", "data_source_id": "ds-h",
           "workspace_id": "ws-1", "resource_group": "WORKSPACE", "occurred_at": "2024-05-01T10:00:00Z"}


@pytest.fixture
def history_client(pipeline, broker_url):
    """A worker that applied one task's deliveries out of order, and the API over its store."""
    send = pipeline.events.send_raw
    # Arrival order: progressed, created, created again (a duplicate), started, a conflict.
    send("job_task.progressed", {**COMMON, "event_id": "p1", "created_count_delta": 5,
                                 "occurred_at": "2024-05-01T10:02:00Z"})
    pipeline.wait_until_idle()
    send("job_task.created", CREATED)
    pipeline.wait_until_idle()
    send("job_task.created", CREATED)
    pipeline.wait_until_idle()
    send("job_task.started", {**COMMON, "event_id": "s1", "occurred_at": "2024-05-01T10:01:00Z"})
    pipeline.wait_until_idle()
    send("job_task.progressed", {**COMMON, "event_id": "p1", "created_count_delta": 7,
                                 "occurred_at": "2024-05-01T10:02:00Z"})
    pipeline.wait_until_idle()
    tokens = {**TOKENS, "token-a-ws2": {"domain_id": "domain-a", "workspace_ids": ["ws-2"]}}
    return ReadClient(api_settings(pipeline.store_url, pipeline.db_name, broker_url, api_tokens=tokens))


def rows(answer) -> list[tuple[str, str, str]]:
    return [(record["kind"], record["event_id"], record["outcome"]) for record in answer.json()["results"]]


def test_history_lists_every_delivery_in_the_order_they_occurred(history_client):
    answer = history_client.post("history", {"job_task_id": TASK})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total_count"] == 5
    # Occurred order, then received: the duplicate after the created it repeats; the
    # progressed received first (parked until its created came) after the started.
    assert rows(answer) == [
        ("created", "c1", "applied"),
        ("created", "c1", "duplicate"),
        ("started", "s1", "applied"),
        ("progressed", "p1", "applied"),
        ("progressed", "p1", "conflict"),
    ]
    first = body["results"][0]
    assert first["type"] == "job_task.created"
    assert first["occurred_at"] == "2024-05-01T10:00:00.000Z"
    assert first["received_at"].endswith("Z") and first["message_id"]
    assert "reason" not in first
    assert body["results"][1]["reason"] and body["results"][4]["reason"]
    # The store's own fields stay in the store.
    assert not {"_id", "event", "fingerprint", "batch_id", "payload"} & set(first)


def test_history_pages_like_list(history_client):
    answer = history_client.post("history", {"job_task_id": TASK, "query": {"page": {"start": 2, "limit": 2}}})
    assert answer.status_code == 200
    assert answer.json()["total_count"] == 5
    assert rows(answer) == [("created", "c1", "duplicate"), ("started", "s1", "applied")]
    beyond = history_client.post("history", {"job_task_id": TASK, "query": {"page": {"start": 9, "limit": 2}}})
    assert beyond.json() == {"results": [], "total_count": 5}


def test_history_is_scoped_like_get(history_client):
    # Another domain's task, or a workspace the token may not read: the answer of get.
    for token in ("token-b", "token-a-ws2"):
        got = history_client.post("get", {"job_task_id": TASK}, token=token)
        answer = history_client.post("history", {"job_task_id": TASK}, token=token)
        assert got.status_code == answer.status_code == 404
        assert answer.json() == got.json()
        assert answer.json()["detail"]["code"] == "ERROR_NOT_FOUND"
    narrowed = history_client.post("history", {"job_task_id": TASK}, token="token-a-ws1")
    assert narrowed.status_code == 200 and narrowed.json()["total_count"] == 5
    missing = history_client.post("history", {"job_task_id": "job-task-nothing"})
    assert missing.status_code == 404
    assert history_client.post("history", {"job_task_id": TASK}, token=None).status_code == 401


def test_a_task_not_created_yet_shows_what_its_domain_sent(pipeline, broker_url):
    pipeline.events.send_raw("job_task.started", {**COMMON, "job_task_id": "job-task-early",
                                                  "event_id": "s1"})
    pipeline.wait_until_idle()
    client = ReadClient(api_settings(pipeline.store_url, pipeline.db_name, broker_url))
    answer = client.post("history", {"job_task_id": "job-task-early"})
    assert answer.status_code == 200
    assert rows(answer) == [("started", "s1", "parked")]
    # Not to another domain, nor to a workspace token (no workspace is known yet).
    assert client.post("history", {"job_task_id": "job-task-early"}, token="token-b").status_code == 404
    assert client.post("history", {"job_task_id": "job-task-early"}, token="token-a-ws1").status_code == 404


def test_bad_history_requests_are_coded_errors(pipeline, broker_url):
    client = ReadClient(api_settings(pipeline.store_url, pipeline.db_name, broker_url))
    missing = client.post("history", {})
    assert missing.status_code == 400 and missing.json()["detail"]["code"] == "ERROR_REQUIRED_PARAMETER"
    for body in ({"job_task_id": TASK, "query": {"page": {"limit": "x"}}},
                 {"job_task_id": TASK, "query": {"sort": []}},
                 {"job_task_id": TASK, "extra": 1}):
        answer = client.post("history", body)
        assert answer.status_code == 400, body
        assert answer.json()["detail"]["code"].startswith("ERROR_INVALID_PARAMETER")


def test_history_is_in_the_openapi_document(pipeline, broker_url):
    client = ReadClient(api_settings(pipeline.store_url, pipeline.db_name, broker_url))
    document = client.http.get("/openapi.json").json()
    operation = document["paths"]["/cost-analysis/v1/job-task/history"]["post"]
    request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    response_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]
    assert request_ref.rsplit("/", 1)[-1] == "TaskHistoryRequest"
    assert set(schemas["TaskHistoryRequest"]["properties"]) >= {"job_task_id", "query"}
    assert response_ref.rsplit("/", 1)[-1] == "TaskHistoryInfo"
    delivery = schemas["DeliveryInfo"]["properties"]
    assert {"type", "event_id", "occurred_at", "received_at", "outcome", "reason", "message_id"} <= set(delivery)
    assert "404" in operation["responses"]

"""Fuzzing the HTTP API: malformed bodies and queries get a coded 4xx, never a 500.

Hypothesis sends raw bytes, arbitrary JSON, and near-valid SpaceONE queries
(tests/unit/test_query_properties.py's strategies: real keys mixed with ``$where``,
``_applied``, bad operators, wrong types) to the three methods of a real app
on a real store with a few worker-built tasks. Every answer must be 200 or a
4xx whose body is ``{"detail": {"code": "ERROR_...", "message": ...}}``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Pipeline
from tests.query_data import JSON, QUERY
from tests.readside import ReadClient, api_settings, drive, seed_specs

METHODS = st.sampled_from(["get", "list", "stat"])
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def api(broker_url, store_url, tmp_path_factory):
    pipeline = Pipeline(broker_url, store_url, tmp_path_factory.mktemp("fuzz"))
    pipeline.start_worker(concurrency=1)
    drive(pipeline, seed_specs())
    client = ReadClient(api_settings(store_url, pipeline.db_name, broker_url))
    yield client
    client.close()
    pipeline.close()


def assert_coded(response, method: str, sent) -> None:
    assert response.status_code < 500, (method, sent, response.status_code, response.text)
    if response.status_code == 200:
        assert isinstance(response.json(), dict)
        return
    assert 400 <= response.status_code < 500
    detail = response.json()["detail"]
    assert set(detail) == {"code", "message"}, detail
    assert detail["code"].startswith("ERROR_") and isinstance(detail["message"], str)
    assert "Traceback" not in detail["message"]


@FUZZ
@given(method=METHODS, raw=st.binary(max_size=200))
def test_raw_bytes(api, method, raw):
    assert_coded(api.post(method, raw), method, raw)


@FUZZ
@given(method=METHODS, body=JSON)
def test_any_json_body(api, method, body):
    assert_coded(api.post(method, body), method, body)


PARAMS = st.fixed_dictionaries({}, optional={
    "job_task_id": st.sampled_from(["job-task-3622d860a776", "", "x"]) | JSON,
    "status": st.sampled_from(["SUCCESS", "DONE", ""]) | JSON,
    "workspace_id": JSON, "job_id": JSON, "data_source_id": JSON, "domain_id": JSON,
})


@FUZZ
@given(method=METHODS, params=PARAMS, query=QUERY | JSON)
def test_near_valid_queries(api, method, params, query):
    body = {**params, "query": query}
    assert_coded(api.post(method, body), method, body)


@FUZZ
@given(text=st.text(max_size=60))
def test_json_text_that_may_not_parse(api, text):
    # Truncated, unbalanced or oddly encoded JSON.
    body = text.encode("utf-8", "surrogatepass")
    assert_coded(api.post("list", body), "list", body)


@FUZZ
@given(header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_any_authorization_header(api, header):
    response = api.post("list", {}, token=None, headers={"Authorization": header})
    assert_coded(response, "list", header)
    assert response.status_code in (200, 401)


def test_deeply_nested_and_huge_bodies(api):
    deep = "[" * 100_000 + "]" * 100_000
    assert_coded(api.post("list", deep), "list", "deep")
    nested: dict = {}
    for _ in range(500):
        nested = {"a": nested}
    assert_coded(api.post("list", {"query": {"filter": [{"k": "options", "v": nested, "o": "eq"}]}}), "list", "nested")
    huge = json.dumps({"query": {"keyword": "x" * 2_000_000}})
    assert api.error("list", huge)["code"] == "ERROR_INVALID_PARAMETER"
    assert_coded(api.post("list", '{"query": {"page": {"limit": 1' + "0" * 5000 + "}}}"), "list", "big int")
    assert_coded(api.post("list", '{"query": {"filter": [{"k": "created_count", "v": NaN, "o": "gt"}]}}'),
                 "list", "NaN")

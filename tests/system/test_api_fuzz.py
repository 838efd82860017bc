"""Fuzzing the HTTP API: malformed bodies and queries get a coded 4xx, never a 500.

Hypothesis sends raw bytes, arbitrary JSON, and near-valid SpaceONE queries
(tests/unit/test_query_properties.py's strategies: real keys mixed with ``$where``,
``_applied``, bad operators, wrong types) to the three methods of a real app
on a real store with a few worker-built tasks, and well-formed queries whose
values sit at the edges of the language (moments at years 1 and 9999 with
the widest offsets, timediffs past the calendar, any regular expression,
any date format, pages at the int32 bounds). Every answer must be 200 or a
4xx whose body is ``{"detail": {"code": "ERROR_...", "message": ...}}``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
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
    assert api.error("list", huge, status=413)["code"] == "ERROR_REQUEST_TOO_LARGE"
    assert_coded(api.post("list", '{"query": {"page": {"limit": 1' + "0" * 5000 + "}}}"), "list", "big int")
    assert_coded(api.post("list", '{"query": {"filter": [{"k": "created_count", "v": NaN, "o": "gt"}]}}'),
                 "list", "NaN")


# --- well-formed queries at the edges of the language ---------------------------------------------

DATETIME_KEYS = st.sampled_from(["created_at", "started_at", "finished_at", "updated_at"])
MOMENTS = st.builds(
    "{}-{}{}{}".format,
    st.sampled_from(["0001", "0002", "1970", "2024", "9998", "9999"]),
    st.sampled_from(["01-01", "02-28", "12-31"]),
    st.sampled_from(["", "T00:00", "T00:00:00", "T23:59:59.999999", " 12:00:00"]),
    st.sampled_from(["", "Z", "+00:00", "+14:00", "-14:00", "+23:59", "-23:59"]),
)
TIMEDIFFS = st.builds("now{}{}{}{}".format, st.sampled_from(["", "/d", "/w", "/m"]), st.sampled_from(["", "+", "-"]),
                      st.integers(0, 10**10).map(str), st.sampled_from(["s", "m", "h", "d", "w"]))
PATTERNS = st.text(alphabet="aZ0\\w.*+?|()[]{}^$-!,:1-9", max_size=24)
DATE_FORMATS = st.text(alphabet="%YmdHMSLjbBzZuwUVGa$ -:.,_/", min_size=1, max_size=16)
INT = st.sampled_from([-(2**31) - 1, -(2**31), -1, 0, 1, 2, 2**31 - 1, 2**31, 2**40])
EDGE_CONDITION = st.one_of(
    st.fixed_dictionaries({"k": DATETIME_KEYS, "v": MOMENTS,
                           "o": st.sampled_from(["datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte",
                                                 "lt", "gte", "eq", "not"])}),
    st.fixed_dictionaries({"k": DATETIME_KEYS, "v": st.lists(MOMENTS, max_size=2),
                           "o": st.sampled_from(["in", "not_in"])}),
    st.fixed_dictionaries({"k": DATETIME_KEYS, "v": TIMEDIFFS,
                           "o": st.sampled_from(["timediff_lt", "timediff_gte"])}),
    st.fixed_dictionaries({"k": st.sampled_from(["job_task_id", "options.platform", "status"]), "v": PATTERNS,
                           "o": st.just("regex")}),
    st.fixed_dictionaries({"k": st.just("options.platform"), "v": st.lists(PATTERNS, max_size=3),
                           "o": st.just("regex_in")}),
)
EDGE_PAGE = st.fixed_dictionaries({}, optional={"start": INT, "limit": INT})
EDGE_SORT = st.lists(st.fixed_dictionaries({"key": DATETIME_KEYS | st.just("created_count"), "desc": st.booleans()}),
                     max_size=2)
EDGE_LIST = st.fixed_dictionaries({}, optional={"filter": st.lists(EDGE_CONDITION, max_size=3), "sort": EDGE_SORT,
                                                "page": EDGE_PAGE, "keyword": st.text(max_size=10)})
EDGE_GROUP = st.fixed_dictionaries({"group": st.fixed_dictionaries({
    "keys": st.lists(st.fixed_dictionaries({"key": DATETIME_KEYS, "name": st.just("period"),
                                            "date_format": DATE_FORMATS}), min_size=1, max_size=1),
    "fields": st.just([{"operator": "count", "name": "n"}]),
})})
EDGE_STAT = st.one_of(
    st.fixed_dictionaries({"aggregate": st.lists(EDGE_GROUP | st.fixed_dictionaries(
        {"match": st.fixed_dictionaries({"filter": st.lists(EDGE_CONDITION, max_size=2)})}), min_size=1, max_size=3)},
        optional={"filter": st.lists(EDGE_CONDITION, max_size=2), "page": EDGE_PAGE}),
    st.fixed_dictionaries({"distinct": DATETIME_KEYS | st.just("status")},
                          optional={"filter": st.lists(EDGE_CONDITION, max_size=2), "page": EDGE_PAGE}),
)
EDGES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OVERFLOW = {"filter": [{"k": "created_at", "v": "0001-01-01T00:00:00+14:00", "o": "datetime_lt"}]}


@EDGES
@given(query=EDGE_LIST)
@example(query=OVERFLOW)  # issue 17: an OverflowError once answered 500 and dropped the connection
def test_edge_lists_never_answer_5xx(api, query):
    assert_coded(api.post("list", {"query": query}), "list", query)


@EDGES
@given(query=EDGE_STAT)
@example(query={**OVERFLOW, "aggregate": [{"count": {"name": "n"}}]})
def test_edge_stats_never_answer_5xx(api, query):
    assert_coded(api.post("stat", {"query": query}), "stat", query)

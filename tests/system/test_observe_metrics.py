"""Prometheus metrics: the worker's, exact after a known stream, and the API's ``/metrics``.

The stream goes through Redis to a real worker of two pool processes; its
metrics endpoint is scraped over HTTP and read with prometheus_client's own
parser, then held against the history the worker wrote.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.readside import TOKENS, api_settings, bearer, secret
from worker.contract import lifecycle, outcomes
from worker.contract.acceptance import task_over_limit
from worker.contract.delivery import Delivery
from worker.contract.events import parse_event
from worker.dev.embedded import free_port
from worker.observe import gauges
from worker.observe.report import message_outcome
from worker.settings import SettingsError, load_settings
from worker.store.collections import JOB_TASKS

DOMAIN = "domain-metrics"


def samples(text: str) -> dict[str, list[tuple[dict, float]]]:
    """Every sample of an exposition, by sample name (``jobtask_events_total`` ...)."""
    found: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(found: dict, name: str, **labels: str) -> float:
    return sum(value for sample_labels, value in found.get(name, [])
               if all(sample_labels.get(key) == want for key, want in labels.items()))


def occurred(second: int) -> str:
    return datetime(2026, 1, 1, 0, 0, second % 60, tzinfo=UTC).isoformat()


def send_known_stream(pipeline, tasks: int) -> dict[str, int]:
    """``tasks`` tasks of four events, some sent twice, and some invalid messages.

    The createds go first, and are settled before the rest is sent: an event
    that met no created would be parked (see the test of parking below).
    """
    events = pipeline.events
    duplicates = refused = unknown = 0
    sent = 0
    for number in range(tasks):
        events.send("created", job_task_id=f"job-task-m{number:04d}", domain_id=DOMAIN, job_id="job-m",
                    data_source_id="ds-1", occurred_at=occurred(0))
        sent += 1
    pipeline.wait_until_idle()
    for number in range(tasks):
        job_task_id = f"job-task-m{number:04d}"
        events.send("started", job_task_id=job_task_id, domain_id=DOMAIN, occurred_at=occurred(1))
        progress = dict(job_task_id=job_task_id, domain_id=DOMAIN, created_count_delta=3,
                        event_id=f"progress-{number}", occurred_at=occurred(2))
        events.send("progressed", **progress)
        events.send("succeeded", job_task_id=job_task_id, domain_id=DOMAIN, occurred_at=occurred(3))
        sent += 3
        if number % 3 == 0:  # the same event again, under a new message id
            events.send("progressed", **progress)
            duplicates += 1
            sent += 1
    for number in range(4):
        events.send_raw("job_task.progressed", {"job_task_id": f"job-task-bad{number}", "domain_id": DOMAIN,
                                                "created_count_delta": "lots"})
        refused += 1
    for number in range(2):
        events.send_raw("job_task.exploded", {"job_task_id": "job-task-x", "n": number})
        refused += 1
        unknown += 1
    sent += refused
    return {"sent": sent, "duplicates": duplicates, "refused": refused, "unknown": unknown, "tasks": tasks}


def test_worker_metrics_are_exact_after_a_known_stream(pipeline_factory):
    pipeline = pipeline_factory()
    port = free_port()
    pipeline.start_worker(concurrency=2, JOBTASK_METRICS_PORT=str(port))
    stream = send_known_stream(pipeline, tasks=30)
    pipeline.wait_until_idle()

    found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    sent, duplicates, refused = stream["sent"], stream["duplicates"], stream["refused"]

    assert total(found, "jobtask_events_total") == sent
    assert total(found, "jobtask_events_total", outcome="duplicate") == duplicates
    assert total(found, "jobtask_events_total", outcome="rejected") == refused
    assert total(found, "jobtask_events_total", outcome="applied") == sent - duplicates - refused
    assert total(found, "jobtask_events_total", outcome="applied", type="job_task.created") == stream["tasks"]
    assert total(found, "jobtask_dead_letters_total") == refused
    assert total(found, "jobtask_dead_letters_total", reason="unknown_type") == stream["unknown"]
    assert total(found, "jobtask_dead_letters_total", reason="invalid") == refused - stream["unknown"]
    # every message went through one batch; every applied event has its lag
    assert total(found, "jobtask_batch_size_sum") == sent
    assert total(found, "jobtask_batch_seconds_count") == total(found, "jobtask_batch_size_count") >= 1
    assert total(found, "jobtask_event_lag_seconds_count") == sent - duplicates - refused
    assert total(found, "jobtask_requeued_total") == 0
    assert total(found, "jobtask_settled_later_total") == 0
    assert found["jobtask_store_retries_total"] == [({}, 0.0)]
    # the gauges: nothing waits in the queue; the store's tasks per status
    assert total(found, "jobtask_queue_messages", queue=pipeline.queue) == 0
    assert total(found, "jobtask_tasks", status=lifecycle.SUCCESS) == stream["tasks"]
    assert total(found, "jobtask_tasks") == stream["tasks"]
    assert {labels["status"] for labels, _ in found["jobtask_jobs"]} >= set(lifecycle.STATUSES)

    # the same numbers as the history the worker wrote
    recorded = Counter(record["outcome"] for record in pipeline.history())
    counted = Counter()
    for labels, value in found["jobtask_events_total"]:
        counted[labels["outcome"]] += int(value)
    counted = +counted  # without the zeros
    assert recorded == counted


def test_an_event_parked_then_applied_counts_once_as_parked_and_once_settled_later(pipeline_factory):
    pipeline = pipeline_factory()
    port = free_port()
    pipeline.start_worker(concurrency=1, JOBTASK_METRICS_PORT=str(port))
    pipeline.events.send("started", job_task_id="job-task-p1", domain_id=DOMAIN, occurred_at=occurred(1))
    pipeline.wait_until_idle()
    url = f"http://127.0.0.1:{port}/metrics"
    found = samples(httpx.get(url, timeout=10).text)
    assert total(found, "jobtask_events_total", outcome="parked", type="job_task.started") == 1
    assert total(found, "jobtask_events_total") == 1
    pipeline.events.send("created", job_task_id="job-task-p1", domain_id=DOMAIN, job_id="job-p",
                         data_source_id="ds-1", occurred_at=occurred(0))
    pipeline.wait_until_idle()
    found = samples(httpx.get(url, timeout=10).text)
    assert total(found, "jobtask_events_total") == 2
    assert total(found, "jobtask_events_total", outcome="applied", type="job_task.created") == 1
    assert total(found, "jobtask_settled_later_total", outcome="applied", type="job_task.started",
                 source="parked") == 1
    assert total(found, "jobtask_event_lag_seconds_count") == 2


def test_queue_gauge_counts_waiting_messages(pipeline_factory):
    pipeline = pipeline_factory()
    for number in range(7):
        pipeline.events.send("started", job_task_id=f"job-task-q{number}", domain_id=DOMAIN)
    gauge = gauges.QueueGauge(lambda: pipeline.redis, [pipeline.queue], max_age=0)
    family = next(iter(gauge.collect()))
    assert [(sample.labels, sample.value) for sample in family.samples] == [({"queue": pipeline.queue}, 7)]


def test_store_gauges_read_at_most_once_per_max_age(mongo_db):
    reads = []

    def db():
        reads.append(1)
        return mongo_db

    mongo_db[JOB_TASKS].insert_many([{"status": "SUCCESS"}, {"status": "SUCCESS"},
                                                   {"status": "FAILURE"}])
    collector = gauges.StoreGauges(db, max_age=3600)
    first = {(f.name, s.labels["status"]): s.value for f in collector.collect() for s in f.samples}
    mongo_db[JOB_TASKS].insert_one({"status": "SUCCESS"})
    second = {(f.name, s.labels["status"]): s.value for f in collector.collect() for s in f.samples}
    assert first[("jobtask_tasks", "SUCCESS")] == 2 and first[("jobtask_tasks", "FAILURE")] == 1
    assert first[("jobtask_tasks", "PENDING")] == 0 and first[("jobtask_jobs", "PENDING")] == 0
    assert second == first  # cached: the new task shows at the next read
    assert len(reads) == 2  # one read per collection


def test_api_serves_its_request_metrics_by_route_template(store_url, broker_url, mongo_db):
    from fastapi.testclient import TestClient

    from worker.api import create_app

    token = next(iter(TOKENS))
    mongo_db.job_tasks.insert_one({"job_task_id": "job-task-api1", "status": "SUCCESS",
                                   "domain_id": TOKENS[token]["domain_id"]})
    client = TestClient(create_app(api_settings(store_url, mongo_db.name, broker_url,
                                                api_metrics_token=secret("token-prometheus"))))
    headers = bearer(token)
    for _ in range(3):
        assert client.post("/cost-analysis/v1/job-task/list", json={"query": {}}, headers=headers).status_code == 200
    assert client.post("/cost-analysis/v1/job-task/get", json={"job_task_id": "job-task-x1"},
                       headers=bearer("nope")).status_code == 401
    assert client.get("/no/such/path/123").status_code == 404
    assert client.get("/healthz").status_code == 200

    response = client.get("/metrics", headers=bearer("token-prometheus"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    requests = {(labels["path"], labels["code"]): value for labels, value in found["jobtask_http_requests_total"]}
    assert requests[("/cost-analysis/v1/job-task/list", "200")] == 3
    assert requests[("/cost-analysis/v1/job-task/get", "401")] == 1
    assert requests[("unmatched", "404")] == 1
    assert requests[("/healthz", "200")] == 1
    assert not any("123" in path for path, _ in requests)
    assert total(found, "jobtask_http_request_seconds_count", path="/cost-analysis/v1/job-task/list") == 3
    assert total(found, "jobtask_tasks", status="SUCCESS") == 1
    assert "jobtask_jobs" in found and "process_resident_memory_bytes" in found
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
    # Counts across every tenant: only the metrics' own token reads them, never a tenant's.
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=headers).status_code == 401


def test_without_a_metrics_token_the_api_serves_no_metrics(store_url, broker_url, mongo_db):
    from fastapi.testclient import TestClient

    from worker.api import create_app

    client = TestClient(create_app(api_settings(store_url, mongo_db.name, broker_url)))
    assert client.get("/metrics", headers=bearer("token-a")).status_code == 404
    assert client.get("/healthz").status_code == 200
    with pytest.raises(SettingsError, match="JOBTASK_API_METRICS_TOKEN"):
        load_settings(api_metrics_token="a-short-one")


@pytest.mark.parametrize("outcome, label", [
    (outcomes.invalid("unknown event type 'job_task.x'", parse_event("job_task.x", [], {}).code), "unknown_type"),
    (outcomes.invalid("message could not be decoded (application/x-python): no", outcomes.UNDECODABLE),
     "undecodable"),
    (outcomes.internal_error(KeyError("x")), "internal"),
    (outcomes.OTHER_TASK_DOMAIN, "other_domain"),
    (outcomes.OTHER_JOB_DOMAIN, "other_domain"),
    (task_over_limit(10), "limit"),
    (outcomes.NOT_DERIVED, "jobs_off"),
    (outcomes.invalid(parse_event("job_task.progressed", [], {"created_count_delta": -1}).reason), "invalid"),
    (outcomes.OTHER_CONTENT, "conflict"),
])
def test_dead_letter_codes_are_a_few_labels(outcome, label):
    assert outcome.dead_letter and outcome.dead_letter_code == label
    assert label in outcomes.DEAD_LETTER_CODES
    reported = message_outcome(Delivery("m", "job_task.progressed", datetime.now(UTC)), outcome, datetime.now(UTC))
    assert reported.dead_letter_code == label


def test_lag_is_measured_for_applied_events_only():
    received = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    processed = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    kwargs = {"event_id": "e1", "job_task_id": "t1", "occurred_at": "2026-01-01T00:00:00Z"}
    applied = message_outcome(Delivery("m1", "job_task.started", received, kwargs=kwargs),
                              outcomes.Outcome("applied"), processed)
    assert (applied.lag_seconds, applied.event_id, applied.job_task_id) == (120.0, "e1", "t1")
    no_time = message_outcome(Delivery("m2", "job_task.started", received), outcomes.Outcome("applied"), processed)
    assert no_time.lag_seconds == 60.0  # the worker's default occurred_at: the receive time
    duplicate = message_outcome(Delivery("m3", "job_task.started", received, kwargs=kwargs),
                                outcomes.ALREADY_APPLIED, processed)
    assert duplicate.lag_seconds is None and duplicate.reason == "event_id already applied"

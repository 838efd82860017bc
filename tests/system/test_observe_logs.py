"""Log lines: with JOBTASK_LOG_FORMAT=json every line of the worker and the API is a JSON object.

The worker is a real ``celery worker`` subprocess and the API a real
``uvicorn`` one; their output is read line by line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.harness import ROOT, wait_for
from tests.readside import bearer, secret
from worker.dev.embedded import free_port

DOMAIN = "domain-logs"


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def test_worker_json_lines_carry_each_outcome_and_each_batch(pipeline_factory):
    pipeline = pipeline_factory()
    worker = pipeline.start_worker(concurrency=2, JOBTASK_LOG_FORMAT="json")
    job_task_id = pipeline.events.created(domain_id=DOMAIN, job_id="job-l", data_source_id="ds-1")
    started = pipeline.events.started(job_task_id, domain_id=DOMAIN)
    pipeline.events.send_raw("job_task.progressed", {"job_task_id": job_task_id, "domain_id": DOMAIN,
                                                     "event_id": "bad-1", "created_count_delta": "lots"})
    pipeline.wait_until_idle()
    lines = wait_for(lambda: [line for line in json_lines(worker.log()) if line["logger"] == "jobtask.batches"]
                     and json_lines(worker.log()))
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    assert any(line["message"].endswith(" ready.") for line in lines)
    outcomes = {line["event_id"]: line for line in lines if line["logger"] == "jobtask.events"}
    assert outcomes[started]["outcome"] == "applied"
    assert outcomes[started]["type"] == "job_task.started"
    assert outcomes[started]["job_task_id"] == job_task_id and outcomes[started]["reason"] is None
    bad = outcomes["bad-1"]
    assert (bad["outcome"], bad["level"]) == ("rejected", "WARNING") and "created_count_delta" in bad["reason"]
    batches = [line for line in lines if line["logger"] == "jobtask.batches"]
    assert sum(line["size"] for line in batches) == 3
    assert all(isinstance(line["seconds"], float) for line in batches)


def test_worker_text_lines_stay_readable(pipeline_factory):
    pipeline = pipeline_factory()
    worker = pipeline.start_worker(concurrency=1)
    job_task_id = pipeline.events.created(domain_id=DOMAIN, job_id="job-l", data_source_id="ds-1")
    pipeline.wait_until_idle()
    log = wait_for(lambda: "batch of 1 settled" in worker.log() and worker.log())
    assert "job_task.created" in log and f"of {job_task_id}: applied" in log
    assert "celery@" in log or "[queues]" in log  # Celery's banner is still there in text mode


@contextmanager
def api_process(store_url: str, broker_url: str, log_path: Path, **env: str) -> Iterator[str]:
    """``uvicorn worker.api:app`` as a subprocess writing to ``log_path``; its base URL once healthy."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "JOBTASK_MONGO_URL": store_url,
           "JOBTASK_BROKER_URL": broker_url, "JOBTASK_MONGO_DB": "logs_api", **env}
    with open(log_path, "wb") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "worker.api:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60, interval=0.2)
        yield url
    finally:
        api.terminate()
        api.wait(timeout=20)


def test_api_json_lines(store_url, broker_url, tmp_path):
    log_path = tmp_path / "api.log"
    with api_process(store_url, broker_url, log_path, JOBTASK_LOG_FORMAT="json",
                     JOBTASK_API_METRICS_TOKEN=secret("token-prometheus")) as url:
        assert httpx.get(f"{url}/metrics", headers=bearer("token-prometheus"), timeout=5).status_code == 200
        wait_for(lambda: "/metrics" in log_path.read_text(errors="replace"), timeout=30)  # its access line
    lines = json_lines(log_path.read_text())
    assert any(line["logger"] == "uvicorn.access" and "/healthz" in line["message"] for line in lines)
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_token_in_a_url_never_reaches_the_access_log(store_url, broker_url, tmp_path, log_format):
    log_path = tmp_path / "api.log"
    guess = "guess-4f1c9a7e2b"
    tokens = json.dumps({secret("a-real-token-of-the-logs-test"): {"domain_id": DOMAIN}})
    with api_process(store_url, broker_url, log_path, JOBTASK_LOG_FORMAT=log_format,
                     JOBTASK_API_TOKENS=tokens) as url:
        watch = httpx.get(f"{url}/cost-analysis/v1/job-task/watch?job_id=job-7&access_token={guess}", timeout=10)
        assert watch.status_code == 401  # a token in the URL is not taken
        listed = httpx.post(f"{url}/cost-analysis/v1/job-task/list?token={guess}&{guess}", json={"query": {}},
                            headers={"Authorization": f"Bearer {guess}"}, timeout=10)
        assert listed.status_code == 401
        wait_for(lambda: "/job-task/list" in log_path.read_text(errors="replace"), timeout=30)
    log = log_path.read_text(errors="replace")
    access = [line for line in log.splitlines() if "/job-task/" in line]
    assert len(access) == 2, log
    assert guess not in log
    # The request is still there to read, with the parameters the API reads.
    assert "/cost-analysis/v1/job-task/watch?job_id=job-7&access_token=[redacted]" in access[0]
    assert "/cost-analysis/v1/job-task/list?token=[redacted]&[redacted]" in access[1]
    if log_format == "json":
        assert {json.loads(line)["logger"] for line in access} == {"uvicorn.access"}

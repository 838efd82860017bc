"""Flower, the real package, lists the worker and every event message as a task.

A worker with Celery's default gossip and heartbeat, and Flower
(``celery -A worker flower``) on a free port, both on the test broker; events
go through the worker, and Flower's HTTP API must show them by name, with
their arguments and their end. ``celery inspect`` must answer too.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from tests.harness import ROOT, WorkerProcess, wait_for
from worker.dev.embedded import free_port

DOMAIN = "domain-flower"


@pytest.fixture
def flower_pipeline(pipeline_factory, tmp_path):
    """A pipeline, its worker (task events on, gossip and heartbeat as by default) and Flower."""
    pipeline = pipeline_factory()
    name = f"flower-{pipeline.queue}@localhost"
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:  # the worker writes to its own copy of the descriptor
        worker = WorkerProcess(name, subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", pipeline.queue, "-c", "2",
             "-n", name, "-l", "INFO"],
            cwd=ROOT, env=pipeline.env(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True), log_path)
    pipeline.workers.append(worker)
    worker.wait_ready()
    port = free_port()
    flower_log = tmp_path / "flower.log"
    with open(flower_log, "wb") as log:
        flower = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "flower", f"--port={port}", "--address=127.0.0.1"],
            cwd=ROOT, env=pipeline.env(FLOWER_UNAUTHENTICATED_API="true"), stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield pipeline, worker, f"http://127.0.0.1:{port}", flower_log
    finally:
        flower.terminate()
        try:
            flower.wait(timeout=20)
        except subprocess.TimeoutExpired:
            flower.kill()
            flower.wait(timeout=10)


def flower_json(base: str, path: str):
    try:
        response = httpx.get(base + path, timeout=10)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_flower_lists_the_worker_and_each_event_message_as_a_task(flower_pipeline):
    pipeline, worker, base, flower_log = flower_pipeline
    try:
        workers = wait_for(lambda: (flower_json(base, "/api/workers?refresh=1") or {}).get(worker.name),
                           timeout=60, interval=0.5)
    except TimeoutError:
        raise AssertionError(flower_log.read_text(errors="replace")[-3000:]) from None
    assert workers["stats"]["pool"]["max-concurrency"] == 2
    # Flower sees only events sent after it connected: wait until it has the worker's heartbeat.
    wait_for(lambda: (flower_json(base, "/api/workers?status=1") or {}).get(worker.name), timeout=60,
             interval=0.5)

    events = pipeline.events
    job_task_id = events.created(domain_id=DOMAIN, job_id="job-f", data_source_id="ds-1")
    progressed = events.progressed(job_task_id, domain_id=DOMAIN, created_count_delta=5)
    bad_id = events.send_raw("job_task.progressed", {"job_task_id": job_task_id, "domain_id": DOMAIN,
                                                     "created_count_delta": "lots"})
    pipeline.wait_until_idle()

    def tasks_done():
        tasks = flower_json(base, "/api/tasks") or {}
        ours = {uuid: task for uuid, task in tasks.items() if job_task_id in (task.get("kwargs") or "")}
        finished = [task for task in ours.values() if task.get("state") in ("SUCCESS", "FAILURE")]
        return ours if len(ours) == 3 and len(finished) == 3 else None

    try:
        tasks = wait_for(tasks_done, timeout=30, interval=0.5)
    except TimeoutError:
        raise AssertionError(f"Flower has {flower_json(base, '/api/tasks')}\n{worker.log()[-3000:]}") from None
    by_name = {}
    for uuid, task in tasks.items():
        assert task["worker"] == worker.name
        assert task["received"] and task["started"]
        by_name.setdefault(task["name"], []).append((uuid, task))
    assert sorted(by_name) == ["job_task.created", "job_task.progressed"]
    created = by_name["job_task.created"][0][1]
    assert created["state"] == "SUCCESS" and "'applied'" in created["result"]
    assert "'job_id': 'job-f'" in created["kwargs"] and created["args"] == "[]"
    states = {task["state"] for _, task in by_name["job_task.progressed"]}
    assert states == {"SUCCESS", "FAILURE"}
    failed = next(task for uuid, task in by_name["job_task.progressed"] if task["state"] == "FAILURE")
    assert failed["uuid"] == bad_id and "created_count_delta" in failed["exception"]
    assert "'created_count_delta': 5" in next(
        task["kwargs"] for uuid, task in by_name["job_task.progressed"] if task["state"] == "SUCCESS")
    assert progressed in next(task["kwargs"] for _, task in by_name["job_task.progressed"]
                              if task["state"] == "SUCCESS")


def test_celery_inspect_answers(flower_pipeline):
    pipeline, worker, _base, _log = flower_pipeline
    for command in ("active", "stats", "ping"):
        done = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "worker", "inspect", command, "-d", worker.name,
             "--timeout", "10", "--json"],
            cwd=ROOT, env=pipeline.env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert worker.name in done.stdout


def test_task_events_follow_the_dispatchers_groups():
    """JOBTASK_TASK_EVENTS=false leaves Celery's dispatcher with the worker group only: nothing is sent."""
    from types import SimpleNamespace

    from worker.contract.delivery import Delivery
    from worker.observe import task_events

    sent = []
    on = SimpleNamespace(enabled=True, groups=set(), send=lambda kind, **fields: sent.append(kind))
    off = SimpleNamespace(enabled=True, groups={"worker"}, send=lambda kind, **fields: sent.append(kind))
    delivery = Delivery("m1", "job_task.started", datetime.now(UTC), kwargs={"job_task_id": "t"})
    task_events.batch_sent(off, [delivery])
    task_events.batch_sent(None, [delivery])
    assert sent == []
    task_events.batch_sent(on, [delivery])
    task_events.message_settled(on, "m1", acked=False, outcome=None, runtime=0.1)
    assert sent == ["task-received", "task-started", "task-retried"]

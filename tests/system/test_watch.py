"""``GET /cost-analysis/v1/job-task/watch`` end to end: worker → Redis stream → API → SSE clients.

Events go through Redis to a real Celery worker, which publishes each
stored change to the change stream (``worker.ingest.feed``); uvicorn serves
the API on a free port (a thread, or a subprocess where its memory is
measured) and httpx reads the event streams (tests/sse.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from contextlib import contextmanager

import httpx
import pytest

from tests.browser import serving
from tests.harness import ROOT, wait_for
from tests.readside import TOKENS, api_settings, bearer, configured
from tests.sse import Watching, of_task
from worker.api import create_app
from worker.api.hub import WATCH_CLIENT
from worker.contract.changes import Change
from worker.dev.embedded import free_port
from worker.ingest import feed
from worker.settings import load_settings

WATCH_TOKENS = {**TOKENS, "token-a-ws2": {"domain_id": "domain-a", "workspace_ids": ["ws-2"]}}
ORDER = ["PENDING", "IN_PROGRESS", "SUCCESS"]


def watch_settings(pipeline, **overrides):
    values = dict(api_tokens=WATCH_TOKENS, watch_heartbeat=0.3, broker_url=pipeline.broker_url)
    values.update(overrides)
    return api_settings(pipeline.store_url, pipeline.db_name, **values)


@pytest.fixture
def api(pipeline):
    with serving(create_app(watch_settings(pipeline))) as server:
        yield server


@contextmanager
def watching(base_url: str, token: str, **options):
    watcher = Watching(base_url, token, **options).start()
    try:
        yield watcher
    finally:
        watcher.close()


def created(pipeline, job_task_id, domain="domain-a", workspace="ws-1", job="job-w1"):
    pipeline.events.created(job_task_id=job_task_id, domain_id=domain, job_id=job, data_source_id="ds-w",
                            workspace_id=workspace, resource_group="WORKSPACE" if workspace else None)


def get(base_url: str, job_task_id: str, token: str = "token-a") -> dict:
    answer = httpx.post(f"{base_url}/cost-analysis/v1/job-task/get", json={"job_task_id": job_task_id},
                        headers=bearer(token))
    return answer.json()


def status_is(job_task_id: str, status: str):
    return lambda events: any(task.get("status") == status for task in of_task(events, job_task_id))


def job_succeeded(events) -> bool:
    return any(event.event == "job" and event.object["job_id"] == "job-w1"
               and event.object["task_counts"]["SUCCESS"] == 1 for event in events)


def test_each_stored_change_reaches_the_watchers_that_may_see_it_in_order(pipeline, api):
    with watching(api.url, "token-a") as domain_a, \
            watching(api.url, "token-a-ws1") as workspace_1, \
            watching(api.url, "token-b") as domain_b:
        created(pipeline, "job-task-w1")
        domain_a.wait_for(status_is("job-task-w1", "PENDING"))
        pipeline.events.started("job-task-w1", domain_id="domain-a")
        domain_a.wait_for(status_is("job-task-w1", "IN_PROGRESS"))
        created(pipeline, "job-task-w2", workspace="ws-2", job="job-w2")
        created(pipeline, "job-task-b1", domain="domain-b", workspace=None, job="job-b")
        pipeline.events.succeeded("job-task-w1", domain_id="domain-a", created_count_delta=7)
        events = domain_a.wait_for(lambda events: status_is("job-task-w1", "SUCCESS")(events)
                                   and of_task(events, "job-task-w2") and job_succeeded(events)
                                   and any(event.event == "job" and event.object["job_id"] == "job-w2"
                                           for event in events))

        # One event per stored change, in the order stored; the last is what get returns.
        statuses = [task["status"] for task in of_task(events, "job-task-w1")]
        assert statuses == ORDER
        ids = [tuple(map(int, event.id.split("-"))) for event in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert of_task(events, "job-task-w1")[-1] == get(api.url, "job-task-w1")
        jobs = [event.object for event in events if event.event == "job"]
        assert {job["job_id"] for job in jobs} == {"job-w1", "job-w2"}
        # A Job follows its tasks (undeclared, it stays IN_PROGRESS): its counts moved with them.
        assert [job for job in jobs if job["job_id"] == "job-w1"][-1]["task_counts"]["SUCCESS"] == 1

        # Narrowed to a workspace: its task and job only. Another domain: its own only.
        seen = workspace_1.wait_for(status_is("job-task-w1", "SUCCESS"))
        domain_b.wait_for(lambda events: of_task(events, "job-task-b1"))
        pipeline.wait_until_idle()
        for event in workspace_1.drain(1.0):
            assert event.object["domain_id"] == "domain-a" and event.object["workspace_id"] == "ws-1"
        assert [task["status"] for task in of_task(seen, "job-task-w1")] == ORDER
        for event in domain_b.drain(0.5):
            assert event.object["domain_id"] == "domain-b"

        assert domain_a.heartbeats > 0


def test_a_duplicate_changes_nothing_and_announces_nothing(pipeline, api):
    event = {"job_task_id": "job-task-d1", "domain_id": "domain-a", "job_id": "job-d1",
             "data_source_id": "ds-w", "event_id": "c1", "occurred_at": "2024-01-01T00:00:00Z"}
    with watching(api.url, "token-a") as watcher:
        pipeline.events.send_raw("job_task.created", event)
        watcher.wait_for(status_is("job-task-d1", "PENDING"))
        pipeline.wait_until_idle()
        seen = len(watcher.drain(0.5))
        pipeline.events.send_raw("job_task.created", event)
        pipeline.wait_until_idle()
        assert watcher.drain(1.5)[seen:] == []
    assert [record["outcome"] for record in pipeline.history(job_task_id="job-task-d1")] == ["applied", "duplicate"]


def test_filters_narrow_what_arrives(pipeline, api):
    with watching(api.url, "token-a", params={"job_id": "job-f1"}) as by_job, \
            watching(api.url, "token-a", params={"status": "SUCCESS"}) as by_status:
        created(pipeline, "job-task-f1", job="job-f1")
        created(pipeline, "job-task-f2", job="job-f2")
        pipeline.wait_until_idle()
        pipeline.events.succeeded("job-task-f1", domain_id="domain-a")
        pipeline.events.succeeded("job-task-f2", domain_id="domain-a")
        by_job.wait_for(status_is("job-task-f1", "SUCCESS"))
        by_status.wait_for(lambda events: status_is("job-task-f1", "SUCCESS")(events)
                           and status_is("job-task-f2", "SUCCESS")(events))
        pipeline.wait_until_idle()
        for event in by_job.drain(1.0):
            assert event.object["job_id"] == "job-f1"
        assert {event.event for event in by_job.received} == {"job_task", "job"}
        for event in by_status.drain(0.5):
            assert event.object["status"] == "SUCCESS"
    bad = httpx.get(f"{api.url}/cost-analysis/v1/job-task/watch", params={"status": "DONE"},
                    headers=bearer("token-a"))
    assert bad.status_code == 400 and bad.json()["detail"]["code"] == "ERROR_INVALID_PARAMETER"


def test_a_reconnect_gets_what_it_missed_across_restarts_of_the_api_and_the_worker(pipeline):
    settings = watch_settings(pipeline)
    with serving(create_app(settings)) as first_api, watching(first_api.url, "token-a") as watcher:
        created(pipeline, "job-task-r1", job="job-r1")
        events = watcher.wait_for(status_is("job-task-r1", "PENDING"))
        resume_from = events[-1].id  # as a browser would: its Job's change may follow
    # While nobody watches, the API and the worker restart and the task moves on.
    pipeline.workers[0].stop()
    pipeline.start_worker(concurrency=2)
    pipeline.events.started("job-task-r1", domain_id="domain-a")
    pipeline.wait_until_idle()
    pipeline.events.succeeded("job-task-r1", domain_id="domain-a")
    pipeline.wait_until_idle()
    with serving(create_app(settings)) as second_api:
        with watching(second_api.url, "token-a", last_event_id=resume_from) as header:
            replayed = header.wait_for(status_is("job-task-r1", "SUCCESS"))
        assert [task["status"] for task in of_task(replayed, "job-task-r1")] == ["IN_PROGRESS", "SUCCESS"]
        assert all(event.event != "reset" for event in replayed)
        # The query parameter does the same (for clients that build the URL themselves).
        with watching(second_api.url, "token-a", params={"last_event_id": resume_from}) as param:
            again = param.wait_for(status_is("job-task-r1", "SUCCESS"))
        assert [(event.id, event.data) for event in again] == [(event.id, event.data) for event in replayed]
        # Without an id: only what happens from now on.
        with watching(second_api.url, "token-a") as fresh:
            assert fresh.drain(1.0) == []
            (end, _), = pipeline.redis.xrevrange(settings.change_stream, count=1)
            assert fresh.last_event_id == end.decode()


def test_an_id_the_stream_no_longer_holds_gets_a_reset(pipeline, api):
    stream = watch_settings(pipeline).change_stream
    with watching(api.url, "token-a") as watcher:
        created(pipeline, "job-task-t1")
        watcher.wait_for(status_is("job-task-t1", "PENDING"))
        old = watcher.last_event_id
        pipeline.events.started("job-task-t1", domain_id="domain-a")
        watcher.wait_for(status_is("job-task-t1", "IN_PROGRESS"))
    pipeline.wait_until_idle()
    pipeline.redis.xtrim(stream, maxlen=1, approximate=False)  # what JOBTASK_WATCH_BACKLOG does, sooner
    for number, too_old in enumerate((old, "99999999999999-0", "not-an-id")):
        (last_id, _), = pipeline.redis.xrevrange(stream, count=1)
        with watching(api.url, "token-a", last_event_id=too_old) as late:
            (reset,) = late.wait_for(lambda events: events)
            assert (reset.event, reset.id) == ("reset", last_id.decode())
            assert late.last_event_id == last_id.decode()  # so the next reconnect resumes from here
            created(pipeline, f"job-task-t{number + 2}")
            late.wait_for(status_is(f"job-task-t{number + 2}", "PENDING"))


def test_a_redis_restart_tells_watchers_to_reload(private_broker, private_pipeline):
    pipeline = private_pipeline
    pipeline.start_worker(concurrency=1)
    with serving(create_app(watch_settings(pipeline))) as server, watching(server.url, "token-a") as watcher:
        created(pipeline, "job-task-x1")
        watcher.wait_for(status_is("job-task-x1", "PENDING"))
        private_broker.stop(kill=True)
        private_broker.start()
        watcher.wait_for(lambda events: events[-1].event == "reset", timeout=60)
        pipeline.events.started("job-task-x1", domain_id="domain-a")
        watcher.wait_for(status_is("job-task-x1", "IN_PROGRESS"), timeout=60)


def test_the_watch_needs_a_token_and_a_broker(pipeline, api):
    url = f"{api.url}/cost-analysis/v1/job-task/watch"
    assert httpx.get(url).status_code == 401
    # Never a token in the URL (access logs and proxies keep URLs): not even a valid one.
    for token in ("token-a", "wrong"):
        with httpx.stream("GET", url, params={"access_token": token}, timeout=30) as in_url:
            assert in_url.status_code == 401
            in_url.read()
            assert in_url.json()["detail"]["code"] == "ERROR_AUTHENTICATE_FAILURE"
    settings = watch_settings(pipeline, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with serving(create_app(settings)) as cut_off:
        answer = httpx.get(f"{cut_off.url}/cost-analysis/v1/job-task/watch",
                           headers=bearer("token-a"), timeout=30)
        assert answer.status_code == 503
        assert answer.json()["detail"]["code"] == "ERROR_WATCH_UNAVAILABLE"
    document = httpx.get(f"{api.url}/openapi.json").json()
    watch = document["paths"]["/cost-analysis/v1/job-task/watch"]["get"]
    assert "text/event-stream" in watch["responses"]["200"]["content"]


# --- the worker's side: never fails a batch, never leaves a silent gap ---------------------------------


def test_changes_the_broker_refused_are_followed_by_a_reset(pipeline):
    created(pipeline, "job-task-p1")
    pipeline.wait_until_idle()
    good = load_settings(broker_url=pipeline.broker_url, mongo_url=pipeline.store_url, mongo_db=pipeline.db_name,
                         watch_backlog=100)
    dead = good.model_copy(update={"broker_url": f"redis://127.0.0.1:{free_port()}/0"})
    feed._feed = feed._ProcessFeed()
    try:
        feed.publish_changes(pipeline.db, dead, {"job-task-p1"}, set())  # logged and dropped, no exception
        assert feed._feed.owes_reset
        before = pipeline.redis.xlen(good.change_stream)
        feed.publish_changes(pipeline.db, good, {"job-task-p1"}, {"job-w1"})
        added = [Change.from_entry(entry_id, fields)
                 for entry_id, fields in pipeline.redis.xrange(good.change_stream, "-", "+")][before:]
        assert [change.kind for change in added] == ["reset", "job_task", "job"]
        assert json.loads(added[1].data)["job_task_id"] == "job-task-p1"
        assert not feed._feed.owes_reset
        # The stream keeps about JOBTASK_WATCH_BACKLOG entries, however many changes come.
        for _ in range(400):
            feed.publish_changes(pipeline.db, good, {"job-task-p1"}, set())
        assert 100 <= pipeline.redis.xlen(good.change_stream) < 300
    finally:
        feed._feed = feed._ProcessFeed()


# --- 200 idle watchers ------------------------------------------------------------------------------


def run_apart(scenario):
    """``asyncio.run(scenario())`` in a thread of its own.

    Playwright's sync API (the console's browser tests, earlier in the same
    session) leaves an event loop set on the main thread, where asyncio.run
    then refuses to start.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(scenario())
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="watch-scenario")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def open_idle_watchers(url: str, count: int, token: str) -> list:
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=count + 10))
    streams = []
    for _ in range(count):
        context = client.stream("GET", url, headers=bearer(token))
        response = await context.__aenter__()
        assert response.status_code == 200
        lines = response.aiter_lines()
        while (await lines.__anext__()) != "":  # the opening lines: retry, then the id
            pass
        streams.append((context, lines))
    return [client, streams]


def test_two_hundred_idle_watchers_cost_the_api_under_50_mib(private_pipeline):
    pipeline = private_pipeline
    port = free_port()
    env = pipeline.env(JOBTASK_API_TOKENS=json.dumps(configured(WATCH_TOKENS)), JOBTASK_WATCH_HEARTBEAT="15",
                       JOBTASK_WATCH_STREAMS_PER_TOKEN="250")
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "worker.api:app", "--port", str(port),
                            "--log-level", "warning", "--timeout-graceful-shutdown", "1"],
                           cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/cost-analysis/v1/job-task/watch"

    async def scenario() -> tuple[int, int, int]:
        # One watcher first, so what every API imports on its first watch is in "before".
        client, streams = await open_idle_watchers(url, 1, "token-a")
        await asyncio.sleep(0.5)
        before = rss_kib(api.pid)
        more = await open_idle_watchers(url, 200, "token-a")
        await asyncio.sleep(1.0)
        after = rss_kib(api.pid)
        connections = sum(1 for client_info in pipeline.redis.client_list() if client_info["name"] == WATCH_CLIENT)
        # Still live: a change reaches the last of them.
        pipeline.redis.xadd(watch_settings(pipeline).change_stream, {
            "kind": "job_task", "domain_id": "domain-a", "data": json.dumps({"job_task_id": "job-task-m1"})})
        _, lines = more[1][-1]
        seen = [await lines.__anext__() for _ in range(4)]
        for opened_client, _opened in (more, [client, streams]):
            await opened_client.aclose()
        assert any("job-task-m1" in line for line in seen), seen
        return before, after, connections

    try:
        wait_for(lambda: api.poll() is not None or _answers(port), timeout=60)
        assert api.poll() is None
        before, after, connections = run_apart(scenario)
    finally:
        api.terminate()
        api.wait(timeout=30)
    grown_mib = (after - before) / 1024
    assert grown_mib < 50, f"200 idle watchers cost {grown_mib:.1f} MiB"
    # One reader's connection and a small pool, not one connection per watcher.
    assert connections <= 10, connections


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False

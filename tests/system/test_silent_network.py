"""A silent network: the broker or the store stops answering without closing the connection (issue 16).

Real processes reach a private redis-server, or the store, through
``tests.silent_proxy``, which at a chosen moment makes every open session
silent for good (sockets kept open, no byte passed on, no FIN, no RST),
leaves new sessions unserved for ``UNSERVED`` seconds, and then serves new
ones while the old stay silent: a failover to another host, or a dropped
route, as a client meets it. Every process runs with a short
JOBTASK_PEER_TIMEOUT (``PEER_TIMEOUT``) to keep the tests fast; the
producers reach Redis directly, as they would from elsewhere.

Each test checks the outcome (every event applied once, the history agrees,
``/healthz`` answered, the watchers told) by waiting on conditions, never on
durations; each prints how long recovery took after the heal (``-s`` shows it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager

import httpx
import pytest

from tests.browser import serving
from tests.fault_streams import send_in_background, stream
from tests.harness import ROOT, Pipeline, wait_for
from tests.lifecycle_data import at, expected_task
from tests.readside import TOKENS, api_settings, bearer, secret
from tests.silent_proxy import SilentProxy
from tests.sse import Watching, of_task
from worker.api import create_app
from worker.api.health import HEALTH_LIMIT
from worker.dev.embedded import free_port
from worker.store import history
from worker.store.collections import HISTORY

pytestmark = pytest.mark.slow

PEER_TIMEOUT = 4  # JOBTASK_PEER_TIMEOUT of every process under test
UNSERVED = 6  # seconds new sessions go unserved after the partition
SILENT = {"JOBTASK_PEER_TIMEOUT": str(PEER_TIMEOUT)}


@pytest.fixture
def broker_proxy(private_broker):
    proxy = SilentProxy(private_broker.port)
    yield proxy
    proxy.close()


@pytest.fixture
def store_proxy(store_server):
    proxy = SilentProxy(store_server.port)
    yield proxy
    proxy.close()


@contextmanager
def partitioned(proxy: SilentProxy, what: str):
    """Silence ``proxy`` for UNSERVED seconds around the block, then heal; yields the heal's time on exit."""
    healed: dict[str, float] = {}
    proxy.partition()
    started = healed["silenced"] = time.monotonic()
    try:
        yield healed
    finally:
        time.sleep(max(0.0, UNSERVED - (time.monotonic() - started)))  # the partition's length, not a wait
        proxy.heal()
        healed["at"] = time.monotonic()
        healed["served"] = proxy.sessions_served
        print(f"\n{what}: healed after {time.monotonic() - started:.1f} s of silence")


def noticed(what: str, healed: dict) -> None:
    print(f"noticed {what}: {time.monotonic() - healed['silenced']:.1f} s after the silence began")


def recovered(what: str, healed: dict) -> None:
    print(f"recovery {what}: {time.monotonic() - healed['at']:.1f} s after the heal")


def assert_each_applied_once(pipeline: Pipeline, events: list[tuple[str, dict]]) -> None:
    """Each task is what the rules say, the history rebuilds it, and records each event applied once."""
    by_task: dict[str, list] = {}
    for name, kwargs in events:
        by_task.setdefault(kwargs["job_task_id"], []).append((name, kwargs))
    applied = Counter((record["job_task_id"], record["event_id"])
                      for record in pipeline.history(outcome="applied"))
    for job_task_id, mine in by_task.items():
        stored = pipeline.task(job_task_id)
        assert stored == expected_task(mine), job_task_id
        assert history.rebuild(pipeline.db, job_task_id).task == stored, f"{job_task_id}: history disagrees"
        assert pipeline.logged_event_ids(job_task_id) == Counter(kwargs["event_id"] for _, kwargs in mine)
        for _, kwargs in mine:
            assert applied[(job_task_id, kwargs["event_id"])] == 1, (job_task_id, kwargs["event_id"])
    assert not pipeline.history(outcome="parked"), "an event stayed parked"
    assert not pipeline.dead_letters(), "a valid event was set aside"


METRICS_TOKEN = "token-prometheus"


def applied_so_far(pipeline: Pipeline) -> int:
    return pipeline.db[HISTORY].count_documents({"outcome": "applied"})


def gauge(where: int | str, name: str) -> float | None:
    """One gauge of a worker's metrics (its port) or the API's (its URL); a scrape must not wait on a silent peer."""
    base_url = where if isinstance(where, str) else f"http://127.0.0.1:{where}"
    headers = bearer(METRICS_TOKEN) if isinstance(where, str) else {}  # the API's need its token
    for line in httpx.get(f"{base_url}/metrics", headers=headers, timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def created_event(job_task_id: str) -> dict:
    return {"domain_id": "domain-a", "job_task_id": job_task_id, "event_id": "c", "job_id": "job-1",
            "data_source_id": "ds-1", "occurred_at": at(0)}


# --- the worker and its broker ------------------------------------------------------------------------


def test_a_broker_gone_silent_mid_stream_loses_and_doubles_nothing(private_pipeline, broker_proxy):
    """Events sent before, during and after the partition, batches in work when it hits: each applied once."""
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2, JOBTASK_BROKER_URL=broker_proxy.redis_url, **SILENT)
    events = stream("silent", tasks=20, progressed=10)
    before, during, after = events[:120], events[120:200], events[200:]
    sender = send_in_background(pipeline, before, pause_every=20, pause=0.05)
    wait_for(lambda: applied_so_far(pipeline) >= 40, timeout=60)  # mid-stream: batches are in work
    with partitioned(broker_proxy, "broker, mid-stream") as healed:
        sender.join()
        for name, kwargs in during:
            pipeline.events.send_raw(name, kwargs)
    for name, kwargs in after:
        pipeline.events.send_raw(name, kwargs)
    pipeline.wait_until_idle(timeout=180)
    recovered("broker, mid-stream", healed)

    assert_each_applied_once(pipeline, events)
    assert worker.process.poll() is None, worker.log()[-3000:]
    assert broker_proxy.sessions_served > healed["served"], "the worker made no new broker connection"
    assert "Connection to broker lost" in worker.log()


def test_an_idle_worker_whose_broker_went_silent_takes_the_next_event(private_pipeline, broker_proxy):
    """The issue's case: idle, the broker silent, one event during the partition and one lone event after.

    The worker's metrics say so meanwhile, each scrape answered at once.
    """
    pipeline = private_pipeline
    port = free_port()
    worker = pipeline.start_worker(concurrency=2, JOBTASK_BROKER_URL=broker_proxy.redis_url,
                                   JOBTASK_METRICS_PORT=str(port), **SILENT)
    pipeline.events.send_raw("job_task.created", created_event("job-task-first"))
    wait_for(lambda: pipeline.task("job-task-first"), timeout=30)
    pipeline.wait_until_idle()
    with partitioned(broker_proxy, "broker, idle worker") as healed:
        pipeline.events.send_raw("job_task.created", created_event("job-task-during"))
        # Long enough for the worker to find its broker silent (a command, or its waiting BLMOVE, unanswered).
        wait_for(lambda: "dropping the connection to make it again" in worker.log(), timeout=60)
        noticed("broker, idle worker (connection dropped)", healed)
        wait_for(lambda: gauge(port, "jobtask_broker_up") == 0, timeout=60)
        noticed("broker, idle worker (jobtask_broker_up 0)", healed)
        assert gauge(port, "jobtask_store_up") == 1
    pipeline.events.send_raw("job_task.created", created_event("job-task-lone"))
    wait_for(lambda: pipeline.task("job-task-during") and pipeline.task("job-task-lone"), timeout=120)
    recovered("broker, idle worker", healed)
    wait_for(lambda: gauge(port, "jobtask_broker_up") == 1, timeout=60)
    assert gauge(port, "jobtask_broker_answer_age_seconds") <= PEER_TIMEOUT

    pipeline.wait_until_idle(timeout=60)
    for job_task_id in ("job-task-first", "job-task-during", "job-task-lone"):
        assert [record["outcome"] for record in pipeline.history(job_task_id=job_task_id)] == ["applied"]
    assert broker_proxy.sessions_served > healed["served"]
    assert worker.process.poll() is None


# --- the worker and its store --------------------------------------------------------------------------


def test_a_store_gone_silent_mid_stream_is_survived_and_said(private_pipeline, store_proxy):
    pipeline = private_pipeline
    worker = pipeline.start_worker(concurrency=2, JOBTASK_MONGO_URL=store_proxy.store_url, **SILENT)
    events = stream("mute", tasks=20, progressed=10)
    before, during = events[:150], events[150:]
    sender = send_in_background(pipeline, before, pause_every=20, pause=0.05)
    wait_for(lambda: applied_so_far(pipeline) >= 40, timeout=60)
    served = store_proxy.sessions_served
    assert served > 0, "the worker does not reach the store through the proxy"
    with partitioned(store_proxy, "store, mid-stream") as healed:
        sender.join()
        for name, kwargs in during:
            pipeline.events.send_raw(name, kwargs)
        wait_for(lambda: "none settled for" in worker.log(), timeout=60)
        noticed("store, mid-stream (the stall line)", healed)
    pipeline.wait_until_idle(timeout=180)
    recovered("store, mid-stream", healed)

    assert_each_applied_once(pipeline, events)
    assert store_proxy.sessions_served > healed["served"], "the worker made no new store connection"
    assert worker.log().count("none settled for") == 1, "the stall is said once"
    assert "settling messages again" in worker.log()
    assert worker.process.poll() is None


# --- beat ----------------------------------------------------------------------------------------------


def test_beat_sends_its_sweeps_again_after_a_silent_broker(private_pipeline, broker_proxy, tmp_path):
    """No worker: the sweeps beat sends pile up in the queue, where they are counted."""
    pipeline = private_pipeline
    env = pipeline.env(JOBTASK_BROKER_URL=broker_proxy.redis_url, JOBTASK_SWEEP_INTERVAL="1", **SILENT)
    with open(tmp_path / "beat.log", "wb") as log:
        beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "INFO"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: pipeline.redis.llen(pipeline.queue) >= 2, timeout=60)
        with partitioned(broker_proxy, "beat") as healed:
            pass
        sent = pipeline.redis.llen(pipeline.queue)
        wait_for(lambda: pipeline.redis.llen(pipeline.queue) >= sent + 2, timeout=120)
        recovered("beat", healed)
        assert beat.poll() is None, (tmp_path / "beat.log").read_text()[-3000:]
        assert broker_proxy.sessions_served > healed["served"]
    finally:
        beat.terminate()
        beat.wait(timeout=30)


# --- the API -----------------------------------------------------------------------------------------


def healthz(base_url: str) -> httpx.Response:
    # Three times the limit: a /healthz that waits on the silent peer (its socket timeout) fails here.
    return httpx.get(f"{base_url}/healthz", timeout=3 * HEALTH_LIMIT)


def healthy(base_url: str) -> bool:
    return healthz(base_url).status_code == 200


def test_healthz_answers_in_time_and_names_the_silent_peer(private_pipeline, broker_proxy, store_proxy):
    """And the API's metrics say which peer does not answer, each scrape answered at once."""
    pipeline = private_pipeline
    settings = api_settings(store_proxy.store_url, pipeline.db_name, broker_proxy.redis_url,
                            peer_timeout=PEER_TIMEOUT, api_metrics_token=secret(METRICS_TOKEN))
    with serving(create_app(settings)) as api:
        assert healthz(api.url).json() == {"status": "ok", "store": "ok", "broker": "ok"}
        assert store_proxy.sessions_served > 0 and broker_proxy.sessions_served > 0
        for proxy, silent, other in ((store_proxy, "store", "broker"), (broker_proxy, "broker", "store")):
            with partitioned(proxy, f"/healthz, {silent}") as healed:
                for _ in range(3):  # each answer on time, the first on the old connection, the next on new ones
                    answer = healthz(api.url)
                    assert answer.status_code == 503, answer.text
                    body = answer.json()
                    assert body["status"] == "unavailable" and body[other] == "ok", body
                    assert body[silent].startswith(("no answer", "unreachable")), body
                wait_for(lambda silent=silent: gauge(api.url, f"jobtask_{silent}_up") == 0, timeout=60)
                noticed(f"{silent}, API (jobtask_{silent}_up 0)", healed)
                assert gauge(api.url, f"jobtask_{other}_up") == 1
            wait_for(lambda: healthy(api.url), timeout=60, interval=0.5)
            recovered(f"/healthz, {silent}", healed)
            wait_for(lambda silent=silent: gauge(api.url, f"jobtask_{silent}_up") == 1, timeout=60)


def test_watchers_hear_of_every_change_after_a_silent_broker(private_pipeline, broker_proxy):
    """Worker and API both reach Redis through the proxy: a watcher gets each change after it, or a reset."""
    pipeline = private_pipeline
    pipeline.start_worker(concurrency=1, JOBTASK_BROKER_URL=broker_proxy.redis_url, **SILENT)
    settings = api_settings(pipeline.store_url, pipeline.db_name, broker_proxy.redis_url, api_tokens=TOKENS,
                            watch_heartbeat=0.5, peer_timeout=PEER_TIMEOUT)
    with serving(create_app(settings)) as api, watching(api.url, "token-a") as watcher:
        pipeline.events.created(job_task_id="job-task-w1", domain_id="domain-a", job_id="job-w1",
                                data_source_id="ds-w")
        watcher.wait_for(status_is("job-task-w1", "PENDING"))
        with partitioned(broker_proxy, "watch") as healed:
            pipeline.events.started("job-task-w1", domain_id="domain-a")
        # The change made through the partition, or a reset (reload what you show)...
        watcher.wait_for(lambda events: status_is("job-task-w1", "IN_PROGRESS")(events)
                         or any(event.event == "reset" for event in events), timeout=120)
        recovered("watch", healed)
        # ...and then every change as it is stored: the stream is not left mute.
        pipeline.events.succeeded("job-task-w1", domain_id="domain-a")
        events = watcher.wait_for(status_is("job-task-w1", "SUCCESS"), timeout=120)
    statuses = [task["status"] for task in of_task(events, "job-task-w1")]
    reset = next((index for index, event in enumerate(events) if event.event == "reset"), None)
    assert statuses[0] == "PENDING" and statuses[-1] == "SUCCESS", statuses
    assert "IN_PROGRESS" in statuses or reset is not None, "a change was lost without a reset"
    ids = [tuple(map(int, event.id.split("-"))) for event in events if event.event != "reset"]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@contextmanager
def watching(base_url: str, token: str):
    watcher = Watching(base_url, token).start()
    try:
        yield watcher
    finally:
        watcher.close()


def status_is(job_task_id: str, status: str):
    return lambda events: any(task.get("status") == status for task in of_task(events, job_task_id))

"""Test harness: real Celery worker processes on a private Redis and store.

Nothing here is mocked: events travel as Celery messages through redis-server
to worker processes started with ``celery -A worker worker``, which write to
secantusdb over the MongoDB wire protocol. Each ``Pipeline`` has its own queue
and database, so tests sharing the session's servers never see each other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis

from worker.client import JobTaskEvents
from worker.store.client import connect
from worker.store.collections import DEAD_LETTERS, HISTORY, LOG, ensure_indexes

ROOT = Path(__file__).resolve().parent.parent

# Short delivery timings for tests only (the defaults suit production).
TEST_TIMINGS = {
    "JOBTASK_VISIBILITY_TIMEOUT": "10",
    "JOBTASK_STORE_RETRY_BUDGET": "5",
    "JOBTASK_STORE_RETRY_BASE": "0.05",
    "JOBTASK_STORE_RETRY_CAP": "0.5",
    "JOBTASK_STORE_TIMEOUT_MS": "1000",
    "JOBTASK_BATCH_SIZE": "50",
    "JOBTASK_BATCH_INTERVAL": "0.02",
    # Many workers run at once: none serves metrics unless its test asks for a port.
    "JOBTASK_METRICS_PORT": "0",
}


@dataclass
class WorkerProcess:
    """One ``celery worker`` (main process and its pool) in its own process group."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()[-4000:]}")
            if " ready." in self.log():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.name} not ready:\n{self.log()[-4000:]}")

    def pool_pids(self) -> list[int]:
        """The worker's pool processes (children of its main process)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill(self) -> None:
        """SIGKILL the whole worker, pool processes included: no goodbye."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Pipeline:
    """A queue and a database on the session's servers, and the workers on them."""

    broker_url: str
    store_url: str
    workdir: Path
    queue: str = field(default_factory=lambda: "q-" + uuid.uuid4().hex[:10])
    db_name: str = field(default_factory=lambda: "t_" + uuid.uuid4().hex[:10])
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.db = connect(self.store_url, self.db_name, timeout_ms=10_000, app="jobtask-tests")
        ensure_indexes(self.db)
        self.events = JobTaskEvents(self.broker_url, queue=self.queue)
        self.redis = redis.Redis.from_url(self.broker_url)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TEST_TIMINGS)
        env.update(
            JOBTASK_BROKER_URL=self.broker_url,
            JOBTASK_MONGO_URL=self.store_url,
            JOBTASK_MONGO_DB=self.db_name,
            JOBTASK_QUEUE=self.queue,
        )
        env.update(extra)
        return env

    def start_worker(self, concurrency: int = 2, wait: bool = True, **env: str) -> WorkerProcess:
        name = f"w{len(self.workers) + 1}-{self.queue}"
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as log:  # the worker writes to its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker", "worker",
                 "-Q", self.queue, "-c", str(concurrency), "-n", f"{name}@%h",
                 "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO"],
                cwd=ROOT, env=self.env(**env), stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        worker = WorkerProcess(name, process, log_path)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    # -- waiting ------------------------------------------------------------------

    def backlog(self) -> int:
        """Messages of our queue still queued or delivered but not acknowledged."""
        queued = sum(self.redis.llen(key) for key in self.redis.scan_iter(match=self.queue + "*"))
        unacked = 0
        for raw in self.redis.hvals("unacked"):
            try:
                _message, _exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            unacked += routing_key == self.queue
        return queued + unacked

    def wait_until_idle(self, timeout: float = 120, settle: float = 0.3) -> None:
        """Until every sent message is acknowledged, i.e. settled in the store."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            if self.backlog() == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            time.sleep(0.05)
        logs = "\n".join(w.log()[-3000:] for w in self.workers)
        raise TimeoutError(f"{self.backlog()} messages still pending\n{logs}")

    # -- reading --------------------------------------------------------------------

    def task(self, job_task_id: str) -> dict | None:
        from worker.store.tasks import stored_task  # noqa: PLC0415

        return stored_task(self.db, job_task_id)

    def logged_event_ids(self, job_task_id: str) -> Counter:
        """How often each event_id stands in the task's log (once, or the store doubled it)."""
        prefix = len(job_task_id) + 1
        entries = self.db[LOG].find({"t": job_task_id}, {"ev.i": 1})
        return Counter(item["i"][prefix:] for entry in entries for item in entry["ev"])

    def history(self, **query) -> list[dict]:
        return list(self.db[HISTORY].find(query))

    def dead_letters(self, **query) -> list[dict]:
        return list(self.db[DEAD_LETTERS].find(query))

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.events.close()
        self.db.client.drop_database(self.db_name)
        self.db.client.close()
        self.redis.close()


def wait_for(predicate, timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def cut_broker_connections(broker_url: str) -> int:
    """Close every client connection of the broker but our own, as a network blip does."""
    admin = redis.Redis.from_url(broker_url)
    try:
        return sum(admin.client_kill_filter(_type=kind, skipme=True) for kind in ("normal", "pubsub"))
    finally:
        admin.close()

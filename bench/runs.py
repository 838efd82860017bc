"""One benchmark run: fill a queue, start a worker, time it until the stream is applied, check it.

The same method serves the jobtask worker and the no-op baseline
(``bench.noop``), so their figures compare: the queue is filled first
with the worker stopped, and the clock runs from the worker's first fetch
until nothing is queued, in flight or unacknowledged (for jobtask also until
every task is terminal in the store). The checks read only public fields of
``job_tasks`` and the history's ``outcome``; the task document's internal
bookkeeping is the worker's own business.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.pool import Pool
from pathlib import Path

import redis
from celery import Celery

from bench.processes import Backlog, ProcessGroup, cpu_shares
from bench.streams import DOMAIN, Expected, Message, Plan, message_id, split
from tests.harness import ROOT, WorkerProcess
from worker.client import JobTaskEvents
from worker.contract import lifecycle, outcomes
from worker.contract.errors import ERROR_NOT_FOUND, CodedError
from worker.dev.embedded import child_env
from worker.read.reads import Scope, get_item
from worker.read.resource import JOB
from worker.settings import Settings
from worker.store.client import connect
from worker.store.collections import DEAD_LETTERS, HISTORY, JOB_TASKS, ensure_indexes

NOOP_TASK = "bench.noop"  # the task of bench.noop
POLL_INTERVAL = 0.02
PUBLISH_BATCH = 500
TERMINAL = sorted(lifecycle.TERMINAL_STATUSES)
UNSETTLED = (outcomes.PARKED, outcomes.CONFLICT, outcomes.REJECTED)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Services:
    broker_url: str
    store_url: str
    workdir: Path
    store: ProcessGroup | None = None
    log_level: str = "WARNING"
    timeout: float = 1800.0
    producers: int = 2
    producer_pool: Pool | None = None  # kept across runs: spawning producers is slow


def producer_pool(producers: int) -> Pool:
    """Producer processes, spawned: a forked copy of the benchmark would share its connections."""
    return multiprocessing.get_context("spawn").Pool(producers)


# --- publishing ---------------------------------------------------------------


def send_stream(app: Celery, queue: str, stream: list[Message], task_name: str | None) -> tuple[float, float]:
    """Send a stream through a producer's Celery app, pipelined, in order; returns its span.

    Each message's id is made from its event's (``message_id``), so that a
    copy sent again is a redelivery of the same message, not another one.
    """
    with app.producer_or_acquire() as producer:
        batch = producer.batch(max_size=PUBLISH_BATCH) if hasattr(producer, "batch") else nullcontext()
        began = time.time()
        with batch:
            for name, kwargs in stream:
                app.send_task(task_name or name, kwargs=kwargs, queue=queue, producer=producer,
                              task_id=message_id(kwargs))
        return began, time.time()


def publish_stream(broker_url: str, queue: str, stream: list[Message],
                   task_name: str | None) -> tuple[float, float]:
    """In a producer process: send a stream through the SDK's Celery app."""
    events = JobTaskEvents(broker_url, queue=queue)
    try:
        return send_stream(events.app, queue, stream, task_name)
    finally:
        events.close()


def publish(services: Services, queue: str, plan: Plan, task_name: str | None = None) -> float:
    """Fill ``queue`` with the plan, one process per producer; returns messages/s."""
    streams = [stream for stream in split(plan.messages, services.producers) if stream]
    jobs = [(services.broker_url, queue, stream, task_name) for stream in streams]
    if len(streams) == 1:  # no process to spawn: publishing is not timed
        spans = [publish_stream(*jobs[0])]
    elif services.producer_pool is not None:
        spans = services.producer_pool.starmap(publish_stream, jobs)
    else:
        with producer_pool(len(streams)) as pool:
            spans = pool.starmap(publish_stream, jobs)
    return plan.sent / max(1e-9, max(end for _, end in spans) - min(began for began, _ in spans))


# --- workers ----------------------------------------------------------------


def start_worker(app: str, queue: str, workdir: Path, env: dict[str, str], log_level: str,
                 number: int = 1) -> WorkerProcess:
    """Worker ``number`` of ``queue`` (a second one shares the queue under another name and log)."""
    name = f"{app.rsplit('.', 1)[-1]}-{queue}" + (f"-{number}" if number > 1 else "")
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-c", "2",
             "-n", f"{name}@%h", "--without-mingle", "--without-gossip", "--without-heartbeat",
             "-l", log_level],
            cwd=ROOT, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    return WorkerProcess(name, process, log_path)


def worker_env(services: Services, queue: str, db_name: str, batch_size: int | None,
               batch_interval: float | None) -> dict[str, str]:
    env = {"JOBTASK_BROKER_URL": services.broker_url, "JOBTASK_MONGO_URL": services.store_url,
           "JOBTASK_MONGO_DB": db_name, "JOBTASK_QUEUE": queue}
    if batch_size is not None:
        env["JOBTASK_BATCH_SIZE"] = str(batch_size)
    if batch_interval is not None:
        env["JOBTASK_BATCH_INTERVAL"] = str(batch_interval)
    return env


@dataclass
class Drain:
    seconds: float
    load: tuple[float, float]  # 1-minute load average at the first fetch and at the end
    cpu: dict[str, float]  # part (main, pool, store) -> share of one core used while draining


def watched_groups(services: Services, *workers: WorkerProcess) -> dict[str, ProcessGroup]:
    """Each worker's process group ("worker", "worker-2"...) and the store's."""
    groups = {"worker" + (f"-{number}" if number > 1 else ""): ProcessGroup(worker.process.pid)
              for number, worker in enumerate(workers, 1)}
    return {**groups, **({"store": services.store} if services.store else {})}


def time_drain(backlog: Backlog, total: int, workers: list[WorkerProcess], applied, timeout: float,
               watched: dict[str, ProcessGroup], samples: list[tuple[float, int]] | None = None) -> Drain:
    """From the workers' first fetch until the backlog is gone and ``applied()``.

    ``samples``, if given, gets (seconds since the first fetch, messages
    acknowledged) at every poll, the last one at the end of the drain.
    """
    deadline = time.monotonic() + timeout
    first_fetch, load, cpu = None, 0.0, {}
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited:\n{worker.log()[-4000:]}")
        now = time.monotonic()
        waiting, fetched = backlog.read()
        if first_fetch is None and waiting < total:
            first_fetch, load = now, os.getloadavg()[0]
            cpu = {name: group.cpu_seconds() for name, group in watched.items()}
        if first_fetch is not None and waiting == 0 and fetched == 0 and applied():
            seconds = now - first_fetch
            if samples is not None:
                samples.append((seconds, total))
            return Drain(seconds, (load, os.getloadavg()[0]), cpu_shares(watched, cpu, seconds))
        if first_fetch is not None and samples is not None:
            samples.append((now - first_fetch, total - waiting - fetched))
        time.sleep(POLL_INTERVAL)
    logs = "\n".join(worker.log()[-4000:] for worker in workers)
    raise TimeoutError(f"{sum(backlog.read())} messages left after {timeout}s:\n{logs}")


def drain_worker(services: Services, app: str, queue: str, env: dict[str, str], total: int,
                 applied, workers: int = 1,
                 samples: list[tuple[float, int]] | None = None) -> tuple[Drain, tuple[int, int]]:
    """Start ``workers`` workers on a filled queue, time them until ``applied()``, stop them.

    Returns the drain and the peak RSS summed over every worker's processes.
    """
    started: list[WorkerProcess] = []
    try:
        for number in range(1, workers + 1):
            started.append(start_worker(app, queue, services.workdir, env, services.log_level, number))
        watched = watched_groups(services, *started)
        client = redis.Redis.from_url(services.broker_url)
        try:
            drain = time_drain(Backlog(client, queue), total, started, applied, services.timeout, watched,
                               samples)
        finally:
            client.close()
        peaks = [group.peak_rss_kib() for name, group in watched.items() if name.startswith("worker")]
        return drain, (sum(kib for kib, _ in peaks), sum(count for _, count in peaks))
    finally:
        for worker in started:
            worker.stop()


# --- checking -----------------------------------------------------------------


@dataclass
class Check:
    correct: bool
    summary: str
    outcomes: dict[str, int]


def verify(db, expected: dict[str, Expected], events: int, declared: dict[str, int] | None = None) -> Check:
    """Every task as sent; every event accepted exactly once (applied or ignored); no dead letters.

    ``declared`` (job_id -> total_tasks) also holds each Job to its tasks: all
    of them ended, counted once, SUCCESS only if every one succeeded.
    """
    fields = {"_id": 0, "job_task_id": 1, "status": 1, "created_count": 1, "job_id": 1}
    stored = {doc["job_task_id"]: Expected(doc.get("status"), doc.get("created_count"), doc.get("job_id"))
              for doc in db[JOB_TASKS].find({}, fields)}
    wrong = [task for task, end in expected.items() if stored.get(task) != end]
    by_outcome = {row["_id"]: row["count"]
                for row in db[HISTORY].aggregate([{"$group": {"_id": "$outcome", "count": {"$sum": 1}}}])}
    once = {outcomes.APPLIED, outcomes.IGNORED}
    distinct = next(db[HISTORY].aggregate([
        {"$match": {"outcome": {"$in": sorted(once)}}},
        {"$group": {"_id": {"t": "$job_task_id", "e": "$event_id"}}},
        {"$count": "events"},
    ]), {}).get("events", 0)
    accepted_once = sum(by_outcome.get(kind, 0) for kind in once)
    parked_first = db[HISTORY].count_documents({"resolved_by_batch": {"$exists": True}})
    dead = db[DEAD_LETTERS].count_documents({})
    correct = (not wrong and len(stored) == len(expected) and dead == 0 and accepted_once == distinct == events
               and not any(by_outcome.get(kind) for kind in UNSETTLED))
    parts = [
        f"{len(expected) - len(wrong):,}/{len(expected):,} tasks as sent",
        "history " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(by_outcome.items()))
        + f" ({parked_first:,} parked first)",
        f"{distinct:,}/{events:,} events accepted once",
        f"{dead} dead letters",
    ]
    if declared:
        wrong_jobs = wrong_jobs_of(db, expected, declared)
        correct = correct and not wrong_jobs
        parts.append(f"{len(declared) - len(wrong_jobs)}/{len(declared)} jobs match their tasks")
        wrong += wrong_jobs
    if wrong:
        parts.append("e.g. " + ", ".join(f"{t}: {stored.get(t)} != {tuple(expected[t])}" if t in expected
                                         else t for t in wrong[:2]))
    return Check(correct, "; ".join(parts), by_outcome)


def wrong_jobs_of(db, expected: dict[str, Expected], declared: dict[str, int]) -> list[str]:
    """The declared jobs whose Job, read as the API reads it (``get``), does not say what their tasks say.

    Read through ``worker.read.reads``, not from the collection: how the store
    keeps a Job is the worker's business, what a reader gets is the check.
    """
    by_job: dict[str, list[Expected]] = {}
    for end in expected.values():
        by_job.setdefault(end.job_id, []).append(end)
    settings, scope, wrong = Settings(), Scope(DOMAIN), []
    for job_id, total in declared.items():
        mine = by_job.get(job_id, [])
        try:
            job = get_item(JOB, db, scope, {"job_id": job_id}, settings)
        except CodedError as error:
            if error.kind is not ERROR_NOT_FOUND:
                raise
            job = {}
        status = "SUCCESS" if all(end.status == lifecycle.SUCCESS for end in mine) else "FAILURE"
        counts = {state: sum(1 for end in mine if end.status == state) for state in lifecycle.STATUSES}
        if (job.get("total_tasks"), job.get("remained_tasks"), job.get("status"), job.get("task_counts"),
                job.get("created_count")) != (total, 0, status, counts, sum(end.created_count for end in mine)):
            wrong.append(f"job {job_id}")
    return wrong


# --- the runs -------------------------------------------------------------------


@dataclass
class Run:
    stream: str
    events: int
    tasks: int
    drain: Drain
    publish_rate: float
    rss: tuple[int, int]  # peak KiB summed over the worker's processes, their number
    check: Check | None = None  # the no-op baseline is not checked
    windows: tuple[float, float] | None = None  # seconds per message, first and last tenth (a long drain)

    @property
    def rate(self) -> float:
        return self.events / self.drain.seconds


def scratch_db(services: Services, prefix: str):
    tag = uuid.uuid4().hex[:8]
    return f"bench-{prefix}-{tag}", connect(services.store_url, f"bench_{prefix}_{tag}", timeout_ms=10_000,
                                           app="jobtask-bench")


def tenths(samples: list[tuple[float, int]], total: int) -> tuple[float, float]:
    """Seconds per message of the first tenth of ``total`` and of the last, from (seconds, done) samples.

    The moments at which a tenth and nine tenths were done are interpolated
    between the two samples around them; the drain begins at 0 (the first
    fetch) and ends at the last sample.
    """
    def moment(done: float) -> float:
        before = (0.0, 0)
        for sample in samples:
            if sample[1] >= done:
                (t0, d0), (t1, d1) = before, sample
                return t1 if d1 == d0 else t0 + (done - d0) / (d1 - d0) * (t1 - t0)
            before = sample
        return samples[-1][0]

    tenth = total / 10
    return moment(tenth) / tenth, (samples[-1][0] - moment(total - tenth)) / tenth


def every_tenth(samples: list[tuple[float, int]], total: int) -> list[float]:
    """Seconds per message of each tenth of ``total`` in turn, for the progress line."""
    tenth = total / 10
    moments = [0.0, *(next((t for t, done in samples if done >= number * tenth), samples[-1][0])
                      for number in range(1, 10)), samples[-1][0]]
    return [(later - earlier) / tenth for earlier, later in zip(moments, moments[1:], strict=False)]


def run_pipeline(services: Services, plan: Plan, batch_size: int | None,
                 batch_interval: float | None = None, workers: int = 1, sampled: bool = False,
                 **extra_env: str) -> Run:
    """The jobtask worker(s) on a pre-filled queue, timed until every task is terminal.

    ``sampled`` also gives the run its tenths (``tenths``): how fast the
    first and the last tenth of the messages went.
    """
    queue, db = scratch_db(services, "events")
    label = f"{plan.name}: pipeline"
    try:
        ensure_indexes(db)
        progress(f"{label}: publishing {plan.sent:,} messages ({plan.events:,} events) of {plan.tasks:,} tasks")
        publish_rate = publish(services, queue, plan)

        def all_terminal() -> bool:
            return db[JOB_TASKS].count_documents({"status": {"$in": TERMINAL}}) >= plan.tasks

        progress(f"{label}: draining ({workers} worker{'s' if workers > 1 else ''})")
        env = {**worker_env(services, queue, db.name, batch_size, batch_interval), **extra_env}
        samples: list[tuple[float, int]] | None = [] if sampled else None
        drain, rss = drain_worker(services, "worker", queue, env, plan.sent, all_terminal, workers, samples)
        windows = tenths(samples, plan.sent) if samples else None
        check = verify(db, plan.expected, plan.events, plan.declared_jobs())
        progress(f"{label}: {plan.sent / drain.seconds:,.0f} messages/s in {drain.seconds:,.1f} s"
                 + (f"; tenths {windows[0] * 1e3:.2f} / {windows[1] * 1e3:.2f} ms a message (each in turn: "
                    + " ".join(f"{seconds * 1e3:.2f}" for seconds in every_tenth(samples, plan.sent)) + ")"
                    if windows and samples else "")
                 + f"; {'correct' if check.correct else 'WRONG'}: {check.summary}")
        return Run(plan.name, plan.sent, plan.tasks, drain, publish_rate, rss, check, windows)
    finally:
        db.client.drop_database(db.name)
        db.client.close()


def run_noop(services: Services, plan: Plan, batch_size: int | None) -> Run:
    """The no-op baseline: the same messages and delivery settings, no work."""
    queue, db = scratch_db(services, "noop")
    label = f"{plan.name}: no-op"
    client = redis.Redis.from_url(services.broker_url)
    backlog = Backlog(client, queue)

    def settled() -> bool:  # a message is briefly in no list as it is fetched: look twice
        time.sleep(POLL_INTERVAL)
        return backlog.read() == (0, 0)

    try:
        progress(f"{label}: publishing {plan.sent:,} messages")
        publish_rate = publish(services, queue, plan, task_name=NOOP_TASK)
        progress(f"{label}: draining")
        env = worker_env(services, queue, db.name, batch_size, None)
        drain, rss = drain_worker(services, "bench.noop", queue, env, plan.sent, settled)
        progress(f"{label}: {plan.sent / drain.seconds:,.0f} tasks/s")
        return Run(plan.name, plan.sent, plan.tasks, drain, publish_rate, rss)
    finally:
        client.close()
        db.client.drop_database(db.name)
        db.client.close()


def measure_update_one(store_url: str, count: int, per_document: int = 10) -> float:
    """One client's sequential guarded ``update_one``s per second, ``per_document`` per document.

    The collection has only the unique ``job_task_id`` index; each update is
    guarded on its event id not being applied yet, as an idempotent store must.
    """
    db = connect(store_url, f"bench_update_one_{uuid.uuid4().hex[:8]}", timeout_ms=10_000, app="jobtask-bench")
    try:
        documents = max(1, count // per_document)
        db[JOB_TASKS].create_index("job_task_id", unique=True)
        db[JOB_TASKS].insert_many([{"job_task_id": f"job-task-u{n}", "domain_id": "domain-bench",
                                    "_applied": [], "_progress_count": 0} for n in range(documents)])
        progress(f"update_one: {count:,} guarded updates on {documents:,} documents")
        began = time.perf_counter()
        for number in range(count):
            event_id = uuid.uuid4().hex
            result = db[JOB_TASKS].update_one(
                {"job_task_id": f"job-task-u{number % documents}", "_applied.e": {"$ne": event_id}},
                {"$inc": {"_progress_count": 7},
                 "$push": {"_applied": {"e": event_id, "f": event_id, "b": "bench"}},
                 "$max": {"_activity_at": datetime.now(UTC)}},
            )
            if result.modified_count != 1:
                raise RuntimeError(f"update {number} matched nothing")
        rate = count / (time.perf_counter() - began)
        progress(f"update_one: {rate:,.0f}/s")
        return rate
    finally:
        db.client.drop_database(db.name)
        db.client.close()

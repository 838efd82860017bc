"""Benchmark of the event pipeline: ``make bench`` / ``python -m tests.bench``.

Sends N lifecycle events (default 20,000) for N/10 tasks through Redis to a
jobtask worker of two pool processes on the embedded store, and prints one
markdown table: the pipeline's events/s, two baselines on the same machine
and servers, their ratios against the target, peak memory, and a check that
every task ended exactly as sent (a fast wrong answer is worth nothing).

How it measures (the same for the pipeline and the no-op baseline):

- Each task sends created, started, 7 progressed (random deltas) and one
  terminal event (80 % succeeded, 10 % failed, 10 % canceled). Tasks run
  concurrently: each producer keeps a window of active tasks and emits the
  next event of a randomly chosen one, so a task's events stay in order but
  interleave with those of ~``--window`` other tasks.
- The queue is filled first, with the worker stopped, by ``--producers``
  processes publishing through the SDK's Celery app in pipelined batches; the
  publish rate is reported apart and is not part of any timing.
- The worker is then started and timed from its first fetch (the queue
  shrinks) until nothing is queued, in flight or unacknowledged; for the
  pipeline also until the store holds every task in a terminal state (a
  message is acknowledged only after its batch settled, so the two agree).
  Redis is polled every 20 ms; the store only once the backlog is empty.
- Baseline 1: ``tests.bench_noop``, a no-op Celery task with the same app
  settings and concurrency, fed the very same kwargs.
- Baseline 2: one client's sequential conditional ``update_one`` (guard on
  ``_applied.e``, ``$inc`` + ``$push``) against pre-inserted documents.
- Peak RSS: the sum of VmHWM over the worker's process group (main process
  and pool), read before it stops; pages shared after fork count in each.
  CPU: each process's share of one core while draining, from /proc; with
  the load average it tells what saturates, and whether something else on
  the machine competed.

Progress goes to stderr; stdout holds only the table. The exit status is 1
when a run ended in a wrong state.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis

from tests.harness import ROOT, WorkerProcess
from worker import lifecycle
from worker.client import JobTaskEvents
from worker.embedded import EmbeddedRedis, EmbeddedStore, child_env
from worker.settings import Settings
from worker.store import DEAD_LETTERS, EVENTS, JOB_TASKS, connect, ensure_indexes

EVENTS_PER_TASK = 10
PROGRESSED_PER_TASK = 7
TARGET_RATIO = 0.7
POLL_INTERVAL = 0.02
PUBLISH_BATCH = 500
TERMINAL = sorted(lifecycle.TERMINAL_STATUSES)
NOOP_TASK = "bench.noop"  # the task of tests.bench_noop
DEFAULTS = Settings.model_fields


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the events ---------------------------------------------------------------


@dataclass
class Plan:
    """Pre-generated messages, one stream per producer, and what they must yield."""

    streams: list[list[tuple[str, dict]]]
    expected: dict[str, tuple[str, int]]  # job_task_id -> (status, created_count)

    @property
    def events(self) -> int:
        return sum(len(stream) for stream in self.streams)


def task_events(rng: random.Random, job_task_id: str, number: int) -> tuple[list[tuple[str, dict]], str, int]:
    """One task's events in the order its producer sends them, and its end state."""
    common = {"domain_id": "domain-bench", "job_task_id": job_task_id}
    deltas = [rng.randint(0, 1_000) for _ in range(PROGRESSED_PER_TASK)]
    events = [
        ("job_task.created", {**common, "job_id": f"job-bench-{number // 10}", "data_source_id": "ds-bench",
                              "workspace_id": "workspace-bench", "options": {"month": "202407"}}),
        ("job_task.started", dict(common)),
        *(("job_task.progressed", {**common, "created_count_delta": delta}) for delta in deltas),
    ]
    roll, created_count = rng.random(), sum(deltas)
    if roll < 0.8:
        last_delta = rng.randint(0, 100)
        events.append(("job_task.succeeded", {**common, "created_count_delta": last_delta}))
        status, created_count = lifecycle.SUCCESS, created_count + last_delta
    elif roll < 0.9:
        events.append(("job_task.failed", {**common, "error_code": "ERROR_BENCH", "error_message": "bench"}))
        status = lifecycle.FAILURE
    else:
        events.append(("job_task.canceled", {**common, "reason": "bench"}))
        status = lifecycle.CANCELED
    return events, status, created_count


def make_plan(tasks: int, producers: int, window: int, seed: int) -> Plan:
    """Interleave tasks as concurrent producers would send them; see the module docstring."""
    rng = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    per_task, expected = [], {}
    for number in range(tasks):
        job_task_id = f"job-task-{rng.getrandbits(48):012x}"
        events, status, created_count = task_events(rng, job_task_id, number)
        per_task.append(events)
        expected[job_task_id] = (status, created_count)
    streams = []
    for producer in range(producers):
        waiting = per_task[producer::producers]
        active = [iter(events) for events in waiting[: max(1, window // producers)]]
        waiting = waiting[len(active):]
        stream: list[tuple[str, dict]] = []
        while active:
            slot = rng.randrange(len(active))
            step = next(active[slot], None)
            if step is None:
                if waiting:
                    active[slot] = iter(waiting.pop(0))
                else:
                    active.pop(slot)
                continue
            name, kwargs = step
            occurred_at = start + timedelta(milliseconds=len(stream))
            stream.append((name, {**kwargs, "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                                  "occurred_at": occurred_at.isoformat(timespec="milliseconds")}))
        streams.append(stream)
    return Plan(streams, expected)


# --- publishing ---------------------------------------------------------------


def publish_stream(broker_url: str, queue: str, stream: list[tuple[str, dict]],
                   task_name: str | None) -> tuple[float, float]:
    """In a producer process: send a stream through the SDK's Celery app, pipelined."""
    app = JobTaskEvents(broker_url, queue=queue).app
    with app.producer_or_acquire() as producer:
        batch = producer.batch(max_size=PUBLISH_BATCH) if hasattr(producer, "batch") else nullcontext()
        began = time.time()
        with batch:
            for name, kwargs in stream:
                app.send_task(task_name or name, kwargs=kwargs, queue=queue, producer=producer)
        return began, time.time()


def publish(broker_url: str, queue: str, plan: Plan, task_name: str | None = None) -> float:
    """Fill ``queue`` with the plan, one process per stream; returns messages/s."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(plan.streams)) as pool:
        spans = pool.starmap(publish_stream, [(broker_url, queue, s, task_name) for s in plan.streams])
    return plan.events / max(1e-9, max(end for _, end in spans) - min(began for began, _ in spans))


class Backlog:
    """A queue's messages in Redis: waiting, or fetched and not yet acknowledged.

    Waiting: the queue's list (and kombu's priority lists, named after it).
    Fetched: any other list naming the queue (the in-flight lists of
    ``worker.transport``) and kombu's unacknowledged hash.
    """

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue

    def read(self) -> tuple[int, int]:
        keys = [key.decode() for key in self.client.scan_iter(match=f"*{self.queue}*", _type="LIST")]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        pipe.hlen("unacked")  # the benchmark's Redis serves one worker at a time
        *lengths, unacked = pipe.execute()
        waiting = sum(length for key, length in zip(keys, lengths) if key.startswith(self.queue))
        return waiting, sum(lengths) - waiting + unacked


# --- workers ----------------------------------------------------------------


def start_worker(app: str, queue: str, workdir: Path, env: dict[str, str], log_level: str) -> WorkerProcess:
    name = f"{app.rsplit('.', 1)[-1]}-{queue}"
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


class ProcessGroup:
    """The live processes of a process group (a worker and its pool, the store), from /proc."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, leader: int) -> None:
        self.leader = leader

    def _read(self, field: str) -> dict[int, str]:
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    found[int(entry.name)] = (entry / field).read_text()
                except OSError:
                    continue  # it exited meanwhile
        return found

    def cpu_seconds(self) -> dict[int, float]:
        """User plus system CPU seconds of each process so far."""
        seconds = {}
        for pid, stat in self._read("stat").items():
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.leader:
                seconds[pid] = (int(fields[11]) + int(fields[12])) / self.TICKS
        return seconds

    def peak_rss_kib(self) -> tuple[int, int]:
        """Sum of VmHWM over the group's processes, and their number."""
        members = self.cpu_seconds()
        peaks = [int(line.split()[1]) for pid, status in self._read("status").items() if pid in members
                 for line in status.splitlines() if line.startswith("VmHWM:")]
        return sum(peaks), len(peaks)


@dataclass
class Drain:
    seconds: float
    load: tuple[float, float]  # 1-minute load average at the first fetch and at the end
    cpu: dict[str, float]  # process -> share of one core used while draining


def time_drain(backlog: Backlog, total: int, worker: WorkerProcess, applied, timeout: float,
               watched: dict[str, ProcessGroup]) -> Drain:
    """From the worker's first fetch until the backlog is gone and ``applied()``."""
    deadline = time.monotonic() + timeout
    first_fetch, load, cpu = None, 0.0, {}
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker {worker.name} exited:\n{worker.log()[-4000:]}")
        now = time.monotonic()
        waiting, fetched = backlog.read()
        if first_fetch is None and waiting < total:
            first_fetch, load = now, os.getloadavg()[0]
            cpu = {name: group.cpu_seconds() for name, group in watched.items()}
        if first_fetch is not None and waiting == 0 and fetched == 0 and applied():
            seconds = now - first_fetch
            used = {}
            for name, group in watched.items():
                before, after = cpu[name], group.cpu_seconds()
                spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
                if name == "worker":
                    used["worker main"] = spent.pop(group.leader, 0.0) / seconds
                    used["worker pool"] = sum(spent.values()) / seconds
                else:
                    used[name] = sum(spent.values()) / seconds
            return Drain(seconds, (load, os.getloadavg()[0]), used)
        time.sleep(POLL_INTERVAL)
    raise TimeoutError(f"{sum(backlog.read())} messages left after {timeout}s:\n{worker.log()[-4000:]}")


# --- the runs -------------------------------------------------------------------


@dataclass
class Services:
    broker_url: str
    store_url: str
    workdir: Path
    store: ProcessGroup | None = None
    log_level: str = "WARNING"
    timeout: float = 1800.0


@dataclass
class Run:
    messages: int
    drain: Drain
    publish_rate: float
    rss: tuple[int, int]  # KiB, processes
    checks: list[str] = field(default_factory=list)
    correct: bool = True

    @property
    def rate(self) -> float:
        return self.messages / self.drain.seconds


def worker_env(services: Services, queue: str, db_name: str, batch_size: int,
               batch_interval: float | None) -> dict[str, str]:
    env = {"JOBTASK_BROKER_URL": services.broker_url, "JOBTASK_MONGO_URL": services.store_url,
           "JOBTASK_MONGO_DB": db_name, "JOBTASK_QUEUE": queue, "JOBTASK_BATCH_SIZE": str(batch_size)}
    if batch_interval is not None:
        env["JOBTASK_BATCH_INTERVAL"] = str(batch_interval)
    return env


def verify(db, plan: Plan) -> tuple[bool, list[str]]:
    """Every task as sent, every event applied once, nothing dead-lettered."""
    fields = {"_id": 0, "job_task_id": 1, "status": 1, "created_count": 1}
    stored = {doc["job_task_id"]: (doc.get("status"), doc.get("created_count"))
              for doc in db[JOB_TASKS].find({}, fields)}
    wrong = [task for task, end in plan.expected.items() if stored.get(task) != end]
    outcomes = {row["_id"]: row["count"]
                for row in db[EVENTS].aggregate([{"$group": {"_id": "$outcome", "count": {"$sum": 1}}}])}
    parked_first = db[EVENTS].count_documents({"resolved_by_batch": {"$exists": True}})
    dead = db[DEAD_LETTERS].count_documents({})
    accepted = sum(outcomes.get(kind, 0) for kind in lifecycle.ACCEPTED_OUTCOMES)
    correct = (not wrong and len(stored) == len(plan.expected) and dead == 0
               and accepted == sum(outcomes.values()) == plan.events)
    checks = [
        f"{len(plan.expected) - len(wrong):,}/{len(plan.expected):,} tasks with the status and "
        "created_count sent",
        "history: " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(outcomes.items()))
        + f" ({parked_first:,} parked before their created)",
        f"{dead} dead letters",
    ]
    if wrong:
        checks.append("e.g. " + ", ".join(f"{t}: {stored.get(t)} != {plan.expected[t]}" for t in wrong[:3]))
    return correct, checks


def drain_worker(services: Services, app: str, queue: str, env: dict[str, str], total: int,
                 applied) -> tuple[Drain, tuple[int, int]]:
    """Start a worker on a filled queue, time it until ``applied()``, stop it."""
    worker = start_worker(app, queue, services.workdir, env, services.log_level)
    try:
        group = ProcessGroup(worker.process.pid)
        watched = {"worker": group, **({"store": services.store} if services.store else {})}
        client = redis.Redis.from_url(services.broker_url)
        try:
            drain = time_drain(Backlog(client, queue), total, worker, applied, services.timeout, watched)
        finally:
            client.close()
        return drain, group.peak_rss_kib()
    finally:
        worker.stop()


def run_pipeline(services: Services, plan: Plan, batch_size: int, batch_interval: float | None = None) -> Run:
    """The jobtask worker on a pre-filled queue, timed until every event is applied."""
    tag = uuid.uuid4().hex[:8]
    queue, db_name = f"bench-events-{tag}", f"bench_{tag}"
    db = connect(services.store_url, db_name, timeout_ms=10_000, app="jobtask-bench")
    try:
        ensure_indexes(db)
        progress(f"pipeline B={batch_size}: publishing {plan.events:,} events")
        publish_rate = publish(services.broker_url, queue, plan)
        tasks = len(plan.expected)

        def all_terminal() -> bool:
            return db[JOB_TASKS].count_documents({"status": {"$in": TERMINAL}}) >= tasks

        progress(f"pipeline B={batch_size}: starting the worker")
        env = worker_env(services, queue, db_name, batch_size, batch_interval)
        drain, rss = drain_worker(services, "worker", queue, env, plan.events, all_terminal)
        correct, checks = verify(db, plan)
        progress(f"pipeline B={batch_size}: {plan.events / drain.seconds:,.0f} events/s; "
                 + "; ".join(checks))
        return Run(plan.events, drain, publish_rate, rss, checks, correct)
    finally:
        db.client.drop_database(db_name)
        db.client.close()


def run_noop(services: Services, plan: Plan, batch_size: int) -> Run:
    """The no-op baseline: the same messages and delivery settings, no work."""
    tag = uuid.uuid4().hex[:8]
    queue, db_name = f"bench-noop-{tag}", f"bench_noop_{tag}"
    progress(f"no-op B={batch_size}: publishing {plan.events:,} messages")
    publish_rate = publish(services.broker_url, queue, plan, task_name=NOOP_TASK)
    client = redis.Redis.from_url(services.broker_url)
    backlog = Backlog(client, queue)

    def settled() -> bool:  # a message is briefly in no list as it is fetched: look twice
        time.sleep(POLL_INTERVAL)
        return backlog.read() == (0, 0)

    try:
        progress(f"no-op B={batch_size}: starting the worker")
        env = worker_env(services, queue, db_name, batch_size, None)
        drain, rss = drain_worker(services, "tests.bench_noop", queue, env, plan.events, settled)
        progress(f"no-op B={batch_size}: {plan.events / drain.seconds:,.0f} tasks/s")
        return Run(plan.events, drain, publish_rate, rss)
    finally:
        client.close()
        with connect(services.store_url, db_name, app="jobtask-bench").client as store_client:
            store_client.drop_database(db_name)


def measure_update_one(store_url: str, count: int) -> float:
    """One client's sequential guarded ``update_one``s per second, 10 per document."""
    db_name = f"bench_update_one_{uuid.uuid4().hex[:8]}"
    db = connect(store_url, db_name, timeout_ms=10_000, app="jobtask-bench")
    try:
        documents = max(1, count // EVENTS_PER_TASK)
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
                 "$max": {"_activity_at": datetime.now(timezone.utc)}},
            )
            if result.modified_count != 1:
                raise RuntimeError(f"update {number} matched nothing")
        rate = count / (time.perf_counter() - began)
        progress(f"update_one: {rate:,.0f}/s")
        return rate
    finally:
        db.client.drop_database(db.name)
        db.client.close()


# --- the table -----------------------------------------------------------------


def mib(rss: tuple[int, int]) -> str:
    return f"{rss[0] / 1024:,.0f} MiB ({rss[1]} processes)"


def percent(cpu: dict[str, float]) -> str:
    return " / ".join(f"{name} {share:.0%}" for name, share in cpu.items())


def table(args, plan: Plan, pipelines: dict[int, Run], noops: dict[int, Run], update_one: float,
          store_rss: tuple[int, int], interval: str, wall: float) -> str:
    sizes = list(pipelines)
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(pipelines[b], noops[b]) for b in sizes]))

    def target(run: Run, noop: Run) -> str:
        floor = TARGET_RATIO * min(noop.rate, update_one)
        return f"{'met' if run.rate >= floor else '**NOT met**'} ({run.rate:,.0f} vs {floor:,.0f})"

    row("pipeline: events/s, end to end", lambda run, _: f"**{run.rate:,.0f}**")
    row("pipeline: seconds from first fetch to last applied", lambda run, _: f"{run.drain.seconds:,.1f}")
    row("baseline: no-op Celery task, tasks/s", lambda _, noop: f"{noop.rate:,.0f}")
    row("baseline: single-client conditional update_one/s", lambda *_: f"{update_one:,.0f}")
    row("ratio pipeline / no-op", lambda run, noop: f"{run.rate / noop.rate:.2f}")
    row("ratio pipeline / update_one", lambda run, _: f"{run.rate / update_one:.2f}")
    row(f"target: pipeline >= {TARGET_RATIO} x min(baselines)", target)
    row("correct", lambda run, _: ("yes: " if run.correct else "**NO**: ") + "; ".join(run.checks))
    row("jobtask worker peak RSS (sum of VmHWM)", lambda run, _: mib(run.rss))
    row("no-op worker peak RSS", lambda _, noop: mib(noop.rss))
    row("store peak RSS (whole run)", lambda *_: mib(store_rss))
    row("CPU while draining, pipeline (share of one core)", lambda run, _: percent(run.drain.cpu))
    row("CPU while draining, no-op", lambda _, noop: percent(noop.drain.cpu))
    row("load average (1 min) at first fetch / end: pipeline; no-op",
        lambda run, noop: "{:.1f} / {:.1f}; {:.1f} / {:.1f}".format(*run.drain.load, *noop.drain.load))
    row("publish msgs/s, pipeline / no-op (not timed)",
        lambda run, noop: f"{run.publish_rate:,.0f} / {noop.publish_rate:,.0f}")
    method = (
        f"{plan.events:,} events, {len(plan.expected):,} tasks x (created, started, "
        f"{PROGRESSED_PER_TASK} progressed, terminal); {args.producers} producers, each interleaving "
        f"~{max(1, args.window // args.producers)} tasks in progress; queue filled first with the worker "
        "stopped; timed from the worker's first fetch until nothing is queued, in flight or unacked "
        "(pipeline: and every task terminal in the store); both workers `-c 2 -l "
        f"{args.log_level}`, prefetch 2 x B per process; JOBTASK_BATCH_INTERVAL={interval}; "
        f"{args.update_ones:,} update_ones; {os.cpu_count()} CPUs; whole run {wall:,.0f} s"
    )
    lines = [
        "| JOBTASK_BATCH_SIZE (B) | " + " | ".join(str(b) for b in sizes) + " |",
        "|---|" + "---|" * len(sizes),
        *(f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows),
        f"| method | {method} |" + " |" * (len(sizes) - 1),
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events to send, 10 per task (20000)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[DEFAULTS["batch_size"].default],
                        help="JOBTASK_BATCH_SIZE values, a column each (the worker's default)")
    parser.add_argument("--batch-interval", type=float, default=None,
                        help="JOBTASK_BATCH_INTERVAL of the worker (the worker's default)")
    parser.add_argument("--window", type=int, default=50, help="tasks in progress at once (50)")
    parser.add_argument("--producers", type=int, default=2, help="publishing processes (2)")
    parser.add_argument("--update-ones", type=int, default=2_000,
                        help="update_ones of the store baseline (2000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the events (1)")
    parser.add_argument("--log-level", default="WARNING", help="both workers' log level (WARNING)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per drain (1800)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the servers' data and the worker logs here (a temporary directory)")
    args = parser.parse_args(argv)
    if args.events < EVENTS_PER_TASK or args.producers < 1 or args.window < 1:
        parser.error("need --events >= 10, --producers >= 1 and --window >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    plan = make_plan(args.events // EVENTS_PER_TASK, args.producers, args.window, args.seed)
    interval = str(args.batch_interval or os.environ.get("JOBTASK_BATCH_INTERVAL")
                   or DEFAULTS["batch_interval"].default)
    with tempfile.TemporaryDirectory(prefix="jobtask-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        with EmbeddedRedis(workdir / "redis") as broker, EmbeddedStore(workdir / "store") as store:
            store_group = ProcessGroup(store.process.pid)
            services = Services(broker.url, store.url, workdir, store_group, args.log_level, args.timeout)
            pipelines, noops = {}, {}
            for size in args.batch_size:
                pipelines[size] = run_pipeline(services, plan, size, args.batch_interval)
                noops[size] = run_noop(services, plan, size)
            update_one = measure_update_one(store.url, args.update_ones)
            store_rss = store_group.peak_rss_kib()
    print(table(args, plan, pipelines, noops, update_one, store_rss, interval, time.monotonic() - began))
    return 0 if all(run.correct for run in pipelines.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the event pipeline: ``make bench`` / ``python -m bench``.

Drains event streams through Redis into a jobtask worker of two pool
processes on the embedded store and prints one markdown table, a row per
stream: end-to-end events/s, two baselines measured in the same run, the
ratios, the target, peak memory, CPU, and a check that every task ended as
sent and every event was accepted once (a fast wrong answer is worth nothing).

The streams (``bench.streams``; ``--scale`` multiplies their sizes):

- friendly: 300 tasks x 11 events (created, started, 8 progressed, a
  terminal), each task's events together. Target: >= 1.5 x the no-op.
- interleaved: 1,000 tasks in progress at once x 10 events: created and
  started for all, then rounds of one progressed per task, then the terminal
  events. Target: >= 1.0 x single-client guarded ``update_one``.
- long tasks: the same 10,000 events over 2 tasks of 5,000 (created,
  started, 4,997 progressed, a terminal; tasks that heartbeat for hours).
  Target: >= 0.8 x the interleaved rate of the same run.
- interleaved over 20 jobs: the interleaved stream with its tasks spread
  over 20 jobs, each declared first by a ``job.created``; every Job is
  checked against its tasks. Target: >= 0.9 x the rate of the same stream
  without Jobs: the reference row, its task events through a worker started
  with ``JOBTASK_DERIVE_JOBS=false`` (what the worker does without Jobs).
- one job of 5,000 tasks: 5,000 tasks x 6 events (created, started, 3
  progressed, a terminal), interleaved, in one Job declared first by a
  ``job.created`` with total_tasks 5,000. Target: >= 0.8 x the reference
  row, the very same task events in 500 Jobs of 10, each declared first
  (total_tasks 10). Every Job of both is checked against its tasks.
- long drains: 50,000 events of 5,000 tasks, all in progress at once (the
  interleaved stream, 10 events a task); half the 100,000 events of 10,000
  tasks of issue 24, to keep ``make bench`` within minutes (``--streams
  drain-resent drain-two --scale 2`` runs the whole). One row drains it
  with one worker and 10 % of the messages sent twice (a copy a round or
  5,000 messages after its original, whichever is more, under the same
  message id and content: a producer's retry after a lost reply, which the
  worker must take as a redelivery); the other with two workers (``-c 2``
  each) sharing the queue. The messages acknowledged are sampled every
  20 ms from the first fetch; the moments a tenth and nine tenths of them
  were done are interpolated. Target: the last tenth's time per message
  <= 1.25 x the first tenth's (in this stream the first tenth is the
  creates, the last the terminal events, on a store that grew meanwhile).

In the other streams a job has 10 tasks, as a collection run split per
account and month has (the long tasks share one job).

Terminal events: 80 % succeeded, 10 % failed, 10 % canceled.

How it measures (``bench.runs``; the same for jobtask and the no-op):

- The queue is filled first, with the worker stopped, by ``--producers``
  processes publishing through the SDK's Celery app in pipelined batches,
  each task's events through one producer in stream order; the publish rate
  is not part of any timing.
- The worker is then started and timed from its first fetch (the queue
  shrinks) until nothing is queued, in flight or unacknowledged, and for
  jobtask also until every task is terminal in the store. Redis is polled
  every 20 ms, the store only once the backlog is empty.
- No-op baseline: ``bench.noop``, a Celery task that does nothing,
  with the same app settings and concurrency, fed the very same messages;
  for the rows of 30,000 messages and more (one job, the long drains) only
  their first 10,000 x ``--scale`` (a no-op's rate does not depend on the
  stream's length, and it drains slower than the worker). A reference row
  shares the no-op of the row held against it, the two-worker drain the
  one-worker drain's.
- ``update_one`` baseline, once per run: one client's sequential guarded
  ``update_one`` (guard on the event id not applied yet; ``$inc``, ``$push``,
  ``$max``), 10 per document, on a collection with only the unique
  ``job_task_id`` index.
- Correct: every task reads back with the status, created_count and job_id
  sent; in the history (``job_task_history.outcome``) every event is applied
  or ignored exactly once, nothing is left parked, in conflict or rejected
  (duplicates, i.e. redeliveries, are counted apart); no dead letters; each
  declared Job, read as the API reads it (``worker.read.reads.get_item``),
  has its total_tasks, no remained_tasks, the status, task_counts and
  created_count its tasks give. Only public fields are read.
- Peak RSS: the sum of VmHWM over the worker's main and pool processes
  (both workers' for the two-worker drain), read before it stops (pages
  shared after fork count in each). CPU: each
  part's share of one core while draining (worker main, pool, store), with
  the load average to tell whether something else on the machine competed.

``--soak N`` runs only the memory soak instead (``bench.soak``): N
events of new tasks, about ``--window`` (1,000) in progress at once,
published while the worker drains them. Target: the worker's resident
memory grows less than 10 % from the first quarter of the events to the
last.
Then a second table, the reads (``bench.reads``): 20,000 tasks in
2,000 declared jobs seeded through the worker's batch code into a fresh
database, and per row a JobTask or Job read (list newest first, list of
one status, stat by status) through ``worker.read.reads`` timed against the
equivalent raw pymongo query on the same store. Target: <= 1.2 x the raw
query, on an index (the plan ``explain`` gives). ``--reads-only`` runs only
this table (``--scale`` sizes it too), ``--no-reads`` leaves it out.

Progress goes to stderr; stdout holds only the tables. The exit status is 1
when a run ended in a wrong state (or a read gave another answer than its
raw query).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import streams
from bench.processes import ProcessGroup
from bench.reads import reads_table, run_reads
from bench.runs import (
    POLL_INTERVAL,
    Run,
    Services,
    measure_update_one,
    producer_pool,
    run_noop,
    run_pipeline,
)
from bench.soak import run_soak, soak_table
from bench.streams import Plan
from worker.dev.embedded import EmbeddedRedis, EmbeddedStore
from worker.settings import Settings
from worker.store.client import connect
from worker.store.collections import ensure_indexes

DEFAULTS = Settings.model_fields
JOBS = 20


@dataclass(frozen=True)
class Target:
    """What a stream's rate is held against: ``ratio`` x the rate of ``against``."""

    against: str  # "no-op", "update_one" or "interleaved"
    ratio: float

    def __str__(self) -> str:
        return f">= {self.ratio:.1f}x {self.against}"


@dataclass(frozen=True)
class Steady:
    """A long drain's target: its last tenth's time per message at most ``ratio`` x its first tenth's."""

    ratio: float

    def __str__(self) -> str:
        return f"last tenth <= {self.ratio:.2f}x first"


TARGETS: dict[str, Target | Steady | None] = {
    "friendly": Target("no-op", 1.5),
    "interleaved": Target("update_one", 1.0),
    "long": Target("interleaved", 0.8),
    "no-jobs": None,  # the reference of "jobs"
    "jobs": Target("no-jobs", 0.9),
    "small-jobs": None,  # the reference of "big-job"
    "big-job": Target("small-jobs", 0.8),
    "drain-resent": Steady(1.25),
    "drain-two": Steady(1.25),
}
TASKS_PER_JOB = 10
BIG_JOB_TASKS = 5_000
BIG_JOB_EVENTS_PER_TASK = 6  # created, started, 3 progressed, a terminal
# The reads table's domain: issue 24's 100,000 tasks, most of them copies of the seeded ones.
READ_DOMAIN_TASKS = 100_000
DRAIN_TASKS = 5_000  # half the 10,000, to keep make bench within minutes (--scale 2: all of it)
RESENT = 0.10  # share of a long drain's messages sent twice
# A copy comes a round (a message per task) or this many messages after its original, whichever is
# more: beyond what a worker prefetches (2 pool processes x 10 batches of 200), so that most copies
# reach the store as redeliveries rather than meet their original in the worker's buffer.
RESEND_LAG = 5_000
# Reference rows: each is run whenever the row it is held against is, and shares its no-op.
REFERENCES = {"no-jobs": "jobs", "small-jobs": "big-job"}
# Rows whose no-op is another row's (the same task events).
NOOP_OF = {**REFERENCES, "drain-two": "drain-resent"}
# Rows of 30,000 messages and more: their no-op drains the first NOOP_SAMPLE x scale messages only.
NOOP_SAMPLE = 10_000
SAMPLED_NOOP = {"big-job", "drain-resent", "drain-two"}
WORKER_ENV = {"no-jobs": {"JOBTASK_DERIVE_JOBS": "false"}}  # what the worker does without Jobs
WORKERS = {"drain-two": 2}  # workers sharing the queue (1 elsewhere)
DRAINS = {key for key, target in TARGETS.items() if isinstance(target, Steady)}


def make_plan(key: str, scale: float, seed: int) -> Plan:
    """The stream of a row, ``scale`` times its documented size."""
    if key in ("small-jobs", "big-job"):
        tasks = max(1, round(BIG_JOB_TASKS * scale))
        jobs = 1 if key == "big-job" else max(1, tasks // TASKS_PER_JOB)
        name = (f"{tasks:,} tasks in one declared job" if key == "big-job"
                else f"the same in {jobs:,} declared jobs of {TASKS_PER_JOB} (reference)")
        return streams.interleaved(tasks, seed, BIG_JOB_EVENTS_PER_TASK, jobs=jobs, name=name, declare=True)
    if key in DRAINS:
        tasks = max(1, round(DRAIN_TASKS * scale))
        jobs = max(1, tasks // TASKS_PER_JOB)
        if key == "drain-two":
            return streams.interleaved(tasks, seed, jobs=jobs, name=f"long drain of {tasks:,} tasks, 2 workers")
        plan = streams.interleaved(tasks, seed, jobs=jobs,
                                   name=f"long drain of {tasks:,} tasks, {RESENT:.0%} resent")
        return streams.resend(plan, RESENT, lag=max(tasks, RESEND_LAG), seed=seed)
    tasks = max(1, round((300 if key == "friendly" else 1_000) * scale))
    jobs = max(1, tasks // TASKS_PER_JOB)
    if key == "friendly":
        return streams.friendly(tasks, seed, jobs=jobs)
    if key == "interleaved":
        return streams.interleaved(tasks, seed, jobs=jobs)
    if key == "long":
        per_task = max(streams.MIN_EVENTS_PER_TASK, round(5_000 * scale))
        return streams.interleaved(2, seed, per_task, jobs=1, name="long tasks")
    jobs = min(JOBS, tasks)
    if key == "no-jobs":
        return streams.interleaved(tasks, seed, jobs=jobs, name="the same, without Jobs (reference)")
    return streams.interleaved(tasks, seed, jobs=jobs, name=f"interleaved over {jobs} declared jobs",
                               declare=True)


# --- the table -----------------------------------------------------------------


def mib(rss: tuple[int, int]) -> str:
    return f"{rss[0] / 1024:,.0f} MiB"


def worker_setting(name: str, given) -> str:
    """What the workers run with: the option, else the inherited environment, else the default."""
    return str(given or os.environ.get(f"JOBTASK_{name.upper()}") or DEFAULTS[name].default)


def target_cell(target: Target | Steady | None, run: Run, noop: Run, update_one: float,
                runs: dict[str, tuple[Run, Run]]) -> str:
    if target is None:
        return "reference"
    if isinstance(target, Steady):
        if run.windows is None:
            return f"{target}: n/a (not sampled)"
        first, last = run.windows
        ratio = last / first
        return (f"{target}: {'met' if ratio <= target.ratio else '**NOT met**'} ({ratio:.2f}x: "
                f"{first * 1e3:.2f} then {last * 1e3:.2f} ms a message)")
    rates = {"no-op": noop.rate, "update_one": update_one,
             **{key: other.rate for key, (other, _) in runs.items()}}
    if not rates.get(target.against):
        return f"{target}: n/a ({target.against} not run)"
    ratio = run.rate / rates[target.against]
    return f"{target}: {'met' if ratio >= target.ratio else '**NOT met**'} ({ratio:.2f}x)"


def table(args, runs: dict[str, tuple[Run, Run]], update_one: float, store_rss: tuple[int, int],
          wall: float) -> str:
    """One row per stream; see the module docstring for what each cell measures."""
    header = ["stream", "events (tasks)", "events/s end to end (drain s)", "no-op tasks/s",
              "/ no-op", "/ update_one", "target", "correct", "peak RSS worker (no-op)",
              "CPU main / pool / store", "load 1 min start / end"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for key, (run, noop) in runs.items():
        cells = [
            run.stream,
            f"{run.events:,} ({run.tasks:,})",
            f"**{run.rate:,.0f}** ({run.drain.seconds:,.1f})",
            f"{noop.rate:,.0f}",
            f"{run.rate / noop.rate:.2f}",
            f"{run.rate / update_one:.2f}",
            target_cell(TARGETS[key], run, noop, update_one, runs),
            ("yes: " if run.check.correct else "**NO**: ") + run.check.summary,
            f"{mib(run.rss)} ({mib(noop.rss)})",
            " / ".join(f"{share:.0%}" for share in run.drain.cpu.values()),
            "{:.1f} / {:.1f}".format(*run.drain.load),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    baseline = [f"baseline: single-client guarded update_one ({args.update_ones:,} updates)", "",
                f"{update_one:,.0f}"]
    lines.append("| " + " | ".join(baseline + [""] * (len(header) - len(baseline))) + " |")
    batch = worker_setting("batch_size", args.batch_size)
    interval = worker_setting("batch_interval", args.batch_interval)
    method = (
        f"queue filled first by {args.producers} producers (each task's events through one, in stream order) "
        "with the worker stopped; timed from the worker's first fetch until nothing is queued, in flight or "
        "unacked and (jobtask) every task terminal in the store; Redis polled every "
        f"{POLL_INTERVAL * 1000:.0f} ms, the store once the backlog is empty; "
        f"both workers `-c 2 -l {args.log_level}`, JOBTASK_BATCH_SIZE={batch}, "
        f"JOBTASK_BATCH_INTERVAL={interval}; no-op: the same messages to a Celery task that does nothing "
        f"(of the {', '.join(sorted(SAMPLED_NOOP))} rows, their first {max(1, round(NOOP_SAMPLE * args.scale)):,}); "
        f"long drains: messages acknowledged sampled every {POLL_INTERVAL * 1000:.0f} ms, the moments a tenth "
        f"and nine tenths were done interpolated; {RESENT:.0%} of the messages sent again a round or "
        f"{RESEND_LAG:,} messages later (whichever is more) under "
        "the same message id (one worker), or two workers sharing the queue; "
        "update_one: one client, guard on the event id, $inc + $push + $max, 10 per document, only the unique "
        "job_task_id index; RSS: sum of VmHWM over the worker's main and 2 pool processes (both workers' of "
        "a two-worker drain); CPU: share of one "
        f"core while draining; store peak RSS {mib(store_rss)}; scale {args.scale:g}, seed {args.seed}; "
        f"{os.cpu_count()} CPUs; whole run {wall:,.0f} s"
    )
    lines.append("| " + " | ".join(["method", method] + [""] * (len(header) - 2)) + " |")
    return "\n".join(lines)


# --- the command -----------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size of every stream relative to the documented one (1; 0.05 = 5 %%)")
    parser.add_argument("--streams", nargs="+", choices=list(TARGETS), default=list(TARGETS),
                        help="which rows to run (all)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="JOBTASK_BATCH_SIZE of both workers (the worker's default)")
    parser.add_argument("--batch-interval", type=float, default=None,
                        help="JOBTASK_BATCH_INTERVAL of both workers (the worker's default)")
    parser.add_argument("--producers", type=int, default=2, help="publishing processes (2)")
    parser.add_argument("--update-ones", type=int, default=2_000, help="update_ones of the store baseline (2000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the events (1)")
    parser.add_argument("--log-level", default="WARNING", help="both workers' log level (WARNING)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds allowed per drain; for the soak, without progress (1800)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the servers' data and the worker logs here (a temporary directory)")
    parser.add_argument("--soak", type=int, default=None, metavar="EVENTS",
                        help="run only the memory soak of EVENTS events (e.g. 1000000); not part of the default")
    parser.add_argument("--window", type=int, default=1_000,
                        help="soak: tasks in progress at once (1000)")
    parser.add_argument("--reads-only", action="store_true",
                        help="run only the reads table (20,000 tasks in 2,000 jobs x --scale)")
    parser.add_argument("--no-reads", action="store_true", help="leave the reads table out")
    parser.add_argument("--read-repeat", type=int, default=15,
                        help="reads: timed runs of each read and of its raw query (15)")
    args = parser.parse_args(argv)
    if args.read_repeat < 1:
        parser.error("need --read-repeat >= 1")
    if args.reads_only and args.no_reads:
        parser.error("--reads-only and --no-reads exclude each other")
    if args.scale <= 0 or args.producers < 1 or args.update_ones < 1 or args.window < 1:
        parser.error("need --scale > 0, --producers >= 1, --update-ones >= 1 and --window >= 1")
    if args.soak is not None and args.soak < streams.INTERLEAVED_EVENTS_PER_TASK:
        parser.error(f"--soak needs at least {streams.INTERLEAVED_EVENTS_PER_TASK} events")
    return args


def ordered_streams(chosen: list[str]) -> list[str]:
    """The rows asked for, with the reference a row is held against."""
    wanted = set(chosen) | {reference for reference, row in REFERENCES.items() if row in chosen}
    return [key for key in TARGETS if key in wanted]


def noop_plan(key: str, plan: Plan, scale: float) -> Plan:
    """What the no-op of a row drains: its messages, or the first of them for the longest rows."""
    if key not in SAMPLED_NOOP:
        return plan
    sample = max(1, round(NOOP_SAMPLE * scale))
    return Plan(plan.name, plan.messages[:sample], plan.expected, plan.jobs)


def run_streams(services: Services, args) -> dict[str, tuple[Run, Run]]:
    """Every row asked for, with its no-op (another row's when ``NOOP_OF`` says so and it is run)."""
    keys = ordered_streams(args.streams)
    runs: dict[str, tuple[Run, Run | None]] = {}
    with producer_pool(args.producers) as services.producer_pool:
        for key in keys:
            plan = make_plan(key, args.scale, args.seed)
            run = run_pipeline(services, plan, args.batch_size, args.batch_interval, WORKERS.get(key, 1),
                               key in DRAINS, **WORKER_ENV.get(key, {}))
            shared = NOOP_OF.get(key) in keys
            runs[key] = (run, None if shared else run_noop(services, noop_plan(key, plan, args.scale),
                                                           args.batch_size))
    shared_noops = {key: (run, runs[NOOP_OF[key]][1] if noop is None else noop) for key, (run, noop) in runs.items()}
    return {key: (run, noop) for key, (run, noop) in shared_noops.items() if noop is not None}


def reads_section(store_url: str, args) -> tuple[str, bool]:
    """The reads table on a fresh database of ``store_url``, and whether every answer was right."""
    tasks, jobs = max(10, round(20_000 * args.scale)), max(1, round(2_000 * args.scale))
    domain_tasks = round(READ_DOMAIN_TASKS * args.scale)
    db = connect(store_url, "bench_reads", timeout_ms=30_000, app="jobtask-bench")
    try:
        db.client.drop_database(db.name)
        ensure_indexes(db)
        rows = run_reads(db, tasks, jobs, args.read_repeat, args.seed,
                         progress=lambda text: print(f"reads: {text}", file=sys.stderr, flush=True),
                         domain_tasks=domain_tasks)
        return (reads_table(rows, tasks, jobs, args.read_repeat, domain_tasks),
                all(row.same_answer for row in rows))
    finally:
        db.client.drop_database(db.name)
        db.client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    if args.reads_only:
        with tempfile.TemporaryDirectory(prefix="jobtask-bench-") as scratch, \
                EmbeddedStore((args.workdir or Path(scratch)) / "store") as store:
            text, correct = reads_section(store.url, args)
        print(text)
        return 0 if correct else 1
    reads_correct = True
    with tempfile.TemporaryDirectory(prefix="jobtask-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        with EmbeddedRedis(workdir / "redis") as broker, EmbeddedStore(workdir / "store") as store:
            store_group = ProcessGroup(store.process.pid)
            services = Services(broker.url, store.url, workdir, store_group, args.log_level, args.timeout,
                                args.producers)
            if args.soak is not None:
                soak = run_soak(services, args.soak, args.window, args.seed, args.batch_size, args.batch_interval)
                print(soak_table(soak, args, time.monotonic() - began))
                return 0 if soak.check.correct else 1
            update_one = measure_update_one(store.url, args.update_ones)
            runs = run_streams(services, args)
            store_rss = store_group.peak_rss_kib()
            streams_text = table(args, runs, update_one, store_rss, time.monotonic() - began)
            if not args.no_reads:
                reads_text, reads_correct = reads_section(store.url, args)
    print(streams_text)
    if not args.no_reads:
        print()
        print(reads_text)
    correct = all(run.check.correct for run, _ in runs.values()) and reads_correct
    return 0 if correct else 1

"""The soak (``python -m bench --soak 1000000``): does the worker's memory stay flat?

Not part of CI nor of the default run. Background producers publish an
interleaved stream block by block (``--window`` new tasks of 10 events each,
across the producers, about ``--window`` tasks in progress at once), and wait
while the queue already holds two windows' worth, so Redis never holds the
whole stream. The worker runs meanwhile. Every second the benchmark samples
the resident memory of the worker's processes (VmRSS of the main process and
each pool process, summed) against how many events have been acknowledged.
It reports the highest sample of the first quarter of the events (steady
state, early) and of the last quarter; the target is a growth under 10 %.
At the end every task and event is checked as in the other streams.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from bench.processes import Backlog, cpu_shares
from bench.runs import (
    POLL_INTERVAL,
    TERMINAL,
    Check,
    Services,
    progress,
    scratch_db,
    send_stream,
    start_worker,
    verify,
    watched_groups,
    worker_env,
)
from bench.streams import INTERLEAVED_EVENTS_PER_TASK, soak_blocks, soak_chunk
from worker.client import JobTaskEvents
from worker.store.collections import JOB_TASKS, ensure_indexes

GROWTH_LIMIT = 0.10
SAMPLE_INTERVAL = 1.0
WAITING_WINDOWS = 2  # a producer waits while the queue holds this many windows of events


@dataclass
class Soak:
    events: int
    tasks: int
    window: int
    seconds: float
    rss_first: tuple[int, int]  # KiB: highest summed VmRSS in the first quarter, processes
    rss_last: tuple[int, int]  # the same in the last quarter
    peak: tuple[int, int]  # summed VmHWM at the end
    samples: int
    cpu: dict[str, float]
    check: Check

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def growth(self) -> float:
        return self.rss_last[0] / self.rss_first[0] - 1


def published_key(queue: str) -> str:
    return f"bench-soak-published:{queue}"


def produce(broker_url: str, queue: str, seed: int, blocks: list[tuple[int, int]], start: datetime,
            most_waiting: int) -> None:
    """In a producer process: publish its blocks in order, never far ahead of the worker."""
    client, events = redis.Redis.from_url(broker_url), JobTaskEvents(broker_url, queue=queue)
    try:
        for number, tasks in blocks:
            while client.llen(queue) >= most_waiting:
                time.sleep(0.2)
            block = soak_chunk(seed, number, tasks, start)
            send_stream(events.app, queue, block.messages, None)
            client.incrby(published_key(queue), block.events)
    finally:
        events.close()
        client.close()


def quarter_peaks(samples: list[tuple[float, int, int]]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Highest (KiB, processes) sample while at most 25 % and at least 75 % of the events were done."""
    first = [(kib, count) for done, kib, count in samples if done <= 0.25]
    last = [(kib, count) for done, kib, count in samples if done >= 0.75]
    return max(first or [(0, 0)]), max(last or [(0, 0)])


def run_soak(services: Services, events: int, window: int, seed: int, batch_size: int | None,
             batch_interval: float | None) -> Soak:
    per_block = max(1, window // services.producers)
    blocks = list(enumerate(soak_blocks(events, per_block)))
    tasks = sum(count for _, count in blocks)
    total = tasks * INTERLEAVED_EVENTS_PER_TASK
    # Old enough that the last event is still in the past (1 ms apart in queue order).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1, milliseconds=total)
    queue, db = scratch_db(services, "soak")
    client = redis.Redis.from_url(services.broker_url)
    context = multiprocessing.get_context("spawn")
    producers = [context.Process(target=produce, daemon=True, args=(
        services.broker_url, queue, seed, blocks[n::services.producers], start,
        WAITING_WINDOWS * window * INTERLEAVED_EVENTS_PER_TASK)) for n in range(services.producers)]
    worker = None
    try:
        ensure_indexes(db)
        progress(f"soak: {total:,} events of {tasks:,} tasks, ~{window:,} in progress at once")
        for producer in producers:
            producer.start()
        worker = start_worker("worker", queue, services.workdir,
                              worker_env(services, queue, db.name, batch_size, batch_interval),
                              services.log_level)
        watched = watched_groups(services, worker)
        backlog = Backlog(client, queue)
        samples, first_fetch, cpu = [], None, {}
        done, moved_at, sampled_at, reported = 0, time.monotonic(), 0.0, 0.0
        while True:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited:\n{worker.log()[-4000:]}")
            waiting, fetched = backlog.read()
            now = time.monotonic()
            published = int(client.get(published_key(queue)) or 0)
            if published - waiting - fetched > done:
                done, moved_at = published - waiting - fetched, now
            if first_fetch is None and (fetched or done):
                first_fetch, cpu = now, {name: group.cpu_seconds() for name, group in watched.items()}
            if first_fetch is not None and now - sampled_at >= SAMPLE_INTERVAL:
                samples.append((done / total, *watched["worker"].rss_kib()))
                sampled_at = now
                if done / total >= reported + 0.05:
                    reported = done / total
                    progress(f"soak: {done:,} events done, worker RSS {samples[-1][1] / 1024:,.0f} MiB")
            if (published == total and waiting == fetched == 0
                    and db[JOB_TASKS].count_documents({"status": {"$in": TERMINAL}}) >= tasks):
                samples.append((1.0, *watched["worker"].rss_kib()))
                break
            if now - moved_at > services.timeout:
                raise TimeoutError(f"soak: no progress in {services.timeout}s:\n{worker.log()[-4000:]}")
            time.sleep(POLL_INTERVAL)
        seconds = time.monotonic() - first_fetch
        cpu = cpu_shares(watched, cpu, seconds)
        peak = watched["worker"].peak_rss_kib()
        worker.stop()
        progress("soak: checking every task and event")
        expected = {}
        for number, count in blocks:
            expected.update(soak_chunk(seed, number, count, start).expected)
        check = verify(db, expected, total)
        first, last = quarter_peaks(samples)
        return Soak(total, tasks, window, seconds, first, last, peak, len(samples), cpu, check)
    finally:
        if worker is not None:
            worker.stop()
        for producer in producers:
            if producer.is_alive():
                producer.terminate()
            producer.join()
        client.delete(published_key(queue))
        client.close()
        db.client.drop_database(db.name)
        db.client.close()


def soak_table(soak: Soak, args, wall: float) -> str:
    def mib(rss: tuple[int, int]) -> str:
        return f"{rss[0] / 1024:,.0f} MiB ({rss[1]} processes)"

    met = "met" if soak.growth < GROWTH_LIMIT else "**NOT met**"
    rows = [
        ("events (tasks; tasks in progress at once)",
         f"{soak.events:,} ({soak.tasks:,}; ~{soak.window:,})"),
        ("events/s, end to end", f"**{soak.rate:,.0f}** ({soak.seconds:,.0f} s)"),
        ("worker RSS, first quarter of the events (highest sample)", mib(soak.rss_first)),
        ("worker RSS, last quarter of the events (highest sample)", mib(soak.rss_last)),
        ("growth (target < 10 %)", f"**{soak.growth:+.1%}**: {met}"),
        ("worker peak RSS at the end (sum of VmHWM)", mib(soak.peak)),
        ("CPU, share of one core (worker main / pool / store)",
         " / ".join(f"{name} {share:.0%}" for name, share in soak.cpu.items())),
        ("correct", ("yes: " if soak.check.correct else "**NO**: ") + soak.check.summary),
        ("method", f"{args.producers} background producers publishing interleaved blocks (created, started, "
                   "7 progressed, a terminal per task) of new tasks, each waiting while the queue held "
                   f"{WAITING_WINDOWS} windows of events; worker `-c 2 -l {args.log_level}` running meanwhile; "
                   f"VmRSS of its processes summed every {SAMPLE_INTERVAL:g} s ({soak.samples:,} samples), "
                   "quarters by acknowledged events; timed from its first fetch until nothing is queued, "
                   f"in flight or unacked and every task terminal; {os.cpu_count()} CPUs; whole run "
                   f"{wall:,.0f} s"),
    ]
    return "\n".join(["| soak | |", "|---|---|", *(f"| {label} | {value} |" for label, value in rows)])

"""The benchmark's code path on a few events: what it measures must be right.

Speed is not asserted here (``make bench`` reports it); correctness is: each
stream is a valid lifecycle per task in the order its definition gives, and
a tiny run of each stream through the real worker leaves every task as sent
and every event accepted once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from bench import main as bench
from bench import reads as bench_reads
from bench import streams as bench_streams
from bench.runs import Services, measure_update_one, run_noop, run_pipeline, tenths, verify
from bench.soak import quarter_peaks, run_soak, soak_table
from bench.streams import Expected
from worker.contract import lifecycle, outcomes
from worker.store.collections import DEAD_LETTERS, HISTORY, JOB_TASKS

TERMINAL_KINDS = {"succeeded": lifecycle.SUCCESS, "failed": lifecycle.FAILURE, "canceled": lifecycle.CANCELED}


def kinds(messages) -> list[str]:
    return [name.removeprefix("job_task.") for name, _ in messages]


def assert_lifecycles(plan: bench_streams.Plan, events_per_task: int) -> dict[str, list]:
    """Each task: created, started, progressed..., one terminal, in time order, ending as expected."""
    per_task = defaultdict(list)
    for name, kwargs in plan.messages:
        per_task[kwargs["job_task_id"]].append((name, kwargs))
    assert set(per_task) == set(plan.expected)
    assert plan.events == plan.tasks * events_per_task
    assert len({kwargs["event_id"] for _, kwargs in plan.messages}) == plan.events
    times = [kwargs["occurred_at"] for _, kwargs in plan.messages]
    assert times == sorted(times), "occurred_at rises in queue order"
    for job_task_id, messages in per_task.items():
        sent = kinds(messages)
        assert sent[:2] == ["created", "started"]
        assert sent[2:-1] == ["progressed"] * (events_per_task - 3)
        expected = plan.expected[job_task_id]
        assert TERMINAL_KINDS[sent[-1]] == expected.status
        deltas = [kwargs.get("created_count_delta", 0) for name, kwargs in messages
                  if name in ("job_task.progressed", "job_task.succeeded")]
        assert sum(deltas) == expected.created_count
        assert messages[0][1]["job_id"] == expected.job_id
    return per_task


def test_friendly_sends_each_task_together():
    plan = bench_streams.friendly(tasks=6, seed=3)
    assert_lifecycles(plan, 11)
    owners = [kwargs["job_task_id"] for _, kwargs in plan.messages]
    assert [owners[n * 11:(n + 1) * 11] for n in range(6)] == [[task] * 11 for task in plan.expected]
    assert len({expected.job_id for expected in plan.expected.values()}) == 6


@pytest.mark.parametrize("tasks, per_task", [(7, 10), (2, 40)])
def test_interleaved_sends_phases_across_all_tasks(tasks, per_task):
    plan = bench_streams.interleaved(tasks, seed=4, events_per_task=per_task)
    assert_lifecycles(plan, per_task)
    order = list(plan.expected)
    blocks = [plan.messages[n:n + tasks] for n in range(0, plan.events, tasks)]
    assert len(blocks) == per_task, "one block per step: created, started, each progressed round, terminal"
    for step, block in enumerate(blocks):
        assert [kwargs["job_task_id"] for _, kwargs in block] == order, "every task once per block"
        kind = {0: {"created"}, 1: {"started"}, per_task - 1: set(TERMINAL_KINDS)}.get(step, {"progressed"})
        assert set(kinds(block)) <= kind


def test_jobs_spread_the_same_stream_over_that_many_job_ids():
    alone = bench_streams.interleaved(10, seed=5)
    spread = bench_streams.interleaved(10, seed=5, jobs=3)
    assert_lifecycles(spread, 10)
    assert {expected.job_id for expected in spread.expected.values()} == {f"job-bench-{n}" for n in range(3)}
    assert len({expected.job_id for expected in alone.expected.values()}) == 10
    def without_job_id(plan):
        return [(name, {k: v for k, v in kwargs.items() if k != "job_id"}) for name, kwargs in plan.messages]

    assert without_job_id(alone) == without_job_id(spread), "the same stream but for the job_id"


def test_default_sizes_are_the_documented_streams():
    sizes = {key: bench.make_plan(key, 1.0, seed=1) for key in bench.TARGETS if key != "drain-two"}
    assert (sizes["friendly"].tasks, sizes["friendly"].events) == (300, 3_300)
    assert (sizes["interleaved"].tasks, sizes["interleaved"].events) == (1_000, 10_000)
    assert (sizes["long"].tasks, sizes["long"].events) == (2, 10_000)
    assert (sizes["no-jobs"].tasks, sizes["no-jobs"].jobs, sizes["no-jobs"].events) == (1_000, 20, 10_000)
    assert (sizes["jobs"].tasks, sizes["jobs"].jobs, sizes["jobs"].events) == (1_000, 20, 10_020)
    assert sizes["jobs"].declared_jobs() == {f"job-bench-{n}": 50 for n in range(20)}
    assert [kwargs["job_task_id"] for _, kwargs in sizes["jobs"].messages[20:]] == \
        [kwargs["job_task_id"] for _, kwargs in sizes["no-jobs"].messages], \
        "the same task events after the 20 job.created"
    assert {expected.job_id for expected in sizes["interleaved"].expected.values()} == \
        {f"job-bench-{n}" for n in range(100)}, "ten tasks a job"
    small, big = sizes["small-jobs"], sizes["big-job"]
    assert (small.tasks, small.events, big.tasks, big.events) == (5_000, 30_500, 5_000, 30_001)
    assert set(small.declared_jobs().values()) == {10} and len(small.declared_jobs()) == 500
    assert big.declared_jobs() == {"job-bench-0": 5_000}
    def task_events(plan, declarations):
        return [(name, kwargs["job_task_id"], kwargs.get("created_count_delta"))
                for name, kwargs in plan.messages[declarations:]]

    assert task_events(small, 500) == task_events(big, 1), "the same task events after the declarations"
    assert_lifecycles(bench_streams.Plan(big.name, big.messages[1:], big.expected, 1), 6)
    resent = sizes["drain-resent"]
    assert (resent.tasks, resent.events, resent.sent) == (5_000, 50_000, 55_000)


def test_split_keeps_each_task_on_one_producer_in_order():
    plan = bench_streams.interleaved(9, seed=6)
    parts = bench_streams.split(plan.messages, 3)
    assert sorted(kwargs["event_id"] for part in parts for _, kwargs in part) == \
        sorted(kwargs["event_id"] for _, kwargs in plan.messages)
    owner = {}
    for number, part in enumerate(parts):
        for _, kwargs in part:
            assert owner.setdefault(kwargs["job_task_id"], number) == number
        positions = [plan.messages.index(message) for message in part]
        assert positions == sorted(positions)


def test_soak_blocks_are_reproducible_and_follow_each_other():
    assert bench_streams.soak_blocks(1_000_000, 500) == [500] * 200
    assert bench_streams.soak_blocks(125, 5) == [5, 5, 2]
    start = datetime(2024, 7, 1, tzinfo=UTC)
    first, again = (bench_streams.soak_chunk(1, 0, 5, start) for _ in range(2))
    assert first.messages == again.messages, "producers and the checker make the same block"
    assert_lifecycles(first, 10)
    assert [kwargs["job_task_id"] for _, kwargs in first.messages[:5]] == list(first.expected)
    second = bench_streams.soak_chunk(1, 1, 5, start)
    assert second.messages[0][1]["occurred_at"] > first.messages[-1][1]["occurred_at"]
    assert not set(first.expected) & set(second.expected)


def test_resend_sends_a_share_again_later_under_the_same_message_id():
    plan = bench_streams.interleaved(20, seed=9)
    resent = bench_streams.resend(plan, share=0.1, lag=30, seed=9)
    assert (resent.events, resent.sent, resent.resent) == (200, 220, 20)
    positions: dict[str, list[int]] = defaultdict(list)
    for position, (_, kwargs) in enumerate(resent.messages):
        positions[bench_streams.message_id(kwargs)].append(position)
    copies = [found for found in positions.values() if len(found) > 1]
    assert len(positions) == 200 and len(copies) == 20 and all(len(found) == 2 for found in copies)
    assert all(second - first > 30 or second > 200 for first, second in copies), "a copy comes lag later"
    first_copies = [resent.messages[found[0]] for found in positions.values()]
    assert first_copies == plan.messages, "the originals in their order"


def test_tenths_interpolate_the_moments_a_tenth_and_nine_tenths_were_done():
    samples = [(0.0, 0), (1.0, 5), (2.0, 15), (9.0, 85), (10.0, 95), (12.0, 100)]
    first, last = tenths(samples, 100)
    assert first == pytest.approx(1.5 / 10), "10 done at 1.5 s"
    assert last == pytest.approx((12.0 - 9.5) / 10), "90 done at 9.5 s, the last at 12 s"


def test_rss_quarters_are_the_highest_samples_of_the_first_and_last_quarter():
    samples = [(0.0, 10, 3), (0.2, 50, 3), (0.5, 99, 3), (0.8, 55, 3), (1.0, 52, 3)]
    assert quarter_peaks(samples) == ((50, 3), (55, 3))


TINY = {
    "friendly": bench_streams.friendly(4, seed=7),
    "interleaved": bench_streams.interleaved(8, seed=7),
    "long": bench_streams.interleaved(2, seed=7, events_per_task=30, name="long tasks"),
    "jobs": bench_streams.interleaved(8, seed=7, jobs=3, name="interleaved over 3 jobs", declare=True),
}


@pytest.fixture
def services(broker_url, store_url, tmp_path) -> Services:
    return Services(broker_url, store_url, tmp_path, timeout=120, producers=1)


@pytest.mark.parametrize("key", list(TINY))
def test_each_stream_through_the_worker_is_correct(services, key):
    plan = TINY[key]
    run = run_pipeline(services, plan, batch_size=20)

    assert run.check.correct, run.check.summary
    assert run.check.summary.startswith(f"{plan.tasks}/{plan.tasks} tasks as sent")
    assert run.check.outcomes.get(outcomes.APPLIED) == plan.events
    assert run.rate > 0 and run.rss[0] > 0 and run.rss[1] == 3  # main process and 2 pool processes
    assert set(run.drain.cpu) == {"main", "pool"}


def test_one_declared_job_resent_to_two_workers_is_correct_and_sampled(services):
    """The new rows' paths in one cheap drain: one declared Job, copies resent, two workers, tenths."""
    plan = bench_streams.interleaved(40, seed=8, events_per_task=6, jobs=1, name="one job of 40", declare=True)
    # Batches of 20: a worker prefetches 400 messages; copies 150 later meet their original or the store.
    resent = bench_streams.resend(plan, share=0.1, lag=150, seed=8)
    run = run_pipeline(services, resent, batch_size=20, workers=2, sampled=True)

    assert run.check.correct, run.check.summary
    assert "1/1 jobs match their tasks" in run.check.summary
    assert run.events == 265 and run.check.outcomes.get(outcomes.APPLIED) == 241
    assert run.rss[1] == 6, "two workers of a main process and 2 pool processes"
    assert run.windows is not None and min(run.windows) > 0
    cell = bench.target_cell(bench.TARGETS["drain-two"], run, run, 1.0, {})
    assert cell.startswith("last tenth <= 1.25x first: ") and "ms a message" in cell


def test_baselines_and_table(services, store_url):
    plan = TINY["friendly"]
    noop = run_noop(services, plan, batch_size=20)
    assert noop.rate > 0 and noop.rss[1] == 3 and noop.check is None
    update_one = measure_update_one(store_url, 20)
    assert update_one > 0

    run = run_pipeline(services, plan, batch_size=20)
    args = bench.parse_args(["--scale", "0.01", "--streams", "friendly", "long"])
    rendered = bench.table(args, {"friendly": (run, noop), "long": (run, noop)}, update_one, (1024, 1), 1.0)
    lines = rendered.splitlines()
    assert len(lines) == 2 + 2 + 2  # header, rule, two streams, update_one, method
    assert len({line.count("|") for line in lines}) == 1, "every row has every column"
    assert "| friendly | 44 (4) |" in rendered and "yes: 4/4 tasks as sent" in rendered
    assert ">= 0.8x interleaved: n/a" in rendered and ">= 1.5x no-op: " in rendered


def test_soak_runs_through_the_worker(services):
    args = bench.parse_args(["--soak", "200", "--window", "10"])
    soak = run_soak(services, 200, window=10, seed=8, batch_size=20, batch_interval=None)

    assert soak.check.correct, soak.check.summary
    assert (soak.events, soak.tasks) == (200, 20)
    assert soak.rss_first[0] > 0 and soak.rss_last[1] == 3 and soak.samples > 0
    assert "growth (target < 10 %)" in soak_table(soak, args, 1.0)


def test_check_catches_a_wrong_task_an_event_applied_twice_and_leftovers(mongo_db):
    expected = {"t1": Expected(lifecycle.SUCCESS, 5, "j1"), "t2": Expected(lifecycle.FAILURE, 0, "j1")}
    mongo_db[JOB_TASKS].insert_many([
        {"job_task_id": "t1", "status": lifecycle.SUCCESS, "created_count": 5, "job_id": "j1"},
        {"job_task_id": "t2", "status": lifecycle.FAILURE, "created_count": 0, "job_id": "j1"},
    ])
    history = [{"_id": f"m{n}", "job_task_id": f"t{n % 2 + 1}", "event_id": f"e{n}", "outcome": outcomes.APPLIED}
               for n in range(4)]
    history.append({"_id": "m0-again", "job_task_id": "t1", "event_id": "e0", "outcome": outcomes.DUPLICATE})
    mongo_db[HISTORY].insert_many(history)
    right = verify(mongo_db, expected, 4)
    assert right.correct and right.outcomes == {"applied": 4, "duplicate": 1}, right.summary

    mongo_db[HISTORY].insert_one({"_id": "m0-twice", "job_task_id": "t1", "event_id": "e0",
                                 "outcome": outcomes.APPLIED})
    assert not verify(mongo_db, expected, 4).correct, "an event applied twice"
    mongo_db[HISTORY].delete_one({"_id": "m0-twice"})
    mongo_db[JOB_TASKS].update_one({"job_task_id": "t2"}, {"$set": {"created_count": 1}})
    wrong = verify(mongo_db, expected, 4)
    assert not wrong.correct and "1/2 tasks as sent" in wrong.summary
    mongo_db[JOB_TASKS].update_one({"job_task_id": "t2"}, {"$set": {"created_count": 0}})
    mongo_db[HISTORY].insert_one({"_id": "m9", "job_task_id": "t3", "event_id": "e9", "outcome": outcomes.PARKED})
    assert not verify(mongo_db, expected, 4).correct, "an event left parked"
    mongo_db[HISTORY].delete_one({"_id": "m9"})
    mongo_db[DEAD_LETTERS].insert_one({"_id": "m10", "reason": "bench"})
    assert not verify(mongo_db, expected, 4).correct, "a dead letter"


# --- the reads table (bench/reads.py) -----------------------------------------------------------


def test_reads_seed_through_the_worker_and_compare_like_with_like(mongo_db):
    rows = bench_reads.run_reads(mongo_db, tasks=50, jobs=10, repeat=1)
    assert [(row.resource, row.read) for row in rows] == [
        (resource, read) for resource in ("JobTask", "Job")
        for read in ("list newest first, page of 100", "list status FAILURE, page of 100", "stat: count by status")]
    assert all(row.same_answer for row in rows), "each read answers what its raw query answers"
    # Every Job was declared and equals its tasks; 9 in 10 belong to the domain read.
    jobs = list(mongo_db.jobs.find({"domain_id": bench_reads.DOMAIN}))
    assert len(jobs) == 9 and {row.documents for row in rows if row.resource == "Job"} == {9}
    for job in jobs:
        tasks = list(mongo_db.job_tasks.find({"job_id": job["job_id"]}))
        assert job["total_tasks"] == len(tasks) == 5
        assert job["task_counts"]["SUCCESS"] == sum(task["status"] == "SUCCESS" for task in tasks)
    # secantusdb answers explain: every read of ours runs on an index.
    assert all(row.index_backed for row in rows), [row.plan for row in rows]
    table = bench_reads.reads_table(rows, 50, 10, 1)
    assert table.count("\n") == len(rows) + 2 and "**NO**" not in table


def test_reads_check_catches_a_wrong_answer():
    wrong = bench_reads.Read("list", bench_reads.JOB, lambda: (1, ["a"]), lambda: (1, ["b"]), lambda: {})
    row = bench_reads.time_read(wrong, 1)
    assert not row.same_answer and row.plan == "explain gave no plan" and not row.index_backed

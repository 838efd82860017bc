"""The benchmark's code path on a few events: what it measures must be right.

Speed is not asserted here (``make bench`` reports it); correctness is: the
events the benchmark generates are a valid lifecycle per task, and after a
run every task holds the status and created_count it was sent.
"""

from __future__ import annotations

from collections import defaultdict

from tests import bench
from worker import lifecycle


def test_plan_sends_each_task_its_lifecycle_in_order():
    plan = bench.make_plan(tasks=40, producers=2, window=10, seed=3)
    assert plan.events == 40 * bench.EVENTS_PER_TASK
    kinds, times, event_ids = defaultdict(list), defaultdict(list), set()
    for stream in plan.streams:
        for name, kwargs in stream:
            kinds[kwargs["job_task_id"]].append(name.removeprefix("job_task."))
            times[kwargs["job_task_id"]].append(kwargs["occurred_at"])
            event_ids.add(kwargs["event_id"])
    assert len(event_ids) == plan.events
    assert set(kinds) == set(plan.expected)
    for job_task_id, sent in kinds.items():
        assert sent[:2] == ["created", "started"]
        assert sent[2:-1] == ["progressed"] * bench.PROGRESSED_PER_TASK
        assert sent[-1] in ("succeeded", "failed", "canceled")
        assert times[job_task_id] == sorted(times[job_task_id])
    first_stream = [kwargs["job_task_id"] for _, kwargs in plan.streams[0][:20]]
    assert len(set(first_stream)) > 1, "tasks are interleaved, not sent one after another"


def test_bench_run_applies_every_event(broker_url, store_url, tmp_path):
    plan = bench.make_plan(tasks=20, producers=2, window=10, seed=5)
    services = bench.Services(broker_url, store_url, tmp_path, timeout=120)

    run = bench.run_pipeline(services, plan, batch_size=20)

    assert run.correct, run.checks
    assert run.checks[0].startswith("20/20 tasks")
    assert run.rate > 0 and run.rss[0] > 0 and run.rss[1] == 3  # main process and 2 pool processes
    assert {status for status, _ in plan.expected.values()} <= lifecycle.TERMINAL_STATUSES

    noop = bench.run_noop(services, plan, batch_size=20)
    assert noop.rate > 0 and noop.rss[1] == 3

    assert bench.measure_update_one(store_url, 20) > 0
    args = bench.parse_args(["--events", str(plan.events)])
    rendered = bench.table(args, plan, {20: run}, {20: noop}, 100.0, (1024, 1), "0.05", 1.0)
    assert rendered.count("\n| ") >= 10 and "yes: 20/20 tasks" in rendered

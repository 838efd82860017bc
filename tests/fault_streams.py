"""Streams of many tasks' events for the fault tests, how to send them, and how to check what they left."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from tests.lifecycle_data import at, expected_task, interleaved
from worker.store.collections import HISTORY


def stream(prefix: str, tasks: int, progressed: int, seed: int = 7) -> list[tuple[str, dict]]:
    """Events of ``tasks`` tasks, each task's in order, the tasks interleaved."""
    rng = random.Random(seed)
    per_task = []
    for index in range(tasks):
        common = {"domain_id": "domain-a", "job_task_id": f"job-task-{prefix}-{index}"}
        events = [("job_task.created", {**common, "event_id": "c", "job_id": "job-1",
                                        "data_source_id": "ds-1", "occurred_at": at(0)}),
                  ("job_task.started", {**common, "event_id": "s", "occurred_at": at(10)})]
        events += [("job_task.progressed", {**common, "event_id": f"p{n}", "occurred_at": at(20 + n),
                                            "created_count_delta": rng.randint(1, 500)})
                   for n in range(progressed)]
        terminal = rng.choice(["succeeded", "failed", "canceled"])
        end = {**common, "event_id": "end", "occurred_at": at(5000)}
        if terminal == "failed":
            end.update(error_code="ERROR_X", error_message="boom")
        events.append((f"job_task.{terminal}", end))
        per_task.append(events)
    return interleaved(rng, per_task)


def send_in_background(pipeline, events, pause_every: int = 50, pause: float = 0.05) -> threading.Thread:
    def run():
        for index, (name, kwargs) in enumerate(events):
            pipeline.events.send_raw(name, kwargs)
            if index % pause_every == pause_every - 1:
                time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_exact(pipeline, events):
    by_task: dict[str, list] = {}
    for name, kwargs in events:
        by_task.setdefault(kwargs["job_task_id"], []).append((name, kwargs))
    for job_task_id, mine in by_task.items():
        assert pipeline.task(job_task_id) == expected_task(mine), job_task_id
        assert pipeline.logged_event_ids(job_task_id) == Counter(kwargs["event_id"] for _, kwargs in mine), job_task_id


def applied_so_far(pipeline) -> int:
    return pipeline.db[HISTORY].count_documents({"outcome": "applied"})

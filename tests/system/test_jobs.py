"""Jobs through the real worker: each Job equals a plain function of its tasks, whatever happens.

``expected_job`` restates issue 9's rules naively over the tasks as stored
(never over the worker's own bookkeeping); every test ends by comparing the
stored Job with it, after concurrency, redelivery, a job.created that comes
last, a killed worker, or a cancel.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import datetime

import pytest

from tests.harness import wait_for
from tests.job_checks import assert_job_is
from tests.lifecycle_data import at, interleaved
from worker.store.jobs import stored_job

DOMAIN = "domain-a"


def task_stream(prefix: str, tasks: int, job_id: str, seed: int = 3, terminal_copies: int = 1):
    """Each task's created, started, a progressed and a terminal event; terminals sent several times."""
    rng = random.Random(seed)
    per_task = []
    for number in range(tasks):
        common = {"domain_id": DOMAIN, "job_task_id": f"job-task-{prefix}-{number}"}
        end = rng.choice(["succeeded", "succeeded", "failed", "canceled"])
        terminal = {**common, "event_id": "end", "occurred_at": at(9000 + number)}
        if end == "failed":
            terminal.update(error_code="E", error_message="boom")
        events = [
            ("job_task.created", {**common, "event_id": "c", "job_id": job_id, "data_source_id": "ds-1",
                                  "occurred_at": at(number)}),
            ("job_task.started", {**common, "event_id": "s", "occurred_at": at(1000 + number)}),
            ("job_task.progressed", {**common, "event_id": "p", "created_count_delta": rng.randint(1, 99),
                                     "occurred_at": at(2000 + number)}),
            *[(f"job_task.{end}", terminal)] * terminal_copies,
        ]
        per_task.append(events)
    return interleaved(rng, per_task)


def send(pipeline, events) -> None:
    for name, kwargs in events:
        pipeline.events.send_raw(name, kwargs)


def job_created(job_id: str, total: int, event_id: str = "jc", occurred: int = 0):
    return ("job.created", {"event_id": event_id, "domain_id": DOMAIN, "job_id": job_id,
                            "data_source_id": "ds-1", "total_tasks": total, "occurred_at": at(occurred)})


def job_canceled(job_id: str, event_id: str = "cancel", occurred: int = 5000, reason: str = "wrong month"):
    return ("job.canceled", {"event_id": event_id, "domain_id": DOMAIN, "job_id": job_id,
                             "reason": reason, "occurred_at": at(occurred)})


def test_a_job_is_exact_under_two_workers_triple_delivery_and_a_late_job_created(pipeline_factory):
    pipeline = pipeline_factory()
    for _ in range(2):
        pipeline.start_worker(concurrency=2, JOBTASK_BATCH_SIZE="7")
    stream = task_stream("two", tasks=30, job_id="job-two", terminal_copies=3)
    send(pipeline, stream)
    pipeline.wait_until_idle(timeout=240)
    job = assert_job_is(pipeline, "job-two")
    assert job["status"] == "IN_PROGRESS", "no job.created yet: the job cannot end"
    assert job["total_tasks"] == 30 and job["remained_tasks"] == 0
    send(pipeline, [job_created("job-two", total=30)])
    pipeline.wait_until_idle()
    job = assert_job_is(pipeline, "job-two", declared=30)
    assert job["status"] == "FAILURE" and job["error_code"] == "ERROR_JOB_TASK"
    failed, canceled = job["task_counts"]["FAILURE"], job["task_counts"]["CANCELED"]
    assert f"{failed} failed" in job["error_message"] and f"{canceled} canceled" in job["error_message"]


def test_a_job_of_thousands_of_tasks_is_exact_under_two_workers_with_a_cancel_in_the_middle(pipeline_factory):
    """A Job of 1,200 tasks (five parts), each terminal sent twice, canceled while half its tasks are in."""
    pipeline = pipeline_factory()
    for _ in range(2):
        pipeline.start_worker(concurrency=2, JOBTASK_BATCH_SIZE="100")
    tasks = 1_200
    stream = task_stream("big", tasks=tasks, job_id="job-big", terminal_copies=2)
    cancel_at = 9000 + tasks // 2  # the terminals of the first half come before the cancel
    middle = len(stream) // 2
    send(pipeline, [job_created("job-big", total=tasks), *stream[:middle],
                    job_canceled("job-big", occurred=cancel_at), *stream[middle:]])
    pipeline.wait_until_idle(timeout=400)
    job = assert_job_is(pipeline, "job-big", declared=tasks, ending=("CANCELED",))
    assert (job["total_tasks"], job["remained_tasks"]) == (tasks, 0)
    stored = {task["job_task_id"]: task["status"] for task in pipeline.db.job_tasks.find({"job_id": "job-big"})}
    assert len(stored) == tasks
    for number in range(tasks):
        status = stored[f"job-task-big-{number}"]
        # The earliest terminal decides: a task's own before the cancel, the cancel after.
        assert (status == "CANCELED") if number > tasks // 2 else status in ("SUCCESS", "FAILURE", "CANCELED")
    canceled_by_job = Counter()
    for entry in pipeline.db.job_task_log.find({}, {"ev.i": 1}):
        for item in entry["ev"]:
            task, _, event_id = item["i"].partition("/")
            if event_id.startswith("job-canceled:"):
                canceled_by_job[task] += 1
    assert set(canceled_by_job) == set(stored) and set(canceled_by_job.values()) == {1}
    outcomes = Counter(r["outcome"] for r in pipeline.history(task_name="job.canceled"))
    assert outcomes["applied"] == 1  # a delivery requeued to go on is not recorded


def test_a_job_is_exact_when_a_worker_is_killed_mid_stream(pipeline_factory):
    pipeline = pipeline_factory()
    first = pipeline.start_worker(concurrency=2, JOBTASK_BATCH_SIZE="10")
    stream = [job_created("job-kill", total=40)] + task_stream("kill", tasks=40, job_id="job-kill")
    sender = threading.Thread(target=send, args=(pipeline, stream), daemon=True)
    sender.start()
    wait_for(lambda: pipeline.db.job_tasks.count_documents({}) >= 15, timeout=120)
    first.kill()
    sender.join()
    pipeline.start_worker(concurrency=2)
    pipeline.wait_until_idle(timeout=240)
    assert pipeline.db.job_tasks.count_documents({}) == 40
    assert_job_is(pipeline, "job-kill", declared=40)


def test_a_declared_job_ends_when_its_last_task_does(pipeline):
    send(pipeline, [job_created("job-ok", total=2)])
    for number in range(2):
        task = pipeline.events.created(domain_id=DOMAIN, job_id="job-ok", data_source_id="ds-1")
        pipeline.events.progressed(task, domain_id=DOMAIN, created_count_delta=10)
        pipeline.wait_until_idle()
        assert assert_job_is(pipeline, "job-ok", declared=2)["status"] == "IN_PROGRESS"
        pipeline.events.succeeded(task, domain_id=DOMAIN, created_count_delta=number)
    pipeline.wait_until_idle()
    job = assert_job_is(pipeline, "job-ok", declared=2)
    assert (job["status"], job["created_count"], job["remained_tasks"]) == ("SUCCESS", 21, 0)
    assert job["data_source_id"] == "ds-1" and job["domain_id"] == DOMAIN


def test_a_job_with_no_tasks_declared_is_done(pipeline):
    send(pipeline, [job_created("job-empty", total=0)])
    pipeline.wait_until_idle()
    job = assert_job_is(pipeline, "job-empty", declared=0, declared_at=datetime.fromisoformat(at(0)))
    assert (job["status"], job["total_tasks"], job["remained_tasks"]) == ("SUCCESS", 0, 0)


def test_cancel_acts_on_tasks_before_during_and_after_it(pipeline):
    common = {"domain_id": DOMAIN}
    done, running, late = "job-task-done", "job-task-running", "job-task-late"
    for job_task_id in (done, running):
        send(pipeline, [("job_task.created", {**common, "job_task_id": job_task_id, "event_id": "c",
                                              "job_id": "job-x", "data_source_id": "ds-1",
                                              "occurred_at": at(0)}),
                        ("job_task.started", {**common, "job_task_id": job_task_id, "event_id": "s",
                                              "occurred_at": at(100)})])
    send(pipeline, [("job_task.succeeded", {**common, "job_task_id": done, "event_id": "t",
                                            "occurred_at": at(1000)})])
    pipeline.wait_until_idle()
    send(pipeline, [job_canceled("job-x", occurred=5000)])
    pipeline.wait_until_idle()
    # Redelivered, as another message, and a late created for the canceled job.
    send(pipeline, [job_canceled("job-x", occurred=5000),
                    ("job_task.created", {**common, "job_task_id": late, "event_id": "c", "job_id": "job-x",
                                          "data_source_id": "ds-1", "occurred_at": at(7000)})])
    pipeline.wait_until_idle()
    statuses = {task: pipeline.task(task)["status"] for task in (done, running, late)}
    assert statuses == {done: "SUCCESS", running: "CANCELED", late: "CANCELED"}
    assert pipeline.task(running)["finished_at"] == pipeline.task(late)["finished_at"]
    job = assert_job_is(pipeline, "job-x", ending=("CANCELED",))
    assert job["error_message"] == "wrong month"
    assert job["task_counts"]["CANCELED"] == 2 and job["remained_tasks"] == 0
    outcomes = sorted(r["outcome"] for r in pipeline.history(task_name="job.canceled"))
    assert outcomes == ["applied", "duplicate"]
    # The cancel reached each task once: a canceled event per task in its log.
    for job_task_id in (done, running, late):
        logged = pipeline.logged_event_ids(job_task_id)
        assert sum(count for event_id, count in logged.items() if event_id.startswith("job-canceled:")) == 1


def test_a_success_before_the_cancel_stays_even_when_it_arrives_after(pipeline):
    common = {"domain_id": DOMAIN, "job_task_id": "job-task-slow-news"}
    send(pipeline, [("job_task.created", {**common, "event_id": "c", "job_id": "job-y",
                                          "data_source_id": "ds-1", "occurred_at": at(0)}),
                    job_canceled("job-y", occurred=5000)])
    pipeline.wait_until_idle()
    assert pipeline.task("job-task-slow-news")["status"] == "CANCELED"
    send(pipeline, [("job_task.succeeded", {**common, "event_id": "t", "created_count_delta": 3,
                                            "occurred_at": at(4000)})])
    pipeline.wait_until_idle()
    task = pipeline.task("job-task-slow-news")
    assert (task["status"], task["created_count"]) == ("SUCCESS", 3)
    assert_job_is(pipeline, "job-y", ending=("CANCELED",))


def test_a_task_naming_another_domains_job_is_rejected(pipeline):
    send(pipeline, [job_created("job-mine", total=1)])
    pipeline.wait_until_idle()
    intruder = {"domain_id": "domain-b", "job_task_id": "job-task-intruder", "event_id": "c",
                "job_id": "job-mine", "data_source_id": "ds-1"}
    send(pipeline, [("job_task.created", intruder),
                    ("job.canceled", {"event_id": "x", "domain_id": "domain-b", "job_id": "job-mine"})])
    pipeline.wait_until_idle()
    assert pipeline.task("job-task-intruder") is None
    reasons = sorted(letter["reason"] for letter in pipeline.dead_letters())
    assert reasons == ["domain_id does not match the job's", "job_id names a job of another domain"]
    assert assert_job_is(pipeline, "job-mine", declared=1)["status"] == "IN_PROGRESS"


def test_a_job_created_again_with_other_fields_is_a_conflict(pipeline):
    send(pipeline, [job_created("job-z", total=2)])
    pipeline.wait_until_idle()
    send(pipeline, [job_created("job-z", total=5, event_id="jc2")])
    pipeline.wait_until_idle()
    (letter,) = pipeline.dead_letters()
    assert letter["outcome"] == "conflict" and letter["job_id"] == "job-z"
    assert stored_job(pipeline.db, "job-z")["total_tasks"] == 2


@pytest.mark.parametrize("field, value", [("total_tasks", -1), ("total_tasks", "3"), ("job_id", "")])
def test_a_bad_job_event_names_its_field(pipeline, field, value):
    _, kwargs = job_created("job-bad", total=1)
    send(pipeline, [("job.created", {**kwargs, field: value})])
    pipeline.wait_until_idle()
    (letter,) = pipeline.dead_letters()
    assert letter["field"] == field

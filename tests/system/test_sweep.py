"""The sweep (issue 9, Timeouts): stale tasks and overdue Jobs end TIMEOUT, once, by the worker's clock.

The pure rules (``worker.contract.sweep``) are checked directly; the rest runs
the real thing: ``job_task.sweep`` sent through Redis to a real worker (which
must run it as an ordinary task, not as an event), its ``timed_out`` events
back through the same queue, and at the end real ``celery -A worker beat``
processes. Timeouts are a second or two here; waiting past them is the test,
never a measure of speed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import ROOT, wait_for
from tests.job_checks import assert_job_is
from worker.contract.events import JobTimedOut, TimedOut, parse_event, to_millis
from worker.contract.lifecycle import CANCELED, FAILURE, IN_PROGRESS, PENDING, SUCCESS, TIMEOUT
from worker.contract.sweep import Timeouts, is_overdue, is_stale, job_timed_out, task_timed_out
from worker.ingest.sweep import sweep
from worker.store.jobs import stored_job

DOMAIN = "domain-a"
SECOND = timedelta(seconds=1)


# --- the rules ----------------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = Timeouts(heartbeat=60, pending=600, job=3600)


@pytest.mark.parametrize("status, silent_for, stale", [
    (IN_PROGRESS, 59, False), (IN_PROGRESS, 61, True),
    (PENDING, 61, False), (PENDING, 599, False), (PENDING, 601, True),
    *[(status, 10**6, False) for status in (SUCCESS, FAILURE, CANCELED, TIMEOUT)],
])
def test_which_tasks_are_stale(status, silent_for, stale):
    assert is_stale(status, NOW - timedelta(seconds=silent_for), NOW, RULES) is stale


def test_which_jobs_are_overdue():
    assert is_overdue(IN_PROGRESS, NOW - timedelta(seconds=3601), NOW, RULES)
    assert not is_overdue(IN_PROGRESS, NOW - timedelta(seconds=3599), NOW, RULES)
    assert not any(is_overdue(status, NOW - timedelta(days=9), NOW, RULES)
                   for status in (SUCCESS, FAILURE, CANCELED, TIMEOUT))


def test_a_stale_tasks_event_is_derived_from_what_the_sweep_saw():
    applied_at = NOW - timedelta(seconds=90, microseconds=1234)
    event = task_timed_out("job-task-1", DOMAIN, IN_PROGRESS, applied_at, RULES)
    assert event == task_timed_out("job-task-1", DOMAIN, IN_PROGRESS, applied_at, RULES), "a second sweep"
    assert event["event_id"] == f"sweep:job-task-1:{int(applied_at.timestamp() * 1000)}"  # ms, floored
    # It became stale when the timeout ran out, not when the sweep noticed.
    assert datetime.fromisoformat(event["occurred_at"]) == to_millis(applied_at) + timedelta(seconds=60)
    parsed = parse_event("job_task.timed_out", [], event)
    assert isinstance(parsed, TimedOut) and parsed.reason == event["reason"]
    newer = task_timed_out("job-task-1", DOMAIN, IN_PROGRESS, applied_at + SECOND, RULES)
    assert newer["event_id"] != event["event_id"], "news since: another staleness, another event"
    pending = task_timed_out("job-task-1", DOMAIN, PENDING, applied_at, RULES)
    assert datetime.fromisoformat(pending["occurred_at"]) - datetime.fromisoformat(event["occurred_at"]) \
        == timedelta(seconds=540)
    with pytest.raises(ValueError):
        task_timed_out("job-task-1", DOMAIN, SUCCESS, applied_at, RULES)


def test_an_overdue_jobs_event_is_derived_from_when_it_was_stored():
    created_on = NOW - timedelta(hours=2)
    event = job_timed_out("job-1", DOMAIN, created_on, RULES)
    assert event == job_timed_out("job-1", DOMAIN, created_on.replace(tzinfo=None), RULES)
    assert event["event_id"] == f"sweep:job-1:{int(created_on.timestamp() * 1000)}"
    assert datetime.fromisoformat(event["occurred_at"]) == created_on + timedelta(hours=1)
    assert isinstance(parse_event("job.timed_out", [], event), JobTimedOut)


# --- through the real worker -------------------------------------------------------------------------

SHORT = {"JOBTASK_HEARTBEAT_TIMEOUT": "1", "JOBTASK_PENDING_TIMEOUT": "1", "JOBTASK_JOB_TIMEOUT": "3600"}
LONG = {"JOBTASK_HEARTBEAT_TIMEOUT": "3600", "JOBTASK_PENDING_TIMEOUT": "3600", "JOBTASK_JOB_TIMEOUT": "3600"}


def sweep_now(pipeline, copies: int = 1) -> None:
    """Send ``job_task.sweep`` through the broker, as beat does, and wait for all it set off."""
    for _ in range(copies):
        pipeline.events.send_raw("job_task.sweep", {})
    pipeline.wait_until_idle()


def applied_at(pipeline, job_task_id: str) -> datetime:
    return pipeline.db.job_tasks.find_one({"_id": job_task_id})["_applied_at"]


def wait_past(moment: datetime, seconds: float) -> None:
    """Until ``seconds`` (plus a margin) passed since ``moment`` on this clock, the workers' too."""
    remaining = (moment + timedelta(seconds=seconds + 0.3) - datetime.now(UTC)).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def sweep_outcomes(pipeline, job_task_id: str) -> list[str]:
    records = pipeline.history(job_task_id=job_task_id, task_name="job_task.timed_out")
    return sorted(record["outcome"] for record in records if record["event_id"].startswith("sweep:"))


@pytest.fixture
def short(pipeline_factory):
    """A worker whose tasks go stale after a second of silence."""
    pipeline = pipeline_factory()
    pipeline.start_worker(concurrency=2, **SHORT)
    return pipeline


def start(pipeline, job_task_id: str, job_id: str = "job-s", started: bool = True) -> None:
    pipeline.events.created(domain_id=DOMAIN, job_id=job_id, data_source_id="ds-1", job_task_id=job_task_id)
    if started:
        pipeline.events.started(job_task_id, domain_id=DOMAIN)
        pipeline.events.progressed(job_task_id, domain_id=DOMAIN, created_count_delta=5)


def test_a_silent_task_times_out_and_a_pending_one_too(short):
    start(short, "job-task-silent")
    start(short, "job-task-waiting", started=False)
    short.wait_until_idle()
    last_news = {task: applied_at(short, task) for task in ("job-task-silent", "job-task-waiting")}
    wait_past(max(last_news.values()), 1)
    sweep_now(short)
    for job_task_id, seen in last_news.items():
        task = short.task(job_task_id)
        assert (task["status"], task["error_code"]) == (TIMEOUT, "ERROR_JOB_TASK_TIMEOUT")
        assert task["finished_at"] == to_millis(seen) + SECOND
        assert sweep_outcomes(short, job_task_id) == ["applied"]
    assert short.task("job-task-silent")["created_count"] == 5
    assert "no event for 1 s" in short.task("job-task-silent")["error_message"]
    assert "not started for 1 s" in short.task("job-task-waiting")["error_message"]
    assert short.dead_letters() == [], "the sweep ran as a task, not as an event"


def test_a_success_that_occurred_before_the_timeout_still_wins(short):
    for job_task_id in ("job-task-late-news", "job-task-too-late"):
        start(short, job_task_id)
    short.wait_until_idle()
    seen = {task: applied_at(short, task) for task in ("job-task-late-news", "job-task-too-late")}
    wait_past(max(seen.values()), 1)
    sweep_now(short)
    assert short.task("job-task-late-news")["status"] == TIMEOUT
    # The plugin's success occurred half a second after its last news, within the
    # heartbeat timeout; it arrives only now. The other one's came after it ran out.
    short.events.succeeded("job-task-late-news", domain_id=DOMAIN, created_count_delta=2,
                           occurred_at=(seen["job-task-late-news"] + SECOND / 2).isoformat())
    short.events.succeeded("job-task-too-late", domain_id=DOMAIN, created_count_delta=2,
                           occurred_at=(seen["job-task-too-late"] + 2 * SECOND).isoformat())
    short.wait_until_idle()
    late_news = short.task("job-task-late-news")
    assert (late_news["status"], late_news["created_count"]) == (SUCCESS, 7)
    assert "error_code" not in late_news
    assert short.task("job-task-too-late")["status"] == TIMEOUT
    sweep_now(short)
    assert short.task("job-task-late-news")["status"] == SUCCESS, "a task that ended is never swept"


def test_sweeps_at_once_time_nothing_out_twice(short):
    start(short, "job-task-once")
    short.wait_until_idle()
    seen = applied_at(short, "job-task-once")
    wait_past(seen, 1)
    # What two sweeps (or a redelivered one) see alike, sent twice over: the
    # events are the same, so the worker applies one and refuses the other.
    sent: list[tuple[str, dict]] = []
    timeouts = Timeouts(heartbeat=1, pending=1, job=3600)
    for _ in range(2):
        sweep(short.db, lambda kind, fields: sent.append((kind, fields)), timeouts)
    assert len(sent) == 2 and sent[0] == sent[1]
    for kind, fields in sent:
        short.events.send(kind, **fields)
    sweep_now(short, copies=3)  # and three real sweeps at once on two pool processes
    outcomes = sweep_outcomes(short, "job-task-once")
    assert outcomes.count("applied") == 1 and set(outcomes) <= {"applied", "duplicate"}
    assert len(outcomes) >= 2
    logged = short.logged_event_ids("job-task-once")
    assert sum(count for event_id, count in logged.items() if event_id.startswith("sweep:")) == 1
    assert short.dead_letters() == []


def test_a_backfill_of_day_old_events_times_nothing_out(pipeline_factory):
    pipeline = pipeline_factory()
    pipeline.start_worker(concurrency=2, **{**LONG, "JOBTASK_JOB_TIMEOUT": "60"})
    day_ago = datetime.now(UTC) - timedelta(days=1)
    old = lambda minutes: (day_ago + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    pipeline.events.job_created(domain_id=DOMAIN, job_id="job-old", data_source_id="ds-1", total_tasks=3,
                                occurred_at=old(0))
    for number, status in enumerate(("running", "pending", "done")):
        job_task_id = f"job-task-old-{status}"
        pipeline.events.created(domain_id=DOMAIN, job_id="job-old", data_source_id="ds-1",
                                job_task_id=job_task_id, occurred_at=old(number))
        if status != "pending":
            pipeline.events.started(job_task_id, domain_id=DOMAIN, occurred_at=old(10))
        if status == "done":
            pipeline.events.succeeded(job_task_id, domain_id=DOMAIN, occurred_at=old(20))
    pipeline.wait_until_idle()
    sent = []
    sweep(pipeline.db, lambda kind, fields: sent.append(fields), Timeouts(heartbeat=3600, pending=3600, job=60))
    assert sent == [], "staleness is measured on the worker's clock"
    sweep_now(pipeline)
    assert "raised unexpected" not in pipeline.workers[0].log()
    statuses = {task["job_task_id"]: task["status"] for task in pipeline.db.job_tasks.find()}
    assert statuses == {"job-task-old-running": IN_PROGRESS, "job-task-old-pending": PENDING,
                        "job-task-old-done": SUCCESS}
    assert stored_job(pipeline.db, "job-old")["status"] == IN_PROGRESS
    assert pipeline.history(task_name="job_task.timed_out") == pipeline.history(task_name="job.timed_out") == []


def test_an_overdue_job_times_out_with_its_unfinished_tasks(pipeline_factory):
    pipeline = pipeline_factory()
    pipeline.start_worker(concurrency=2, **{**LONG, "JOBTASK_JOB_TIMEOUT": "2"})
    pipeline.events.job_created(domain_id=DOMAIN, job_id="job-late", data_source_id="ds-1", total_tasks=4)
    start(pipeline, "job-task-finished", job_id="job-late")
    pipeline.events.succeeded("job-task-finished", domain_id=DOMAIN)
    start(pipeline, "job-task-running", job_id="job-late")
    start(pipeline, "job-task-pending", job_id="job-late", started=False)
    pipeline.wait_until_idle()
    created_on = pipeline.db.jobs.find_one({"_id": "job-late"})["_created_on"]
    timeouts = Timeouts(heartbeat=3600, pending=3600, job=2)
    for moment, overdue in ((created_on + SECOND, []), (created_on + 3 * SECOND, ["job-late"])):
        assert sweep(pipeline.db, lambda kind, fields: None, timeouts, now=moment).jobs == overdue
    wait_past(created_on, 2)
    sweep_now(pipeline, copies=2)
    job = assert_job_is(pipeline, "job-late", declared=4, ending=(TIMEOUT,))
    assert (job["status"], job["error_code"]) == (TIMEOUT, "ERROR_JOB_TIMEOUT")
    assert job["finished_at"] == to_millis(created_on) + 2 * SECOND
    assert job["task_counts"] == {"PENDING": 0, "IN_PROGRESS": 0, "SUCCESS": 1, "FAILURE": 0,
                                  "CANCELED": 0, "TIMEOUT": 2}
    assert job["total_tasks"] == 4 and job["remained_tasks"] == 1, "one task never came"
    for job_task_id in ("job-task-running", "job-task-pending"):
        task = pipeline.task(job_task_id)
        assert (task["status"], task["finished_at"]) == (TIMEOUT, job["finished_at"])
    assert pipeline.task("job-task-finished")["status"] == SUCCESS
    outcomes = sorted(record["outcome"] for record in pipeline.history(task_name="job.timed_out"))
    assert outcomes.count("applied") == 1 and set(outcomes) <= {"applied", "duplicate"}
    # A task that comes after its job timed out ends with it.
    start(pipeline, "job-task-after", job_id="job-late")
    pipeline.wait_until_idle()
    assert pipeline.task("job-task-after")["status"] == TIMEOUT


def test_a_job_whose_tasks_all_ended_by_sweeps_settles(short):
    short.events.job_created(domain_id=DOMAIN, job_id="job-all", data_source_id="ds-1", total_tasks=2)
    start(short, "job-task-ok", job_id="job-all")
    short.events.succeeded("job-task-ok", domain_id=DOMAIN)
    start(short, "job-task-crashed", job_id="job-all")
    short.wait_until_idle()
    assert stored_job(short.db, "job-all")["status"] == IN_PROGRESS
    wait_past(applied_at(short, "job-task-crashed"), 1)
    sweep_now(short)
    job = assert_job_is(short, "job-all", declared=2)
    assert (job["status"], job["error_code"]) == (FAILURE, "ERROR_JOB_TASK")
    assert job["error_message"] == "1 timed out of 2 job tasks"
    assert job["finished_at"] == short.task("job-task-crashed")["finished_at"]


def test_an_undeclared_job_whose_tasks_all_ended_says_so_and_never_times_out(pipeline_factory):
    """The seed's own flow: tasks with a job_id, never a job.created."""
    pipeline = pipeline_factory()
    pipeline.start_worker(concurrency=2, **{**LONG, "JOBTASK_JOB_TIMEOUT": "1"})
    start(pipeline, "job-task-only", job_id="job-undeclared")
    pipeline.events.succeeded("job-task-only", domain_id=DOMAIN)
    start(pipeline, "job-task-still", job_id="job-running-undeclared")
    pipeline.wait_until_idle()
    job = assert_job_is(pipeline, "job-undeclared")
    assert (job["status"], job["total_tasks"], job["remained_tasks"]) == (IN_PROGRESS, 1, 0)
    assert job["error_code"] == "ERROR_JOB_NOT_DECLARED"
    assert job["error_message"].startswith("no job.created declared this job's total: 1 of the 1 task known")
    created_on = pipeline.db.jobs.find_one({"_id": "job-undeclared"})["_created_on"]
    wait_past(created_on, 1)
    # Long past the job timeout: the finished one waits for its declaration, the running one times out.
    assert sweep(pipeline.db, lambda kind, fields: None, Timeouts(heartbeat=3600, pending=3600, job=1),
                 now=created_on + 60 * SECOND).jobs == ["job-running-undeclared"]
    sweep_now(pipeline)
    assert stored_job(pipeline.db, "job-undeclared")["status"] == IN_PROGRESS
    assert stored_job(pipeline.db, "job-running-undeclared")["status"] == TIMEOUT
    # Declared at last: it ends by its rules, and says nothing more about its total.
    pipeline.events.job_created(domain_id=DOMAIN, job_id="job-undeclared", data_source_id="ds-1", total_tasks=1)
    pipeline.wait_until_idle()
    job = assert_job_is(pipeline, "job-undeclared", declared=1)
    assert (job["status"], job.get("error_code")) == (SUCCESS, None)


# --- celery beat -------------------------------------------------------------------------------------


def start_beat(pipeline, name: str, **env: str) -> subprocess.Popen:
    log = open(pipeline.workdir / f"{name}.log", "wb")  # noqa: SIM115 - beat writes to it until the test stops it
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "INFO"],
                            cwd=ROOT, env=pipeline.env(**env), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def beat_sweeps(pipeline, name: str) -> int:
    """How many sweeps a beat has sent so far (its log says each one)."""
    return (pipeline.workdir / f"{name}.log").read_text(errors="replace").count("Sending due task")


def test_celery_beat_schedules_the_sweep(pipeline_factory):
    pipeline = pipeline_factory()
    settings = {**SHORT, "JOBTASK_SWEEP_INTERVAL": "1"}
    pipeline.start_worker(concurrency=2, **settings)
    start(pipeline, "job-task-beaten")
    pipeline.wait_until_idle()
    beats = [start_beat(pipeline, f"beat{number}", **settings) for number in (1, 2)]  # two at once
    try:
        wait_for(lambda: (pipeline.task("job-task-beaten") or {}).get("status") == TIMEOUT, timeout=90)
        wait_for(lambda: pipeline.db.job_tasks.count_documents({}) == 1 and len(
            sweep_outcomes(pipeline, "job-task-beaten")) >= 1, timeout=30)
        sent = [beat_sweeps(pipeline, f"beat{number}") for number in (1, 2)]
        # A few more sweeps of both beats, each of which must change nothing.
        wait_for(lambda: all(beat_sweeps(pipeline, f"beat{number}") >= sent[number - 1] + 3 for number in (1, 2)),
                 timeout=60)
        assert all(beat.poll() is None for beat in beats)
    finally:
        for beat in beats:
            beat.terminate()
            beat.wait(timeout=30)
    pipeline.wait_until_idle()
    assert sweep_outcomes(pipeline, "job-task-beaten").count("applied") == 1
    logged = pipeline.logged_event_ids("job-task-beaten")
    assert sum(count for event_id, count in logged.items() if event_id.startswith("sweep:")) == 1
    assert pipeline.dead_letters() == []
    assert "job_task.sweep" in (pipeline.workdir / "beat1.log").read_text()

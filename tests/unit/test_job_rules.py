"""The Job rules (``worker.contract.jobs``), pure: no broker, no store.

A Job is a function of its own accepted events and of the latest view of
each of its tasks. Hypothesis draws tasks that move through versions and
Job events, delivers them in any order and any number of times, and holds
every field of ``job_fields`` to a plain restatement of docs/EVENTS.md's
rules (``expected_job``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.contract import outcomes
from worker.contract.events import JobCanceled, JobCreated, JobTimedOut, event_fingerprint
from worker.contract.jobs import (
    ERROR_JOB_TASK,
    ERROR_JOB_TIMEOUT,
    JobEventCandidate,
    JobState,
    TaskView,
    admit_job_event,
    ending_event_id,
    ending_message_id,
    job_fields,
    plan_job,
)
from worker.contract.lifecycle import STATUSES, TERMINAL_STATUSES

BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DOMAIN = "domain-a"
JOB = "job-1"
RULES = settings(max_examples=200, deadline=None)


def moment(step: int) -> datetime:
    return BASE + timedelta(seconds=step)


@st.composite
def task_histories(draw) -> dict[str, list[TaskView]]:
    """Tasks, each a list of views at increasing versions (the last one is where it stands)."""
    histories = {}
    for number in range(draw(st.integers(0, 6))):
        views = []
        for version in range(1, draw(st.integers(1, 4)) + 1):
            status = draw(st.sampled_from(STATUSES))
            created = moment(draw(st.integers(0, 50)))
            finished = moment(draw(st.integers(50, 100))) if status in TERMINAL_STATUSES else None
            views.append(TaskView(version, status, draw(st.integers(0, 1_000)), created,
                                  finished or created, finished))
        histories[f"job-task-{number}"] = views
    return histories


@st.composite
def job_events(draw) -> list:
    """A Job's own events: maybe a declaration, maybe a cancel and a timeout."""
    events = []
    if draw(st.booleans()):
        events.append(JobCreated(event_id="jc", domain_id=DOMAIN, job_id=JOB, data_source_id="ds-1",
                                 total_tasks=draw(st.integers(0, 8)),
                                 occurred_at=moment(draw(st.integers(0, 9))).isoformat()))
    if draw(st.booleans()):
        events.append(JobCanceled(event_id="cancel", domain_id=DOMAIN, job_id=JOB, reason="wrong month",
                                  occurred_at=moment(draw(st.integers(0, 120))).isoformat()))
    if draw(st.booleans()):
        events.append(JobTimedOut(event_id="timeout", domain_id=DOMAIN, job_id=JOB,
                                  occurred_at=moment(draw(st.integers(0, 120))).isoformat()))
    return events


def candidate(event) -> JobEventCandidate:
    return JobEventCandidate(event, event.occurred_at, event_fingerprint(event), f"message-{event.event_id}")


def expected_job(histories: dict[str, list[TaskView]], events: list) -> dict:
    """docs/EVENTS.md's Job rules, restated over the tasks' latest views and the accepted events."""
    latest = [views[-1] for views in histories.values()]
    counts = Counter(view.status for view in latest)
    declared = next((event for event in events if isinstance(event, JobCreated)), None)
    total = max(declared.total_tasks, len(latest)) if declared else len(latest)
    remained = total - sum(counts[status] for status in TERMINAL_STATUSES)
    endings = sorted((event.occurred_at, event.event_id, event) for event in events
                     if isinstance(event, (JobCanceled, JobTimedOut)))
    if endings:
        ending = endings[0][2]
        status = "CANCELED" if isinstance(ending, JobCanceled) else "TIMEOUT"
    elif declared and remained == 0:
        status = "SUCCESS" if counts["SUCCESS"] == total else "FAILURE"
    else:
        status = "IN_PROGRESS"
    error_code = {"TIMEOUT": ERROR_JOB_TIMEOUT, "FAILURE": ERROR_JOB_TASK}.get(status)
    return {"status": status, "total_tasks": total, "remained_tasks": remained,
            "task_counts": {status: counts[status] for status in STATUSES},
            "created_count": sum(view.created_count for view in latest), "error_code": error_code}


def deliver(histories: dict[str, list[TaskView]], events: list, draw_order) -> JobState:
    """Every view and event at least once, in the drawn order, through the pure rules."""
    deliveries = [("view", task, view) for task, views in histories.items() for view in views]
    deliveries += [("event", None, event) for event in events]
    deliveries = draw_order(deliveries + deliveries[: len(deliveries) // 2])  # some twice
    state, logged = None, {}
    for what, task, item in deliveries:
        if what == "view":
            plan = plan_job(JOB, state, logged, [], [(task, DOMAIN, item)], {})
        else:
            plan = plan_job(JOB, state, logged, [candidate(item)], [], {})
        if plan is not None:
            state, logged = plan.state, plan.events
    return state or JobState(JOB, DOMAIN)


@RULES
@given(histories=task_histories(), events=job_events(), data=st.data())
def test_a_job_is_a_function_of_its_tasks_latest_views_and_its_events(histories, events, data):
    state = deliver(histories, events, lambda items: data.draw(st.permutations(items)))
    fields = job_fields(state)
    expected = expected_job(histories, events)
    assert {name: fields[name] for name in expected} == expected
    assert set(state.tasks) == set(histories)


@RULES
@given(histories=task_histories(), events=job_events(), data=st.data())
def test_any_two_delivery_orders_end_in_the_same_job(histories, events, data):
    first = deliver(histories, events, lambda items: data.draw(st.permutations(items)))
    second = deliver(histories, events, lambda items: data.draw(st.permutations(items)))
    assert job_fields(first) == job_fields(second)


@RULES
@given(histories=task_histories(), events=job_events())
def test_every_ending_reaches_every_task_once(histories, events):
    state = deliver(histories, events, list)
    endings = [event for event in events if isinstance(event, (JobCanceled, JobTimedOut))]
    unsent = state.unsent_endings()
    assert sorted((task, ending.event_id) for task, ending in unsent) == sorted(
        (task, ending.event_id) for task in histories for ending in endings)
    for task, ending in unsent:
        state = state.with_endings_sent(task, {ending.event_id})
    assert state.unsent_endings() == []
    # A newer view of a task keeps what was sent to it.
    for task, views in histories.items():
        state = state.with_task(task, TaskView(views[-1].version + 1, "CANCELED"))
    assert state.unsent_endings() == []


def test_an_ending_has_one_task_event_id_and_one_message_per_task():
    cancel = JobCanceled(event_id="cancel", domain_id=DOMAIN, job_id=JOB, occurred_at=BASE.isoformat())
    state = deliver({}, [cancel], list)
    ending = state.endings[0]
    assert ending_event_id(JOB, ending) == ending_event_id(JOB, ending)
    assert ending_event_id(JOB, ending).startswith("job-canceled:")
    assert ending_event_id("job-2", ending) != ending_event_id(JOB, ending)
    assert ending_message_id("e", "t1") != ending_message_id("e", "t2")


def test_a_job_event_twice_counts_once_and_other_content_conflicts():
    created = JobCreated(event_id="jc", domain_id=DOMAIN, job_id=JOB, data_source_id="ds-1", total_tasks=2,
                         occurred_at=BASE.isoformat())
    first = plan_job(JOB, None, {}, [candidate(created)], [], {})
    assert first is not None and first.outcomes == (outcomes.APPLIED_NOW,)
    again = plan_job(JOB, first.state, first.events, [candidate(created)], [], {})
    assert again is not None and again.outcomes == (outcomes.APPLIED_NOW,) and not again.changed
    resent = JobEventCandidate(created, BASE, event_fingerprint(created), "another-message")
    assert plan_job(JOB, first.state, first.events, [resent], [], {}).outcomes == (outcomes.ALREADY_APPLIED,)
    other = created.model_copy(update={"total_tasks": 3})
    assert plan_job(JOB, first.state, first.events, [candidate(other)], [], {}).outcomes == (
        outcomes.OTHER_CONTENT,)
    redeclared = created.model_copy(update={"event_id": "jc2", "total_tasks": 3})
    assert plan_job(JOB, first.state, first.events, [candidate(redeclared)], [], {}).outcomes == (
        outcomes.OTHER_DECLARATION,)


def test_another_domains_event_is_refused_and_a_job_without_events_takes_its_tasks_domain():
    founded = plan_job(JOB, None, {}, [], [("job-task-1", DOMAIN, TaskView(1, "PENDING"))], {})
    assert founded is not None and founded.state.domain_id == DOMAIN
    foreign = JobCanceled(event_id="x", domain_id="domain-b", job_id=JOB)
    outcome, _ = admit_job_event(founded.state, {}, foreign, BASE, event_fingerprint(foreign), "m")
    assert outcome == outcomes.JOB_EVENT_OTHER_DOMAIN and outcome.dead_letter_code == "other_domain"
    assert plan_job(JOB, None, {}, [], [], {}) is None  # nothing to speak of

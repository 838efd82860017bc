"""The Job rules (``worker.contract.jobs``), pure: no broker, no store.

A Job is a function of its own accepted events and of the latest view of
each of its tasks, kept a part at a time (``worker.contract.job_parts``).
Hypothesis draws tasks that move through versions, spread over parts, and
Job events; each view goes into its part, and the part's summaries reach
the Job in any order and any number of times (as two workers, or one that
died between writing a part and its Job, deliver them), as do the Job's
events. Every field of ``job_fields`` is held to a plain restatement of
docs/EVENTS.md's rules (``expected_job``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.contract import outcomes
from worker.contract.events import JobCanceled, JobCreated, JobTimedOut, event_fingerprint
from worker.contract.job_parts import PartState, TaskView, plan_part
from worker.contract.jobs import (
    ERROR_JOB_NOT_DECLARED,
    ERROR_JOB_TASK,
    ERROR_JOB_TIMEOUT,
    JobEventCandidate,
    JobState,
    admit_job_event,
    admit_job_events,
    ending_event_id,
    ending_message_id,
    job_fields,
    with_parts,
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
    if status == "IN_PROGRESS" and not declared:
        error_code = ERROR_JOB_NOT_DECLARED  # it says why it cannot end
    return {"status": status, "total_tasks": total, "remained_tasks": remained,
            "task_counts": {status: counts[status] for status in STATUSES},
            "created_count": sum(view.created_count for view in latest), "error_code": error_code}


PARTS = 3


def part_number(task: str) -> int:
    return int(task.rsplit("-", 1)[1]) % PARTS


def stored_parts(histories: dict[str, list[TaskView]], draw_order) -> tuple[dict[int, PartState], list]:
    """Each task's views into its part, in the drawn order; returns the parts and every summary they had."""
    parts = {number: PartState(number) for number in range(PARTS)}
    summaries = []
    views = draw_order([(task, view) for task, views in histories.items() for view in views])
    for task, view in views:
        number = part_number(task)
        after = plan_part(parts[number], [(task, view)], {})
        if after != parts[number]:
            parts[number] = after
            summaries.append(("part", number, after.summary()))
    return parts, summaries


def deliver(histories: dict[str, list[TaskView]], events: list, draw_order) -> JobState:
    """Every part's summaries and every event at least once, in the drawn order, through the pure rules."""
    _parts, summaries = stored_parts(histories, draw_order)
    deliveries = summaries + [("event", None, event) for event in events]
    deliveries = draw_order(deliveries + deliveries[: len(deliveries) // 2])  # some twice
    state, logged = None, {}
    for what, number, item in deliveries:
        if what == "part":
            plan = admit_job_events(JOB, state, logged, [], DOMAIN)
            assert plan is not None
            state, logged = with_parts(plan.state, {number: item}), plan.events
        else:
            plan = admit_job_events(JOB, state, logged, [candidate(item)], None)
            assert plan is not None
            state, logged = plan.state, plan.events
    return state or JobState(JOB, DOMAIN)


@RULES
@given(histories=task_histories(), events=job_events(), data=st.data())
def test_a_job_is_a_function_of_its_tasks_latest_views_and_its_events(histories, events, data):
    state = deliver(histories, events, lambda items: data.draw(st.permutations(items)))
    fields = job_fields(state)
    expected = expected_job(histories, events)
    assert {name: fields[name] for name in expected} == expected
    assert state.task_count == len(histories)


@RULES
@given(histories=task_histories(), events=job_events(), data=st.data())
def test_any_two_delivery_orders_end_in_the_same_job(histories, events, data):
    first = deliver(histories, events, lambda items: data.draw(st.permutations(items)))
    second = deliver(histories, events, lambda items: data.draw(st.permutations(items)))
    assert job_fields(first) == job_fields(second)


@RULES
@given(histories=task_histories(), events=job_events())
def test_every_ending_reaches_every_task_once(histories, events):
    parts, _summaries = stored_parts(histories, list)
    state = deliver(histories, events, list)
    state = with_parts(state, {number: part.summary() for number, part in parts.items() if part.version})
    ending_ids = {event.event_id for event in events if isinstance(event, (JobCanceled, JobTimedOut))}
    assert set(state.pending_parts()) == ({part_number(task) for task in histories} if ending_ids else set())
    unsent = [pair for number in state.pending_parts() for pair in parts[number].unsent(ending_ids)]
    assert sorted(unsent) == sorted((task, ending_id) for task in histories for ending_id in ending_ids)
    for number, part in parts.items():
        sent = {task: set(ending_ids) for task in part.tasks}
        parts[number] = plan_part(part, [], sent)
        assert parts[number].unsent(ending_ids) == []
    state = with_parts(state, {number: part.summary() for number, part in parts.items() if part.version})
    assert state.pending_parts() == []
    # A newer view of a task keeps what was sent to it.
    for task, views in histories.items():
        number = part_number(task)
        parts[number] = plan_part(parts[number], [(task, TaskView(views[-1].version + 1, "CANCELED"))], {})
        assert parts[number].unsent(ending_ids) == []


def test_a_part_summary_only_moves_forward():
    part = plan_part(PartState(0), [("job-task-0", TaskView(1, "PENDING"))], {})
    newer = plan_part(part, [("job-task-0", TaskView(2, "SUCCESS", finished_at=BASE))], {})
    state = with_parts(JobState(JOB, DOMAIN), {0: newer.summary()})
    assert with_parts(state, {0: part.summary()}) == state  # the older summary, late, changes nothing
    assert job_fields(state)["task_counts"]["SUCCESS"] == 1
    assert plan_part(newer, [("job-task-0", TaskView(1, "PENDING"))], {}) == newer  # nor does an older view


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
    first = admit_job_events(JOB, None, {}, [candidate(created)], None)
    assert first is not None and first.outcomes == (outcomes.APPLIED_NOW,)
    again = admit_job_events(JOB, first.state, first.events, [candidate(created)], None)
    assert again is not None and again.outcomes == (outcomes.APPLIED_NOW,)
    assert (again.state, again.events) == (first.state, first.events)
    resent = JobEventCandidate(created, BASE, event_fingerprint(created), "another-message")
    assert admit_job_events(JOB, first.state, first.events, [resent], None).outcomes == (outcomes.ALREADY_APPLIED,)
    other = created.model_copy(update={"total_tasks": 3})
    assert admit_job_events(JOB, first.state, first.events, [candidate(other)], None).outcomes == (
        outcomes.OTHER_CONTENT,)
    redeclared = created.model_copy(update={"event_id": "jc2", "total_tasks": 3})
    assert admit_job_events(JOB, first.state, first.events, [candidate(redeclared)], None).outcomes == (
        outcomes.OTHER_DECLARATION,)


def test_another_domains_event_is_refused_and_a_job_without_events_takes_its_tasks_domain():
    founded = admit_job_events(JOB, None, {}, [], DOMAIN)
    assert founded is not None and founded.state.domain_id == DOMAIN
    foreign = JobCanceled(event_id="x", domain_id="domain-b", job_id=JOB)
    outcome, _ = admit_job_event(founded.state, {}, foreign, BASE, event_fingerprint(foreign), "m")
    assert outcome == outcomes.JOB_EVENT_OTHER_DOMAIN and outcome.dead_letter_code == "other_domain"
    assert admit_job_events(JOB, None, {}, [], None) is None  # nothing to speak of

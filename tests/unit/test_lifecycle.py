"""The pure lifecycle rules: order, duplication and grouping never matter."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lifecycle_data import BASE, at, deliveries, expected_task, parsed, task_events
from worker.contract import lifecycle
from worker.contract.events import EVENT_TYPES
from worker.contract.lifecycle import EMPTY, Summary, Terminal, fold, merge


@st.composite
def events_and_deliveries(draw):
    events = draw(task_events("job-task-1"))
    return events, draw(deliveries(events))


@settings(max_examples=300)
@given(events_and_deliveries())
def test_fold_is_the_rules_over_the_set_whatever_the_order(case):
    events, delivered = case
    assert fold(parsed(delivered)).task == expected_task(events)


@settings(max_examples=200)
@given(events_and_deliveries(), st.data())
def test_grouping_events_into_summaries_changes_nothing(case, data):
    """What the store relies on: merging per-batch summaries equals one fold."""
    events, _ = case
    items = [(event, moment) for event, moment in parsed(events)
             if event.domain_id == "domain-a"]
    cut = data.draw(st.integers(0, len(items)))
    left = lifecycle.summarize_all(items[:cut])
    right = lifecycle.summarize_all(items[cut:])
    assert merge(left, right) == merge(right, left) == lifecycle.summarize_all(items)


summaries = st.builds(
    Summary,
    created_at=st.none() | st.integers(0, 9).map(lambda n: BASE + timedelta(seconds=n)),
    started_at=st.none() | st.integers(0, 9).map(lambda n: BASE + timedelta(seconds=n)),
    progress_count=st.integers(0, 100),
    activity_at=st.none() | st.integers(0, 9).map(lambda n: BASE + timedelta(seconds=n)),
    # An event_id is one event: the same id never carries two contents.
    terminal=st.none() | st.builds(
        lambda moment, identity: Terminal(moment, *identity),
        st.integers(0, 3).map(lambda n: BASE + timedelta(seconds=n)),
        st.sampled_from([("a", "SUCCESS"), ("b", "FAILURE"), ("c", "TIMEOUT"), ("d", "CANCELED")]),
    ),
)


@given(summaries, summaries, summaries)
def test_merge_is_commutative_and_associative_with_identity(a, b, c):
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, EMPTY) == a


def event(name: str, **kwargs):
    kwargs.setdefault("domain_id", "domain-a")
    kwargs.setdefault("job_task_id", "job-task-1")
    model = EVENT_TYPES["job_task." + name].model_validate(kwargs)
    return model, model.occurred_at


CREATED = dict(event_id="c1", job_id="job-1", data_source_id="ds-1", occurred_at=at(0))


def test_a_later_terminal_event_changes_nothing_and_is_ignored():
    state = fold([
        event("created", **CREATED),
        event("started", event_id="s1", occurred_at=at(1000)),
        event("failed", event_id="f1", occurred_at=at(2000), error_code="E", error_message="m"),
        event("succeeded", event_id="ok", occurred_at=at(3000), created_count_delta=5),
    ])
    assert state.task["status"] == "FAILURE"
    assert state.task["finished_at"] == state.task["updated_at"] == BASE + timedelta(seconds=2)
    assert state.task["created_count"] == 0
    assert (state.task["error_code"], state.task["error_message"]) == ("E", "m")
    assert [o.kind for o in state.outcomes] == ["applied", "applied", "applied", "ignored"]


def test_an_earlier_terminal_arriving_late_takes_over():
    state = fold([
        event("created", **CREATED),
        event("succeeded", event_id="ok", occurred_at=at(3000), created_count_delta=5),
        event("canceled", event_id="cx", occurred_at=at(2000), reason="operator"),
    ])
    assert state.task["status"] == "CANCELED"
    assert state.task["created_count"] == 0
    assert "error_code" not in state.task


def test_terminal_ties_break_on_event_id():
    state = fold([
        event("created", **CREATED),
        event("succeeded", event_id="b", occurred_at=at(1000)),
        event("timed_out", event_id="a", occurred_at=at(1000)),
    ])
    assert state.task["status"] == "TIMEOUT"


def test_terminal_before_any_started_leaves_started_at_empty():
    state = fold([event("created", **CREATED), event("canceled", event_id="x", occurred_at=at(10))])
    assert state.task["status"] == "CANCELED"
    assert "started_at" not in state.task


def test_started_after_the_end_keeps_the_end_but_records_the_start():
    state = fold([
        event("created", **CREATED),
        event("succeeded", event_id="ok", occurred_at=at(1000), created_count_delta=3),
        event("started", event_id="s", occurred_at=at(500)),
        event("progressed", event_id="p", occurred_at=at(700), created_count_delta=4),
    ])
    assert state.task["status"] == "SUCCESS"
    assert state.task["started_at"] == BASE + timedelta(milliseconds=500)
    assert state.task["created_count"] == 7


def test_events_before_created_wait_and_other_domains_are_refused():
    state = fold([
        event("progressed", event_id="p", occurred_at=at(5), created_count_delta=4),
        event("progressed", event_id="q", occurred_at=at(6), created_count_delta=9, domain_id="domain-z"),
        event("created", **CREATED),
    ])
    assert state.task["created_count"] == 4
    assert [o.kind for o in state.outcomes] == ["applied", "rejected", "applied"]


def test_duplicates_conflicts_and_second_created():
    state = fold([
        event("created", **CREATED),
        event("created", **{**CREATED, "event_id": "c2", "job_id": "job-other"}),
        event("progressed", event_id="p", occurred_at=at(5), created_count_delta=4),
        event("progressed", event_id="p", occurred_at=at(5), created_count_delta=4),
        event("progressed", event_id="p", occurred_at=at(5), created_count_delta=40),
    ])
    assert state.task["job_id"] == "job-1"
    assert state.task["created_count"] == 4
    assert [o.kind for o in state.outcomes] == ["applied", "conflict", "applied", "duplicate", "conflict"]


def test_nothing_visible_without_created():
    assert fold([event("started", event_id="s", occurred_at=at(1))]).task is None

"""The admission rules, pure: which candidate events join a task, wait, or are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lifecycle_data import deliveries, parsed, task_events
from worker.contract import lifecycle, outcomes
from worker.contract.acceptance import (
    Candidate,
    Identity,
    StoredTask,
    admit,
    duplicate_outcome,
)
from worker.contract.events import Created, Progressed, Started, Succeeded
from worker.contract.lifecycle import joined_outcome

T0 = datetime(2024, 5, 1, tzinfo=UTC)
COMMON = {"domain_id": "domain-a", "job_task_id": "job-task-1"}


def created(event_id="c1", **changes) -> Created:
    fields = {"job_id": "job-1", "data_source_id": "ds-1", **COMMON, **changes}
    return Created(event_id=event_id, **fields)


def candidate(event, seconds=0) -> Candidate:
    return Candidate(event, T0 + timedelta(seconds=seconds))


def test_without_a_created_every_event_waits():
    admission = admit(StoredTask(), [candidate(Started(event_id="s1", **COMMON))], max_events=10)
    assert admission.held == [0] and not admission.joined and admission.after.identity is None


def test_a_created_founds_the_task_for_the_events_beside_it():
    events = [candidate(Started(event_id="s1", **COMMON), 2), candidate(created(), 1),
              candidate(Progressed(event_id="p1", created_count_delta=4, **{**COMMON, "domain_id": "other"}), 3)]
    admission = admit(StoredTask(), events, max_events=10)
    assert admission.joined == [0, 1] and admission.held == []
    assert admission.refused[2].kind == outcomes.REJECTED
    assert admission.founding == events[1].event
    assert admission.after.events == 2 and admission.after.identity.domain_id == "domain-a"


def test_a_created_with_other_identity_is_a_conflict():
    stored = StoredTask(Identity.of(created()), lifecycle.EMPTY, 1)
    admission = admit(stored, [candidate(created("c2", job_id="job-2"))], max_events=10)
    assert admission.refused[0].kind == outcomes.CONFLICT


def test_events_past_the_limit_are_refused_with_their_own_reason():
    stored = StoredTask(Identity.of(created()), lifecycle.EMPTY, 9)
    batch = [candidate(Progressed(event_id=f"p{n}", created_count_delta=1, **COMMON)) for n in range(3)]
    admission = admit(stored, batch, max_events=10)
    assert admission.joined == [0]
    assert admission.refused[1].reason == admission.refused[2].reason
    assert "limit of 10 events" in admission.refused[1].reason


def test_a_terminal_event_beaten_by_an_earlier_one_is_ignored():
    early, late = Succeeded(event_id="t1", **COMMON), Succeeded(event_id="t2", **COMMON)
    admission = admit(StoredTask(Identity.of(created())), [candidate(late, 9), candidate(early, 5)], 10)
    assert joined_outcome(late, admission.after.summary).kind == outcomes.IGNORED
    assert joined_outcome(early, admission.after.summary).kind == outcomes.APPLIED


def test_an_event_logged_before_is_told_by_its_message_and_content():
    assert duplicate_outcome("f", "m1", "f", "m1").kind == outcomes.APPLIED
    assert duplicate_outcome("f", "m2", "f", "m1").kind == outcomes.DUPLICATE
    assert duplicate_outcome("g", "m2", "f", "m1").kind == outcomes.CONFLICT


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_admitting_in_any_split_of_batches_gives_the_reference_model(data):
    """However a stream is cut into batches, the admitted set folds to ``lifecycle.fold``'s task.

    Events before the created are held here and offered again with the
    next batch, as the worker does with parked events; repeated event_ids are
    dropped before admission, as the store's log does.
    """
    events = data.draw(task_events("job-task-1"))
    delivered = parsed(data.draw(deliveries(events)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(delivered)), max_size=4)))
    state, seen, held = StoredTask(), set(), []
    identity_event = None
    for start, end in zip([0, *cuts], [*cuts, len(delivered)], strict=True):
        batch = held + [(e, at) for e, at in delivered[start:end] if e.event_id not in seen]
        unique, keys = [], set()
        for event, at in batch:
            if event.event_id not in keys:
                keys.add(event.event_id)
                unique.append((event, at))
        admission = admit(state, [Candidate(e, at) for e, at in unique], max_events=1000)
        identity_event = identity_event or admission.founding
        seen |= {unique[i][0].event_id for i in admission.joined}
        held = [unique[i] for i in admission.held]
        state = admission.after
    expected = lifecycle.fold(delivered).task
    got = lifecycle.project(identity_event, state.summary) if identity_event else None
    assert got == expected

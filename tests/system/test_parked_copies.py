"""A copy of a parked message, met while the batch that woke it is still settling it.

The batch of a task's created logs the events parked for the task, then
resolves their parked records last. A copy of one such message (the same
message id, sent again) may reach another batch in between: the log already
holds its event under its own message id, and no accepted record exists yet.
That copy is a duplicate of the parked record, which its waker resolves as
applied: the history says the event was applied once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from worker.contract import outcomes
from worker.contract.delivery import Delivery
from worker.ingest.processor import process_batch
from worker.store import history
from worker.store.client import connect
from worker.store.collections import ensure_indexes

DOMAIN = "domain-copies"
TASK = "job-task-copied"


@pytest.fixture
def db(store_url):
    name = "copies_" + uuid.uuid4().hex[:8]
    database = connect(store_url, name, timeout_ms=10_000)
    ensure_indexes(database)
    yield database
    database.client.drop_database(name)
    database.client.close()


def delivery(name: str, message_id: str, **kwargs) -> Delivery:
    return Delivery(message_id, name, datetime.now(UTC),
                    kwargs={"domain_id": DOMAIN, "job_task_id": TASK, **kwargs})


def test_a_copy_met_before_the_parked_record_is_resolved_is_a_duplicate(db, monkeypatch):
    progressed = delivery("job_task.progressed", "m-progressed", event_id="p", created_count_delta=3)
    created = delivery("job_task.created", "m-created", event_id="c", job_id="job-copies", data_source_id="ds")
    first = process_batch(db, [progressed], "batch-parks", max_events=1_000)
    assert [outcome.kind for _, outcome in first.outcomes] == [outcomes.PARKED]

    copy_outcomes = []
    resolve = history.resolve_parked

    def copy_arrives_then_resolve(database, resolutions):
        # The created's batch has logged and folded the parked event; the copy
        # is judged now, before that batch resolves the parked record.
        if resolutions and not copy_outcomes:
            copy = process_batch(db, [delivery("job_task.progressed", "m-progressed", event_id="p",
                                               created_count_delta=3)], "batch-copy", max_events=1_000)
            copy_outcomes.extend(outcome.kind for _, outcome in copy.outcomes)
        resolve(database, resolutions)

    monkeypatch.setattr(history, "resolve_parked", copy_arrives_then_resolve)
    process_batch(db, [created], "batch-wakes", max_events=1_000)

    assert copy_outcomes == [outcomes.DUPLICATE]
    records = [record for record in history.task_records(db, TASK) if record["message_id"] == "m-progressed"]
    assert sorted(record["outcome"] for record in records) == [outcomes.APPLIED, outcomes.DUPLICATE]
    assert db.job_tasks.find_one({"_id": TASK})["created_count"] == 3


def test_of_two_parked_copies_woken_again_exactly_one_is_applied(db, monkeypatch):
    copies = [delivery("job_task.progressed", "m-twice", event_id="p", created_count_delta=2) for _ in range(2)]
    process_batch(db, copies[:1], "batch-parks-1", max_events=1_000)
    process_batch(db, copies[1:], "batch-parks-2", max_events=1_000)
    created = delivery("job_task.created", "m-created", event_id="c", job_id="job-copies", data_source_id="ds")

    def lost(database, resolutions):
        raise ConnectionError("the store went away before the parked records were resolved")

    # The created's first batch logs both parked copies' event and dies before
    # resolving them; its redelivery judges both against that log entry.
    monkeypatch.setattr(history, "resolve_parked", lost)
    with pytest.raises(ConnectionError):
        process_batch(db, [created], "batch-wakes-1", max_events=1_000)
    monkeypatch.undo()
    process_batch(db, [created], "batch-wakes-2", max_events=1_000)

    records = [record for record in history.task_records(db, TASK) if record["message_id"] == "m-twice"]
    assert sorted(record["outcome"] for record in records) == [outcomes.APPLIED, outcomes.DUPLICATE]
    assert db.job_tasks.find_one({"_id": TASK})["created_count"] == 2

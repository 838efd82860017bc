"""The history: every delivery the worker received, accepted or not, and what it did with it.

It is the audit trail, the place where events wait for their task's
``created`` (outcome ``parked``), and what a task can be rebuilt from
(``rebuild``). A record's ``_id`` is ``{owner}/{message_id}/{batch_id}``:
the owner (a task's id, ``#job_id`` for a Job's own event, ``-`` for a
message that is no event) comes first, so one owner's whole history is one
``_id`` range (``owned_by``) and no other index is needed to read it, and a
retried batch rewrites its records rather than adding to them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.contract import lifecycle
from worker.contract.delivery import Delivery
from worker.contract.events import EVENT_TYPES, Event
from worker.contract.outcomes import ACCEPTED_OUTCOMES, PARKED, Outcome
from worker.store.collections import HISTORY
from worker.store.retry import check_bulk_errors, insert_new

logger = logging.getLogger(__name__)


def record_id(owner: str, message_id: str, batch_id: str) -> str:
    """One record per delivery and batch: a retried batch rewrites, never adds."""
    return f"{owner}/{message_id}/{batch_id}"


def owned_by(owner: str, message_id: str | None = None) -> dict[str, Any]:
    """The ``_id`` range of an owner's records (of one of its messages, if given)."""
    prefix = f"{owner}/{message_id}/" if message_id is not None else f"{owner}/"
    return {"$gte": prefix, "$lt": prefix[:-1] + "0"}  # '0' follows '/'


def owner_of(event: Event | None) -> str:
    """Whose history a record belongs to: its task, its job (``#job_id``), or none (``-``).

    Ids cannot contain '/', '#' or '-' alone, so the three never meet.
    """
    if event is None:
        return "-"
    return event.job_task_id if hasattr(event, "job_task_id") else "#" + event.job_id


def history_record(
    delivery: Delivery,
    batch_id: str,
    outcome: Outcome,
    event: Event | None = None,
    occurred_at: datetime | None = None,
    fingerprint: str | None = None,
    field: str | None = None,
    job_id: str | None = None,
) -> dict:
    """The record of one delivery; ``job_id`` names the Job whose ending sent a task event."""
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "_id": record_id(owner_of(event), delivery.message_id, batch_id),
        "message_id": delivery.message_id,
        "task_name": delivery.task_name,
        "received_at": delivery.received_at,
        "processed_at": now,
        "batch_id": batch_id,
        "outcome": outcome.kind,
    }
    if outcome.reason:
        record["reason"] = outcome.reason
    if event is not None:
        record.update(
            **whose(event),
            event_id=event.event_id,
            kind=event.kind,
            event=event.model_dump(mode="json", exclude_none=True, exclude={"kind"}),
            occurred_at=occurred_at,
            fingerprint=fingerprint,
        )
        if job_id is not None:
            record["job_id"] = job_id
    else:
        record["payload"], record["payload_truncated"] = delivery.raw_payload()
        if field:
            record["field"] = field
    return record


def insert_parked(db: Database, records: list[dict]) -> None:
    """Park events waiting for their created; a record a retried batch parked already stays."""
    insert_new(db[HISTORY], records)


def whose(event: Event) -> dict:
    """The task (or, for a Job's own event, the job) and the domain an event names."""
    owner = {"job_task_id": event.job_task_id} if hasattr(event, "job_task_id") else {"job_id": event.job_id}
    return {**owner, "domain_id": event.domain_id}


def recorded_messages(db: Database, deliveries: set[tuple[str, str, str | None]],
                      batch_id: str) -> set[tuple[str, str, str | None]]:
    """Which deliveries (owner, message, own parked record) are not their message's record.

    A message's record is an accepted record of an earlier batch or, while
    none exists, its first parked record: whoever wakes that one resolves it.
    A copy of a parked message met meanwhile is therefore a duplicate of it,
    and of two parked copies only the first is told applied. Looked up by
    message id (its own index): these messages' records only.
    """
    if not deliveries:
        return set()
    query = {"message_id": {"$in": sorted({message_id for _, message_id, _ in deliveries})}}
    accepted, parked = set(), defaultdict(list)
    for record in db[HISTORY].find(query, {"message_id": 1, "batch_id": 1, "outcome": 1}):
        key = (record["_id"].split("/", 1)[0], record["message_id"])
        if record.get("outcome") in ACCEPTED_OUTCOMES and record.get("batch_id") != batch_id:
            accepted.add(key)
        elif record.get("outcome") == PARKED:
            parked[key].append(record["_id"])
    return {
        (owner, message_id, own) for owner, message_id, own in deliveries
        if (owner, message_id) in accepted
        or any(own is None or other < own for other in parked[(owner, message_id)])
    }


def task_records(db: Database, job_task_id: str) -> list[dict[str, Any]]:
    """A task's records in the order they were received, for rebuilding it (the read side
    serves them in the order they occurred: ``worker.read.history``)."""
    records = db[HISTORY].find({"_id": owned_by(job_task_id)})
    return sorted(records, key=lambda record: (record["received_at"], record["_id"]))


def write_history(db: Database, records: list[dict]) -> None:
    """Insert final records; one that exists already (it was parked) is overwritten."""
    existing = insert_new(db[HISTORY], records)
    if existing:
        try:
            db[HISTORY].bulk_write(
                [UpdateOne({"_id": record["_id"]}, {"$set": record}) for record in existing],
                ordered=False,
            )
        except BulkWriteError as exc:
            check_bulk_errors(exc, tolerated=())


def resolve_parked(db: Database, resolutions: list[tuple[str, Outcome, str]]) -> None:
    """Set the outcome of records that were parked, unless another worker did first."""
    if not resolutions:
        return
    now = datetime.now(UTC)
    ops = []
    for parked_id, outcome, batch_id in resolutions:
        change = {"outcome": outcome.kind, "resolved_at": now, "resolved_by_batch": batch_id}
        update = {"$set": change}
        if outcome.reason:
            change["reason"] = outcome.reason
        else:
            update["$unset"] = {"reason": ""}
        ops.append(UpdateOne({"_id": parked_id, "outcome": PARKED}, update))
    try:
        db[HISTORY].bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        check_bulk_errors(exc, tolerated=())


def parked_records(db: Database, job_task_ids: set[str]) -> list[dict]:
    if not job_task_ids:
        return []
    query = {"job_task_id": {"$in": sorted(job_task_ids)}, "outcome": PARKED}
    return list(db[HISTORY].find(query).sort("received_at", 1))


def event_from_record(record: dict) -> Event:
    """The event a history record holds, as it was validated on arrival."""
    model = EVENT_TYPES[record["task_name"]]
    return model.model_validate(record["event"])


def rebuild(db: Database, job_task_id: str) -> lifecycle.TaskState:
    """Recompute a task from its history with the pure rules, in arrival order."""
    records = [record for record in task_records(db, job_task_id) if record["outcome"] in ACCEPTED_OUTCOMES]
    deliveries = []
    seen = set()
    for record in records:
        if record["event_id"] in seen:
            continue
        seen.add(record["event_id"])
        deliveries.append((event_from_record(record), record["occurred_at"]))
    return lifecycle.fold(deliveries)

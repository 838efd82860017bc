"""The event history and the dead-letter collection.

The history keeps every event a worker received, accepted or not: what it
was, when it arrived and what the worker did with it. It is the audit trail,
the place where events wait for their task's ``created`` (outcome
``parked``), and what a task can be rebuilt from (``rebuild``).

The dead-letter collection holds what an operator must look at: messages
that are not valid events, conflicts and events of another domain, with the
raw payload, the reason and the time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.contract import lifecycle
from worker.contract.events import EVENT_TYPES, Event
from worker.contract.history_keys import owned_by, record_id
from worker.contract.lifecycle import Outcome
from worker.ingest.retry import check_bulk_errors
from worker.ingest.store import DEAD_LETTERS, DUPLICATE_KEY, EVENTS

logger = logging.getLogger(__name__)

MAX_RAW_PAYLOAD = 64 * 1024


@dataclass(frozen=True)
class Delivery:
    """One received message, as the broker handed it to the worker."""

    message_id: str
    task_name: str
    args: list
    kwargs: dict
    received_at: datetime
    refusal: str | None = None  # why it could not even be decoded

    def raw_payload(self) -> tuple[str, bool]:
        """The message as JSON text, cut at 64 KiB: any content can be stored."""
        text = json.dumps({"args": self.args, "kwargs": self.kwargs}, default=repr, ensure_ascii=False)
        if len(text) > MAX_RAW_PAYLOAD:
            return text[:MAX_RAW_PAYLOAD], True
        return text, False


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
    record = {
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
            **_whose(event),
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


def dead_letter_record(delivery: Delivery, outcome: Outcome, event: Event | None, field: str | None) -> dict:
    payload, truncated = delivery.raw_payload()
    record = {
        "_id": delivery.message_id,
        "task_name": delivery.task_name,
        "payload": payload,
        "payload_truncated": truncated,
        "outcome": outcome.kind,
        "reason": outcome.reason,
        "received_at": delivery.received_at,
        "dead_lettered_at": datetime.now(UTC),
    }
    if field:
        record["field"] = field
    if event is not None:
        record.update(**_whose(event), event_id=event.event_id)
    return record


def _whose(event: Event) -> dict:
    """The task (or, for a Job's own event, the job) and the domain an event names."""
    owner = {"job_task_id": event.job_task_id} if hasattr(event, "job_task_id") else {"job_id": event.job_id}
    return {**owner, "domain_id": event.domain_id}


def insert_new(db: Database, collection: str, records: list[dict]) -> list[dict]:
    """Insert, skipping records already there (a retried batch); returns the skipped ones."""
    if not records:
        return []
    try:
        db[collection].insert_many(records, ordered=False)
    except BulkWriteError as exc:
        return [records[error["index"]] for error in check_bulk_errors(exc, tolerated={DUPLICATE_KEY})]
    return []


def recorded_messages(db: Database, messages: set[tuple[str, str]], batch_id: str) -> set[tuple[str, str]]:
    """Which (owner, message) an earlier delivery recorded as accepted (not this batch's records)."""
    if not messages:
        return set()
    ranges = [{"_id": owned_by(owner, message_id)} for owner, message_id in sorted(messages)]
    query = {"$or": ranges, "outcome": {"$in": sorted(lifecycle.ACCEPTED_OUTCOMES)}}
    found = set()
    for record in db[EVENTS].find(query, {"message_id": 1, "batch_id": 1}):
        owner = record["_id"].split("/", 1)[0]
        if record.get("batch_id") != batch_id and (owner, record["message_id"]) in messages:
            found.add((owner, record["message_id"]))
    return found


def task_records(db: Database, job_task_id: str, query: dict | None = None,
                 projection: dict | None = None) -> list[dict]:
    """A task's records in the order they were received, for rebuilding it (the read side
    serves them in the order they occurred: ``worker.read.history``)."""
    records = db[EVENTS].find({"_id": owned_by(job_task_id), **(query or {})}, projection)
    return sorted(records, key=lambda record: (record["received_at"], record["_id"]))


def write_history(db: Database, records: list[dict]) -> None:
    """Insert final records; one that exists already (it was parked) is overwritten."""
    existing = insert_new(db, EVENTS, records)
    if existing:
        try:
            db[EVENTS].bulk_write(
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
        ops.append(UpdateOne({"_id": parked_id, "outcome": lifecycle.PARKED}, update))
    try:
        db[EVENTS].bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        check_bulk_errors(exc, tolerated=())


def write_dead_letters(db: Database, records: list[dict]) -> None:
    for record in records:
        logger.warning(
            "dead-lettered %s message %s: %s", record["task_name"], record["_id"], record["reason"]
        )
    insert_new(db, DEAD_LETTERS, records)


def parked_records(db: Database, job_task_ids: set[str]) -> list[dict]:
    if not job_task_ids:
        return []
    query = {"job_task_id": {"$in": sorted(job_task_ids)}, "outcome": lifecycle.PARKED}
    return list(db[EVENTS].find(query).sort("received_at", 1))


def event_from_record(record: dict) -> Event:
    """The event a history record holds, as it was validated on arrival."""
    model = EVENT_TYPES[record["task_name"]]
    return model.model_validate(record["event"])


def rebuild(db: Database, job_task_id: str) -> lifecycle.TaskState:
    """Recompute a task from its history with the pure rules, in arrival order."""
    records = task_records(db, job_task_id, {"outcome": {"$in": sorted(lifecycle.ACCEPTED_OUTCOMES)}})
    deliveries = []
    seen = set()
    for record in records:
        if record["event_id"] in seen:
            continue
        seen.add(record["event_id"])
        deliveries.append((event_from_record(record), record["occurred_at"]))
    return lifecycle.fold(deliveries)

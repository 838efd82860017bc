"""What travels through a batch: the valid events, and what the batch did with each.

An ``Item`` is one valid event with its delivery: a message off the broker,
a parked record taken up again, or a task event that a Job's ending sends
to each of its tasks (``ending_item``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from worker.contract.events import (
    JOB_EVENTS,
    TASK_EVENTS,
    Canceled,
    Event,
    JobEvent,
    TaskEvent,
    TimedOut,
    event_fingerprint,
    task_name_of,
    to_millis,
)
from worker.contract.jobs import Ending
from worker.contract.lifecycle import CANCELED, Outcome
from worker.ingest import history
from worker.ingest.history import Delivery
from worker.ingest.store import LoggedEvent, event_key


@dataclass
class Item:
    """A valid event on its way through a batch."""

    delivery: Delivery
    event: Event
    occurred_at: datetime
    fingerprint: str
    parked_id: str | None = None  # its history record, once parked
    ending_of: tuple[str, str] | None = None  # (job_id, the ending's event_id) that sent it

    @property
    def job_task_id(self) -> str:
        return self.task_event.job_task_id

    @property
    def key(self) -> str:
        return event_key(self.task_event.job_task_id, self.event.event_id)

    @property
    def task_event(self) -> TaskEvent:
        """The event of a task's item; a Job's own events travel apart, in ``JobBatch``."""
        assert isinstance(self.event, TASK_EVENTS), self.event
        return self.event

    @property
    def job_event(self) -> JobEvent:
        """The event of a Job's own item (``JobBatch`` holds only these)."""
        assert isinstance(self.event, JOB_EVENTS), self.event
        return self.event

    def logged(self) -> LoggedEvent:
        return LoggedEvent(self.event.event_id, self.fingerprint, self.delivery.message_id)


@dataclass
class BatchResult:
    """Every delivery's outcome, and the documents the batch changed."""

    outcomes: list[tuple[Delivery, Outcome]] = field(default_factory=list)
    tasks: set[str] = field(default_factory=set)  # job_task_ids whose document it changed
    jobs: set[str] = field(default_factory=set)  # job_ids whose document it changed

    def count(self, kind: str) -> int:
        return sum(1 for _, outcome in self.outcomes if outcome.kind == kind)


def make_item(delivery: Delivery, event: Event, parked_id: str | None = None, occurred_at=None) -> Item:
    return Item(
        delivery=delivery,
        event=event,
        occurred_at=occurred_at or event.occurred_at or to_millis(delivery.received_at),
        fingerprint=event_fingerprint(event),
        parked_id=parked_id,
    )


def item_from_parked(record: dict) -> Item:
    delivery = Delivery(
        message_id=record["message_id"],
        task_name=record["task_name"],
        args=[],
        kwargs=record["event"],
        received_at=record["received_at"],
    )
    return make_item(delivery, history.event_from_record(record), record["_id"], record["occurred_at"])


def ending_event_id(job_id: str, ending: Ending) -> str:
    """The task event a Job's ending becomes: the same id for every task, every time."""
    digest = hashlib.sha256(f"{job_id}/{ending.event_id}".encode()).hexdigest()[:40]
    return f"job-{'canceled' if ending.status == CANCELED else 'timed-out'}:{digest}"


def ending_message_id(event_id: str | None, job_task_id: str | None) -> str:
    """The message id of a Job's ending sent to one task: one message per task and ending."""
    return f"{event_id}@{job_task_id}"


def ending_item(job_id: str, domain_id: str, job_task_id: str, ending: Ending) -> Item:
    """``job.canceled`` / ``job.timed_out`` acting on one task, as a task event would."""
    model = Canceled if ending.status == CANCELED else TimedOut
    event_id = ending_event_id(job_id, ending)
    fields = {"event_id": event_id, "domain_id": domain_id,
              "job_task_id": job_task_id, "occurred_at": ending.occurred_at}
    if ending.reason:
        fields["reason"] = ending.reason
    event = model.model_validate({**fields, "occurred_at": ending.occurred_at.isoformat()})
    delivery = Delivery(
        message_id=ending_message_id(event_id, job_task_id),
        task_name=task_name_of(model),
        args=[],
        kwargs=event.model_dump(mode="json", exclude_none=True, exclude={"kind"}),
        received_at=datetime.now(UTC),
    )
    item = make_item(delivery, event, occurred_at=to_millis(ending.occurred_at))
    item.ending_of = (job_id, ending.event_id)
    return item

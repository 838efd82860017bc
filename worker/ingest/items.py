"""What travels through a batch: the valid events, and what the batch did with each.

An ``Item`` is one valid event with its delivery (``worker.contract.delivery``):
a message off the broker, an event parked by an earlier batch taken up
again, or a task event that a Job's ending sends to each of its tasks; the
delivery's ``source`` says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from worker.contract.delivery import JOB_ENDING, PARKED_EARLIER, Delivery
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
from worker.contract.jobs import Ending, JobEventCandidate, ending_event_id, ending_message_id
from worker.contract.lifecycle import CANCELED
from worker.contract.outcomes import Outcome
from worker.store import history
from worker.store.log import LoggedEvent, event_key


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
        """The event of a task's item; a Job's own events travel apart."""
        assert isinstance(self.event, TASK_EVENTS), self.event
        return self.event

    @property
    def job_event(self) -> JobEvent:
        """The event of a Job's own item."""
        assert isinstance(self.event, JOB_EVENTS), self.event
        return self.event

    def logged(self) -> LoggedEvent:
        return LoggedEvent(self.event.event_id, self.fingerprint, self.delivery.message_id)

    def job_candidate(self) -> JobEventCandidate:
        return JobEventCandidate(self.job_event, self.occurred_at, self.fingerprint, self.delivery.message_id)


@dataclass
class BatchResult:
    """Every delivery's outcome, and the documents the batch changed."""

    outcomes: list[tuple[Delivery, Outcome]] = field(default_factory=list)
    tasks: set[str] = field(default_factory=set)  # job_task_ids whose document it changed
    jobs: set[str] = field(default_factory=set)  # job_ids whose document it changed
    requeue: set[str] = field(default_factory=set)  # message ids to hand back unsettled

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
        kwargs=record["event"],
        received_at=record["received_at"],
        source=PARKED_EARLIER,
    )
    return make_item(delivery, history.event_from_record(record), record["_id"], record["occurred_at"])


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
        kwargs=event.model_dump(mode="json", exclude_none=True, exclude={"kind"}),
        received_at=datetime.now(UTC),
        source=JOB_ENDING,
    )
    item = make_item(delivery, event, occurred_at=to_millis(ending.occurred_at))
    item.ending_of = (job_id, ending.event_id)
    return item

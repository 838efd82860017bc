"""What a pool process reports on a batch, for the main process to count and log.

The main process sees every batch's result, so counting there is exact across
pool processes without prometheus_client's multiprocess files: the pool
returns a ``BatchReport`` (plain, picklable data) next to its decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.contract.delivery import MESSAGE, Delivery
from worker.contract.events import parse_occurred_at
from worker.contract.outcomes import APPLIED, Outcome


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """One event's outcome as the history records it, with what the logs and metrics need."""

    message_id: str
    type: str  # the task name, job_task.created ...
    outcome: str  # applied, duplicate, ignored, parked, conflict, rejected
    reason: str | None = None
    event_id: str | None = None
    job_task_id: str | None = None
    lag_seconds: float | None = None  # applied: processed time minus occurred_at
    source: str = MESSAGE  # worker.contract.delivery: a message of this batch, parked earlier, a Job's ending
    dead_letter_code: str | None = None  # a dead letter's code (worker.contract.outcomes), the metrics label

    @property
    def dead_letter(self) -> bool:
        return self.dead_letter_code is not None


@dataclass(slots=True)
class BatchReport:
    """A batch's decisions (``ack`` / ``requeue`` per message) and what it did.

    ``outcomes`` holds one entry per message of the batch that was settled
    (none for a requeued one) and the events it settled that were not its
    messages (their ``source`` says which).
    """

    decisions: list[str]
    outcomes: list[MessageOutcome] = field(default_factory=list)
    store_retries: int = 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def message_outcome(delivery: Delivery, outcome: Outcome, processed_at: datetime) -> MessageOutcome:
    """The report entry of one settled delivery, read from its kwargs."""
    fields = delivery.kwargs
    lag = None
    if outcome.kind == APPLIED:
        try:
            occurred_at = parse_occurred_at(fields.get("occurred_at")) or delivery.received_at
        except ValueError:
            occurred_at = delivery.received_at
        if occurred_at is not None:
            lag = max(0.0, (processed_at - occurred_at).total_seconds())
    return MessageOutcome(
        message_id=delivery.message_id, type=delivery.task_name, outcome=outcome.kind, reason=outcome.reason,
        event_id=_text(fields.get("event_id")), job_task_id=_text(fields.get("job_task_id")),
        lag_seconds=lag, source=delivery.source,
        dead_letter_code=outcome.dead_letter_code if outcome.dead_letter else None,
    )

"""What a pool process reports on a batch, for the main process to count and log.

The main process sees every batch's result, so counting there is exact across
pool processes without prometheus_client's multiprocess files: the pool
returns a ``BatchReport`` (plain, picklable data) next to its decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.contract import lifecycle
from worker.contract.events import parse_occurred_at

# Where an outcome that belongs to no message of the batch came from.
PARKED_EARLIER = "parked"  # an event parked by an earlier batch, settled when its created came
JOB_ENDING = "job_ending"  # a task event that a Job's cancel or timeout sends to each task


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
    source: str | None = None  # None: a message of this batch; else PARKED_EARLIER or JOB_ENDING

    @property
    def dead_letter(self) -> bool:
        return self.outcome in (lifecycle.CONFLICT, lifecycle.REJECTED)


@dataclass(slots=True)
class BatchReport:
    """A batch's decisions (``ack`` / ``requeue`` per message) and what it did.

    ``outcomes`` holds one entry per message of the batch that was settled
    (none for a requeued one) and, with a ``source``, the events it settled
    that were not its messages.
    """

    decisions: list[str]
    outcomes: list[MessageOutcome] = field(default_factory=list)
    store_retries: int = 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def message_outcome(message_id: str, task_name: str, kwargs: Any, received_at: datetime,
                    outcome: lifecycle.Outcome, processed_at: datetime,
                    source: str | None = None) -> MessageOutcome:
    """The report entry of one settled event, read from its message's kwargs."""
    fields = kwargs if isinstance(kwargs, dict) else {}
    lag = None
    if outcome.kind == lifecycle.APPLIED:
        try:
            occurred_at = parse_occurred_at(fields.get("occurred_at")) or received_at
        except ValueError:
            occurred_at = received_at
        lag = max(0.0, (processed_at - occurred_at).total_seconds())
    return MessageOutcome(
        message_id=message_id, type=task_name, outcome=outcome.kind, reason=outcome.reason,
        event_id=_text(fields.get("event_id")), job_task_id=_text(fields.get("job_task_id")),
        lag_seconds=lag, source=source,
    )


# Dead-letter reasons as a few stable labels (the reason text names values,
# which would make a label of unbounded cardinality): the first prefix that matches.
DEAD_LETTER_REASONS = (
    ("unknown event type", "unknown_type"),
    ("message could not be", "undecodable"),
    ("not a Celery task message", "undecodable"),
    ("internal error", "internal"),
    ("domain_id does not match", "other_domain"),
    ("job_id names a job of another domain", "other_domain"),
    ("the job has reached its limit", "limit"),
    ("the job task has reached", "limit"),
    ("this worker does not derive jobs", "jobs_off"),
)


def dead_letter_reason(outcome: MessageOutcome) -> str:
    """``conflict``, or why a message was rejected: ``invalid`` unless a known cause."""
    if outcome.outcome == lifecycle.CONFLICT:
        return "conflict"
    text = outcome.reason or ""
    for prefix, label in DEAD_LETTER_REASONS:
        if text.startswith(prefix):
            return label
    if "limit of" in text:
        return "limit"
    return "invalid"

"""The JobTask lifecycle rules: pure functions over plain data, no I/O.

A stored JobTask is a deterministic function of the *set* of distinct events
accepted for it, whatever order, duplication or concurrency they came with.
The rules make that true by reducing every event to a ``Summary`` whose
``merge`` is commutative, associative and has an identity:

- ``created`` fixes the identity fields; ``created_at`` is its occurred_at
  (the earliest, should an identical created be sent twice).
- ``started_at`` is the earliest started occurred_at. A started moves a task
  that has no terminal event to IN_PROGRESS.
- The terminal status is that of the terminal event with the earliest
  ``(occurred_at, event_id)``; ``finished_at`` is its occurred_at; a failure
  brings ``error_code`` / ``error_message``, a timeout ``ERROR_JOB_TASK_TIMEOUT``
  and its reason. A later terminal event changes
  nothing: neither status nor times nor counts.
- ``created_count`` is the sum of ``created_count_delta`` over progressed
  events plus that of the deciding terminal event when it is a success.
- ``updated_at`` is the latest occurred_at among the events that count:
  created, started, progressed and the deciding terminal event.

Which events are accepted (the same event_id twice, a second created with
other identity fields, another domain's event) is decided by ``fold`` here,
the reference model, and by ``worker.contract.acceptance`` with the store's event log
in the worker; the property tests hold the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.contract.events import (
    Canceled,
    Created,
    Event,
    Failed,
    Progressed,
    Started,
    Succeeded,
    TimedOut,
    event_fingerprint,
    identity_fingerprint,
)
from worker.contract.outcomes import (
    ALREADY_APPLIED,
    APPLIED_NOW,
    OTHER_CONTENT,
    OTHER_IDENTITY,
    OTHER_TASK_DOMAIN,
    WAITING_FOR_CREATED,
    Outcome,
    ended_by,
)

PENDING = "PENDING"
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
CANCELED = "CANCELED"
TIMEOUT = "TIMEOUT"
STATUSES = (PENDING, IN_PROGRESS, SUCCESS, FAILURE, CANCELED, TIMEOUT)
TERMINAL_STATUSES = frozenset({SUCCESS, FAILURE, CANCELED, TIMEOUT})

# A task that timed out reads back with this code, and the reason as its message.
ERROR_JOB_TASK_TIMEOUT = "ERROR_JOB_TASK_TIMEOUT"
TIMED_OUT_MESSAGE = "the job task timed out"

TERMINAL_STATUS_OF = {
    Succeeded: SUCCESS,
    Failed: FAILURE,
    Canceled: CANCELED,
    TimedOut: TIMEOUT,
}


@dataclass(frozen=True)
class Terminal:
    """The terminal event that decides a task's end."""

    occurred_at: datetime
    event_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    created_count_delta: int = 0

    def precedes(self, other: Terminal | None) -> bool:
        """Earliest (occurred_at, event_id) wins, so arrival order does not matter."""
        if other is None:
            return True
        return (self.occurred_at, self.event_id) < (other.occurred_at, other.event_id)


@dataclass(frozen=True)
class Summary:
    """What a set of accepted events says about one task (identity aside)."""

    created_at: datetime | None = None
    started_at: datetime | None = None
    progress_count: int = 0
    activity_at: datetime | None = None
    terminal: Terminal | None = None


EMPTY = Summary()


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def merge(a: Summary, b: Summary) -> Summary:
    """Join two summaries; commutative and associative, EMPTY is its identity."""
    terminal = a.terminal
    if b.terminal is not None and b.terminal.precedes(terminal):
        terminal = b.terminal
    return Summary(
        created_at=_earliest(a.created_at, b.created_at),
        started_at=_earliest(a.started_at, b.started_at),
        progress_count=a.progress_count + b.progress_count,
        activity_at=_latest(a.activity_at, b.activity_at),
        terminal=terminal,
    )


def summarize(event: Event, occurred_at: datetime) -> Summary:
    """The summary of one accepted event; ``occurred_at`` is already defaulted."""
    if isinstance(event, Created):
        return Summary(created_at=occurred_at, activity_at=occurred_at)
    if isinstance(event, Started):
        return Summary(started_at=occurred_at, activity_at=occurred_at)
    if isinstance(event, Progressed):
        return Summary(progress_count=event.created_count_delta, activity_at=occurred_at)
    status = TERMINAL_STATUS_OF[type(event)]
    error_code = error_message = None
    if isinstance(event, Failed):
        error_code, error_message = event.error_code, event.error_message
    elif isinstance(event, TimedOut):
        error_code, error_message = ERROR_JOB_TASK_TIMEOUT, event.reason or TIMED_OUT_MESSAGE
    return Summary(
        terminal=Terminal(
            occurred_at=occurred_at,
            event_id=event.event_id,
            status=status,
            error_code=error_code,
            error_message=error_message,
            created_count_delta=event.created_count_delta if isinstance(event, Succeeded) else 0,
        )
    )


def summarize_all(items: Iterable[tuple[Event, datetime]]) -> Summary:
    total = EMPTY
    for event, occurred_at in items:
        total = merge(total, summarize(event, occurred_at))
    return total


def status_of(summary: Summary) -> str:
    if summary.terminal is not None:
        return summary.terminal.status
    return IN_PROGRESS if summary.started_at is not None else PENDING


def derived(summary: Summary) -> dict[str, Any]:
    """The fields a summary decides, ``None`` where a task has no value yet.

    Every one of them may change when an event joins; the identity fields
    never do. The store sets these after every change (and unsets the Nones).
    """
    terminal = summary.terminal
    failed = terminal if terminal is not None and terminal.status in (FAILURE, TIMEOUT) else None
    return {
        "status": status_of(summary),
        "created_count": summary.progress_count + (terminal.created_count_delta if terminal else 0),
        "created_at": summary.created_at,
        "started_at": summary.started_at,
        "updated_at": _latest(summary.activity_at, terminal.occurred_at if terminal else None),
        "finished_at": terminal.occurred_at if terminal else None,
        "error_code": failed.error_code if failed else None,
        "error_message": failed.error_message if failed else None,
    }


def project(identity: Created, summary: Summary) -> dict[str, Any]:
    """The JobTask as readers see it: seed field names, absent when empty."""
    task = {
        "job_task_id": identity.job_task_id,
        "options": identity.options,
        "resource_group": identity.resource_group,
        "domain_id": identity.domain_id,
        "workspace_id": identity.workspace_id,
        "job_id": identity.job_id,
        "data_source_id": identity.data_source_id,
        **derived(summary),
    }
    return {key: value for key, value in task.items() if value is not None}


def joined_outcome(event: Event, after: Summary) -> Outcome:
    """A joined event is applied, unless it is a terminal event an earlier one beat."""
    decided = after.terminal
    if isinstance(event, tuple(TERMINAL_STATUS_OF)) and decided is not None and decided.event_id != event.event_id:
        return ended_by(decided.event_id)
    return APPLIED_NOW


@dataclass(frozen=True)
class TaskState:
    """The outcome of ``fold``: the visible task (None until created) and more."""

    task: dict[str, Any] | None
    summary: Summary
    outcomes: tuple[Outcome, ...]


def fold(deliveries: Iterable[tuple[Event, datetime]]) -> TaskState:
    """Reference model: apply deliveries of one job task in arrival order.

    Each item is an event with its effective occurred_at. Events that arrive
    before the task's created are kept and count once it arrives (when their
    domain matches). This is the specification the store is tested against.
    """
    identity: Created | None = None
    seen: dict[str, str] = {}  # event_id -> fingerprint of the accepted content
    summary = EMPTY
    waiting: list[tuple[int, Event, datetime]] = []
    outcomes: list[Outcome] = []

    def accept(index: int, event: Event, occurred_at: datetime) -> None:
        nonlocal summary
        assert identity is not None, "accept runs once the created event has arrived"
        fingerprint = event_fingerprint(event)
        if event.domain_id != identity.domain_id:
            outcomes[index] = OTHER_TASK_DOMAIN
        elif event.event_id in seen:
            outcomes[index] = ALREADY_APPLIED if seen[event.event_id] == fingerprint else OTHER_CONTENT
        else:
            seen[event.event_id] = fingerprint
            summary = merge(summary, summarize(event, occurred_at))
            outcomes[index] = joined_outcome(event, summary)

    for index, (event, occurred_at) in enumerate(deliveries):
        outcomes.append(WAITING_FOR_CREATED)
        if isinstance(event, Created):
            if identity is None:
                identity = event
                accept(index, event, occurred_at)
                for parked_index, parked, parked_at in waiting:
                    accept(parked_index, parked, parked_at)
                waiting.clear()
            elif identity_fingerprint(event) != identity_fingerprint(identity):
                outcomes[index] = OTHER_IDENTITY
            else:
                accept(index, event, occurred_at)
        elif identity is None:
            waiting.append((index, event, occurred_at))
        else:
            accept(index, event, occurred_at)

    task = project(identity, summary) if identity is not None else None
    return TaskState(task=task, summary=summary, outcomes=tuple(outcomes))

"""Which events join a task: the admission rules, pure functions, no I/O.

A task's state in the store is its identity (fixed by its first accepted
``created``), the ``lifecycle.Summary`` of its accepted events and how many
there are. A batch brings candidate events for the task, in delivery order;
``admit`` decides what each one does:

- joins the task's set of accepted events (and its summary);
- is held: the task has no ``created`` yet, so the event waits for it;
- is refused: a ``created`` with other identity fields (conflict), an event
  of another domain (rejected), or one past the task's limit (rejected).

Whether an event was already accepted earlier is not decided here: the
store's event log refuses an event_id twice, and ``duplicate_outcome`` reads
what it holds. ``joined_outcome`` tells an applied event from an ignored one
once the joined events are merged (``lifecycle.joined_outcome``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from worker.contract.events import MAX_TASKS_PER_JOB, Created, Event, identity_fingerprint
from worker.contract.lifecycle import EMPTY, Summary, merge, summarize
from worker.contract.outcomes import (
    ALREADY_APPLIED,
    APPLIED_NOW,
    OTHER_CONTENT,
    OTHER_IDENTITY,
    OTHER_JOB_DOMAIN,
    OTHER_TASK_DOMAIN,
    REDELIVERED,
    Outcome,
    over_limit,
)

FULL_JOB = over_limit("job", MAX_TASKS_PER_JOB, "tasks")


def task_over_limit(max_events: int) -> Outcome:
    return over_limit("job task", max_events, "events", "JOBTASK_MAX_EVENTS_PER_TASK")


@dataclass(frozen=True)
class Identity:
    """Who a task belongs to, as its first accepted ``created`` said."""

    domain_id: str
    fingerprint: str

    @classmethod
    def of(cls, created: Created) -> Identity:
        return cls(created.domain_id, identity_fingerprint(created))


@dataclass(frozen=True)
class StoredTask:
    """A task as far as admission needs it; ``identity`` None: no created yet."""

    identity: Identity | None = None
    summary: Summary = EMPTY
    events: int = 0


@dataclass(frozen=True)
class Candidate:
    """An event offered to its task, with its effective occurred_at."""

    event: Event
    occurred_at: datetime


@dataclass
class Admission:
    """What ``admit`` decided for each candidate (by index) and the task after it."""

    joined: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    refused: dict[int, Outcome] = field(default_factory=dict)
    founding: Created | None = None  # the created that gives a new task its identity
    contribution: Summary = EMPTY  # the joined events merged, to be added to the task
    after: StoredTask = field(default_factory=StoredTask)


def admit(state: StoredTask, candidates: Sequence[Candidate], max_events: int) -> Admission:
    """Decide every candidate of one task against its stored state, in order."""
    admission = Admission()
    identity = state.identity
    if identity is None:
        founding = next((c.event for c in candidates if isinstance(c.event, Created)), None)
        if founding is not None:
            identity = Identity.of(founding)
            admission.founding = founding
    events = state.events
    for index, candidate in enumerate(candidates):
        event = candidate.event
        if identity is None:
            admission.held.append(index)
        elif isinstance(event, Created) and identity_fingerprint(event) != identity.fingerprint:
            admission.refused[index] = OTHER_IDENTITY
        elif event.domain_id != identity.domain_id:
            admission.refused[index] = OTHER_TASK_DOMAIN
        elif events >= max_events:
            admission.refused[index] = task_over_limit(max_events)
        else:
            events += 1
            admission.joined.append(index)
            admission.contribution = merge(
                admission.contribution, summarize(event, candidate.occurred_at)
            )
    admission.after = StoredTask(identity, merge(state.summary, admission.contribution), events)
    return admission


def duplicate_outcome(fingerprint: str, message_id: str, logged_fingerprint: str,
                      logged_message_id: str | None, recorded: bool = False) -> Outcome:
    """An event_id the task's log already holds: a redelivery, a resend or a conflict.

    Other content is a ``conflict``; another message with the same content a
    ``duplicate``. The message that put it there comes again only when its
    delivery was not acknowledged: if that delivery's outcome is in the
    history (``recorded``) this one is a ``duplicate`` of it, otherwise it was
    lost after the commit and this delivery is told ``applied``.
    """
    if logged_fingerprint != fingerprint:
        return OTHER_CONTENT
    if logged_message_id == message_id and not recorded:
        return APPLIED_NOW
    if logged_message_id == message_id:
        return REDELIVERED
    return ALREADY_APPLIED


def job_refusal(created: Created, job_domain: str, job_tasks: int) -> Outcome | None:
    """Why a created may not found its task in the job it names, if it may not.

    A task belongs to its job's domain, like every event of a task belongs to
    the task's: a created naming another domain's job is refused.
    """
    if created.domain_id != job_domain:
        return OTHER_JOB_DOMAIN
    if job_tasks >= MAX_TASKS_PER_JOB:
        return FULL_JOB
    return None

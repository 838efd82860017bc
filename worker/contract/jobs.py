"""The Job rules: a Job is a function of its own events and its tasks' states; pure, no I/O.

SpaceONE keeps ``remained_tasks`` as a counter that each ending task
decrements: two tasks ending at once, or one terminal event delivered twice,
skew it. Here a Job is derived, never counted: ``job_fields`` computes every
field from what the Job itself accepted (``job.created``, ``job.canceled``,
``job.timed_out``) and the last known state of each of its
tasks (a ``TaskView`` per task, replaced only by a newer version of that
task). So any order, duplication or concurrency of deliveries ends in the
same Job. The tasks' views are kept a part at a time, and the Job keeps a
summary of each part (``contract.job_parts``): its fields are the sums of
those, so a Job's cost does not grow with its number of tasks.

- ``total_tasks``: what the accepted ``job.created`` declared, or the tasks
  created so far while none is (never fewer than the tasks that exist).
- ``task_counts``: tasks per status, all six statuses present;
  ``remained_tasks`` is ``total_tasks`` minus the tasks in a terminal status;
  ``created_count`` sums the tasks' created_count.
- status: CANCELED or TIMEOUT once the Job itself was canceled or timed out
  (the earliest such event decides); otherwise, once ``total_tasks`` is
  declared and no task remains, SUCCESS if every task succeeded, else FAILURE
  with ``ERROR_JOB_TASK`` and a message naming how many tasks did not; until
  then IN_PROGRESS (a scheduler still creating tasks never sees its job end).
  A Job no ``job.created`` declared cannot know when its last task came, so
  it stays IN_PROGRESS, and says why: ``ERROR_JOB_NOT_DECLARED`` with a
  message counting the tasks known and ended (readers never see "1 of 1,
  in progress" unexplained); the sweep never times out such a Job once
  every task it knows has ended (``contract.sweep``).
- ``finished_at``: the latest ``finished_at`` of its tasks for SUCCESS and
  FAILURE (the declaration's time for a job of no tasks), the deciding
  event's time for CANCELED and TIMEOUT.
- ``created_at``: the earliest of the declaration and its tasks' created_at;
  ``updated_at``: the latest of every time above.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from worker.contract.events import JobCanceled, JobCreated, JobEvent, JobTimedOut, content_digest
from worker.contract.job_parts import PartSummary
from worker.contract.lifecycle import (
    CANCELED,
    FAILURE,
    IN_PROGRESS,
    STATUSES,
    SUCCESS,
    TERMINAL_STATUSES,
    TIMEOUT,
)
from worker.contract.outcomes import (
    ALREADY_APPLIED,
    APPLIED,
    APPLIED_NOW,
    JOB_EVENT_OTHER_DOMAIN,
    OTHER_CONTENT,
    OTHER_DECLARATION,
    Outcome,
    over_limit,
)

JOB_STATUSES = (IN_PROGRESS, SUCCESS, FAILURE, CANCELED, TIMEOUT)
ERROR_JOB_TASK = "ERROR_JOB_TASK"
ERROR_JOB_TIMEOUT = "ERROR_JOB_TIMEOUT"
ERROR_JOB_NOT_DECLARED = "ERROR_JOB_NOT_DECLARED"


@dataclass(frozen=True)
class Declaration:
    """An accepted ``job.created``: how many tasks, and the Job's identity."""

    event_id: str
    occurred_at: datetime
    total_tasks: int
    data_source_id: str
    workspace_id: str | None
    resource_group: str
    options: dict[str, Any]

    @classmethod
    def of(cls, event: JobCreated, occurred_at: datetime) -> Declaration:
        return cls(event.event_id, occurred_at, event.total_tasks, event.data_source_id,
                   event.workspace_id, event.resource_group or "DOMAIN", event.options)

    def fingerprint(self) -> str:
        """What a second job.created must repeat: everything but its id and time."""
        return content_digest([self.total_tasks, self.data_source_id, self.workspace_id,
                        self.resource_group, self.options])


@dataclass(frozen=True)
class Ending:
    """An accepted ``job.canceled`` or ``job.timed_out``."""

    status: str  # CANCELED or TIMEOUT
    event_id: str
    occurred_at: datetime
    reason: str | None = None

    def precedes(self, other: Ending | None) -> bool:
        """The earliest (occurred_at, event_id) decides, whatever the arrival order."""
        return other is None or (self.occurred_at, self.event_id) < (other.occurred_at, other.event_id)


@dataclass(frozen=True)
class JobState:
    """Everything a Job is derived from."""

    job_id: str
    domain_id: str
    data_source_id: str | None = None
    workspace_id: str | None = None
    resource_group: str = "DOMAIN"
    declaration: Declaration | None = None
    endings: tuple[Ending, ...] = ()
    parts: Mapping[int, PartSummary] = field(default_factory=dict)

    @property
    def ending(self) -> Ending | None:
        """The ending that decides: the earliest."""
        decided = None
        for ending in self.endings:
            if ending.precedes(decided):
                decided = ending
        return decided

    @property
    def task_count(self) -> int:
        return sum(part.tasks for part in self.parts.values())

    def with_part(self, number: int, summary: PartSummary) -> JobState:
        """A newer summary of a part replaces the one known; an older one changes nothing."""
        if not summary.newer_than(self.parts.get(number)):
            return self
        return replace(self, parts={**self.parts, number: summary})

    def pending_parts(self) -> list[int]:
        """The parts some task of which an ending of the Job has not been sent to yet."""
        ending_ids = {ending.event_id for ending in self.endings}
        return sorted(number for number, part in self.parts.items() if not ending_ids <= part.endings_done)

    def with_declaration(self, declaration: Declaration) -> JobState:
        """The first accepted ``job.created`` fixes the identity; an identical later one
        only moves ``created_at`` earlier."""
        if self.declaration is not None:
            earliest = min(self.declaration.occurred_at, declaration.occurred_at)
            return replace(self, declaration=replace(self.declaration, occurred_at=earliest))
        return replace(
            self,
            declaration=declaration,
            data_source_id=declaration.data_source_id,
            workspace_id=declaration.workspace_id,
            resource_group=declaration.resource_group,
        )

    def with_ending(self, ending: Ending) -> JobState:
        if any(known.event_id == ending.event_id for known in self.endings):
            return self
        return replace(self, endings=(*self.endings, ending))


def _latest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def _failure_message(counts: dict[str, int], total: int) -> str:
    parts = [f"{counts[status]} {word}" for status, word in
             ((FAILURE, "failed"), (TIMEOUT, "timed out"), (CANCELED, "canceled")) if counts[status]]
    return f"{' and '.join(parts)} of {total} job tasks"


def _undeclared_message(known: int, finished: int) -> str:
    tasks = "1 task" if known == 1 else f"{known} tasks"
    return (f"no job.created declared this job's total: {finished} of the {tasks} known so far ended; "
            "it ends once a job.created declares how many it has, or when it is canceled")


def job_fields(state: JobState) -> dict[str, Any]:
    """The Job as readers see it (None where it has no value), from its state alone."""
    parts = list(state.parts.values())
    counts = {status: sum(part.counts.get(status, 0) for part in parts) for status in STATUSES}
    known = state.task_count
    declared = state.declaration.total_tasks if state.declaration else None
    total = max(declared, known) if declared is not None else known
    finished = sum(counts[status] for status in TERMINAL_STATUSES)
    remained = total - finished
    error_code = error_message = finished_at = None
    if state.ending is not None:
        status, finished_at = state.ending.status, state.ending.occurred_at
        error_message = state.ending.reason
        if status == TIMEOUT:
            error_code = ERROR_JOB_TIMEOUT
    elif state.declaration is not None and remained == 0:  # declared, so its count is known
        status = SUCCESS if counts[SUCCESS] == total else FAILURE
        # A job declared with no tasks is done when declared.
        finished_at = _latest(*(part.finished_at for part in parts)) or state.declaration.occurred_at
        if status == FAILURE:
            error_code, error_message = ERROR_JOB_TASK, _failure_message(counts, total)
    else:
        status = IN_PROGRESS
        if state.declaration is None:
            error_code, error_message = ERROR_JOB_NOT_DECLARED, _undeclared_message(known, finished)
    declared_at = state.declaration.occurred_at if state.declaration else None
    ended_at = state.ending.occurred_at if state.ending else None
    return {
        "job_id": state.job_id,
        "status": status,
        "total_tasks": total,
        "remained_tasks": remained,
        "task_counts": counts,
        "created_count": sum(part.created_count for part in parts),
        "options": state.declaration.options if state.declaration else {},
        "data_source_id": state.data_source_id,
        "domain_id": state.domain_id,
        "workspace_id": state.workspace_id,
        "resource_group": state.resource_group,
        "error_code": error_code,
        "error_message": error_message,
        "created_at": _earliest(declared_at, *(part.created_at for part in parts)),
        "updated_at": _latest(declared_at, ended_at, *(part.updated_at for part in parts)),
        "finished_at": finished_at,
    }


# --- the Job's own events ------------------------------------------------------------------------

MAX_JOB_EVENTS = 1_000  # job.created, job.canceled and job.timed_out a Job accepts


@dataclass(frozen=True)
class LoggedJobEvent:
    """A Job's accepted event, as its document keeps it."""

    fingerprint: str
    message_id: str


def admit_job_event(state: JobState | None, logged: dict[str, LoggedJobEvent], event: JobEvent,
                    occurred_at: datetime, fingerprint: str, message_id: str) -> tuple[Outcome, JobState | None]:
    """What one of a Job's own events does to it: the outcome, and the Job after it.

    A Job that does not exist yet is founded by any of its events: its
    domain is that event's; ``job.created`` also fixes its identity.
    """
    seen = logged.get(event.event_id)
    if seen is not None:
        if seen.fingerprint != fingerprint:
            return OTHER_CONTENT, state
        return (APPLIED_NOW if seen.message_id == message_id else ALREADY_APPLIED), state
    if state is None:
        state = JobState(event.job_id, event.domain_id)
    elif event.domain_id != state.domain_id:
        return JOB_EVENT_OTHER_DOMAIN, state
    if len(logged) >= MAX_JOB_EVENTS:
        return over_limit("job", MAX_JOB_EVENTS, "events"), state
    if isinstance(event, JobCreated):
        declaration = Declaration.of(event, occurred_at)
        known = state.declaration
        if known is not None and known.fingerprint() != declaration.fingerprint():
            return OTHER_DECLARATION, state
        return APPLIED_NOW, state.with_declaration(declaration)
    status = CANCELED if isinstance(event, JobCanceled) else TIMEOUT
    assert isinstance(event, (JobCanceled, JobTimedOut))
    return APPLIED_NOW, state.with_ending(Ending(status, event.event_id, occurred_at, event.reason))


# --- a Job in a batch: its own events, its tasks' views, the endings it sends ---------------------


@dataclass(frozen=True)
class JobEventCandidate:
    """One of a Job's own events offered to it in a batch, with its effective occurred_at."""

    event: JobEvent
    occurred_at: datetime
    fingerprint: str
    message_id: str


@dataclass(frozen=True)
class JobPlan:
    """What a batch makes of one Job: its state after, its logged events, each candidate's outcome."""

    state: JobState
    events: dict[str, LoggedJobEvent]
    outcomes: tuple[Outcome, ...]


def admit_job_events(job_id: str, before: JobState | None, logged: Mapping[str, LoggedJobEvent],
                     candidates: Sequence[JobEventCandidate], tasks_domain: str | None) -> JobPlan | None:
    """The Job after a batch's own events of it, each judged in turn.

    ``tasks_domain`` is the domain of a task of the Job that the batch
    touched, if any: a Job no event founded (its tasks predate Jobs) is
    theirs. None when there is no Job to speak of.
    """
    state, events, outcomes = before, dict(logged), []
    for candidate in candidates:
        outcome, state = admit_job_event(state, events, candidate.event, candidate.occurred_at,
                                         candidate.fingerprint, candidate.message_id)
        if outcome.kind == APPLIED and candidate.event.event_id not in events:
            events[candidate.event.event_id] = LoggedJobEvent(candidate.fingerprint, candidate.message_id)
        outcomes.append(outcome)
    if state is None:
        if tasks_domain is None:
            return None
        state = JobState(job_id, tasks_domain)
    return JobPlan(state, events, tuple(outcomes))


def with_parts(state: JobState, parts: Mapping[int, PartSummary]) -> JobState:
    """The Job with the summaries of the parts a batch read or wrote (each only if newer)."""
    for number, summary in sorted(parts.items()):
        state = state.with_part(number, summary)
    return state


def ending_event_id(job_id: str, ending: Ending) -> str:
    """The task event a Job's ending becomes: the same id for every task, every time."""
    digest = hashlib.sha256(f"{job_id}/{ending.event_id}".encode()).hexdigest()[:40]
    return f"job-{'canceled' if ending.status == CANCELED else 'timed-out'}:{digest}"


def ending_message_id(event_id: str, job_task_id: str) -> str:
    """The message id of a Job's ending sent to one task: one message per task and ending."""
    return f"{event_id}@{job_task_id}"

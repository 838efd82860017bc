"""What the worker did with one delivery: the outcome kinds, and every named outcome, once.

An ``Outcome`` is what the history records for a delivery and what the
metrics, the log lines and Flower report. Its ``kind`` is one of six words;
a dead-lettered one (``conflict``, ``rejected``) also carries a ``code``, a
word from the bounded set ``DEAD_LETTER_CODES`` that the metrics use as a
label, so that no label is ever parsed back from a reason's text. Each
outcome the rules (``lifecycle``, ``acceptance``, ``jobs``) or the worker
give is defined here, and only here. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLIED = "applied"
DUPLICATE = "duplicate"
IGNORED = "ignored"
PARKED = "parked"
CONFLICT = "conflict"
REJECTED = "rejected"
KINDS = (APPLIED, DUPLICATE, IGNORED, PARKED, CONFLICT, REJECTED)
# Outcomes whose event is part of the task's accepted set (for rebuilds).
ACCEPTED_OUTCOMES = frozenset({APPLIED, DUPLICATE, IGNORED})

# Why a message went to the dead letters, as a metrics label.
INVALID = "invalid"  # not a valid event of the contract
UNKNOWN_TYPE = "unknown_type"  # a task name the contract does not know
UNDECODABLE = "undecodable"  # not JSON, or not a Celery task message at all
INTERNAL = "internal"  # it failed on its own for a reason that is not the store's
OTHER_DOMAIN_CODE = "other_domain"  # it names a task or job of another domain
LIMIT = "limit"  # a task or a job is full
JOBS_OFF = "jobs_off"  # a Job's event on a worker that does not derive Jobs
DEAD_LETTER_CODES = (INVALID, CONFLICT, UNKNOWN_TYPE, UNDECODABLE, INTERNAL, OTHER_DOMAIN_CODE, LIMIT, JOBS_OFF)


@dataclass(frozen=True)
class Outcome:
    """One delivery's outcome: its kind, the reason in words, and for a dead letter its code."""

    kind: str
    reason: str | None = None
    code: str | None = None

    @property
    def dead_letter(self) -> bool:
        return self.kind in (CONFLICT, REJECTED)

    @property
    def dead_letter_code(self) -> str:
        """The metrics label of a dead letter: its code, ``conflict``, or ``invalid``."""
        if self.code is not None:
            return self.code
        return CONFLICT if self.kind == CONFLICT else INVALID


APPLIED_NOW = Outcome(APPLIED)
WAITING_FOR_CREATED = Outcome(PARKED, "waiting for the job task's created event")
ALREADY_APPLIED = Outcome(DUPLICATE, "event_id already applied")
REDELIVERED = Outcome(DUPLICATE, "message already applied by an earlier delivery")
OTHER_CONTENT = Outcome(CONFLICT, "event_id already applied with different content")
OTHER_IDENTITY = Outcome(CONFLICT, "created again with different identity fields")
OTHER_DECLARATION = Outcome(CONFLICT, "job created again with different fields")
OTHER_TASK_DOMAIN = Outcome(REJECTED, "domain_id does not match the job task's", OTHER_DOMAIN_CODE)
OTHER_JOB_DOMAIN = Outcome(REJECTED, "job_id names a job of another domain", OTHER_DOMAIN_CODE)
JOB_EVENT_OTHER_DOMAIN = Outcome(REJECTED, "domain_id does not match the job's", OTHER_DOMAIN_CODE)
NOT_DERIVED = Outcome(REJECTED, "this worker does not derive jobs (JOBTASK_DERIVE_JOBS=false)", JOBS_OFF)


def ended_by(event_id: str) -> Outcome:
    """A terminal event that an earlier one beat: accepted, but it changes nothing."""
    return Outcome(IGNORED, f"task already ended by {event_id}")


def over_limit(what: str, limit: int, unit: str, setting: str | None = None) -> Outcome:
    """A task or job that has reached a limit refuses what would pass it."""
    named = f" ({setting})" if setting else ""
    return Outcome(REJECTED, f"the {what} has reached its limit of {limit} {unit}{named}", LIMIT)


def invalid(reason: str, code: str = INVALID) -> Outcome:
    """A message that is not a valid event; ``code`` says which kind of invalid."""
    return Outcome(REJECTED, reason, code)


def internal_error(exc: BaseException) -> Outcome:
    """A message that fails on its own for no store reason: set aside, never looped on."""
    return Outcome(REJECTED, f"internal error: {type(exc).__name__}: {exc}", INTERNAL)

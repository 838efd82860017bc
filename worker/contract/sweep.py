"""The sweep's rules: which tasks and Jobs stopped reporting, and the event that ends each; pure.

A crashed plugin sends nothing more, so its task would stay IN_PROGRESS for
ever. The sweep (``worker.ingest.sweep``, run by ``job_task.sweep``) ends
such tasks by sending the same events a producer's watchdog would:

- an IN_PROGRESS task is stale once no event of it was applied for the
  heartbeat timeout; a PENDING task once it was created (applied) more than
  the pending timeout ago. Both are measured by ``applied_at``, the worker's
  clock when the task's document last changed, never by producers'
  ``occurred_at``: a backfill of day-old events, applied now, is fresh;
- a Job is overdue once it is IN_PROGRESS more than the job timeout after the
  worker first stored it (``created_on``, the worker's clock too), unless no
  ``job.created`` ever declared its total and every task it knows has
  ended: nothing of it is running, so timing it out would call finished
  work TIMEOUT; it says instead that its total is not declared
  (``contract.jobs``, ``ERROR_JOB_NOT_DECLARED``);
- each is ended by a ``job_task.timed_out`` / ``job.timed_out`` whose
  ``event_id`` is derived from the subject and the staleness the sweep saw
  (``sweep:<id>:<applied_at in ms>``): two sweeps, two beats or a redelivered
  sweep that see the same task send the same event, which the worker applies
  once. Its ``occurred_at`` is when the task became stale (``applied_at`` plus
  the timeout), so a real terminal event that occurred before that, however
  late it arrives, still wins by the lifecycle's earliest-terminal rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from worker.contract.events import to_millis
from worker.contract.lifecycle import IN_PROGRESS, PENDING

SWEEP_PREFIX = "sweep:"


@dataclass(frozen=True)
class Timeouts:
    """How long a task or Job may go without news (JOBTASK_*_TIMEOUT), in seconds."""

    heartbeat: float = 1_800.0  # an IN_PROGRESS task, since its last applied event
    pending: float = 7_200.0  # a PENDING task, since its created was applied
    job: float = 86_400.0  # an IN_PROGRESS Job, since the worker first stored it

    def of_status(self, status: str) -> float | None:
        """The timeout of a task in ``status``; None for a status the sweep leaves alone."""
        return {IN_PROGRESS: self.heartbeat, PENDING: self.pending}.get(status)


SWEPT_STATUSES = (IN_PROGRESS, PENDING)


def stale_before(now: datetime, timeout: float) -> datetime:
    """The cutoff: a subject last applied (or stored) before this is stale at ``now``."""
    return now - timedelta(seconds=timeout)


def is_stale(status: str, applied_at: datetime, now: datetime, timeouts: Timeouts) -> bool:
    timeout = timeouts.of_status(status)
    return timeout is not None and applied_at < stale_before(now, timeout)


def is_overdue(status: str, created_on: datetime, now: datetime, timeouts: Timeouts,
               waits_for_declaration: bool = False) -> bool:
    """``waits_for_declaration``: an undeclared Job all of whose known tasks ended."""
    return status == IN_PROGRESS and not waits_for_declaration and created_on < stale_before(now, timeouts.job)


def _millis(moment: datetime) -> int:
    return int(to_millis(moment).timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return to_millis(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sweep_event_id(subject_id: str, seen_at: datetime) -> str:
    """The same for every sweep that sees the subject at the same staleness."""
    return f"{SWEEP_PREFIX}{subject_id}:{_millis(seen_at)}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def task_timed_out(job_task_id: str, domain_id: str, status: str, applied_at: datetime,
                   timeouts: Timeouts) -> dict[str, str]:
    """The kwargs of the ``job_task.timed_out`` that ends a stale task."""
    applied_at = _aware(applied_at)
    timeout = timeouts.of_status(status)
    if timeout is None:
        raise ValueError(f"a {status} task does not time out")
    waited = "no event" if status == IN_PROGRESS else "not started"
    return {
        "event_id": sweep_event_id(job_task_id, applied_at),
        "domain_id": domain_id,
        "job_task_id": job_task_id,
        "occurred_at": _iso(applied_at + timedelta(seconds=timeout)),
        "reason": f"{waited} for {timeout:g} s ({status} since {_iso(applied_at)}, worker clock)",
    }


def job_timed_out(job_id: str, domain_id: str, created_on: datetime, timeouts: Timeouts) -> dict[str, str]:
    """The kwargs of the ``job.timed_out`` that ends an overdue Job (and its unfinished tasks)."""
    created_on = _aware(created_on)
    return {
        "event_id": sweep_event_id(job_id, created_on),
        "domain_id": domain_id,
        "job_id": job_id,
        "occurred_at": _iso(created_on + timedelta(seconds=timeouts.job)),
        "reason": f"still IN_PROGRESS {timeouts.job:g} s after it was created ({_iso(created_on)}, worker clock)",
    }

"""The Jobs of a batch: their own events, and what their tasks' changes make of them.

Once a batch's task events are applied, ``derive_jobs`` brings every Job the
batch touched up to date and returns what it decided; it never calls back
into the batch:

1. the Job's own events (``job.created``, ``job.canceled``, ``job.timed_out``)
   are admitted, every task the batch touched gives its Job the state it now
   has stored, and the endings whose task events the batch settled are noted
   (``contract.jobs.plan_job``, the pure rules);
2. each Job is written with a ``$set`` guarded by its version
   (``worker.store.jobs``); a Job another worker changed meanwhile is read
   again and the same steps redone, which changes nothing twice (a task's
   view only moves forward, an event counts once);
3. a Job's endings act on each of its tasks as task events
   (``items.ending_item``), returned for the batch to apply like any event;
   it derives its Jobs again until nothing is left to send, so a task
   created after its job was canceled is canceled as soon as it exists.

So a Job reflects a task's change in the batch that stored it, and a worker
that dies between the two leaves its messages to a redelivery that does it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pymongo.database import Database

from worker.contract.jobs import TaskView, plan_job
from worker.contract.outcomes import Outcome
from worker.ingest.items import Item, ending_item
from worker.store.jobs import JobRow, read_jobs, write_jobs
from worker.store.retry import BatchNotSettled
from worker.store.tasks import TaskRow

MAX_ATTEMPTS = 8


@dataclass
class JobDecisions:
    """What deriving a batch's Jobs decided: the Jobs' own events judged, the task events to send."""

    judged: list[tuple[Item, Outcome]] = field(default_factory=list)
    sends: list[Item] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # job_ids whose document was written


def derive_jobs(db: Database, job_events: list[Item], tasks: Iterable[TaskRow],
                endings_sent: Mapping[str, Mapping[str, set[str]]]) -> JobDecisions:
    """Bring the Jobs of ``job_events`` and of ``tasks`` up to date; see the module docstring.

    ``endings_sent``: job_id -> job_task_id -> the endings whose task event
    the batch settled.
    """
    decisions = JobDecisions()
    waiting = list(job_events)
    rows = list(tasks)
    for _ in range(MAX_ATTEMPTS):
        job_ids = {row.job_id for row in rows} | {item.job_event.job_id for item in waiting}
        if not job_ids:
            return decisions
        stored = read_jobs(db, job_ids)
        planned = [(job_id, stored.get(job_id), _plan(job_id, stored.get(job_id), waiting, rows, endings_sent))
                   for job_id in sorted(job_ids)]
        planned = [(job_id, before, plan) for job_id, before, plan in planned if plan is not None]
        writes = [(before, JobRow(before.version + 1 if before else 1, plan.state, plan.events))
                  for _job_id, before, plan in planned if plan.changed]
        lost = write_jobs(db, writes)
        decisions.written |= {after.state.job_id for _, after in writes}
        for job_id, _before, plan in planned:
            if job_id in lost:
                continue
            mine = [item for item in waiting if item.job_event.job_id == job_id]
            decisions.judged += zip(mine, plan.outcomes, strict=True)
            waiting = [item for item in waiting if item.job_event.job_id != job_id]
        if not lost:
            decisions.sends = [ending_item(plan.state.job_id, plan.state.domain_id, job_task_id, ending)
                               for _job_id, _before, plan in planned
                               for job_task_id, ending in plan.state.unsent_endings()]
            return decisions
    raise BatchNotSettled(f"jobs still contended after {MAX_ATTEMPTS} attempts")


def _plan(job_id: str, before: JobRow | None, waiting: list[Item], rows: list[TaskRow],
          endings_sent: Mapping[str, Mapping[str, set[str]]]):
    candidates = [item.job_candidate() for item in waiting if item.job_event.job_id == job_id]
    views = [(row.job_task_id, row.state.identity.domain_id if row.state.identity else "",
              TaskView.of(row.version, row.state.summary)) for row in rows if row.job_id == job_id]
    return plan_job(job_id, before.state if before else None, dict(before.events) if before else {},
                    candidates, views, {task: set(ids) for task, ids in endings_sent.get(job_id, {}).items()})

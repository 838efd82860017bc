"""The Jobs of a batch: their own events, and what their tasks' changes make of them.

Once a batch's task events are applied, ``derive_jobs`` brings every Job the
batch touched up to date and returns what it decided; it never calls back
into the batch:

1. the Job's own events (``job.created``, ``job.canceled``, ``job.timed_out``)
   are admitted (``contract.jobs.admit_job_events``, the pure rules);
2. every task the batch touched gives its part of the Job the state it now
   has stored, and the endings whose task events the batch settled are
   noted (``contract.job_parts.plan_part``); the parts are written, each
   guarded by its version (``worker.store.job_parts``);
3. each Job takes the summaries of the parts read or written and is written
   guarded by its version (``worker.store.jobs``). A part or a Job another
   worker changed meanwhile is read again and the same steps redone, which
   changes nothing twice (a view only moves forward, an event counts once);
4. a Job's endings act on each of its tasks as task events
   (``items.ending_item``), returned for the batch to apply like any event:
   to the batch's own tasks, so a task created after its Job was canceled
   is canceled as soon as it exists, and to every task of the parts read
   for it. The parts an ending has not reached yet are read
   ``sending_parts`` at a time, and only for the Jobs
   ``continuing`` (whose own event the batch carries): a Job of 50,000 tasks
   is canceled a few hundred tasks per step, and a batch that ran out of
   steps leaves the rest to the next delivery of that event
   (``JobDecisions.unfinished``).

So a Job reflects a task's change in the batch that stored it, and a worker
that dies between the two leaves its messages to a redelivery that does it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from pymongo.database import Database

from worker.contract.job_parts import PartState, PartSummary, TaskView, plan_part
from worker.contract.jobs import JobPlan, admit_job_events, with_parts
from worker.contract.outcomes import Outcome
from worker.ingest.items import Item, ending_item
from worker.store.job_parts import PartKey, read_parts, write_parts
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
    parts_sending: int = 0  # parts read for their endings alone
    unfinished: set[str] = field(default_factory=set)  # continuing Jobs with parts still to reach


def derive_jobs(db: Database, job_events: list[Item], tasks: Iterable[TaskRow],
                endings_sent: Mapping[str, Mapping[str, set[str]]],
                continuing: Collection[str] = (), sending_parts: int = 0) -> JobDecisions:
    """Bring the Jobs of ``job_events`` and of ``tasks`` up to date; see the module docstring.

    ``endings_sent``: job_id -> job_task_id -> the endings whose task event
    the batch settled (each such task is among ``tasks``).
    """
    decisions = JobDecisions()
    waiting = list(job_events)
    rows = list(tasks)
    touched: dict[PartKey, list[TaskRow]] = defaultdict(list)
    for row in rows:
        touched[(row.job_id, row.part)].append(row)
    for _ in range(MAX_ATTEMPTS):
        job_ids = {row.job_id for row in rows} | {item.job_event.job_id for item in waiting}
        if not job_ids:
            return decisions
        stored = read_jobs(db, job_ids)
        planned = {job_id: plan for job_id in sorted(job_ids)
                   if (plan := _admitted(job_id, stored.get(job_id), waiting, rows)) is not None}
        sending = _parts_to_reach(planned, continuing, sending_parts)
        parts = read_parts(db, set(touched) | sending)
        changes = {key: (before, plan_part(before, _views(touched.get(key, ())), _sent(key, touched, endings_sent)))
                   for key, before in parts.items()}
        if write_parts(db, {key: change for key, change in changes.items() if change[1] != change[0]}):
            continue  # a part changed by another writer: read everything again
        summaries: dict[str, dict[int, PartSummary]] = defaultdict(dict)
        for (job_id, number), (_, after) in changes.items():
            if after.version:
                summaries[job_id][number] = after.summary()
        writes = []
        for job_id, plan in planned.items():
            before = stored.get(job_id)
            state = with_parts(plan.state, summaries.get(job_id, {}))
            planned[job_id] = JobPlan(state, plan.events, plan.outcomes)
            if before is None or state != before.state or plan.events != before.events:
                writes.append((before, JobRow(before.version + 1 if before else 1, state, plan.events)))
        lost = write_jobs(db, writes)
        decisions.written |= {after.state.job_id for _, after in writes}
        for job_id, plan in planned.items():
            if job_id in lost:
                continue
            mine = [item for item in waiting if item.job_event.job_id == job_id]
            decisions.judged += zip(mine, plan.outcomes, strict=True)
            waiting = [item for item in waiting if item.job_event.job_id != job_id]
        if not lost:
            decisions.sends = _sends(planned, {key: after for key, (_, after) in changes.items()}, sending, touched)
            decisions.parts_sending = len(sending)
            decisions.unfinished = {job_id for job_id in continuing if job_id in planned and
                                    set(planned[job_id].state.pending_parts()) - {n for j, n in sending if j == job_id}}
            return decisions
    raise BatchNotSettled(f"jobs still contended after {MAX_ATTEMPTS} attempts")


def _admitted(job_id: str, before: JobRow | None, waiting: list[Item], rows: list[TaskRow]) -> JobPlan | None:
    candidates = [item.job_candidate() for item in waiting if item.job_event.job_id == job_id]
    tasks_domain = next((row.state.identity.domain_id for row in rows
                         if row.job_id == job_id and row.state.identity), None)
    return admit_job_events(job_id, before.state if before else None, dict(before.events) if before else {},
                            candidates, tasks_domain)


def _parts_to_reach(planned: Mapping[str, JobPlan], continuing: Collection[str], limit: int) -> set[PartKey]:
    """The first ``limit`` parts that a continuing Job's endings have not reached."""
    pending = [(job_id, number) for job_id in sorted(continuing) if job_id in planned
               for number in planned[job_id].state.pending_parts()]
    return set(pending[:limit])


def _views(rows: Iterable[TaskRow]) -> list[tuple[str, TaskView]]:
    return [(row.job_task_id, TaskView.of(row.version, row.state.summary)) for row in rows]


def _sent(key: PartKey, touched: Mapping[PartKey, list[TaskRow]],
          endings_sent: Mapping[str, Mapping[str, set[str]]]) -> dict[str, set[str]]:
    """The endings settled in the batch for the tasks of one part."""
    by_task = endings_sent.get(key[0], {})
    return {row.job_task_id: set(by_task[row.job_task_id]) for row in touched.get(key, ())
            if row.job_task_id in by_task}


def _sends(planned: Mapping[str, JobPlan], parts: Mapping[PartKey, PartState], sending: set[PartKey],
           touched: Mapping[PartKey, list[TaskRow]]) -> list[Item]:
    """The task events the Jobs' endings still owe: every task of the parts read for them, the batch's own tasks.

    The rest of a touched part waits for its turn among the parts to reach,
    so that a batch's tasks never bring it a few hundred sends per part.
    """
    sends = []
    for key, part in sorted(parts.items()):
        plan = planned.get(key[0])
        if plan is None or not plan.state.endings:
            continue
        endings = {ending.event_id: ending for ending in plan.state.endings}
        mine = None if key in sending else {row.job_task_id for row in touched.get(key, ())}
        for job_task_id, ending_id in part.unsent(endings):
            if mine is None or job_task_id in mine:
                sends.append(ending_item(key[0], plan.state.domain_id, job_task_id, endings[ending_id]))
    return sends

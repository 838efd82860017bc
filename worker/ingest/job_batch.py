"""The Jobs of a batch: their own events, and what their tasks' changes make of them.

Once a batch's task events are applied, ``JobSettling.settle`` brings every
Job the batch touched up to date:

1. the Job's own events (``job.created``, ``job.canceled``, ``job.timed_out``)
   are admitted (``contract.jobs.admit_job_event``);
2. every task the batch touched gives its Job the state it now has stored,
   and the task events the Job's endings sent are noted;
3. each Job is written with a ``$set`` guarded by its version; a Job another
   worker changed meanwhile is read again and the same steps redone, which
   changes nothing twice (a task's view only moves forward, an event counts
   once);
4. a Job's endings act on each of its tasks as task events
   (``items.ending_item``), returned to the caller, which applies them like
   any event and settles again until nothing is left to send: a task created
   after its job was canceled is canceled as soon as it exists.

So a Job reflects a task's change in the batch that stored it, and a worker
that dies between the two leaves its messages to a redelivery that does it.
"""

from __future__ import annotations

from typing import Protocol

from pymongo.database import Database

from worker.contract.jobs import JobState, LoggedJobEvent, TaskView, admit_job_event
from worker.contract.lifecycle import APPLIED, Outcome, derived
from worker.ingest.history import Delivery
from worker.ingest.items import Item, ending_item
from worker.ingest.jobs import JobRow, read_jobs, write_jobs
from worker.ingest.retry import BatchNotSettled
from worker.ingest.store import TaskRow

MAX_ATTEMPTS = 8


class Batch(Protocol):
    """What the Jobs need of the batch (``processor.Batch``)."""

    db: Database
    latest: dict[str, TaskRow]  # each task the batch touched, as last seen
    endings_sent: dict[str, dict[str, set[str]]]  # job -> task -> endings settled

    def settle(self, item: Item | None, delivery: Delivery, outcome: Outcome,
               field_name: str | None = None) -> None: ...


def task_view(row: TaskRow) -> TaskView:
    """What a Job keeps of one of its tasks, at the task's version."""
    fields = derived(row.state.summary)
    return TaskView(row.version, fields["status"], fields["created_count"], fields["created_at"],
                    fields["updated_at"], fields["finished_at"])


class JobSettling:
    """Settles the Jobs of one batch; see the module docstring."""

    def __init__(self, batch: Batch, job_items: list[Item]) -> None:
        self.batch = batch
        self.waiting = list(job_items)  # the Jobs' own events not settled yet
        self.touched: set[str] = set()

    def settle(self) -> list[Item]:
        """Bring the batch's Jobs up to date; return the task events their endings send."""
        for _ in range(MAX_ATTEMPTS):
            job_ids = {row.job_id for row in self.batch.latest.values()}
            job_ids |= {item.job_event.job_id for item in self.waiting}
            if not job_ids:
                return []
            rows = read_jobs(self.batch.db, job_ids)
            plans = [plan for plan in (self._plan(job_id, rows.get(job_id)) for job_id in sorted(job_ids))
                     if plan is not None]
            writes = [(before, after) for before, after, _ in plans if after is not None]
            lost = write_jobs(self.batch.db, writes)
            self.touched |= {after.state.job_id for _, after in writes}
            for before, after, judged in plans:
                job_id = (after or before).state.job_id
                if job_id in lost:
                    continue
                for item, outcome in judged:
                    self.batch.settle(item, item.delivery, outcome)
                    self.waiting.remove(item)
            if not lost:
                return self._sends([after or before for before, after, _ in plans])
        raise BatchNotSettled(f"jobs still contended after {MAX_ATTEMPTS} attempts")

    def _plan(self, job_id: str, before: JobRow | None):
        """(before, after or None if unchanged, [(job event, outcome)]) for one Job."""
        state = before.state if before else None
        events = dict(before.events) if before else {}
        judged = []
        for item in [item for item in self.waiting if item.job_event.job_id == job_id]:
            outcome, state = admit_job_event(state, events, item.job_event, item.occurred_at,
                                             item.fingerprint, item.delivery.message_id)
            if outcome.kind == APPLIED and item.event.event_id not in events:
                events[item.event.event_id] = LoggedJobEvent(item.fingerprint, item.delivery.message_id)
            judged.append((item, outcome))
        tasks = [row for row in self.batch.latest.values() if row.job_id == job_id]
        if state is None:
            if not tasks:
                return None
            # A Job no event founded (its tasks predate Jobs): its tasks' domain.
            identity = tasks[0].state.identity
            assert identity is not None  # its job_id came with its created
            state = JobState(job_id, identity.domain_id)
        for row in tasks:
            state = state.with_task(row.job_task_id, task_view(row))
        for job_task_id, ending_ids in self.batch.endings_sent.get(job_id, {}).items():
            state = state.with_endings_sent(job_task_id, ending_ids)
        if before is not None and state == before.state and events == before.events:
            return before, None, judged
        version = before.version + 1 if before else 1
        return before, JobRow(version, state, events), judged

    def _sends(self, rows: list[JobRow]) -> list[Item]:
        return [ending_item(row.state.job_id, row.state.domain_id, job_task_id, ending)
                for row in rows for job_task_id, ending in row.state.unsent_endings()]

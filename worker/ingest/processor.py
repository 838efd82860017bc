"""One batch of deliveries: validate, admit, log, fold, park, derive the Jobs, record.

The path of a batch, one loop until nothing is left to do (``Batch.run``):

1. ``parse_event`` checks each message against the contract; a bad one is
   rejected with a reason naming the field.
2. A round. The events of each task meet the task's stored state in
   ``acceptance.admit``; those that join become one log entry per task, all
   inserted in one bulk (the commit, ``worker.store.log.claim``), then folded
   into the task documents in one bulk of guarded updates. An entry whose
   number another writer took, or which holds an event logged before, goes
   round again once its task has caught up with its log; an event logged
   before is judged from what the log holds (applied, duplicate, conflict).
3. Once no event is contended, the tasks' documents catch up with their
   logs. Events of a task with no created yet are parked: written to the
   history, then their tasks read once more, so that a created logged
   meanwhile by another worker is never missed; a created of this batch
   wakes the events parked for its task. What wakes goes round again (2).
4. Then the Jobs (``worker.ingest.jobs``): their own events, their tasks'
   states, and the task events their endings send, which go round again (2):
   at most ``ENDING_PARTS`` parts of tasks beyond the batch's own, so that a
   batch's cost stays bounded however large the Job; a Job's own event
   whose endings did not reach every task yet is requeued, and its next
   delivery goes on from there.
5. Refused deliveries go to the dead letters, every delivery's record to
   the history; parked records are resolved last.

Every step is idempotent, so the caller retries the whole batch through a
store outage, and a worker that dies at any point leaves its messages to be
delivered again with nothing lost or doubled.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pymongo.database import Database

from worker.contract.acceptance import Candidate, Identity, StoredTask, admit, duplicate_outcome, job_refusal
from worker.contract.delivery import MESSAGE, Delivery
from worker.contract.events import JOB_EVENTS, Created, InvalidEvent, parse_event
from worker.contract.job_parts import part_of
from worker.contract.lifecycle import joined_outcome
from worker.contract.outcomes import APPLIED, NOT_DERIVED, PARKED, UNDECODABLE, WAITING_FOR_CREATED, Outcome, invalid
from worker.ingest.items import BatchResult, Item, item_from_parked, make_item
from worker.ingest.jobs import derive_jobs
from worker.store import dead_letters, history, jobs, log, tasks
from worker.store.log import LogEntry
from worker.store.retry import BatchNotSettled
from worker.store.tasks import NO_ROW_VERSION, TaskRow

# Steps of a batch's loop: rounds while events are contended, wakes of parked
# events, and the task events of Job endings; a batch still busy after these
# is contended by other writers, and is retried whole.
MAX_STEPS = 24
# Parts of a Job's tasks that a batch reads only to send them its endings:
# one per step, ENDING_PARTS per batch (about 500 task events).
ENDING_PARTS = 2


def _by_task(items: list[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        grouped[item.job_task_id].append(item)
    return grouped


@dataclass
class _Plan:
    """One task's joined events in a round, as the entry that would log them."""

    row: TaskRow | None
    entry: LogEntry
    joined: list[Item]
    after: StoredTask


class Batch:
    """The state of one batch while it settles; see the module docstring."""

    def __init__(self, db: Database, batch_id: str, max_events: int, derive_jobs: bool = True) -> None:
        self.db = db
        self.batch_id = batch_id
        self.max_events = max_events
        self.derive_jobs = derive_jobs
        self.records: list[dict] = []
        self.parked_resolutions: list[tuple[str, Outcome, str]] = []
        self.dead_letters: list[dict] = []
        self.result = BatchResult()
        self.held: list[Item] = []
        self.behind: set[str] = set()  # tasks whose log is ahead of their document
        self.founded: set[str] = set()  # tasks a created of this batch was for
        self.latest: dict[str, TaskRow] = {}  # each touched task's document as last seen
        # Tasks whose document this batch moved, or an earlier attempt of it did
        # (its event is told applied again): what the change feed announces.
        self.changed: set[str] = set()
        # job_id -> job_task_id -> the job endings whose task event was settled here
        self.endings_sent: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.jobs_written: set[str] = set()
        self.new_parts: dict[str, int] = {}  # job_task_id -> its part, for tasks this batch founds
        self.unfinished_jobs: set[str] = set()  # Jobs whose endings are still to reach some tasks

    # -- recording ---------------------------------------------------------------

    def record(self, item: Item | None, delivery: Delivery, outcome: Outcome, field_name=None) -> None:
        """What became of one delivery: its outcome, its history record, a dead letter."""
        event = item.event if item else None
        self.result.outcomes.append((delivery, outcome))
        if item is not None and item.parked_id is not None:
            if outcome.kind != PARKED:
                self.parked_resolutions.append((item.parked_id, outcome, self.batch_id))
        else:
            self.records.append(
                history.history_record(
                    delivery, self.batch_id, outcome, event,
                    item.occurred_at if item else None,
                    item.fingerprint if item else None,
                    field_name,
                    item.ending_of[0] if item and item.ending_of else None,
                )
            )
        if item is not None and item.ending_of is not None:
            job_id, ending_event_id = item.ending_of
            self.endings_sent[job_id][item.job_task_id].add(ending_event_id)
        if outcome.dead_letter:
            self.dead_letters.append(dead_letters.dead_letter_record(delivery, outcome, event, field_name))

    def drop(self, message_ids: set[str]) -> None:
        """Forget what was recorded of these messages (a Job's own events, requeued unsettled)."""
        def theirs(delivery: Delivery) -> bool:
            return delivery.source == MESSAGE and delivery.message_id in message_ids
        self.result.outcomes = [(delivery, outcome) for delivery, outcome in self.result.outcomes
                                if not theirs(delivery)]
        self.records = [record for record in self.records if record["message_id"] not in message_ids]
        self.dead_letters = [letter for letter in self.dead_letters if letter["_id"] not in message_ids]

    # -- rounds ------------------------------------------------------------------

    def run(self, items: list[Item], job_items: list[Item]) -> None:
        """Take the batch's events through its steps until each is settled or parked (module docstring)."""
        work, jobs_waiting = items, list(job_items)
        continuing = {item.job_event.job_id for item in job_items}
        ending_parts = ENDING_PARTS
        looked_for: set[str] = set()  # tasks whose parked events were looked for
        for _ in range(MAX_STEPS):
            if work:
                work = self.round(work)
                if work:
                    continue  # contended: round again
            self.catch_up()  # a task's document exists before we look for what waits for it
            work = self.park()
            founded, looked_for = self.founded - looked_for, looked_for | self.founded
            work += self.waiting(founded, work)
            if work:
                continue
            if not self.derive_jobs:
                return
            decided = derive_jobs(self.db, jobs_waiting, self.latest.values(), self.endings_sent,
                                  continuing, min(ending_parts, 1))
            ending_parts -= decided.parts_sending
            self.unfinished_jobs = decided.unfinished
            for item, outcome in decided.judged:
                self.record(item, item.delivery, outcome)
            judged = {id(item) for item, _ in decided.judged}
            jobs_waiting = [item for item in jobs_waiting if id(item) not in judged]
            self.jobs_written |= decided.written
            work = decided.sends
            if not work:
                return
        raise BatchNotSettled(f"a batch still busy after {MAX_STEPS} steps")

    def round(self, pending: list[Item]) -> list[Item]:
        """Admit, log and fold ``pending`` once; return what must go round again."""
        leaders: list[Item] = []
        followers: list[Item] = []
        seen: set[str] = set()
        for item in pending:
            (followers if item.key in seen else leaders).append(item)
            seen.add(item.key)
        grouped = _by_task(leaders)
        rows = self._rows(set(grouped))
        if self.derive_jobs:
            grouped = self._refuse_foreign_jobs(grouped, rows)
        plans = []
        for job_task_id, items in grouped.items():
            if any(isinstance(item.event, Created) for item in items):
                self.founded.add(job_task_id)
            plan = self._admit(job_task_id, rows.get(job_task_id), items)
            if plan is not None:
                plans.append(plan)
        report = log.claim(self.db, [plan.entry for plan in plans])
        clashed = [plans[index] for index in report.logged_before]
        found = log.logged_events(self.db, {item.key for plan in clashed for item in plan.joined})
        again, updates = list(followers), []
        for index, plan in enumerate(plans):
            if index in report.committed:
                founding = plan.entry.founding or {}  # no row: it founds
                job_id = plan.row.job_id if plan.row else founding["job_id"]
                part = plan.row.part if plan.row else founding.get("_part", 0)
                after = TaskRow(plan.entry.job_task_id, plan.entry.version, plan.after, job_id, part)
                updates.append(tasks.task_update(plan.row, after, plan.entry.founding))
                self.latest[after.job_task_id] = after
                self.changed.add(after.job_task_id)
                for item in plan.joined:
                    self.record(item, item.delivery, joined_outcome(item.event, plan.after.summary))
            elif index in report.taken:
                self.behind.add(plan.entry.job_task_id)
                again += plan.joined
            else:
                again += self._judge_logged(plan, found)
        tasks.write_tasks(self.db, updates)
        return again

    def _rows(self, job_task_ids: set[str]) -> dict[str, TaskRow]:
        """The tasks' documents, caught up with their logs where they were behind."""
        rows = tasks.read_tasks(self.db, job_task_ids)
        lagging = {job_task_id: rows.get(job_task_id) for job_task_id in job_task_ids & self.behind}
        if lagging:
            caught_up = tasks.catch_up(self.db, lagging)
            self._folded(lagging, caught_up)
            rows.update(caught_up)
            self.behind -= set(lagging)
        self.latest.update(rows)
        return rows

    def _refuse_foreign_jobs(self, grouped: dict[str, list[Item]],
                             rows: dict[str, TaskRow]) -> dict[str, list[Item]]:
        """A created that would found a task in another domain's (or a full) job is refused.

        The jobs such createds name are stored first (``jobs.found_jobs``), so
        a job's domain is fixed before any of its tasks is committed.
        """
        founders: dict[str, Created] = {}
        for job_task_id, items in grouped.items():
            if job_task_id not in rows:
                for item in items:
                    if isinstance(item.event, Created):
                        founders.setdefault(item.event.job_id, item.event)
        if not founders:
            return grouped
        known = jobs.found_jobs(self.db, founders)
        founded_now: dict[str, int] = defaultdict(int)
        kept: dict[str, list[Item]] = {}
        for job_task_id, items in grouped.items():
            kept[job_task_id] = []
            for item in items:
                refusal = None
                if job_task_id not in rows and isinstance(item.event, Created) and item.event.job_id in known:
                    refusal = job_refusal(item.event, *known[item.event.job_id])
                if refusal is None:
                    kept[job_task_id].append(item)
                    if job_task_id not in rows and isinstance(item.event, Created) and item.event.job_id in known:
                        job_id = item.event.job_id
                        if job_task_id not in self.new_parts:  # its part is fixed once
                            self.new_parts[job_task_id] = part_of(known[job_id][1] + founded_now[job_id])
                            founded_now[job_id] += 1
                else:
                    self.record(item, item.delivery, refusal)
        return kept

    def _admit(self, job_task_id: str, row: TaskRow | None, items: list[Item]) -> _Plan | None:
        state = row.state if row else StoredTask()
        candidates = [Candidate(item.event, item.occurred_at) for item in items]
        admission = admit(state, candidates, self.max_events)
        for index, outcome in admission.refused.items():
            self.record(items[index], items[index].delivery, outcome)
        self.held += [items[index] for index in admission.held]
        if not admission.joined:
            return None
        joined = [items[index] for index in admission.joined]
        founding = None
        if row is None and admission.founding is not None:
            fingerprint = Identity.of(admission.founding).fingerprint
            founding = tasks.founding_fields(admission.founding, fingerprint, self.new_parts.get(job_task_id, 0))
        entry = LogEntry(
            job_task_id=job_task_id,
            version=(row.version if row else NO_ROW_VERSION) + 1,
            batch_id=self.batch_id,
            events=tuple(item.logged() for item in joined),
            contribution=admission.contribution,
            founding=founding,
        )
        return _Plan(row, entry, joined, admission.after)

    def _judge_logged(self, plan: _Plan, found: dict) -> list[Item]:
        """Judge the events of a refused entry that its task's log already holds."""
        again, hits = [], []
        folded = plan.row.version if plan.row else NO_ROW_VERSION
        for item in plan.joined:
            hit = found.get(item.key)
            if hit is None:
                again.append(item)  # not logged before: it goes into another entry
                continue
            version, logged = hit
            if version > folded:
                self.behind.add(item.job_task_id)  # logged by a writer that did not fold it
            hits.append((item, logged))
        # A message whose own event is logged came before: its earlier delivery
        # was lost after the commit (then this one is its record), was recorded,
        # or is parked and resolved by whoever woke it.
        deliveries = {(item.job_task_id, item.delivery.message_id, item.parked_id) for item, logged in hits
                      if logged.message_id == item.delivery.message_id}
        recorded = history.recorded_messages(self.db, deliveries, self.batch_id)
        for item, logged in hits:
            outcome = duplicate_outcome(item.fingerprint, item.delivery.message_id, logged.fingerprint,
                                        logged.message_id,
                                        (item.job_task_id, item.delivery.message_id, item.parked_id) in recorded)
            self.record(item, item.delivery, outcome)
            if outcome.kind == APPLIED:
                self.changed.add(item.job_task_id)
        return again

    # -- events waiting for their created ------------------------------------------

    def park(self) -> list[Item]:
        """Keep held events as parked records; return those whose created came meanwhile.

        Writing the parked record before looking at the task again pairs with
        a created's batch, which folds the task before it looks for parked
        records (``waiting``): one of the two always sees the other.
        """
        held, self.held = self.held, []
        if not held:
            return []
        records = []
        for item in held:
            if item.parked_id is None:
                record = history.history_record(
                    item.delivery, self.batch_id, WAITING_FOR_CREATED, item.event, item.occurred_at, item.fingerprint
                )
                item.parked_id = record["_id"]
                records.append(record)
        history.insert_parked(self.db, records)
        present = tasks.read_tasks(self.db, {item.job_task_id for item in held})
        woken = []
        for item in held:
            if item.job_task_id in present:
                woken.append(item)
            else:
                self.result.outcomes.append((item.delivery, WAITING_FOR_CREATED))
        return woken

    def waiting(self, founded: set[str], in_play: list[Item]) -> list[Item]:
        """Events parked for the tasks ``founded`` (by created events of this batch)."""
        taken = {item.parked_id for item in in_play if item.parked_id}
        return [
            item_from_parked(record)
            for record in history.parked_records(self.db, founded)
            if record["_id"] not in taken
        ]

    def catch_up(self) -> None:
        """Fold what the logs of this batch's tasks hold beyond their documents."""
        if self.behind:
            rows = tasks.read_tasks(self.db, self.behind)
            self.latest.update(rows)
            lagging = {job_task_id: rows.get(job_task_id) for job_task_id in self.behind}
            self._folded(lagging, tasks.catch_up(self.db, lagging))
            self.behind.clear()

    def _folded(self, before: dict[str, TaskRow | None], after: dict[str, TaskRow]) -> None:
        """Keep what ``tasks.catch_up`` folded; a task it moved has changed."""
        for job_task_id, row in after.items():
            known = before.get(job_task_id)
            if known is None or row.version != known.version:
                self.changed.add(job_task_id)
        self.latest.update(after)


def process_batch(db: Database, deliveries: list[Delivery], batch_id: str, max_events: int,
                  derive_jobs: bool = True) -> BatchResult:
    """Settle every delivery of a batch; raises only transient store errors.

    ``derive_jobs`` False leaves the jobs collection alone (to measure what
    Jobs cost): a job's own events are then refused.
    """
    batch = Batch(db, batch_id, max_events, derive_jobs)
    items: list[Item] = []
    job_items: list[Item] = []
    for delivery in deliveries:
        if delivery.refusal:
            batch.record(None, delivery, invalid(delivery.refusal, UNDECODABLE), "content_type")
            continue
        parsed = parse_event(delivery.task_name, delivery.args, delivery.kwargs)
        if isinstance(parsed, JOB_EVENTS):
            if derive_jobs:
                job_items.append(make_item(delivery, parsed))
            else:
                batch.record(make_item(delivery, parsed), delivery, NOT_DERIVED)
        elif isinstance(parsed, InvalidEvent):
            batch.record(None, delivery, invalid(parsed.reason, parsed.code), parsed.field)
        else:
            items.append(make_item(delivery, parsed))
    batch.run(items, job_items)
    # A Job's own event whose endings have tasks still to reach goes back to
    # the broker unrecorded; its next delivery goes on where this one stopped.
    batch.result.requeue = {item.delivery.message_id for item in job_items
                            if item.job_event.job_id in batch.unfinished_jobs}
    if batch.result.requeue:
        batch.drop(batch.result.requeue)
    batch.result.tasks = set(batch.changed)
    # A Job follows its tasks: one whose task changed has changed, even when an
    # earlier attempt of this batch already wrote it.
    batch.result.jobs = set(batch.jobs_written)
    if derive_jobs:
        batch.result.jobs |= {batch.latest[job_task_id].job_id for job_task_id in batch.changed
                              if job_task_id in batch.latest and batch.latest[job_task_id].job_id}
    # Resolving a parked record takes it out of what later attempts look for,
    # so it comes last, once everything else the batch learned is stored.
    dead_letters.write_dead_letters(db, batch.dead_letters)
    history.write_history(db, batch.records)
    history.resolve_parked(db, batch.parked_resolutions)
    return batch.result

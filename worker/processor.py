"""One batch of deliveries: validate, apply to the store, judge, record.

The path of a batch:

1. ``parse_event`` checks each message against the contract; a bad one is
   rejected with a reason naming the field.
2. The events of each task become one guarded update (a ``created`` its own
   upsert), all sent in one unordered bulk write.
3. The tasks are read back and ``lifecycle.judge`` tells, per event, what the
   guarded updates decided: applied, duplicate, ignored, conflict, rejected,
   parked (no created yet) or retry (grouped with an event applied before).
4. Parked events are written to the history and the task checked once more,
   so that a created applied meanwhile by another worker is never missed; a
   created that inserted its task picks up the events parked for it.
5. Every delivery's record goes to the history, every refused one to the
   dead letters.

All of it is idempotent under the same ``batch_id``, so the caller retries
the whole batch through a store outage.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from pymongo.database import Database

from worker import history, lifecycle, store
from worker.events import Created, Event, InvalidEvent, event_fingerprint, parse_event, to_millis
from worker.history import Delivery
from worker.lifecycle import Outcome
from worker.retry import BatchNotSettled

MAX_ROUNDS = 8


@dataclass
class Item:
    """A valid event on its way through a batch."""

    delivery: Delivery
    event: Event
    occurred_at: datetime
    fingerprint: str
    parked_id: str | None = None  # its history record, once parked
    alone: bool = False  # apply in an update of its own next round

    @property
    def key(self) -> tuple[str, str]:
        return self.event.job_task_id, self.event.event_id


@dataclass
class BatchResult:
    outcomes: list[tuple[Delivery, Outcome]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for _, outcome in self.outcomes if outcome.kind == kind)


def _item(delivery: Delivery, event: Event, parked_id: str | None = None, occurred_at=None) -> Item:
    return Item(
        delivery=delivery,
        event=event,
        occurred_at=occurred_at or event.occurred_at or to_millis(delivery.received_at),
        fingerprint=event_fingerprint(event),
        parked_id=parked_id,
    )


def _item_from_parked(record: dict) -> Item:
    delivery = Delivery(
        message_id=record["message_id"],
        task_name=record["task_name"],
        args=[],
        kwargs=record["event"],
        received_at=record["received_at"],
    )
    return _item(delivery, history.event_from_record(record), record["_id"], record["occurred_at"])


class Batch:
    """The state of one batch while it settles; see the module docstring."""

    def __init__(self, db: Database, batch_id: str, max_events: int) -> None:
        self.db = db
        self.batch_id = batch_id
        self.max_events = max_events
        self.claimed: set[tuple[str, str]] = set()  # keys applied by an earlier item here
        self.records: list[dict] = []
        self.parked_resolutions: list[tuple[str, Outcome, str]] = []
        self.dead_letters: list[dict] = []
        self.result = BatchResult()

    # -- recording ---------------------------------------------------------------

    def settle(self, item: Item | None, delivery: Delivery, outcome: Outcome, field_name=None) -> None:
        event = item.event if item else None
        self.result.outcomes.append((delivery, outcome))
        if item is not None and item.parked_id is not None:
            if outcome.kind != lifecycle.PARKED:
                self.parked_resolutions.append((item.parked_id, outcome, self.batch_id))
        else:
            self.records.append(
                history.history_record(
                    delivery, self.batch_id, outcome, event,
                    item.occurred_at if item else None,
                    item.fingerprint if item else None,
                    field_name,
                )
            )
        if outcome.dead_letter:
            self.dead_letters.append(history.dead_letter_record(delivery, outcome, event, field_name))

    # -- one round of writes and judgement ----------------------------------------

    def _updates(self, leaders: list[Item]) -> tuple[list, list, list[list[Item]]]:
        ops, created_ids, op_items = [], [], []
        groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
        for item in leaders:
            if isinstance(item.event, Created):
                summary = lifecycle.summarize(item.event, item.occurred_at)
                marker = self._marker(item)
                identity = lifecycle.identity_fingerprint(item.event)
                ops.append(store.created_update(item.event, identity, summary, marker, self.max_events))
                created_ids.append(item.event.job_task_id)
                op_items.append([item])
            elif item.alone:
                groups[(item.event.job_task_id, item.event.domain_id, item.event.event_id)].append(item)
            else:
                groups[(item.event.job_task_id, item.event.domain_id)].append(item)
        for (job_task_id, domain_id, *_), items in groups.items():
            summary = lifecycle.summarize_all((i.event, i.occurred_at) for i in items)
            markers = [self._marker(i) for i in items]
            ops.append(store.events_update(job_task_id, domain_id, summary, markers, self.max_events))
            created_ids.append(None)
            op_items.append(items)
        return ops, created_ids, op_items

    def _marker(self, item: Item) -> store.Marker:
        return store.Marker(item.event.event_id, item.fingerprint, self.batch_id, item.delivery.message_id)

    def _judge(self, item: Item, view, refused: str | None) -> Outcome:
        if refused:
            return Outcome(lifecycle.REJECTED, refused)
        parked_message = item.delivery.message_id if item.parked_id else None
        outcome = lifecycle.judge(
            item.event, item.fingerprint, self.batch_id, view, self.max_events, parked_message
        )
        if outcome.kind in (lifecycle.APPLIED, lifecycle.IGNORED) and item.key in self.claimed:
            return Outcome(lifecycle.DUPLICATE, "event_id already applied")
        return outcome

    def round(self, pending: list[Item]) -> list[Item]:
        """Apply ``pending`` once; return what must go round again."""
        leaders, followers, seen = [], [], set()
        for item in pending:
            (followers if item.key in seen else leaders).append(item)
            seen.add(item.key)
        ops, created_ids, op_items = self._updates(leaders)
        report = store.write_tasks(self.db, ops, created_ids)
        views = store.read_views(
            self.db, {i.event.job_task_id for i in pending}, {i.event.event_id for i in pending}
        )
        again, parked = [], []
        judged = [(i, report.refused.get(index)) for index, items in enumerate(op_items) for i in items]
        judged += [(i, None) for i in followers]
        for item, refused in judged:
            outcome = self._judge(item, views.get(item.event.job_task_id), refused)
            if outcome is lifecycle.RETRY:
                item.alone = True
                again.append(item)
            elif outcome.kind == lifecycle.PARKED:
                parked.append(item)
            else:
                if outcome.kind in (lifecycle.APPLIED, lifecycle.IGNORED):
                    self.claimed.add(item.key)
                self.settle(item, item.delivery, outcome)
        again += self._park(parked)
        again += self._replay_parked(report.created_new, again)
        return again

    def _park(self, parked: list[Item]) -> list[Item]:
        """Keep events that came before their created; recheck after writing them.

        Writing the parked record before looking again pairs with a created's
        worker, which writes the task before looking for parked records: one of
        the two always sees the other.
        """
        if not parked:
            return []
        outcome = Outcome(lifecycle.PARKED, "waiting for the job task's created event")
        fresh = [item for item in parked if item.parked_id is None]
        records = []
        for item in fresh:
            record = history.history_record(
                item.delivery, self.batch_id, outcome, item.event, item.occurred_at, item.fingerprint
            )
            item.parked_id = record["_id"]
            records.append(record)
        history.insert_new(self.db, store.EVENTS, records)
        present = store.read_views(self.db, {i.event.job_task_id for i in parked}, set())
        again = []
        for item in parked:
            if item.event.job_task_id in present:
                again.append(item)
            else:
                self.result.outcomes.append((item.delivery, outcome))
        return again

    def _replay_parked(self, created_new: set[str], queued: list[Item]) -> list[Item]:
        queued_ids = {item.parked_id for item in queued if item.parked_id}
        return [
            _item_from_parked(record)
            for record in history.parked_records(self.db, created_new)
            if record["_id"] not in queued_ids
        ]


def process_batch(db: Database, deliveries: list[Delivery], batch_id: str, max_events: int) -> BatchResult:
    """Settle every delivery of a batch; raises only transient store errors."""
    batch = Batch(db, batch_id, max_events)
    pending = []
    for delivery in deliveries:
        parsed = (
            InvalidEvent(delivery.refusal, "content_type")
            if delivery.refusal
            else parse_event(delivery.task_name, delivery.args, delivery.kwargs)
        )
        if isinstance(parsed, InvalidEvent):
            batch.settle(None, delivery, Outcome(lifecycle.REJECTED, parsed.reason), parsed.field)
        else:
            pending.append(_item(delivery, parsed))
    for _ in range(MAX_ROUNDS):
        if not pending:
            break
        pending = batch.round(pending)
    if pending:
        raise BatchNotSettled(f"{len(pending)} events still contended after {MAX_ROUNDS} rounds")
    history.write_history(db, batch.records)
    history.resolve_parked(db, batch.parked_resolutions)
    history.write_dead_letters(db, batch.dead_letters)
    return batch.result

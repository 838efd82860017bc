"""Batched execution of event messages, with acks-late delivery kept whole.

Celery runs one task per message. To apply events with one store round trip
per task and batch instead of one per message, the worker's main process
holds the prefetched messages in one buffer (``Buffer``, fed by
``worker.ingest.intake``) and hands them to a pool process in batches of up to
JOBTASK_BATCH_SIZE, or whatever is there every JOBTASK_BATCH_INTERVAL
seconds.

A batch keeps each task's events together, and the tasks of a Job together:
it takes the Job (or lone task) of the oldest waiting message with all of
its waiting events, then the next oldest, and so on, leaving for later what
another batch in flight holds (``worker.ingest.waiting``). A batch costs the
store about one update per task and Job it touches, so when many tasks
report at once, the buffer holding several batches' worth
(JOBTASK_PREFETCH_BATCHES per pool process) makes a batch touch fewer of
them. It is first come, first served: nothing starves.

Acknowledgement is what makes delivery at-least-once:

- a message is acknowledged only after its batch settled in the store
  (history, dead letters and all), and the acks and requeues of a batch go
  to Redis in one call (``worker.ingest.transport``);
- a batch that could not settle (store out for the whole retry budget, an
  unexpected error) hands its messages back to the broker with a requeue;
- a pool process that dies mid-batch (SIGKILL, OOM), or a batch that runs
  past its hard time limit, requeues its messages;
- a worker that dies whole leaves them unacknowledged, and the transport's
  sweep hands them back after the visibility timeout. While the worker lives,
  the buffer marks every message it holds as still in work (``refresh``), so
  a message is taken back only from a dead worker;
- the buffer outlives a lost broker connection: what it holds is settled
  through the next connection (acks name messages, not connections), and a
  settlement the broker could not take is retried until it can;
- at a warm stop, what never reached a pool process is handed back.

A buffer that holds messages but has settled none for longer than
JOBTASK_PEER_TIMEOUT (``stall_after``) says so in one warning line, with
what it holds and waits for, and in one more line when it settles again:
the broker or the store stopped answering, and the worker looks alive.

We wrote this rather than use ``celery-batches``: that package acknowledges a
batch when its function returns even if it raised, leaves a batch of a lost
pool process unacknowledged until the visibility timeout, and buffers each
task name apart, where we want the events of a task together in one batch.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.utils.imports import symbol_by_name

from worker.contract.delivery import ACK, REQUEUE, Delivery
from worker.ingest.waiting import WaitingLine
from worker.observe.report import BatchReport

logger = logging.getLogger(__name__)

# Where a pool process runs a batch: a module-level function, so that it is
# pickled by reference.
RUN_BATCH = "worker.ingest.consume:run_batch"


@dataclass(slots=True)
class Held:
    """A message the main process holds until its batch is settled."""

    message: Any  # the kombu message: its delivery tag and payload settle it
    delivery: Delivery
    group: str  # the job_task_id its batch keeps together ("#job_id" for a Job's events, else the message id)
    job: str | None = None  # the job_id the message names, if any
    copies: list = field(default_factory=list)  # other kombu messages of the same id, acked with it


@dataclass(slots=True)
class InWork:
    """A batch handed to the pool, until its result (or its loss) is known."""

    batch: list[Held]
    sent_at: float  # monotonic
    lanes: set[str] = field(default_factory=set)  # of the waiting line, taken by this batch
    job: object = None  # the pool's handle on it (billiard's ApplyResult)


def _dropped_by_pool(job) -> bool:
    """Whether the pool forgot a job without running it (billiard's ApplyResult).

    Celery's flush discards a job from the pool's cache without a callback;
    one it kept (written, or being written) still runs and reports.
    """
    if job is None or job.ready() or job.accepted():
        return False
    return job._cache.get(job._job) is not job


class Buffer:
    """The main process's messages, from their delivery until their batch is settled."""

    def __init__(self, pool, batch_size: int, interval: float, time_limit: float,
                 observer=None, stall_after: float | None = None) -> None:
        self.pool = pool
        self.observer = observer  # worker.observe.batches.BatchObserver: metrics, task events, logs
        self.batch_size = batch_size
        self.interval = interval
        self.time_limit = time_limit
        self.slots = max(1, getattr(pool, "limit", 1) or 1)
        self.waiting = WaitingLine()
        self.in_flight: dict[str, InWork] = {}  # by batch id
        self.unsettled: list[tuple[list[Held], list[Held]]] = []  # (acks, requeues) to retry
        self.held_tags: set[str] = set()  # delivery tags of every message above
        self.by_id: dict[str, Held] = {}  # the same, by message id
        self.channel: Any = None  # the transport's Channel, once attached
        self.sending = True
        self.stall_after = stall_after  # seconds of holding without settling before it is logged
        self.progress_at = time.monotonic()  # last settlement, or when the buffer began to hold
        self.stalled = False
        self._tick = None
        self.run_batch = symbol_by_name(RUN_BATCH)

    # -- the broker connection ----------------------------------------------------

    def attach(self, timer, channel) -> None:
        """Work through a new broker connection: its channel and its event loop's timer.

        Celery cancels the timer entries of a lost connection, so the periodic
        flush is registered again for each one.
        """
        if self._tick is not None:
            timer.cancel(self._tick)
        self.channel = channel
        channel.holdings = self
        self._tick = timer.call_repeatedly(self.interval, self.tick)

    def held_count(self) -> int:
        """Messages held, for the prefetch limit: waiting, in work, or settled but not yet told to Redis."""
        return len(self.held_tags)

    def refresh(self, channel) -> None:
        """Mark every message still held as in work, so the sweep leaves it alone."""
        if self.held_tags:
            channel.refresh(list(self.held_tags))

    # -- messages in ----------------------------------------------------------------

    def add(self, held: Held) -> None:
        tag = held.message.delivery_tag
        if tag in self.held_tags:  # pushed twice under one tag: one unacknowledged entry
            return
        if not self.held_tags:
            self.progress_at = time.monotonic()
        self.held_tags.add(tag)
        original = self.by_id.get(held.delivery.message_id)
        if original is not None:
            # A producer that sent again after a lost reply: the same message
            # under another tag. It goes no further than its original, and is
            # acknowledged with it (never two copies of a message in a batch).
            original.copies.append(held.message)
            return
        self.by_id[held.delivery.message_id] = held
        self.waiting.add(held)
        if len(self.waiting) >= self.batch_size and len(self.in_flight) < self.slots:
            self.flush()

    def tick(self) -> None:
        """Every JOBTASK_BATCH_INTERVAL: retry settlements, give up on lost batches, send what waits."""
        if self.unsettled:
            self._retry_unsettled()
        if self.in_flight:
            self._give_up_on_silent_batches()
        self.flush()
        if self.stall_after is not None and self.held_tags:
            self._note_stall()

    def _note_stall(self) -> None:
        """One line when the buffer has held messages without settling any for ``stall_after``."""
        silent_for = time.monotonic() - self.progress_at
        if self.stalled or self.stall_after is None or silent_for < self.stall_after:
            return
        self.stalled = True
        longest = max((time.monotonic() - work.sent_at for work in self.in_flight.values()), default=0.0)
        logger.warning(
            "holding %d messages, none settled for %.0f s (JOBTASK_PEER_TIMEOUT %g s): %d batches in work "
            "(the oldest for %.0f s), %d settlements the broker has not taken: the store or the broker "
            "is slow or not answering", len(self.held_tags), silent_for, self.stall_after, len(self.in_flight),
            longest, len(self.unsettled))

    def _give_up_on_silent_batches(self) -> None:
        # The pool kills a batch at its time limit and tells us; one it never
        # tells us about (a lost result) would otherwise be held, and kept
        # fresh, forever.
        overdue = time.monotonic() - 2 * self.time_limit
        for batch_id, work in list(self.in_flight.items()):
            if work.sent_at < overdue:
                logger.error("no word from the pool on a batch of %d for %.0f s; requeueing it",
                             len(work.batch), time.monotonic() - work.sent_at)
                self._finish(batch_id, [REQUEUE] * len(work.batch))

    def take_back_dropped(self) -> None:
        """After Celery flushed the pool for a lost connection: wait again for what it dropped.

        Celery drops the pool's jobs not yet written to a process, since a
        broker would redeliver their messages; ours are held across the
        reconnection instead, so their batches go back to the front of the line.
        """
        for batch_id, work in list(self.in_flight.items()):
            if not _dropped_by_pool(work.job):
                continue
            del self.in_flight[batch_id]
            self.waiting.put_back(work.batch)
            logger.info("batch of %d dropped by the pool with the connection; sending it again", len(work.batch))

    def flush(self) -> None:
        """Send batches while a pool process is free; the rest waits for one."""
        while self.sending and self.waiting and len(self.in_flight) < self.slots:
            busy = {lane for work in self.in_flight.values() for lane in work.lanes}
            batch, lanes = self.waiting.take(self.batch_size, busy)
            batch_id = uuid.uuid4().hex  # the batch's one id, in its history records too
            work = self.in_flight[batch_id] = InWork(batch, time.monotonic(), lanes)
            self.on_batch_sent(batch)
            try:
                work.job = self.pool.apply_async(
                    self.run_batch,
                    args=([held.delivery for held in batch], batch_id),
                    callback=lambda returned, batch_id=batch_id: self._on_result(batch_id, returned),
                    error_callback=lambda exc_info, batch_id=batch_id: self._lost(batch_id, exc_info),
                    # A batch still running well after its retry budget is stuck
                    # (a hung socket, a wedged process): the pool kills it and we
                    # requeue it.
                    timeout=self.time_limit,
                )
            except Exception:
                logger.exception("could not hand a batch to the pool; requeueing it")
                self._finish(batch_id, [REQUEUE] * len(batch))

    # -- messages out ---------------------------------------------------------------

    def on_batch_sent(self, batch: list[Held]) -> None:
        """A batch went to a pool process: Celery's task-received and task-started events."""
        if self.observer is not None:
            self.observer.batch_sent([held.delivery for held in batch])

    def on_batch_settled(self, batch: list[Held], decisions: list[str], seconds: float,
                         report: BatchReport | None) -> None:
        """A batch is settled (its messages acknowledged or requeued): metrics, task events, logs.

        ``report`` is what the pool process said it did (None if it was lost).
        """
        if self.observer is not None:
            self.observer.batch_settled([held.delivery for held in batch], decisions, seconds, report)

    def _on_result(self, batch_id: str, returned) -> None:
        report = returned if isinstance(returned, BatchReport) else None
        decisions = report.decisions if report is not None else returned
        batch = self.in_flight[batch_id].batch if batch_id in self.in_flight else ()
        if not isinstance(decisions, list) or len(decisions) != len(batch):
            logger.error("batch returned %r; requeueing it", decisions)
            decisions, report = [REQUEUE] * len(batch), None
        self._finish(batch_id, decisions, report)

    def _lost(self, batch_id: str, exc_info) -> None:
        batch = self.in_flight[batch_id].batch if batch_id in self.in_flight else ()
        logger.error("pool process lost a batch of %d (%s); requeueing it", len(batch), exc_info)
        self._finish(batch_id, [REQUEUE] * len(batch))

    def _finish(self, batch_id: str, decisions: list[str], report: BatchReport | None = None) -> None:
        """A batch's decisions are known: tell the broker, report it, send what waits."""
        work = self.in_flight.pop(batch_id, None)
        if work is None:  # settled already (a late callback)
            return
        batch = work.batch
        acks = [held for held, decision in zip(batch, decisions, strict=True) if decision == ACK]
        requeues = [held for held, decision in zip(batch, decisions, strict=True) if decision != ACK]
        self._tell_broker(acks, requeues)
        self.on_batch_settled(batch, decisions, time.monotonic() - work.sent_at, report)
        self.flush()

    def _tell_broker(self, acks: list[Held], requeues: list[Held], retrying: bool = False) -> bool:
        try:
            copies = [copy for held in (*acks, *requeues) for copy in held.copies]
            self.channel.settle([held.message for held in acks] + copies, [held.message for held in requeues])
        except Exception as exc:
            # Kept, and retried every tick: until Redis has it, the messages stay
            # unacknowledged there, which loses nothing. Logged once per outage.
            log = logger.debug if retrying or self.unsettled else logger.warning
            log("could not settle %d messages with the broker (%r); will retry", len(acks) + len(requeues), exc)
            self.unsettled.append((acks, requeues))
            return False
        for held in (*acks, *requeues):
            self.held_tags.discard(held.message.delivery_tag)
            self.held_tags.difference_update(copy.delivery_tag for copy in held.copies)
            self.by_id.pop(held.delivery.message_id, None)
        self.progress_at = time.monotonic()
        if self.stalled:
            self.stalled = False
            logger.info("settling messages again, %d still held", len(self.held_tags))
        return True

    def _retry_unsettled(self) -> None:
        pending, self.unsettled = self.unsettled, []
        for index, (acks, requeues) in enumerate(pending):
            if not self._tell_broker(acks, requeues, retrying=True):
                self.unsettled += pending[index + 1:]
                return
        logger.info("settled %d held batches with the broker again", len(pending))

    def release(self) -> None:
        """At a warm stop: hand back what waits, and whatever is still unsettled."""
        self.sending = False
        waiting = self.waiting.clear()
        lost = [held for work in self.in_flight.values() for held in work.batch]
        self.in_flight.clear()
        if self.unsettled:
            self._retry_unsettled()
        if self.channel is None or not (waiting or lost):
            return
        if self._tell_broker([], waiting + lost):
            logger.info("handed %d held messages back to the broker", len(waiting) + len(lost))


class EventTask(Task):
    """Base of the event tasks.

    The worker never runs their bodies: its consumer (``worker.ingest.intake``)
    hands every message to the buffer above. A body runs only when a task is
    called in-process, and then applies its one event the same way.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    typing = False

    def apply_one(self, event: dict) -> str:
        """Apply one event in this process, as the worker would in a batch of one.

        Only reached when a task is called directly (``task(**event)`` or
        ``task.apply``), e.g. from a maintenance script; returns ``ack`` or
        ``requeue``.
        """
        from worker.ingest.consume import run_batch  # noqa: PLC0415 - pool-side module

        delivery = Delivery.of_message(self.request.id or "local", self.name, [], event, datetime.now(UTC))
        return run_batch([delivery], uuid.uuid4().hex).decisions[0]

"""Batched execution of event tasks, with acks-late delivery kept whole.

Celery runs one task per message. To apply events with one store round trip
per task and batch instead of one per message, the event tasks use
``batch_strategy``: the worker's main process buffers the prefetched messages
of all event types in one buffer and hands them to a pool process in batches
of up to JOBTASK_BATCH_SIZE, or whatever is there every JOBTASK_BATCH_INTERVAL
seconds.

Acknowledgement is what makes delivery at-least-once:

- a message is acknowledged only after its batch settled in the store
  (history, dead letters and all);
- a batch that could not settle (store out for the whole retry budget, an
  unexpected error) hands its messages back to the broker with a requeue;
- a pool process that dies mid-batch (SIGKILL, OOM) requeues its messages;
- a worker that dies whole leaves them unacknowledged, and the Redis
  transport redelivers them after the visibility timeout.

We wrote this rather than use ``celery-batches``: that package acknowledges a
batch when its function returns even if it raised, leaves a batch of a lost
pool process unacknowledged until the visibility timeout, and buffers each
task name apart, where we want the events of a task together in one batch.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from celery import Task
from celery.utils.imports import symbol_by_name
from celery.worker.request import create_request_cls

from worker.settings import get_settings

logger = logging.getLogger(__name__)

ACK = "ack"
REQUEUE = "requeue"
# Where a pool process runs a batch: a module-level function, so that it is
# pickled by reference.
RUN_BATCH = "worker.consume:run_batch"


@dataclass
class Pending:
    """A message waiting in the buffer, with the means to settle it."""

    delivery: tuple  # (message_id, task_name, args, kwargs, received_at, refusal)
    acknowledge: Callable[[], None]
    requeue: Callable[[], None]


class Buffer:
    """The main process's buffer of messages, shared by all event task types."""

    def __init__(self, consumer, batch_size: int, interval: float, time_limit: float) -> None:
        self.pool = consumer.pool
        self.batch_size = batch_size
        self.time_limit = time_limit
        self.slots = max(1, getattr(consumer.pool, "limit", 1) or 1)
        self.waiting: deque[Pending] = deque()
        self.in_flight = 0
        self.run_batch = symbol_by_name(RUN_BATCH)
        consumer.timer.call_repeatedly(interval, self.flush)

    def add(self, pending: Pending) -> None:
        self.waiting.append(pending)
        if len(self.waiting) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Send batches while a pool process is free; the rest waits for one."""
        while self.waiting and self.in_flight < self.slots:
            count = min(self.batch_size, len(self.waiting))
            batch = [self.waiting.popleft() for _ in range(count)]
            self.in_flight += 1
            try:
                self.pool.apply_async(
                    self.run_batch,
                    args=([pending.delivery for pending in batch],),
                    callback=lambda decisions, batch=batch: self._settled(batch, decisions),
                    error_callback=lambda exc_info, batch=batch: self._lost(batch, exc_info),
                    # A batch still running well after its retry budget is stuck
                    # (a hung socket, a wedged process): the pool kills it and we
                    # requeue it.
                    timeout=self.time_limit,
                )
            except Exception:
                logger.exception("could not hand a batch to the pool; requeueing it")
                self._settle(batch, [REQUEUE] * len(batch))

    def _settled(self, batch: list[Pending], decisions) -> None:
        if not isinstance(decisions, list) or len(decisions) != len(batch):
            logger.error("batch returned %r; requeueing it", decisions)
            decisions = [REQUEUE] * len(batch)
        self._settle(batch, decisions)

    def _lost(self, batch: list[Pending], exc_info) -> None:
        logger.error("pool process lost a batch of %d (%s); requeueing it", len(batch), exc_info)
        self._settle(batch, [REQUEUE] * len(batch))

    def _settle(self, batch: list[Pending], decisions: list[str]) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        for pending, decision in zip(batch, decisions):
            try:
                (pending.acknowledge if decision == ACK else pending.requeue)()
            except Exception:
                logger.exception("could not settle message %s", pending.delivery[0])
        self.flush()


_buffers: dict[int, Buffer] = {}


def batch_strategy(task, app, consumer, **_options):
    """Celery strategy for the event tasks: buffer instead of executing."""
    buffer = _buffers.get(id(consumer))
    if buffer is None:
        settings = get_settings()
        buffer = Buffer(consumer, settings.batch_size, settings.batch_interval,
                        settings.batch_time_limit)
        _buffers[id(consumer)] = buffer
    Request = create_request_cls(
        symbol_by_name(task.Request), task, consumer.pool, consumer.hostname,
        consumer.event_dispatcher, app=app,
    )

    def task_message_handler(message, body, ack, reject, callbacks, **_kw):
        received_at = datetime.now(timezone.utc)
        headers = message.headers or {}
        message_id = str(headers.get("id") or message.properties.get("correlation_id") or id(message))
        try:
            request = Request(
                message, on_ack=ack, on_reject=reject, app=app, hostname=consumer.hostname,
                eventer=consumer.event_dispatcher, task=task,
                connection_errors=consumer.connection_errors,
                body=message.body, headers=headers, decoded=False, utc=True,
            )
            args, kwargs = list(request.args or []), request.kwargs
            delivery = (request.id, request.name, args, kwargs, received_at, None)
            acknowledge, requeue = request.acknowledge, lambda: request.reject(requeue=True)
        except Exception as exc:  # not JSON, or not a task message at all
            refusal = f"message could not be decoded ({message.content_type}): {exc}"
            delivery = (message_id, task.name, [], {"body": repr(message.body)[:2048]}, received_at, refusal)
            acknowledge, requeue = (lambda: ack(logger, consumer.connection_errors),
                                    lambda: reject(logger, consumer.connection_errors, requeue=True))
        buffer.add(Pending(delivery, acknowledge, requeue))

    return task_message_handler


class EventTask(Task):
    """Base of the event tasks: the worker executes them in batches (above)."""

    abstract = True
    Strategy = "worker.batching:batch_strategy"
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
        from worker.consume import run_batch  # noqa: PLC0415 - pool-side module

        delivery = (self.request.id or "local", self.name, [], event, datetime.now(timezone.utc), None)
        return run_batch([delivery])[0]

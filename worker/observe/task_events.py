"""Celery task events for each event message, sent from the worker's main process.

The event tasks run in batches, not as Celery requests, so Celery sends no
task events for them. Here each message of a batch becomes the events a
request would send, under its message id (the Celery task id): received and
started when its batch goes to a pool process, then succeeded (outcome
applied, duplicate, ignored, parked: the message is done), failed (rejected
or conflict: it went to the dead letters) or retried (requeued to the
broker). Flower, and any ``celery events`` consumer, lists them like any
other task. They go through the consumer's own dispatcher, which buffers
task events and publishes them from the event loop, and which drops them
when task events are off (``JOBTASK_TASK_EVENTS=false``, Celery's ``-E``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery.utils.saferepr import saferepr

from worker.contract.delivery import Delivery
from worker.observe.report import MessageOutcome

ARGS_REPR_SIZE = 1024  # what Celery's own argsrepr is cut at, about


def sends_task_events(dispatcher: Any) -> bool:
    """Whether ``dispatcher`` (Celery's EventDispatcher) publishes the task group."""
    if dispatcher is None or not dispatcher.enabled:
        return False
    return not dispatcher.groups or "task" in dispatcher.groups


def batch_sent(dispatcher: Any, deliveries: Iterable[Delivery]) -> None:
    """task-received and task-started for each message of a batch going to the pool."""
    if not sends_task_events(dispatcher):
        return
    for delivery in deliveries:
        message_id = delivery.message_id
        dispatcher.send("task-received", uuid=message_id, name=delivery.task_name,
                        args=saferepr(delivery.args, ARGS_REPR_SIZE),
                        kwargs=saferepr(delivery.kwargs, ARGS_REPR_SIZE),
                        root_id=message_id, parent_id=None, retries=0, eta=None, expires=None)
        dispatcher.send("task-started", uuid=message_id)  # the dispatcher adds its pid


def message_settled(dispatcher: Any, message_id: str, acked: bool, outcome: MessageOutcome | None,
                    runtime: float) -> None:
    """The end of one message: succeeded, failed (dead-lettered) or retried (requeued)."""
    if not sends_task_events(dispatcher):
        return
    if not acked:
        dispatcher.send("task-retried", uuid=message_id, exception="requeued to the broker",
                        traceback=None)
        return
    if outcome is not None and outcome.dead_letter:
        dispatcher.send("task-failed", uuid=message_id,
                        exception=f"{outcome.outcome}: {outcome.reason or ''}".rstrip(": "),
                        traceback=None)
        return
    result = outcome.outcome if outcome is not None else "settled"
    if outcome is not None and outcome.reason:
        result += f" ({outcome.reason})"
    dispatcher.send("task-succeeded", uuid=message_id, result=repr(result), runtime=runtime)

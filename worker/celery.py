"""The Celery app (found by ``celery -A worker worker``).

Configured for at-least-once delivery of lifecycle events: JSON only, late
acknowledgement (see ``worker.batching``), requeue when a pool process is
lost, a prefetch of two batches per process, a Redis visibility timeout
(JOBTASK_VISIBILITY_TIMEOUT) after which a dead worker's messages come back,
and a Redis transport that fetches atomically (``worker.transport``).
"""

from __future__ import annotations

import logging

from celery import Celery, signals

from worker.settings import Settings, SettingsError, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise SettingsError(
            "JOBTASK_BROKER_URL is not set (make run starts an embedded Redis for you)"
        )
    app = Celery("jobtask", broker=settings.broker_url, include=["tasks.events"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=settings.queue,
        task_routes={"job_task.*": {"queue": settings.queue}},
        worker_prefetch_multiplier=2 * settings.batch_size,
        broker_transport="worker.transport:Transport",
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # Sweep for a dead worker's unacknowledged messages a few times per
            # visibility timeout (kombu's default sweep is every 100 s).
            "unacked_restore_interval": max(1.0, min(10.0, settings.visibility_timeout / 6)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


app = create_app(get_settings())


@signals.worker_init.connect
def _prepare_store(**_kwargs) -> None:
    """Check the store is reachable and create indexes before consuming."""
    from worker.retry import Backoff, retry_transient  # noqa: PLC0415
    from worker.store import connect, ensure_indexes  # noqa: PLC0415

    settings = get_settings()
    if not settings.mongo_url:
        raise SettingsError("JOBTASK_MONGO_URL is not set (make run starts an embedded store)")
    db = connect(settings.mongo_url, settings.mongo_db, settings.store_timeout_ms)
    try:
        retry_transient(lambda: ensure_indexes(db), Backoff(budget=settings.store_retry_budget))
    finally:
        db.client.close()


@signals.task_unknown.connect
def _dead_letter_unknown(message=None, name=None, id=None, **_kwargs) -> None:
    """A message for a task we don't have: keep it where an operator looks."""
    from datetime import datetime, timezone  # noqa: PLC0415

    from worker.consume import process_database  # noqa: PLC0415
    from worker.history import Delivery, dead_letter_record, write_dead_letters  # noqa: PLC0415
    from worker.lifecycle import REJECTED, Outcome  # noqa: PLC0415

    try:
        body = message.body if message is not None else b""
        delivery = Delivery(str(id), str(name), [], {"body": repr(body)[:4096]}, datetime.now(timezone.utc))
        outcome = Outcome(REJECTED, f"unknown event type {name!r}")
        write_dead_letters(process_database(get_settings()), [dead_letter_record(delivery, outcome, None, "task")])
    except Exception:
        logger.exception("could not dead-letter unknown task %s (%s)", name, id)

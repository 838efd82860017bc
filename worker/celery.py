"""The Celery app (found by ``celery -A worker worker``).

Configured for at-least-once delivery of lifecycle events: JSON only, late
acknowledgement, a consumer that hands every message to the batch buffer
(``worker.ingest.intake``, ``worker.ingest.batching``), a prefetch of
JOBTASK_PREFETCH_BATCHES batches per pool process, a Redis visibility
timeout (JOBTASK_VISIBILITY_TIMEOUT) after which a dead worker's messages
come back, and a Redis transport that fetches atomically
(``worker.ingest.transport``), every connection of which gives up on a
silent broker after JOBTASK_PEER_TIMEOUT. ``celery -A worker beat`` sends the sweep
(``tasks.sweep``) every JOBTASK_SWEEP_INTERVAL seconds.
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
    app = Celery("jobtask", broker=settings.broker_url, include=["tasks.events", "tasks.sweep"])
    restore_interval = max(0.5, min(10.0, settings.visibility_timeout / 6))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=settings.queue,
        task_routes={"job_task.*": {"queue": settings.queue}, "job.*": {"queue": settings.queue}},
        worker_prefetch_multiplier=settings.prefetch_batches * settings.batch_size,
        worker_consumer="worker.ingest.intake:Consumer",
        broker_transport="worker.ingest.transport:Transport",
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # Sweep for a dead worker's unacknowledged messages a few times per
            # visibility timeout (kombu's default sweep is every 100 s); each
            # sweep first marks the messages this worker holds as in work.
            "unacked_restore_interval": restore_interval,
            "unacked_restore_throttle": 1,
            # The sweep's lock, taken for a moment per sweep: one whose taker
            # never heard back (a connection gone silent) is free again after
            # a few sweeps, rather than kombu's 300 s without any.
            "unacked_mutex_expire": max(5, int(3 * restore_interval)),
            # A silent broker (JOBTASK_PEER_TIMEOUT): every command of the
            # worker (main and pool processes) and of beat gives up after the
            # bound, and a BLMOVE unanswered that long past its own timeout
            # drops the whole connection (worker.ingest.transport), which is
            # then made again as after any lost connection. Redis has no
            # AMQP-style heartbeats: these are its means.
            **settings.redis_options,
        },
        broker_connection_retry_on_startup=True,
        # Through a broker outage of any length: retry for ever (every second,
        # worker.ingest.intake), rather than stop after 100 tries.
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Celery task events for Flower (-E); the event messages' own are sent by
        # worker.observe.task_events, since they run in batches.
        worker_send_task_events=settings.task_events,
        enable_utc=True,
        # celery -A worker beat: the sweep (tasks.sweep), routed like every
        # job_task.* to the events queue, behind the events sent before it. One
        # not started within an interval (a worker down meanwhile) is dropped:
        # the next one does its work. The schedule is kept in memory, no file.
        beat_schedule={
            "job_task.sweep": {
                "task": "job_task.sweep",
                "schedule": settings.sweep_interval,
                "options": {"expires": settings.sweep_interval},
            },
        },
        beat_scheduler="celery.beat:Scheduler",
    )
    return app


app = create_app(get_settings())


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_format(logger=None, **_kwargs) -> None:
    """JOBTASK_LOG_FORMAT=json: every line of the worker and beat as one JSON object."""
    from worker.observe.logs import use_format  # noqa: PLC0415

    use_format(logger, get_settings().log_format)


@signals.celeryd_init.connect
def _quiet_banner_for_json(instance=None, **_kwargs) -> None:
    """In JSON mode: Python's warnings as log lines, and no start banner (Celery's --quiet)."""
    from worker.observe.logs import json_until_configured  # noqa: PLC0415

    log_format = get_settings().log_format
    json_until_configured(log_format)
    if log_format == "json" and instance is not None:
        instance.quiet = True


@signals.worker_ready.connect
def _serve_metrics(sender=None, **_kwargs) -> None:
    """The worker's metrics endpoint, once the pool's processes are forked."""
    from worker.observe.exporter import serve_worker_metrics  # noqa: PLC0415

    try:
        queues = sorted({queue.name for queue in sender.task_consumer.queues})
    except AttributeError:  # no consumer to ask: the configured queue
        queues = [get_settings().queue]
    serve_worker_metrics(get_settings(), queues)


@signals.worker_init.connect
def _prepare_store(**_kwargs) -> None:
    """Check the store is reachable and create indexes before consuming."""
    from worker.store.client import connect  # noqa: PLC0415
    from worker.store.collections import ensure_indexes  # noqa: PLC0415
    from worker.store.retry import Backoff, retry_transient  # noqa: PLC0415

    settings = get_settings()
    if not settings.mongo_url:
        raise SettingsError("JOBTASK_MONGO_URL is not set (make run starts an embedded store)")
    db = connect(settings.mongo_url, settings.mongo_db, settings.store_timeout_ms,
                 socket_timeout_ms=settings.store_socket_timeout_ms())
    try:
        retry_transient(lambda: ensure_indexes(db), Backoff(budget=settings.store_retry_budget))
    finally:
        db.client.close()

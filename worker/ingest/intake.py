"""The worker's consumer: every message of the event queue goes to the buffer.

Celery's consumer runs a strategy per task name and drops what it cannot
run: a message for an unknown task name is rejected before the
``task_unknown`` signal, a message that is not a task message at all or
cannot be decoded is rejected or acknowledged with a log line. Here every
message becomes a delivery in the buffer (``worker.ingest.batching``), so that it
ends where an operator finds it: applied, or in the dead letters with its
reason ("unknown event type ...", "message could not be decoded ..."), and it
is acknowledged only once that is stored, through store outages like any
other message. Nothing on this path waits for the store.

The one exception is the worker's own periodic task, ``job_task.sweep``
(``CONTROL_TASKS``): it is no event, so Celery's own handler runs it as an
ordinary task, acknowledged when it returns. Only a message of that name in
the form Celery runs goes there (JSON, protocol 2's ``[args, kwargs,
embed]``); one Celery would refuse and drop (pickle, any other content type,
another body) goes to the buffer like any message and ends in the dead
letters, and so does anything Celery's handler still refuses
(``on_invalid_task``).

Per message the main process only decodes the body (JSON, protocol 2 or 1)
and reads the ``job_task_id`` and ``job_id`` by which the buffer groups it
(``worker.ingest.waiting``); it builds no Celery ``Request``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.serialization import loads

from worker.contract.delivery import Delivery
from worker.ingest.batching import Buffer, Held
from worker.ingest.waiting import JOB_GROUP
from worker.observe.batches import BatchObserver
from worker.observe.exporter import worker_metrics
from worker.settings import get_settings

logger = logging.getLogger(__name__)

ACCEPTED = ("application/json",)
MAX_KEPT_BODY = 2048
# The worker's own tasks, sent by ``celery beat`` to the events queue: each runs
# as an ordinary Celery task (one Request, in a pool process), not as an event.
CONTROL_TASKS = frozenset({"job_task.sweep"})


def control_task(message) -> bool:
    """Whether a message is one of the worker's own periodic tasks, as Celery runs them; never raises.

    Its name alone is not enough: Celery's handler refuses and drops a body it
    may not decode (``accept_content`` is JSON only), so a message named like
    one in any other form is left to the buffer, which dead-letters it.
    """
    try:
        if message.headers.get("task") not in CONTROL_TASKS:
            return False
        body = loads(message.body, message.content_type, message.content_encoding, accept=ACCEPTED)
    except Exception:  # headers that are not a mapping, or a body Celery would refuse
        return False
    return (isinstance(body, (list, tuple)) and len(body) == 3
            and isinstance(body[0], (list, tuple)) and isinstance(body[1], dict))


def _refused(message, message_id: str, task_name: str | None, refusal: str) -> Held:
    body = repr(message.body)[:MAX_KEPT_BODY]
    delivery = Delivery.of_message(message_id, task_name or "(none)", [], {"body": body}, datetime.now(UTC), refusal)
    return Held(message, delivery, delivery.message_id)


def held_message(message) -> Held:
    """The delivery of one kombu message, and the task whose batch it joins. Never raises."""
    try:
        return _read(message)
    except Exception as exc:  # a message shaped like no producer we know
        return _refused(message, str(message.delivery_tag), None, f"message could not be read: {exc!r}")


def _read(message) -> Held:
    headers = message.headers or {}
    properties = message.properties or {}
    message_id = str(headers.get("id") or properties.get("correlation_id") or message.delivery_tag)
    task_name = headers.get("task")
    try:
        body = loads(message.body, message.content_type, message.content_encoding, accept=ACCEPTED)
    except Exception as exc:  # not JSON, or not decodable at all
        return _refused(message, message_id, task_name,
                        f"message could not be decoded ({message.content_type}): {exc}")
    if task_name is None and isinstance(body, dict) and "task" in body:  # protocol 1
        task_name, args, kwargs = body["task"], body.get("args"), body.get("kwargs")
        message_id = str(body.get("id") or message_id)
    elif task_name is not None and isinstance(body, (list, tuple)) and len(body) == 3:
        args, kwargs, _embed = body
    else:
        return _refused(message, message_id, task_name,
                        "not a Celery task message (no task name, or a body that is not [args, kwargs, embed])")
    delivery = Delivery.of_message(message_id, task_name, args, kwargs, datetime.now(UTC))
    task, job = (kwargs.get("job_task_id"), kwargs.get("job_id")) if isinstance(kwargs, dict) else (None, None)
    job = job if isinstance(job, str) else None
    if isinstance(task, str):
        return Held(message, delivery, task, job)
    if job is not None and str(task_name).startswith("job."):  # a Job's own event
        return Held(message, delivery, JOB_GROUP + job, job)
    return Held(message, delivery, delivery.message_id)


class Consumer(CeleryConsumer):
    """Celery's consumer, with every message handed to one buffer that outlives reconnections."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = get_settings()
        observer = BatchObserver(worker_metrics(), self._live_dispatcher)
        self.buffer = Buffer(self.pool, settings.batch_size, settings.batch_interval,
                             settings.batch_time_limit, observer, stall_after=settings.peer_timeout)

    def ensure_connected(self, conn):
        """Reconnect within a second of the broker coming back.

        Celery retries a lost broker after 2, 4, 6 ... up to 30 s (kombu's
        defaults, not a setting), so a worker could idle for half a minute
        after Redis came back. A connection attempt is cheap: try every second.
        """
        ensure = conn.ensure_connection

        def ensure_often(*args, **kwargs):
            return ensure(*args, **{"interval_start": 0.5, "interval_step": 0.5, "interval_max": 1.0, **kwargs})

        conn.ensure_connection = ensure_often
        return super().ensure_connected(conn)

    def _transport(self):
        """Our transport of the current broker connection (``worker.ingest.transport``), if any."""
        transport = getattr(self.connection, "transport", None)
        return transport if hasattr(transport, "connection_lost") else None

    def _broker_found_silent(self) -> bool:
        """Whether the broker connection was found silent, or the event dispatcher could not publish.

        The dispatcher has a connection of its own, and keeps an event the
        broker did not take (a publish that waited out the socket timeout)
        for a later flush: once one is kept, the broker connection is taken
        for lost too (``Transport.check_silence`` drops it soon after).
        """
        transport = self._transport()
        if transport is None:
            return False
        kept = getattr(self.event_dispatcher, "_outbound_buffer", None)  # Celery's events waiting for the broker
        if kept and not transport.silent():
            logger.warning("the broker did not take %d task events; taking its connection for lost", len(kept))
            transport.connection_lost()
        return transport.silent()

    def _live_dispatcher(self):
        """The event dispatcher, or None once the broker is found silent: no task event then waits on it."""
        return None if self._broker_found_silent() else self.event_dispatcher

    def on_connection_error_after_connected(self, exc):
        """A lost connection: closed without another round trip on it (``transport.Transport.connection_lost``)."""
        transport = self._transport()
        if transport is not None:
            transport.connection_lost()
        super().on_connection_error_after_connected(exc)

    def _flush_events(self):
        """Celery's flush of the buffered task events, unless the broker was found silent (then none waits on it)."""
        if self._broker_found_silent():
            return
        super()._flush_events()
        self._broker_found_silent()

    def create_task_handler(self, promise=None):
        add = self.buffer.add
        ordinary = super().create_task_handler()  # Celery's: a Request run in the pool

        def on_task_received(message):
            if control_task(message):
                ordinary(message)
            else:
                add(held_message(message))

        return on_task_received

    def register_with_event_loop(self, hub):
        """Called for each broker connection, once the task consumer is up.

        The buffer attaches first: the transport sweeps for expired messages
        as it registers, and must first mark ours as still in work.
        """
        self.buffer.attach(hub.timer, self.task_consumer.channel)
        super().register_with_event_loop(hub)

    def on_invalid_task(self, body, message, exc):
        """Celery's handler refused a control task's message (a bad ``eta``, say): dead-letter it, never drop it."""
        headers = message.headers if isinstance(message.headers, dict) else {}
        self.buffer.add(_refused(message, str(headers.get("id") or message.delivery_tag), headers.get("task"),
                                 f"refused by Celery: {exc!r}"))

    def on_decode_error(self, message, exc):
        """kombu could not even unpack the message (a bad compression header)."""
        self.buffer.add(_refused(message, str(message.delivery_tag), None,
                                 f"message could not be decoded ({message.content_type}): {exc}"))

    def on_close(self):
        """A lost connection: Celery flushes the pool; we keep what it dropped."""
        super().on_close()
        self.buffer.take_back_dropped()

    def stop(self):
        """Warm stop: no new batches; running ones finish and settle."""
        self.buffer.sending = False
        super().stop()

    def shutdown(self):
        """After the pool stopped: hand back what waits, before the connection closes."""
        try:
            self.buffer.release()
        except Exception:
            logger.exception("could not hand held messages back; the sweep will after the visibility timeout")
        super().shutdown()

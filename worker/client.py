"""Producer SDK: how plugins and schedulers send lifecycle events.

    events = JobTaskEvents("redis://redis:6379/0")
    job_task_id = events.created(domain_id="domain-1", job_id="job-1",
                                 data_source_id="ds-1", options={"month": "202207"})
    events.started(job_task_id, domain_id="domain-1")
    events.progressed(job_task_id, domain_id="domain-1", created_count_delta=500)
    events.succeeded(job_task_id, domain_id="domain-1")

Each method checks the event against the contract before sending (raising
``InvalidEventError`` with the worker's own reason), fills ``event_id`` and
``occurred_at``, and returns the event_id (``created`` returns the new
job_task_id). Keep the event_id when you retry a send: the worker applies an
event_id once, however often it arrives.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from worker.contract.events import JOB_PREFIX, TASK_PREFIX, InvalidEvent, parse_event


class InvalidEventError(ValueError):
    """The event breaks the contract; the message names the field."""


def new_job_task_id() -> str:
    return "job-task-" + secrets.token_hex(6)


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobTaskEvents:
    """Sends lifecycle events as Celery tasks to the worker's queue.

    ``transport_options`` are kombu's for the broker connection; pass
    ``Settings.redis_options`` (what the API and the CLI do) so that a send
    to a broker gone silent gives up after JOBTASK_PEER_TIMEOUT, is retried
    on a new connection as Celery retries a publish, and never hangs. Ignored
    with ``app``, whose own configuration holds.
    """

    def __init__(self, broker_url: str, queue: str = "job_task_events", app: Celery | None = None,
                 transport_options: dict | None = None) -> None:
        self.queue = queue
        if app is None:
            app = Celery("jobtask-producer", broker=broker_url, set_as_current=False)
            if transport_options:
                app.conf.broker_transport_options = dict(transport_options)
        self.app = app
        self.app.conf.update(task_serializer="json", accept_content=["json"])

    def send(self, kind: str, **fields: Any) -> str:
        """Validate and send one event of ``kind`` (``progressed``, ``job.created``...); returns its event_id."""
        fields.setdefault("event_id", uuid.uuid4().hex)
        fields.setdefault("occurred_at", utc_now_text())
        fields = {key: value for key, value in fields.items() if value is not None}
        task_name = kind if kind.startswith(JOB_PREFIX) else TASK_PREFIX + kind
        checked = parse_event(task_name, [], fields)
        if isinstance(checked, InvalidEvent):
            raise InvalidEventError(checked.reason)
        self.send_raw(task_name, fields)
        return fields["event_id"]

    def send_raw(self, task_name: str, kwargs: Any, args: Any = ()) -> str:
        """Send a message as is, unchecked (for tests and replaying dead letters)."""
        result = self.app.send_task(task_name, args=list(args), kwargs=kwargs, queue=self.queue)
        return result.id

    def created(self, *, domain_id: str, job_id: str, data_source_id: str,
                workspace_id: str | None = None, resource_group: str | None = None,
                options: dict | None = None, job_task_id: str | None = None, **extra: Any) -> str:
        job_task_id = job_task_id or new_job_task_id()
        self.send("created", job_task_id=job_task_id, domain_id=domain_id, job_id=job_id,
                  data_source_id=data_source_id, workspace_id=workspace_id,
                  resource_group=resource_group, options=options or {}, **extra)
        return job_task_id

    def started(self, job_task_id: str, *, domain_id: str, **extra: Any) -> str:
        return self.send("started", job_task_id=job_task_id, domain_id=domain_id, **extra)

    def progressed(self, job_task_id: str, *, domain_id: str, created_count_delta: int, **extra: Any) -> str:
        return self.send("progressed", job_task_id=job_task_id, domain_id=domain_id,
                         created_count_delta=created_count_delta, **extra)

    def succeeded(self, job_task_id: str, *, domain_id: str, created_count_delta: int = 0, **extra: Any) -> str:
        return self.send("succeeded", job_task_id=job_task_id, domain_id=domain_id,
                         created_count_delta=created_count_delta, **extra)

    def failed(self, job_task_id: str, *, domain_id: str, error_code: str, error_message: str,
               **extra: Any) -> str:
        return self.send("failed", job_task_id=job_task_id, domain_id=domain_id,
                         error_code=error_code, error_message=error_message, **extra)

    def canceled(self, job_task_id: str, *, domain_id: str, reason: str | None = None, **extra: Any) -> str:
        return self.send("canceled", job_task_id=job_task_id, domain_id=domain_id, reason=reason, **extra)

    def timed_out(self, job_task_id: str, *, domain_id: str, reason: str | None = None, **extra: Any) -> str:
        return self.send("timed_out", job_task_id=job_task_id, domain_id=domain_id, reason=reason, **extra)

    def job_created(self, *, domain_id: str, job_id: str, data_source_id: str, total_tasks: int,
                    workspace_id: str | None = None, resource_group: str | None = None,
                    options: dict | None = None, **extra: Any) -> str:
        """Declare a job and how many tasks it will have; returns the event_id."""
        return self.send("job.created", domain_id=domain_id, job_id=job_id, data_source_id=data_source_id,
                         total_tasks=total_tasks, workspace_id=workspace_id, resource_group=resource_group,
                         options=options or {}, **extra)

    def job_canceled(self, job_id: str, *, domain_id: str, reason: str | None = None, **extra: Any) -> str:
        """Cancel a job: each of its tasks as by a job_task.canceled; returns the event_id."""
        return self.send("job.canceled", job_id=job_id, domain_id=domain_id, reason=reason, **extra)

    def job_timed_out(self, job_id: str, *, domain_id: str, reason: str | None = None, **extra: Any) -> str:
        return self.send("job.timed_out", job_id=job_id, domain_id=domain_id, reason=reason, **extra)

    def close(self) -> None:
        self.app.close()

"""``job_task.sweep``: the periodic task that ends tasks and Jobs that stopped reporting.

``celery -A worker beat`` sends it every JOBTASK_SWEEP_INTERVAL seconds
(``worker.celery``), to the events queue; the worker's consumer runs it as an
ordinary Celery task in a pool process, not through the event batches
(``worker.ingest.intake.CONTROL_TASKS``). It reads the store
(``worker.ingest.sweep``) and sends a ``timed_out`` event per stale task or
overdue Job through the producer SDK, so those events meet the same queue
and rules as any producer's. Running it twice at once, or redelivering it,
sends the same event ids again, which the worker applies once.
"""

from worker.celery import app
from worker.client import JobTaskEvents
from worker.contract.sweep import Timeouts
from worker.ingest.consume import process_database
from worker.ingest.sweep import sweep as sweep_store
from worker.settings import Settings, get_settings


def timeouts_of(settings: Settings) -> Timeouts:
    return Timeouts(settings.heartbeat_timeout, settings.pending_timeout, settings.job_timeout)


@app.task(name="job_task.sweep", bind=True, ignore_result=True, acks_late=True)
def sweep(self) -> dict:
    """Time out the stale tasks and overdue Jobs; returns how many of each."""
    settings = get_settings()
    assert settings.broker_url is not None  # the worker running this task has one
    producer = JobTaskEvents(settings.broker_url, queue=settings.queue, app=self.app)
    report = sweep_store(process_database(settings), lambda kind, fields: producer.send(kind, **fields),
                         timeouts_of(settings))
    return {"tasks": len(report.tasks), "jobs": len(report.jobs)}

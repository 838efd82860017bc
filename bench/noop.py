"""The benchmark's baseline worker: one no-op task over the jobtask broker.

``celery -A bench.noop worker -c 2`` consumes the same messages as the
jobtask worker (the benchmark sends it the very same kwargs) through an app
built by ``worker.celery.create_app`` itself: the same Redis transport, JSON,
late acknowledgement, requeue on a lost pool process, prefetch and
visibility timeout, so that no setting can drift apart. What differs is the
task and the consumer: an ordinary Celery task that does nothing, executed
one message at a time by Celery's own consumer. It measures what Celery
costs on this broker and machine.

Importing ``worker.celery`` also connects the jobtask worker's start-up
check to this worker: it needs JOBTASK_MONGO_URL and creates the indexes in
JOBTASK_MONGO_DB before consuming (the benchmark gives it a scratch one).
"""

from __future__ import annotations

from celery import Celery

from bench.runs import NOOP_TASK
from worker.celery import create_app as create_jobtask_app
from worker.settings import Settings, get_settings


def create_app(settings: Settings) -> Celery:
    app = create_jobtask_app(settings)
    app.main = "jobtask-bench-noop"
    app.conf.include = []  # the event tasks are not this worker's
    app.conf.worker_consumer = "celery.worker.consumer:Consumer"  # one task per message

    @app.task(name=NOOP_TASK, ignore_result=True, typing=False)
    def noop(*_args, **_kwargs) -> None:
        """Receive an event's kwargs and do nothing with them."""

    return app


app = create_app(get_settings())

"""One Celery task per lifecycle event of a JobTask or a Job (contract v1, docs/EVENTS.md).

The worker never runs these bodies one message at a time: its consumer
(worker.ingest.intake) buffers the messages and applies them in batches
(worker.ingest.batching), and the rules live in worker.contract.lifecycle. A body runs only
when a task is called in-process, and then applies its one event the same way.
"""

from worker.celery import app
from worker.ingest.batching import EventTask


@app.task(name="job_task.created", base=EventTask, bind=True)
def created(self, **event):
    """A scheduler created the task: fixes job, data source, domain, workspace, options."""
    return self.apply_one(event)


@app.task(name="job_task.started", base=EventTask, bind=True)
def started(self, **event):
    """A plugin began the work: IN_PROGRESS unless the task has already ended."""
    return self.apply_one(event)


@app.task(name="job_task.progressed", base=EventTask, bind=True)
def progressed(self, **event):
    """A plugin created ``created_count_delta`` more records."""
    return self.apply_one(event)


@app.task(name="job_task.succeeded", base=EventTask, bind=True)
def succeeded(self, **event):
    """The work finished; may carry the last ``created_count_delta``."""
    return self.apply_one(event)


@app.task(name="job_task.failed", base=EventTask, bind=True)
def failed(self, **event):
    """The work failed with ``error_code`` and ``error_message``."""
    return self.apply_one(event)


@app.task(name="job_task.canceled", base=EventTask, bind=True)
def canceled(self, **event):
    """An operator or the scheduler canceled the task."""
    return self.apply_one(event)


@app.task(name="job_task.timed_out", base=EventTask, bind=True)
def timed_out(self, **event):
    """A scheduler's watchdog gave up on the task: TIMEOUT."""
    return self.apply_one(event)


@app.task(name="job.created", base=EventTask, bind=True)
def job_created(self, **event):
    """A scheduler declared a job and how many tasks it will have."""
    return self.apply_one(event)


@app.task(name="job.canceled", base=EventTask, bind=True)
def job_canceled(self, **event):
    """An operator canceled a job: each of its tasks with it."""
    return self.apply_one(event)


@app.task(name="job.timed_out", base=EventTask, bind=True)
def job_timed_out(self, **event):
    """The job outlived its deadline: each of its unfinished tasks times out with it."""
    return self.apply_one(event)

"""jobtask: the worker that keeps every JobTask of a cost-analysis platform.

``celery -A worker worker`` finds the Celery app in ``worker.celery``.
"""

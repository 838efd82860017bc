"""The Celery tasks through which producers send lifecycle events."""

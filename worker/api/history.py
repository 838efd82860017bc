"""``POST /cost-analysis/v1/job-task/history``: a task's deliveries over HTTP.

The read is ``worker.read.history.task_history`` (shared with ``jobtask
history``); this module only puts it on a route like get / list / stat: the
token's scope, the body as JSON, the read in a thread, coded errors, and the
request and response models in ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from worker.api.models import TaskHistoryInfo
from worker.read.history import TaskHistoryRequest, task_history


def add_history_route(app: FastAPI, prefix: str, endpoint: Callable, operation: Callable) -> None:
    """``POST {prefix}/history`` on ``app``, with the server's ``endpoint`` and ``operation`` helpers.

    ``worker.api.server.create_app`` passes its own (``_handler``, ``_operation``),
    so this route reads, answers and is documented exactly like get / list / stat.
    """
    name = prefix.rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    app.add_api_route(
        f"{prefix}/history",
        endpoint(task_history, app.state.settings, app.state.connections),
        methods=["POST"],
        name=f"{name}_history",
        summary="Every delivery of a task's events, in the order they occurred, and its outcome",
        openapi_extra=operation(TaskHistoryRequest, TaskHistoryInfo),
    )
    app.state.documented_models.extend([TaskHistoryRequest, TaskHistoryInfo])

"""``POST /cost-analysis/v1/job/cancel``: cancel a Job over HTTP.

The rules are ``worker.commands.cancel``'s (the CLI's too): 403 without the
``cancel`` permission, a Job the caller may not read is not found, only an
IN_PROGRESS Job is canceled. The ``job.canceled`` event goes through the
producer SDK on the API's broker connection (``Connections.events``), to
the queue the worker reads, like any producer's. The worker applies it
asynchronously; the answer is the Job read back after at most about a
second's wait for it to read CANCELED.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from worker.api.models import Error, response_models
from worker.api.requests import caller_scope, parse_body
from worker.commands.cancel import CancelJobRequest, cancel_job
from worker.read.resource import JOB
from worker.settings import Settings


def add_cancel_route(app: FastAPI, prefix: str) -> None:
    """``POST {prefix}/cancel``, described in ``/openapi.json`` like the reads."""
    settings: Settings = app.state.settings
    connections = app.state.connections
    job_info = response_models(JOB).get
    sending = threading.Lock()  # one Celery producer, shared by the request threads

    def send(job_id: str, domain_id: str, reason: str | None) -> str:
        with sending:
            return connections.events().job_canceled(job_id, domain_id=domain_id, reason=reason)

    async def cancel(request: Request) -> JSONResponse:
        scope = caller_scope(request.headers.get("authorization"), settings)
        body = parse_body(await request.body())
        job = await run_in_threadpool(cancel_job, connections.db(), scope, body, settings, send)
        return JSONResponse(job)

    app.add_api_route(
        f"{prefix.rstrip('/')}/cancel",
        cancel,
        methods=["POST"],
        name="job_cancel",
        summary="Cancel a Job (the token needs the cancel permission)",
        description=(cancel_job.__doc__ or "") + " The worker applies the cancel asynchronously: the Job "
        "returned may still read IN_PROGRESS if it had not got there within about a second.",
        openapi_extra=_operation(job_info),
    )
    app.state.documented_models.extend([CancelJobRequest, job_info])


def _operation(job_info: type) -> dict:
    error = {"content": {"application/json": {"schema": _ref(Error)}}}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(CancelJobRequest)}}},
        "responses": {
            "200": {"description": "The Job as it stands after the cancel was sent",
                    "content": {"application/json": {"schema": _ref(job_info)}}},
            "400": {"description": "Invalid request, or ERROR_JOB_STATE: the Job is not IN_PROGRESS", **error},
            "401": {"description": "ERROR_AUTHENTICATE_FAILURE", **error},
            "403": {"description": "ERROR_PERMISSION_DENIED: the token may not cancel", **error},
            "404": {"description": "ERROR_NOT_FOUND (also a Job of another domain or workspace)", **error},
            "503": {"description": "ERROR_DB_UNAVAILABLE or ERROR_BROKER_UNAVAILABLE", **error},
        },
        "security": [{"bearer": []}],
    }


def _ref(model: type) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}

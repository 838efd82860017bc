"""``/cost-analysis/v1/job/...``: the Job's get, list, stat, and its cancel.

The cancel's rules are ``worker.commands.cancel``'s (the CLI's too): 403
without the ``cancel`` permission, a Job the caller may not read is not
found, only an IN_PROGRESS Job is canceled. The ``job.canceled`` event goes
through the producer SDK on the API's broker connection, to the queue the
worker reads, like any producer's. The worker applies it asynchronously; the
answer is the Job read back after at most about a second's wait for it to
read CANCELED.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from worker.api.deps import AppConnections, AppSettings, CallerScope, JsonBody
from worker.api.models import response_models
from worker.api.openapi import Documented
from worker.api.reads import add_reads
from worker.commands.cancel import CancelJobRequest, cancel_job
from worker.read.resource import JOB

PREFIX = "/cost-analysis/v1/job"
CANCEL_ERRORS = {
    "400": "Invalid request, or ERROR_JOB_STATE: the Job is not IN_PROGRESS",
    "403": "ERROR_PERMISSION_DENIED: the token may not cancel",
    "404": "ERROR_NOT_FOUND (also a Job of another domain or workspace)",
    "503": "ERROR_DB_UNAVAILABLE or ERROR_BROKER_UNAVAILABLE",
}


def job_router(documented: Documented) -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    add_reads(router, JOB, documented)

    async def cancel(scope: CallerScope, body: JsonBody, settings: AppSettings,
                     connections: AppConnections) -> JSONResponse:
        def send(job_id: str, domain_id: str, reason: str | None) -> str:
            with connections.sending:
                return connections.events().job_canceled(job_id, domain_id=domain_id, reason=reason)

        return JSONResponse(await run_in_threadpool(cancel_job, connections.db(), scope, body, settings, send))

    router.add_api_route(
        "/cancel", cancel, methods=["POST"], name="job_cancel",
        summary="Cancel a Job (the token needs the cancel permission)",
        description=(cancel_job.__doc__ or "") + " The worker applies the cancel asynchronously: the Job "
        "returned may still read IN_PROGRESS if it had not got there within about a second.",
        openapi_extra=documented.post(CancelJobRequest, response_models(JOB).get, CANCEL_ERRORS,
                                      ok="The Job as it stands after the cancel was sent"),
    )
    return router

"""Canceling a Job: the one command the read API and the CLI offer, shared by both.

A caller may cancel a Job it may read, when its token's scope carries the
``cancel`` permission (``JOBTASK_API_TOKENS``); without it the answer is
403 ``ERROR_PERMISSION_DENIED``, and a Job of another domain, or outside the
token's workspaces, is not found exactly as ``get`` says. Like SpaceONE's
``Job.cancel``, only a Job still IN_PROGRESS can be canceled
(``ERROR_JOB_STATE`` otherwise).

A cancel reaches every task of the Job, so a token limited to workspaces
cancels only what lies wholly inside them: a WORKSPACE Job of one of its
workspaces whose every task is in its workspaces. A DOMAIN-level Job (which
such a token reads, as SpaceONE lets a workspace read its domain's
resources), or one with a task in another workspace or at DOMAIN level,
needs a token of the whole domain: 403 ``ERROR_PERMISSION_DENIED`` saying
so. Not 404: the token reads that Job, and a 404 would contradict its own
``get``; what it may not read stays not found. The tasks are counted when the
cancel is asked; producers are trusted (the broker is the trust boundary),
so only a producer could add a task elsewhere in the second before the
worker applies it.

The cancel itself is a ``job.canceled`` event for the caller's domain with a
fresh event_id, sent by the face's ``send`` (the producer SDK, so it takes
the queue and the rules of any producer's event). The worker applies it
asynchronously: the Job returned is read back after waiting up to ``wait``
seconds (default 1) for it to read CANCELED, and may still read IN_PROGRESS
when the worker is busy; it turns CANCELED once the worker gets there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError
from pymongo.database import Database

from worker.contract.errors import (
    ERROR_BROKER_UNAVAILABLE,
    ERROR_INVALID_PARAMETER,
    ERROR_JOB_STATE,
    ERROR_PERMISSION_DENIED,
    CodedError,
)
from worker.contract.lifecycle import CANCELED, IN_PROGRESS
from worker.read.models import RequestBase
from worker.read.parse import parse
from worker.read.reads import Scope, get_item, list_items
from worker.read.resource import JOB, JOB_TASK
from worker.settings import Settings

CANCEL = "cancel"
WORKSPACE = "WORKSPACE"  # a resource_group: the Job belongs to one workspace
MAX_REASON_CHARS = 4096  # the contract's bound on job.canceled's reason
WAIT_SECONDS = 1.0
POLL_SECONDS = 0.05

# (job_id, domain_id, reason) -> the event_id sent
SendCancel = Callable[[str, str, str | None], str]


def _blank_is_missing(value: Any) -> Any:
    if value is None or value == "":
        raise PydanticCustomError("missing", "Field required")
    return value


class CancelJobRequest(RequestBase):
    """Cancel one Job and, through it, each of its tasks still running."""

    job_id: Annotated[str, BeforeValidator(_blank_is_missing), Field(min_length=1)]
    reason: str | None = Field(
        None, max_length=MAX_REASON_CHARS, description="Why, for the operators; the Job's error_message"
    )


def cancel_job(db: Database[dict[str, Any]], scope: Scope, body: Any, settings: Settings, send: SendCancel,
               wait: float = WAIT_SECONDS) -> dict[str, Any]:
    """Send ``job.canceled`` for a Job the caller may read; the Job as it then stands."""
    if CANCEL not in scope.permissions:
        raise ERROR_PERMISSION_DENIED(
            reason="this token may not cancel jobs (its scope needs \"permissions\": [\"read\", \"cancel\"])"
        )
    request = parse(CancelJobRequest, body)
    read = {"job_id": request.job_id}
    job = get_item(JOB, db, scope, read, settings)
    if job["status"] != IN_PROGRESS:
        raise ERROR_JOB_STATE(job_state=job["status"])
    if scope.workspace_ids is not None:
        _check_within_workspaces(db, scope, job, settings)
    try:
        send(request.job_id, scope.domain_id, request.reason)
    except CodedError:
        raise
    except ValueError as exc:  # the contract refused the event (the SDK checks before sending)
        raise ERROR_INVALID_PARAMETER(key="body", reason=str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any failure to publish means the broker was not reached
        raise ERROR_BROKER_UNAVAILABLE(reason=type(exc).__name__) from None
    deadline = time.monotonic() + wait
    while job["status"] != CANCELED and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        job = get_item(JOB, db, scope, read, settings)
    return job


def _check_within_workspaces(db: Database[dict[str, Any]], scope: Scope, job: dict[str, Any],
                             settings: Settings) -> None:
    """403 unless the Job and each of its tasks lie in ``scope``'s workspaces (a workspace token)."""
    workspaces = list(scope.workspace_ids or ())
    refusal = ERROR_PERMISSION_DENIED(
        reason="a DOMAIN-level job, or one with tasks outside this token's workspaces, "
               "can be canceled only with a token of the whole domain"
    )
    if job.get("resource_group") != WORKSPACE or job.get("workspace_id") not in workspaces:
        raise refusal
    # Counted over the whole domain: the token's own read scope also holds DOMAIN tasks.
    domain = Scope(scope.domain_id)
    tasks = {"job_id": job["job_id"], "query": {"count_only": True}}
    inside = {"job_id": job["job_id"], "query": {"count_only": True, "filter": [
        {"k": "workspace_id", "v": workspaces, "o": "in"}, {"k": "resource_group", "v": WORKSPACE, "o": "eq"}]}}
    total = list_items(JOB_TASK, db, domain, tasks, settings)["total_count"]
    if total != list_items(JOB_TASK, db, domain, inside, settings)["total_count"]:
        raise refusal

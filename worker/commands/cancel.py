"""Canceling a Job: the one command the read API and the CLI offer, shared by both.

A caller may cancel a Job it may read, when its token's scope carries the
``cancel`` permission (``JOBTASK_API_TOKENS``); without it the answer is
403 ``ERROR_PERMISSION_DENIED``, and a Job of another domain, or outside the
token's workspaces, is not found exactly as ``get`` says. Like SpaceONE's
``Job.cancel``, only a Job still IN_PROGRESS can be canceled
(``ERROR_JOB_STATE`` otherwise).

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
from worker.read.reads import Scope, get_item
from worker.read.resource import JOB
from worker.settings import Settings

CANCEL = "cancel"
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

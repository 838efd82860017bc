"""Coded errors over HTTP: each category's status, and the body SpaceONE's REST layer gives.

The errors themselves are face-neutral (``worker.contract.errors``); this is
the one place that says which HTTP status each category answers with.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from worker.contract import errors
from worker.contract.errors import CodedError

HTTP_STATUS = {
    errors.INVALID_ARGUMENT: 400,
    errors.FAILED_PRECONDITION: 400,  # SpaceONE answers ERROR_JOB_STATE with 400
    errors.UNAUTHENTICATED: 401,
    errors.PERMISSION_DENIED: 403,
    errors.NOT_FOUND: 404,
    errors.INTERNAL: 500,
    errors.UNAVAILABLE: 503,
    errors.DEADLINE_EXCEEDED: 504,
}


def http_status(error: CodedError) -> int:
    return HTTP_STATUS[error.category]


def error_response(error: CodedError, status: int | None = None, headers: dict | None = None) -> JSONResponse:
    """``{"detail": {"code": ..., "message": ...}}`` with the error's status (or ``status``)."""
    return JSONResponse({"detail": error.detail()}, status_code=status or http_status(error), headers=headers)

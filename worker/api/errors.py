"""Coded errors over HTTP: each category's status, and the body SpaceONE's REST layer gives.

The errors themselves are face-neutral (``worker.contract.errors``); this is
the one place that says which HTTP status each category answers with, and
``install_error_handlers`` makes every failure of a request such an answer:
a coded error as it is, a bad query parameter ``ERROR_INVALID_PARAMETER``,
an unknown path ``ERROR_UNSUPPORTED_API``, anything unexpected a logged
``ERROR_UNKNOWN`` with a reference, never a stack trace, and the connection
goes on (``UnexpectedErrors``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.api.middleware import HttpMiddleware
from worker.contract import errors
from worker.contract.errors import ERROR_INVALID_PARAMETER, ERROR_UNKNOWN, ERROR_UNSUPPORTED_API, CodedError

LOGGER = logging.getLogger("jobtask.api")

HTTP_STATUS = {
    errors.INVALID_ARGUMENT: 400,
    errors.FAILED_PRECONDITION: 400,  # SpaceONE answers ERROR_JOB_STATE with 400
    errors.UNAUTHENTICATED: 401,
    errors.PERMISSION_DENIED: 403,
    errors.NOT_FOUND: 404,
    errors.INTERNAL: 500,
    errors.UNAVAILABLE: 503,
    errors.DEADLINE_EXCEEDED: 504,
    errors.RESOURCE_EXHAUSTED: 429,
}
# The codes HTTP has a status of their own for, whatever their category.
HTTP_STATUS_OF_CODE = {errors.ERROR_REQUEST_TOO_LARGE.code: 413}


def http_status(error: CodedError) -> int:
    return HTTP_STATUS_OF_CODE.get(error.code) or HTTP_STATUS[error.category]


def error_response(error: CodedError, status: int | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``{"detail": {"code": ..., "message": ...}}`` with the error's status (or ``status``).

    An error that says when to come back (a limit's) carries ``Retry-After``.
    """
    if error.retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(error.retry_after)}
    return JSONResponse({"detail": error.detail()}, status_code=status or http_status(error), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CodedError)
    async def coded(_request: Request, error: CodedError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = (error.errors() or [{}])[0]
        key = ".".join(str(part) for part in first.get("loc", ("body",)))
        return error_response(ERROR_INVALID_PARAMETER(key=key, reason=first.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        coded_error = ERROR_UNSUPPORTED_API(method=request.method, path=request.url.path)
        return error_response(coded_error, status=error.status_code, headers=error.headers)

    app.add_middleware(UnexpectedErrors)


class UnexpectedErrors(HttpMiddleware):
    """ASGI middleware: an exception no handler took is one logged ``ERROR_UNKNOWN`` (500) with a reference.

    Starlette's last resort answers too, but then raises the exception again to
    the server, which logs it a second time and drops the connection, so the
    client's next request on it fails. Here the answer ends it. Installed
    first, it sits just outside the routes' handlers, inside every other
    middleware (the security headers reach this answer too).
    """

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def noting(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, noting)
        except Exception:
            reference = uuid.uuid4().hex[:12]
            LOGGER.exception("unexpected error %s on %s %s", reference, scope["method"], scope["path"])
            if started:  # half an answer is out: only closing the connection can end it
                raise
            await error_response(ERROR_UNKNOWN(reference=reference))(scope, receive, send)

"""Coded errors: values with a SpaceONE code, a message, and the category every face renders.

Each kind is defined once here and raised by the query translation, the
reads, the commands (a Job's cancel) and the watch stream; the faces only
render what they catch: the HTTP API as a status
(``worker.api.errors.HTTP_STATUS``), the CLI as a line. The category is
face-neutral (named like gRPC's status codes, which say the same things).
Messages follow SpaceONE core's wording so a SpaceONE user recognises them,
and say what to fix. Calling a kind builds the exception::

    raise ERROR_REQUIRED_PARAMETER(key="job_task_id")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What went wrong, for the faces to render (HTTP status, exit status, gRPC code).
INVALID_ARGUMENT = "invalid_argument"
UNAUTHENTICATED = "unauthenticated"
PERMISSION_DENIED = "permission_denied"
NOT_FOUND = "not_found"
FAILED_PRECONDITION = "failed_precondition"
UNAVAILABLE = "unavailable"
DEADLINE_EXCEEDED = "deadline_exceeded"
RESOURCE_EXHAUSTED = "resource_exhausted"
INTERNAL = "internal"


@dataclass(frozen=True)
class ErrorKind:
    """One SpaceONE error code, its message template and its category."""

    code: str
    template: str
    category: str

    def __call__(self, **fields: Any) -> CodedError:
        try:
            message = self.template.format(**fields)
        except (KeyError, IndexError):
            # A caller that forgot a field still gets the code, never a crash.
            message = self.template
        return CodedError(self, message, fields.get("retry_after"))


class CodedError(Exception):
    """A coded error the faces turn into a response; never a stack trace."""

    def __init__(self, kind: ErrorKind, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        # Seconds after which the same request may succeed (a limit's, RESOURCE_EXHAUSTED).
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def category(self) -> str:
        return self.kind.category

    def detail(self) -> dict[str, Any]:
        """The body SpaceONE's REST layer puts under ``detail``."""
        return {"code": self.code, "message": self.message}


ERROR_REQUIRED_PARAMETER = ErrorKind(
    "ERROR_REQUIRED_PARAMETER", "Required parameter. (key = {key})", INVALID_ARGUMENT
)
ERROR_INVALID_PARAMETER = ErrorKind(
    "ERROR_INVALID_PARAMETER", "Parameter is invalid. (key = {key}, reason = {reason})", INVALID_ARGUMENT
)
ERROR_INVALID_PARAMETER_TYPE = ErrorKind(
    "ERROR_INVALID_PARAMETER_TYPE", "Parameter type is invalid. (key = {key}, type = {type})", INVALID_ARGUMENT
)
ERROR_OPERATOR_VALUE_TYPE = ErrorKind(
    "ERROR_OPERATOR_VALUE_TYPE",
    "The value of '{operator} operator' does not support list type. ({condition})",
    INVALID_ARGUMENT,
)
ERROR_OPERATOR_LIST_VALUE_TYPE = ErrorKind(
    "ERROR_OPERATOR_LIST_VALUE_TYPE",
    "The value of '{operator} operator' must be a list type. ({condition})",
    INVALID_ARGUMENT,
)
ERROR_OPERATOR_DICT_VALUE_TYPE = ErrorKind(
    "ERROR_OPERATOR_DICT_VALUE_TYPE",
    "The value of '{operator} operator' must be a dictionary type. ({condition})",
    INVALID_ARGUMENT,
)
ERROR_OPERATOR_BOOLEAN_TYPE = ErrorKind(
    "ERROR_OPERATOR_BOOLEAN_TYPE",
    "The value of '{operator} operator' must be a boolean type. ({condition})",
    INVALID_ARGUMENT,
)
ERROR_DB_QUERY = ErrorKind("ERROR_DB_QUERY", "DB Query failed. (reason = {reason})", INVALID_ARGUMENT)
ERROR_AUTHENTICATE_FAILURE = ErrorKind(
    "ERROR_AUTHENTICATE_FAILURE", "Authenticate failure. (message = {message})", UNAUTHENTICATED
)
ERROR_PERMISSION_DENIED = ErrorKind(
    "ERROR_PERMISSION_DENIED", "Permission denied. (reason = {reason})", PERMISSION_DENIED
)
ERROR_NOT_FOUND = ErrorKind(
    "ERROR_NOT_FOUND", "Resource cannot be found or access is denied. ({key} = {value})", NOT_FOUND
)
ERROR_UNSUPPORTED_API = ErrorKind(
    "ERROR_UNSUPPORTED_API", "Unsupported API. (method = {method}, path = {path})", NOT_FOUND
)
ERROR_JOB_STATE = ErrorKind(
    "ERROR_JOB_STATE", "Only running jobs can be canceled. (job_state = {job_state})", FAILED_PRECONDITION
)
ERROR_BROKER_UNAVAILABLE = ErrorKind(
    "ERROR_BROKER_UNAVAILABLE", "The event broker cannot be reached; nothing was sent. (reason = {reason})", UNAVAILABLE
)
ERROR_QUERY_TIMEOUT = ErrorKind(
    "ERROR_QUERY_TIMEOUT",
    "Query exceeded its time limit of {limit_ms} ms. Narrow the filter or ask for a smaller page.",
    DEADLINE_EXCEEDED,
)
ERROR_DB_UNAVAILABLE = ErrorKind(
    "ERROR_DB_UNAVAILABLE", "The JobTask store cannot be reached. (reason = {reason})", UNAVAILABLE
)
ERROR_WATCH_UNAVAILABLE = ErrorKind(
    "ERROR_WATCH_UNAVAILABLE", "The change stream on the broker cannot be reached. (reason = {reason})", UNAVAILABLE
)
ERROR_TOO_MANY_REQUESTS = ErrorKind(
    "ERROR_TOO_MANY_REQUESTS", "Too many requests. (reason = {reason}) Retry after {retry_after} s.",
    RESOURCE_EXHAUSTED,
)
ERROR_REQUEST_TOO_LARGE = ErrorKind(
    "ERROR_REQUEST_TOO_LARGE", "The request body is too large. (limit = {limit} bytes)", INVALID_ARGUMENT
)
ERROR_UNKNOWN = ErrorKind(
    "ERROR_UNKNOWN", "Internal error; it has been logged. (reference = {reference})", INTERNAL
)

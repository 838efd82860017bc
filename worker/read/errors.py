"""Errors of the read side: values with a SpaceONE code, a message and an HTTP status.

Each kind is defined once here and raised by the query translation and the
reads; the HTTP API and the CLI only render what they catch. Messages follow
SpaceONE core's wording so a SpaceONE user recognises them, and say what to
fix. Calling a kind builds the exception::

    raise ERROR_REQUIRED_PARAMETER(key="job_task_id")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorKind:
    """One SpaceONE error code, its message template and its HTTP status."""

    code: str
    template: str
    http_status: int

    def __call__(self, **fields: Any) -> ReadError:
        try:
            message = self.template.format(**fields)
        except (KeyError, IndexError):
            # A caller that forgot a field still gets the code, never a crash.
            message = self.template
        return ReadError(self, message)


class ReadError(Exception):
    """A coded error the faces turn into a response; never a stack trace."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    def detail(self) -> dict[str, Any]:
        """The body SpaceONE's REST layer puts under ``detail``."""
        return {"code": self.code, "message": self.message}


ERROR_REQUIRED_PARAMETER = ErrorKind(
    "ERROR_REQUIRED_PARAMETER", "Required parameter. (key = {key})", 400
)
ERROR_INVALID_PARAMETER = ErrorKind(
    "ERROR_INVALID_PARAMETER", "Parameter is invalid. (key = {key}, reason = {reason})", 400
)
ERROR_INVALID_PARAMETER_TYPE = ErrorKind(
    "ERROR_INVALID_PARAMETER_TYPE", "Parameter type is invalid. (key = {key}, type = {type})", 400
)
ERROR_OPERATOR_VALUE_TYPE = ErrorKind(
    "ERROR_OPERATOR_VALUE_TYPE",
    "The value of '{operator} operator' does not support list type. ({condition})",
    400,
)
ERROR_OPERATOR_LIST_VALUE_TYPE = ErrorKind(
    "ERROR_OPERATOR_LIST_VALUE_TYPE",
    "The value of '{operator} operator' must be a list type. ({condition})",
    400,
)
ERROR_OPERATOR_DICT_VALUE_TYPE = ErrorKind(
    "ERROR_OPERATOR_DICT_VALUE_TYPE",
    "The value of '{operator} operator' must be a dictionary type. ({condition})",
    400,
)
ERROR_OPERATOR_BOOLEAN_TYPE = ErrorKind(
    "ERROR_OPERATOR_BOOLEAN_TYPE",
    "The value of '{operator} operator' must be a boolean type. ({condition})",
    400,
)
ERROR_DB_QUERY = ErrorKind("ERROR_DB_QUERY", "DB Query failed. (reason = {reason})", 400)
ERROR_AUTHENTICATE_FAILURE = ErrorKind(
    "ERROR_AUTHENTICATE_FAILURE", "Authenticate failure. (message = {message})", 401
)
ERROR_PERMISSION_DENIED = ErrorKind(
    "ERROR_PERMISSION_DENIED", "Permission denied. (reason = {reason})", 403
)
ERROR_NOT_FOUND = ErrorKind(
    "ERROR_NOT_FOUND", "Resource cannot be found or access is denied. ({key} = {value})", 404
)
ERROR_UNSUPPORTED_API = ErrorKind(
    "ERROR_UNSUPPORTED_API", "Unsupported API. (method = {method}, path = {path})", 404
)
ERROR_JOB_STATE = ErrorKind(
    "ERROR_JOB_STATE", "Only running jobs can be canceled. (job_state = {job_state})", 400
)
ERROR_BROKER_UNAVAILABLE = ErrorKind(
    "ERROR_BROKER_UNAVAILABLE", "The event broker cannot be reached; nothing was sent. (reason = {reason})", 503
)
ERROR_QUERY_TIMEOUT = ErrorKind(
    "ERROR_QUERY_TIMEOUT",
    "Query exceeded its time limit of {limit_ms} ms. Narrow the filter or ask for a smaller page.",
    504,
)
ERROR_DB_UNAVAILABLE = ErrorKind(
    "ERROR_DB_UNAVAILABLE", "The JobTask store cannot be reached. (reason = {reason})", 503
)
ERROR_WATCH_UNAVAILABLE = ErrorKind(
    "ERROR_WATCH_UNAVAILABLE", "The change stream on the broker cannot be reached. (reason = {reason})", 503
)
ERROR_UNKNOWN = ErrorKind(
    "ERROR_UNKNOWN", "Internal error; it has been logged. (reference = {reference})", 500
)

"""Event contract v1: the lifecycle events producers send, validated.

Each event is a Celery task named ``job_task.<kind>`` with keyword arguments
only. ``parse_event`` turns one message's kwargs into a typed event or an
``InvalidEvent`` whose reason names the offending field, so that a bad message
is dead-lettered with an answer a producer can act on instead of crashing the
worker. The models here are also the source of the JSON Schemas in
``docs/schemas`` (``python -m worker.contract.schema``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from worker.contract.outcomes import INVALID, UNKNOWN_TYPE

TASK_PREFIX = "job_task."
JOB_PREFIX = "job."
# A Job's document keeps a few dozen bytes per task; this keeps it far below
# MongoDB's 16 MiB document limit.
MAX_TASKS_PER_JOB = 50_000
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_OPTIONS_BYTES = 16 * 1024
MAX_OPTIONS_DEPTH = 16
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_DELTA = 1_000_000_000

EventId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
ResourceId = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Delta = Annotated[StrictInt, Field(ge=0, le=MAX_DELTA)]
ErrorCode = Annotated[StrictStr, Field(min_length=1, max_length=128)]
Text = Annotated[StrictStr, Field(max_length=4096)]


def to_millis(moment: datetime) -> datetime:
    """UTC, truncated to the millisecond: what a BSON date can hold.

    Every time the rules compare is truncated first, so that the pure rules and
    the store (which keeps milliseconds) order events identically.
    """
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_occurred_at(value: Any) -> datetime | None:
    """ISO 8601 with a UTC offset; naive times are refused rather than guessed."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string with a UTC offset")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("has no UTC offset; send e.g. 2022-07-17T16:00:08.266Z")
    return to_millis(moment)


def _check_options(value: Any, path: str = "options", depth: int = 0) -> None:
    """Options become a queryable sub-document: keys must be safe field names."""
    if depth > MAX_OPTIONS_DEPTH:
        raise ValueError(f"{path} is nested deeper than {MAX_OPTIONS_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{path} has an empty key")
            if key.startswith("$") or "." in key or "\x00" in key:
                raise ValueError(f"{path} key {key!r} may not start with '$' or contain '.'")
            _check_options(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_options(item, f"{path}[{index}]", depth + 1)


class _Base(BaseModel):
    """Fields every event carries; unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId
    domain_id: ResourceId
    occurred_at: datetime | None = Field(
        default=None,
        description="ISO 8601 with a UTC offset; at most 5 minutes ahead of the "
        "worker's clock. Missing: the time the worker received the event.",
        json_schema_extra={"type": "string", "format": "date-time"},
    )

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _occurred_at(cls, value: Any) -> datetime | None:
        moment = parse_occurred_at(value)
        if moment is not None and moment > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("is more than 5 minutes ahead of the worker's clock")
        return moment


class _Event(_Base):
    """An event of one JobTask."""

    job_task_id: ResourceId


class _JobEvent(_Base):
    """An event of one Job, the parent of its JobTasks."""

    job_id: ResourceId


class _Placement(BaseModel):
    """Where a task or a job belongs, fixed by its created event."""

    workspace_id: ResourceId | None = None
    resource_group: Literal["DOMAIN", "WORKSPACE"] | None = None
    options: dict[StrictStr, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_options(value)
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_OPTIONS_BYTES:
            raise ValueError(f"is {size} bytes as JSON; at most {MAX_OPTIONS_BYTES} allowed")
        return value

    @field_validator("resource_group")
    @classmethod
    def _workspace_needs_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "WORKSPACE" and not info.data.get("workspace_id"):
            raise ValueError("WORKSPACE needs a workspace_id")
        return value

    @model_validator(mode="after")
    def _default_resource_group(self) -> _Placement:
        if self.resource_group is None:
            group = "WORKSPACE" if self.workspace_id else "DOMAIN"
            object.__setattr__(self, "resource_group", group)
        return self


class Created(_Placement, _Event):
    kind: Literal["created"] = "created"
    job_id: ResourceId
    data_source_id: ResourceId


class Started(_Event):
    kind: Literal["started"] = "started"


class Progressed(_Event):
    kind: Literal["progressed"] = "progressed"
    created_count_delta: Delta


class Succeeded(_Event):
    kind: Literal["succeeded"] = "succeeded"
    created_count_delta: Delta = 0


class Failed(_Event):
    kind: Literal["failed"] = "failed"
    error_code: ErrorCode
    error_message: Text


class Canceled(_Event):
    kind: Literal["canceled"] = "canceled"
    reason: Text | None = None


class TimedOut(_Event):
    """Sent by a scheduler's watchdog when a task outlived its deadline."""

    kind: Literal["timed_out"] = "timed_out"
    reason: Text | None = None


class JobCreated(_Placement, _JobEvent):
    """A scheduler declares a job and how many tasks it will have."""

    kind: Literal["job.created"] = "job.created"
    data_source_id: ResourceId
    total_tasks: Annotated[StrictInt, Field(ge=0, le=MAX_TASKS_PER_JOB)]


class JobCanceled(_JobEvent):
    """An operator cancels a job: each of its tasks as by a job_task.canceled."""

    kind: Literal["job.canceled"] = "job.canceled"
    reason: Text | None = None


class JobTimedOut(_JobEvent):
    """The sweep (or a scheduler's watchdog) gives up on a whole job: TIMEOUT."""

    kind: Literal["job.timed_out"] = "job.timed_out"
    reason: Text | None = None


TaskEvent = Created | Started | Progressed | Succeeded | Failed | Canceled | TimedOut
JobEvent = JobCreated | JobCanceled | JobTimedOut
Event = TaskEvent | JobEvent
TASK_EVENTS = (Created, Started, Progressed, Succeeded, Failed, Canceled, TimedOut)
JOB_EVENTS = (JobCreated, JobCanceled, JobTimedOut)


def task_name_of(model: type[_Base] | _Base) -> str:
    """The Celery task an event is sent as: ``job_task.<kind>``, or its kind for a job's."""
    kind: str = model.model_fields["kind"].default
    return kind if kind.startswith(JOB_PREFIX) else TASK_PREFIX + kind


EVENT_TYPES: dict[str, type[Event]] = {task_name_of(model): model for model in (*TASK_EVENTS, *JOB_EVENTS)}


@dataclass(frozen=True)
class InvalidEvent:
    """Why a message is not a valid event; ``field`` names what to fix."""

    reason: str
    field: str | None = None
    code: str = INVALID  # the dead letter's code (worker.contract.outcomes)


def _describe(error: ErrorDetails) -> tuple[str, str | None]:
    """One line per offending kwarg, named as the producer spelled it."""
    loc = error.get("loc") or ()
    field = str(loc[0]) if loc else None
    message = error.get("msg", "is invalid")
    if error.get("type") == "missing":
        message = "is required"
    elif error.get("type") == "extra_forbidden":
        message = "is not a field of this event (unknown fields are refused)"
    message = message.removeprefix("Value error, ")
    return (f"{field}: {message}" if field else message), field


def parse_event(task_name: str, args: Any, kwargs: Any) -> Event | InvalidEvent:
    """Validate one message; never raises for bad input."""
    model = EVENT_TYPES.get(task_name)
    if model is None:
        return InvalidEvent(f"unknown event type {task_name!r}", "task", UNKNOWN_TYPE)
    if args:
        return InvalidEvent("events take keyword arguments only", "args")
    if not isinstance(kwargs, dict):
        return InvalidEvent("kwargs must be an object", "kwargs")
    if "kind" in kwargs:
        return InvalidEvent("kind: is not a field of this event (unknown fields are refused)", "kind")
    try:
        return model.model_validate(kwargs)
    except ValidationError as exc:
        reasons: dict[str | None, str] = {}
        for error in exc.errors():
            text, field = _describe(error)
            reasons.setdefault(field, text)  # a union reports once per member
        return InvalidEvent("; ".join(reasons.values()), next(iter(reasons)))


def content_digest(content: Any) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def event_fingerprint(event: Event) -> str:
    """Digest of what the producer said, to tell a redelivery from a conflict.

    A missing occurred_at stays missing here, so the worker's default (the
    receive time) does not make a redelivered event look different.
    """
    return content_digest(event.model_dump(mode="json", exclude_none=True))


def identity_fields(event: Created) -> dict[str, Any]:
    """The fields a ``created`` fixes for good (workspace_id None when absent)."""
    return {
        "domain_id": event.domain_id,
        "job_id": event.job_id,
        "data_source_id": event.data_source_id,
        "workspace_id": event.workspace_id,
        "resource_group": event.resource_group,
        "options": event.options,
    }


def identity_fingerprint(event: Created) -> str:
    """Digest of the identity fields; a second created must match it."""
    return content_digest(identity_fields(event))

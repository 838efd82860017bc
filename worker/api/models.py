"""The read API's response bodies as pydantic models, for ``/openapi.json`` only.

Responses are shaped by ``worker.read.reads`` and sent as they are; these models
describe them (built per ``Resource``, like the request models of
``worker.read.models``) and are never used to validate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from worker.read.resource import Resource


class StatResponse(BaseModel):
    """Aggregate rows (group keys flattened) or distinct values; total_count when paged."""

    results: list[Any]
    total_count: int | None = None


class ErrorDetail(BaseModel):
    code: str = Field(description="SpaceONE's error code, such as ERROR_INVALID_PARAMETER")
    message: str


class Error(BaseModel):
    """Every error, as SpaceONE's REST layer gives it."""

    detail: ErrorDetail


@dataclass(frozen=True)
class ResponseModels:
    """What one resource's get / list / stat answer."""

    get: type[BaseModel]
    list: type[BaseModel]
    stat: type[BaseModel] = StatResponse


@cache
def response_models(resource: Resource) -> ResponseModels:
    """``{Name}Info`` (one document) and ``{Plural}Info`` (a page of them) for ``resource``."""
    fields: dict[str, Any] = {
        name: (_returned_type(resource, name, kind), Field(None, json_schema_extra=_absent_when_empty))
        for name, kind in resource.fields.items()
    }
    info = create_model(
        f"{resource.name}Info",
        __doc__=f"One {resource.name}; fields with no value are left out, "
        "timestamps like 2022-07-17T16:00:08.266Z.",
        **fields,
    )
    infos = create_model(f"{resource.plural}Info", results=(list[info], ...), total_count=(int, ...))
    return ResponseModels(get=info, list=infos)


def _absent_when_empty(schema: dict) -> None:
    # A field without a value is left out of a response, never null.
    schema.pop("default", None)


def _returned_type(resource: Resource, name: str, kind: Any) -> Any:
    if name == "status":
        return Literal[resource.statuses]
    if kind is dict:
        return dict[str, Any]
    return kind if kind in (str, int, datetime) else Any


class DeliveryInfo(BaseModel):
    """One delivery of a task's event and what the worker did with it; absent fields left out."""

    type: str = Field(description="The event's task name, such as job_task.created")
    kind: str = Field(description="The event's kind, such as created")
    event_id: str
    occurred_at: datetime | None = Field(None, description="When the producer says it happened")
    received_at: datetime = Field(description="When the worker received it")
    outcome: Literal["applied", "duplicate", "ignored", "parked", "conflict", "rejected"]
    reason: str | None = Field(None, description="Why, for any outcome but applied")
    message_id: str = Field(description="The Celery message that carried it")
    job_id: str | None = Field(None, description="The Job whose ending sent this event, if one did")


class TaskHistoryInfo(BaseModel):
    """A page of a task's deliveries, oldest first (occurred_at, then received_at)."""

    results: list[DeliveryInfo]
    total_count: int

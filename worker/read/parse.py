"""A request body against its model (``worker.read.models``): the model, or SpaceONE's coded 400.

Pydantic's own errors never leave: each becomes the SpaceONE error a
SpaceONE user expects for it (a missing parameter ``ERROR_REQUIRED_PARAMETER``,
a wrong type ``ERROR_INVALID_PARAMETER_TYPE`` with the key, an unknown key
or a value out of its choices ``ERROR_INVALID_PARAMETER``), keyed like
SpaceONE's messages (``query.page.limit``, no list indexes).
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from worker.contract.errors import (
    ERROR_INVALID_PARAMETER,
    ERROR_INVALID_PARAMETER_TYPE,
    ERROR_REQUIRED_PARAMETER,
    CodedError,
)
from worker.read.fields import check_body
from worker.read.models import IGNORED_PARAMS

_TYPE_NAMES = {
    "string_type": "str",
    "int_type": "int",
    "bool_type": "bool",
    "list_type": "list",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}


def parse(model: type[BaseModel], body: Any) -> Any:
    """``body`` as an instance of ``model``, or the SpaceONE coded error of its first fault.

    The guard of ``worker.read.fields`` runs first (no ``$`` keys, nothing
    BSON cannot carry).
    """
    body = check_body(body)
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as invalid:
        errors = invalid.errors(include_url=False)
    _, first = min(enumerate(errors), key=_precedence)
    raise coded_error(model, first) from None


_OBJECT_FAULTS = frozenset({"missing", "model_type", "dict_type"})


def _precedence(indexed: tuple[int, ErrorDetails]) -> tuple[Any, ...]:
    """Which of several faults is reported, in the order SpaceONE reads a body.

    Unknown keys first (the shallowest, then by name), then a missing or
    malformed object (the query itself), then the others in field order.
    """
    position, error = indexed
    if error["type"] == "extra_forbidden":
        return (0, len(error["loc"]), tuple(map(str, error["loc"])))
    return (1 if error["type"] in _OBJECT_FAULTS else 2, position, ())


def coded_error(model: type[BaseModel], error: ErrorDetails) -> CodedError:
    """One pydantic error as SpaceONE's: its key dotted as in SpaceONE's messages, list indexes left out."""
    loc = error["loc"]
    key = ".".join(str(part) for part in loc if not isinstance(part, int))
    kind = error["type"]
    if kind == "missing":
        # A rule over several keys (aggregate or distinct) names the one to send.
        return ERROR_REQUIRED_PARAMETER(key=error.get("ctx", {}).get("key", key))
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(_fields_at(model, loc[:-1]) - IGNORED_PARAMS))
        reason = "unknown parameter" if len(loc) == 1 else "not supported here"
        return ERROR_INVALID_PARAMETER(key=key, reason=f"{reason} (use {allowed})")
    if kind in _TYPE_NAMES:
        return ERROR_INVALID_PARAMETER_TYPE(key=key, type=_TYPE_NAMES[kind])
    return ERROR_INVALID_PARAMETER(key=key, reason=error["msg"])


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> set[str]:
    for part in path:
        model = _model_in(model.model_fields[part].annotation)
    return set(model.model_fields)


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None

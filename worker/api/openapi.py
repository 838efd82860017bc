"""``/openapi.json``: each POST route's body, answer and coded errors, from the models that validate them.

A POST body is validated by the read or command it is for, against a
pydantic request model (``worker.read.models``); the same model describes
the body here, and the response models (``worker.api.models``) describe the
answers, so the document and the validators are one source. ``Documented``
collects the models a router's operations name, and ``document`` puts their
schemas under ``components``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from worker.api.models import Error
from worker.read.models import body_required

# The coded errors every authenticated route may answer, by status.
COMMON_ERRORS = {
    "400": "Invalid request (SpaceONE code)",
    "401": "ERROR_AUTHENTICATE_FAILURE",
    "403": "ERROR_PERMISSION_DENIED",
    "413": "ERROR_REQUEST_TOO_LARGE",
    "429": "ERROR_TOO_MANY_REQUESTS: the caller is at one of its limits; Retry-After says when to try again",
    "503": "ERROR_DB_UNAVAILABLE",
}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


class Documented:
    """The request and response models a set of routes names, for the app's document."""

    def __init__(self) -> None:
        self.models: list[type[BaseModel]] = [Error]

    def post(self, request_model: type[BaseModel], response_model: type[BaseModel],
             errors: dict[str, str] | None = None, ok: str = "OK") -> dict[str, Any]:
        """``openapi_extra`` of one POST route: its body, its answer, its coded errors, the bearer token."""
        self.models += [request_model, response_model]
        error = {"content": {"application/json": {"schema": ref(Error)}}}
        responses = {"200": {"description": ok, "content": {"application/json": {"schema": ref(response_model)}}}}
        responses.update({status: {"description": text, **error}
                          for status, text in {**COMMON_ERRORS, **(errors or {})}.items()})
        return {
            "requestBody": {"required": body_required(request_model),
                            "content": {"application/json": {"schema": ref(request_model)}}},
            "responses": responses,
            "security": BEARER,
        }


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(app: FastAPI, documented: Iterable[Documented]) -> dict[str, Any]:
    """The app's OpenAPI document, made once: its routes, and every model they name."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        models = dict.fromkeys(model for part in documented for model in part.models)
        _, described = models_json_schema([(model, "validation") for model in models],
                                          ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(described["$defs"])
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = schema
    return app.openapi_schema

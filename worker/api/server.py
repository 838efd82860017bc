"""The read API over HTTP: SpaceONE's JobTask and Job get / list / stat, plus ``/healthz``.

``worker.api:app`` serves ``POST /cost-analysis/v1/job-task/{get,list,stat}``
with JSON bodies as in the seed, the same for Jobs under
``/cost-analysis/v1/job/``, a Job's cancel (``worker.api.job_cancel``), the
token's scope (``worker.api.scope``), ``GET /healthz`` and ``/openapi.json``;
``create_app(settings)`` builds another app (tests, embedding), and
``add_read_routes`` serves one more ``Resource`` the same way. Every request
carries ``Authorization: Bearer <token>`` and the token alone decides the
caller's domain, workspaces and permissions (``worker.api.requests``).

Errors leave as SpaceONE's REST layer gives them,
``{"detail": {"code": "ERROR_...", "message": "..."}}``, with the status of the
error kind. Bodies are parsed here and validated by the read functions
against the request models of ``worker.read.models``; ``/openapi.json`` is
generated from those and the response models of ``worker.api.models``. A
malformed body is a coded 400, never FastAPI's 422; anything unexpected is
logged with a reference and answered with a coded 500, never a stack trace.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from pymongo.database import Database
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.api.console import add_console_routes
from worker.api.errors import error_response
from worker.api.history import add_history_route
from worker.api.job_cancel import add_cancel_route
from worker.api.models import Error, response_models
from worker.api.requests import caller_scope, parse_body
from worker.api.scope import add_scope_route
from worker.api.watch import add_watch_route
from worker.client import JobTaskEvents
from worker.contract.errors import (
    ERROR_DB_UNAVAILABLE,
    ERROR_INVALID_PARAMETER,
    ERROR_UNKNOWN,
    ERROR_UNSUPPORTED_API,
    CodedError,
)
from worker.observe.http import add_metrics
from worker.observe.logs import use_format_for_api
from worker.read.models import request_models
from worker.read.reads import get_item, list_items, stat_items
from worker.read.resource import JOB, JOB_TASK, Resource
from worker.settings import Settings, get_settings
from worker.store.client import connect

LOGGER = logging.getLogger("jobtask.api")
JOB_TASK_PREFIX = "/cost-analysis/v1/job-task"
JOB_PREFIX = "/cost-analysis/v1/job"


class Connections:
    """The process's store and broker clients, made on first use and then shared."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._db: Database | None = None
        self._broker: redis.Redis | None = None
        self._events: JobTaskEvents | None = None

    def db(self) -> Database:
        if self._db is None:
            if not self.settings.mongo_url:
                raise ERROR_DB_UNAVAILABLE(reason="JOBTASK_MONGO_URL is not set")
            with self._lock:
                if self._db is None:
                    self._db = connect(
                        self.settings.mongo_url,
                        self.settings.mongo_db,
                        timeout_ms=self.settings.store_timeout_ms,
                        app="jobtask-api",
                    )
        return self._db

    def broker(self) -> redis.Redis:
        if self._broker is None:
            if not self.settings.broker_url:
                raise RuntimeError("JOBTASK_BROKER_URL is not set")
            with self._lock:
                if self._broker is None:
                    self._broker = redis.Redis.from_url(
                        self.settings.broker_url, socket_timeout=2, socket_connect_timeout=2
                    )
        return self._broker

    def events(self) -> JobTaskEvents:
        """The producer SDK on the broker, for the events the API sends (a job's cancel)."""
        if self._events is None:
            if not self.settings.broker_url:
                raise RuntimeError("JOBTASK_BROKER_URL is not set")
            with self._lock:
                if self._events is None:
                    self._events = JobTaskEvents(self.settings.broker_url, self.settings.queue)
        return self._events

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        if self._db is not None:
            self._db.client.close()
        if self._broker is not None:
            self._broker.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The read API for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    use_format_for_api(settings.log_format)
    connections = Connections(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await app.state.change_hub.close()
        connections.close()

    app = FastAPI(
        lifespan=lifespan,
        title="jobtask read API",
        version="1.0",
        description="SpaceONE cost-analysis JobTask and Job get / list / stat over the worker's store, "
        "and a Job's cancel.",
    )
    app.state.settings = settings
    app.state.connections = connections
    app.state.documented_models = [Error]
    _install_error_handlers(app)
    add_read_routes(app, JOB_TASK, JOB_TASK_PREFIX)
    add_read_routes(app, JOB, JOB_PREFIX)
    add_cancel_route(app, JOB_PREFIX)
    add_scope_route(app)
    add_history_route(app, JOB_TASK_PREFIX, _handler, _operation)
    add_watch_route(app, JOB_TASK_PREFIX, caller_scope)
    add_console_routes(app)
    app.state.metrics = add_metrics(app, connections.db)

    @app.get("/healthz", summary="Store and broker reachable")
    async def healthz() -> JSONResponse:
        checks = {
            "store": await run_in_threadpool(_check, lambda: connections.db().client.admin.command("ping")),
            "broker": await run_in_threadpool(_check, lambda: connections.broker().ping()),
        }
        healthy = all(state == "ok" for state in checks.values())
        body = {"status": "ok" if healthy else "unavailable", **checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's way to replace the document
    return app


def add_read_routes(app: FastAPI, resource: Resource, prefix: str) -> None:
    """``POST {prefix}/get|list|stat`` reading ``resource``, described by its request models."""
    settings: Settings = app.state.settings
    connections: Connections = app.state.connections
    requests, responses = request_models(resource), response_models(resource)
    name = prefix.rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    routes = (
        ("get", get_item, requests.get, responses.get, f"Get one {resource.name}"),
        ("list", list_items, requests.list, responses.list, f"List {resource.plural}"),
        ("stat", stat_items, requests.stat, responses.stat, f"Statistics of {resource.plural}"),
    )
    for method, read, request_model, response_model, summary in routes:
        app.add_api_route(
            f"{prefix}/{method}",
            _handler(partial(read, resource), settings, connections),
            methods=["POST"],
            name=f"{name}_{method}",
            summary=summary,
            openapi_extra=_operation(request_model, response_model),
        )
        app.state.documented_models.extend([request_model, response_model])


def _handler(read: Callable, settings: Settings, connections: Connections) -> Callable:
    """The endpoint of one read: the caller's scope from its token, the body as JSON, the read in a thread."""

    async def handler(request: Request) -> JSONResponse:
        scope = caller_scope(request.headers.get("authorization"), settings)
        body = parse_body(await request.body())
        result = await run_in_threadpool(read, connections.db(), scope, body, settings)
        return JSONResponse(result)

    return handler


def _operation(request_model: type[BaseModel], response_model: type[BaseModel]) -> dict:
    """``openapi_extra`` for one POST route: its body, its answer and its coded errors."""
    error = {"content": {"application/json": {"schema": _ref(Error)}}}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request_model)}}},
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": _ref(response_model)}}},
            "400": {"description": "Invalid request (SpaceONE code)", **error},
            "401": {"description": "ERROR_AUTHENTICATE_FAILURE", **error},
            "403": {"description": "ERROR_PERMISSION_DENIED", **error},
            "404": {"description": "ERROR_NOT_FOUND", **error},
            "503": {"description": "ERROR_DB_UNAVAILABLE", **error},
            "504": {"description": "ERROR_QUERY_TIMEOUT", **error},
        },
        "security": [{"bearer": []}],
    }


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _check(ping: Callable[[], Any]) -> str:
    try:
        ping()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"unreachable ({type(exc).__name__})"


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, described = models_json_schema(
            [(model, "validation") for model in dict.fromkeys(app.state.documented_models)],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(described["$defs"])
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = schema
    return app.openapi_schema


def _install_error_handlers(app: FastAPI) -> None:
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
        return JSONResponse(
            {"detail": coded_error.detail()}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        LOGGER.exception("unexpected error %s on %s %s", reference, request.method, request.url.path)
        return error_response(ERROR_UNKNOWN(reference=reference))


app = create_app()

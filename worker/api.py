"""The read API over HTTP: SpaceONE's JobTask get / list / stat, plus ``/healthz``.

``worker.api:app`` serves ``POST /cost-analysis/v1/job-task/{get,list,stat}``
with JSON bodies as in the seed, ``GET /healthz`` and ``/openapi.json``;
``create_app(settings)`` builds another app (tests, embedding). Every request
carries ``Authorization: Bearer <token>`` and the token alone decides the
caller's domain and workspaces (``JOBTASK_API_TOKENS``).

Errors leave as SpaceONE's REST layer gives them,
``{"detail": {"code": "ERROR_...", "message": "..."}}``, with the status of the
error kind. Bodies are parsed here and validated by ``worker.query``, so a
malformed body is a coded 400, never FastAPI's 422; anything unexpected is
logged with a reference and answered with a coded 500, never a stack trace.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from contextlib import asynccontextmanager
from typing import Any, Callable

import redis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pymongo.database import Database
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker import api_schema
from worker.errors import (
    ERROR_AUTHENTICATE_FAILURE,
    ERROR_DB_UNAVAILABLE,
    ERROR_INVALID_PARAMETER,
    ERROR_PERMISSION_DENIED,
    ERROR_UNKNOWN,
    ERROR_UNSUPPORTED_API,
    ReadError,
)
from worker.read import Scope, get_job_task, list_job_tasks, stat_job_tasks
from worker.settings import Settings, get_settings
from worker.store import connect

LOGGER = logging.getLogger("jobtask.api")
PREFIX = "/cost-analysis/v1/job-task"
MAX_BODY_BYTES = 1_000_000


class Connections:
    """The process's store and broker clients, made on first use and then shared."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._db: Database | None = None
        self._broker: redis.Redis | None = None

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

    def close(self) -> None:
        if self._db is not None:
            self._db.client.close()
        if self._broker is not None:
            self._broker.close()


def caller_scope(authorization: str | None, settings: Settings) -> Scope:
    """The scope of the bearer token; 401 without a known token, 403 if it may read nothing."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ERROR_AUTHENTICATE_FAILURE(message="send 'Authorization: Bearer <token>'")
    found = None
    for known, scope in settings.api_tokens.items():
        # Compare with every token in constant time, so timing reveals nothing.
        if hmac.compare_digest(known.encode(), token.encode()):
            found = scope
    if found is None:
        raise ERROR_AUTHENTICATE_FAILURE(message="the token is not known")
    if found.workspace_ids is not None and not found.workspace_ids:
        raise ERROR_PERMISSION_DENIED(reason="the token is scoped to no workspace")
    workspaces = tuple(found.workspace_ids) if found.workspace_ids is not None else None
    return Scope(found.domain_id, workspaces)


def parse_body(raw: bytes) -> Any:
    """The JSON body; an empty one is ``{}``, a malformed one a coded 400."""
    if len(raw) > MAX_BODY_BYTES:
        raise ERROR_INVALID_PARAMETER(key="body", reason=f"larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise ERROR_INVALID_PARAMETER(key="body", reason=f"malformed JSON ({reason})") from None


def error_response(error: ReadError) -> JSONResponse:
    return JSONResponse({"detail": error.detail()}, status_code=error.http_status)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The read API for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    connections = Connections(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        connections.close()

    app = FastAPI(
        lifespan=lifespan,
        title="jobtask read API",
        version="1.0",
        description="SpaceONE cost-analysis JobTask get / list / stat over the worker's store.",
    )
    app.state.settings = settings
    app.state.connections = connections
    _install_error_handlers(app)

    def route(path: str, read: Callable, request_schema: str, response_schema: str, summary: str):
        async def handler(request: Request) -> JSONResponse:
            scope = caller_scope(request.headers.get("authorization"), settings)
            body = parse_body(await request.body())
            result = await run_in_threadpool(read, connections.db(), scope, body, settings)
            return JSONResponse(result)

        handler.__name__ = f"job_task_{path}"
        app.add_api_route(
            f"{PREFIX}/{path}",
            handler,
            methods=["POST"],
            summary=summary,
            openapi_extra=api_schema.operation(request_schema, response_schema),
        )

    route("get", get_job_task, "GetJobTaskRequest", "JobTaskInfo", "Get one JobTask")
    route("list", list_job_tasks, "ListJobTasksRequest", "JobTasksInfo", "List JobTasks")
    route("stat", stat_job_tasks, "StatJobTasksRequest", "StatResponse", "Statistics of JobTasks")

    @app.get("/healthz", summary="Store and broker reachable")
    async def healthz() -> JSONResponse:
        checks = {
            "store": await run_in_threadpool(_check, lambda: connections.db().client.admin.command("ping")),
            "broker": await run_in_threadpool(_check, lambda: connections.broker().ping()),
        }
        healthy = all(state == "ok" for state in checks.values())
        body = {"status": "ok" if healthy else "unavailable", **checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    app.openapi = lambda: _openapi(app)
    return app


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
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(api_schema.COMPONENTS)
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = schema
    return app.openapi_schema


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReadError)
    async def coded(_request: Request, error: ReadError) -> JSONResponse:
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

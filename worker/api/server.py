"""The HTTP face: SpaceONE's JobTask and Job get / list / stat, a Job's cancel, a task's history, the watch stream.

``create_app(settings)`` builds the FastAPI app from one router per
resource (``job_tasks``, ``jobs``), the token's scope (``scope``), the watch
stream (``watch``, fed by ``hub``), ``/healthz`` (``health``), the console
(``console``) and ``GET /metrics``. What every route needs comes from
``deps`` (the caller's scope from its bearer token, the body as JSON, the
app's settings and clients); the reads and commands themselves are the
read path's and ``worker.commands``', shared with the CLI.

What one caller may take is limited: its token's lists, stats and histories
in progress (``slots``, kept in the app's state).
Bodies are capped before they are read (``body_limit``), watch streams are
counted per token and in all (``slots``), failed authentications are slowed
per client address (``auth_throttle``).
Every answer carries security headers (``security_headers``); ``GET /metrics``
answers only to ``JOBTASK_API_METRICS_TOKEN``, ``/docs`` only with ``JOBTASK_API_DOCS``.

Errors leave as SpaceONE's REST layer gives them,
``{"detail": {"code": "ERROR_...", "message": "..."}}``, with the status of the
error's category (``errors``); ``/openapi.json`` is generated from the request
models that validate the bodies and the response models (``openapi``).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from worker.api import console, health, scope
from worker.api.auth_throttle import AuthThrottle
from worker.api.body_limit import BodyLimit
from worker.api.connections import Connections
from worker.api.errors import install_error_handlers
from worker.api.hub import ChangeHub
from worker.api.job_tasks import job_task_router
from worker.api.jobs import job_router
from worker.api.openapi import Documented, document
from worker.api.security_headers import SecurityHeaders
from worker.api.slots import Slots
from worker.api.watch import watch_router
from worker.observe.http import add_metrics
from worker.observe.logs import redact_access_log, use_format_for_api
from worker.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    use_format_for_api(settings.log_format)
    redact_access_log()
    connections = Connections(settings)
    hub = ChangeHub(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        probes = app.state.metrics.peers.probes = connections.peer_probes()
        yield
        for probe in probes:
            probe.stop()
        await hub.close()
        connections.close()

    app = FastAPI(
        lifespan=lifespan,
        # FastAPI's documentation pages load their scripts from a CDN: off unless asked for.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        title="jobtask read API",
        version="1.0",
        description="SpaceONE cost-analysis JobTask and Job get / list / stat over the worker's store, "
        "and a Job's cancel.",
    )
    app.state.settings = settings
    app.state.connections = connections
    app.state.change_hub = hub
    app.state.read_slots = Slots("lists, stats or histories", settings.api_reads_per_token,
                                 "JOBTASK_API_READS_PER_TOKEN")
    app.state.watch_slots = Slots("watch streams", settings.watch_streams_per_token, "JOBTASK_WATCH_STREAMS_PER_TOKEN",
                                  total=settings.watch_streams, total_setting="JOBTASK_WATCH_STREAMS", retry_after=5)
    app.state.auth_throttle = AuthThrottle(settings.api_auth_failures, settings.api_auth_failures_per_minute)
    install_error_handlers(app)
    documented = Documented()
    app.include_router(job_task_router(documented))
    app.include_router(job_router(documented))
    app.include_router(scope.router)
    app.include_router(watch_router(hub))
    app.include_router(health.router)
    app.include_router(console.console_router())
    app.add_middleware(BodyLimit)
    app.state.metrics = add_metrics(app, connections.db, settings.api_metrics_token)
    app.add_middleware(SecurityHeaders)
    app.openapi = lambda: document(app, [documented])  # type: ignore[method-assign]  # FastAPI's way to replace the document
    return app

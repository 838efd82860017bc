"""The API's metrics: its requests, and the tasks and jobs gauges, on ``GET /metrics``.

``jobtask_http_requests_total{path, code}`` and
``jobtask_http_request_seconds{path}`` label a request by its route's
template (``/cost-analysis/v1/job-task/get``), never the raw URL, so the
number of series stays bounded; a request no route matched is ``unmatched``.
The middleware is plain ASGI, so streamed responses pass through untouched.
``/metrics`` holds counts across every tenant (the tasks and jobs gauges), so
it answers only to ``Authorization: Bearer <JOBTASK_API_METRICS_TOKEN>``
(Prometheus' ``authorization`` of a scrape config), a token of its own that
reads no domain; without that setting the API does not serve it (404).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from worker.contract.errors import ERROR_AUTHENTICATE_FAILURE
from worker.observe.gauges import StoreGauges
from worker.observe.metrics import HTTP_SECONDS_BUCKETS, process_registry
from worker.observe.peers import PeerGauges

UNMATCHED = "unmatched"


class HttpMetrics:
    """The API process's registry: requests, their time, the store gauges, and whether the peers answer.

    ``peers`` has no probes until the app starts them (``worker.api.server``'s lifespan).
    """

    def __init__(self, db_of: Callable[[], Any]) -> None:
        self.registry = process_registry()
        self.requests = Counter("jobtask_http_requests", "HTTP requests, by route and status code",
                                ["path", "code"], registry=self.registry)
        self.seconds = Histogram("jobtask_http_request_seconds", "Time to answer an HTTP request, by route",
                                 ["path"], buckets=HTTP_SECONDS_BUCKETS, registry=self.registry)
        self.peers = PeerGauges([])
        self.registry.register(self.peers)
        self.registry.register(StoreGauges(db_of, available=lambda: self.peers.answering("store")))

    def observe(self, path: str, code: int, seconds: float) -> None:
        self.requests.labels(path, str(code)).inc()
        self.seconds.labels(path).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}  # what the server answers if the app raises before starting

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(path, status["code"], time.perf_counter() - started)


def scrape_allowed(authorization: str | None, token: str) -> bool:
    """Whether ``authorization`` is ``Bearer <token>``, compared in constant time."""
    scheme, _, sent = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


def add_metrics(app, db_of: Callable[[], Any], token: str | None) -> HttpMetrics:
    """Count ``app``'s requests, and serve ``GET /metrics`` to ``token``'s bearer when there is one (FastAPI app)."""
    from fastapi.concurrency import run_in_threadpool  # noqa: PLC0415 - only the API needs it
    from fastapi.responses import JSONResponse, Response  # noqa: PLC0415

    metrics = HttpMetrics(db_of)
    app.add_middleware(RequestMetrics, metrics=metrics)
    if token is None:
        return metrics

    async def prometheus_metrics(request) -> Response:
        if not scrape_allowed(request.headers.get("authorization"), token):
            refused = ERROR_AUTHENTICATE_FAILURE(message="send 'Authorization: Bearer <JOBTASK_API_METRICS_TOKEN>'")
            return JSONResponse({"detail": refused.detail()}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await run_in_threadpool(metrics.exposition)  # the store gauges may read
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # A plain route (the request as its one argument): no parameters to document, and none in /openapi.json.
    app.router.add_route("/metrics", prometheus_metrics, methods=["GET"], include_in_schema=False)
    return metrics

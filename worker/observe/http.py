"""The API's metrics: its requests, and the tasks and jobs gauges, on ``GET /metrics``.

``jobtask_http_requests_total{path, code}`` and
``jobtask_http_request_seconds{path}`` label a request by its route's
template (``/cost-analysis/v1/job-task/get``), never the raw URL, so the
number of series stays bounded; a request no route matched is ``unmatched``.
The middleware is plain ASGI, so streamed responses pass through untouched.
``/metrics`` asks for no token, like any Prometheus endpoint: it holds counts,
never a domain's data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

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


def add_metrics(app, db_of: Callable[[], Any]) -> HttpMetrics:
    """Count ``app``'s requests and serve ``GET /metrics`` (FastAPI app)."""
    from fastapi.concurrency import run_in_threadpool  # noqa: PLC0415 - only the API needs it
    from fastapi.responses import Response  # noqa: PLC0415

    metrics = HttpMetrics(db_of)
    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body = await run_in_threadpool(metrics.exposition)  # the store gauges may read
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics

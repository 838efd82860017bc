"""``POST {prefix}/get|list|stat`` for one ``Resource``: the three reads on a router, written once.

The reads are ``worker.read.reads``' (shared with the CLI and the tests):
the caller's scope from its token, the body as JSON, the read in a thread,
a list or stat within its token's read slots (``slots``).
Each router of a resource (``job_tasks``, ``jobs``) adds them with
``add_reads``; a new resource is served the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from worker.api.deps import AppConnections, AppSettings, CallerScope, CallerToken, JsonBody
from worker.api.models import response_models
from worker.api.openapi import Documented
from worker.api.slots import Slots
from worker.read.models import request_models
from worker.read.reads import get_item, list_items, stat_items
from worker.read.resource import Resource

READ_ERRORS = {"404": "ERROR_NOT_FOUND", "504": "ERROR_QUERY_TIMEOUT"}


def endpoint(read: Callable[..., dict[str, Any]], expensive: bool = True) -> Callable:
    """A route that runs ``read(db, scope, body, settings)`` in a thread and answers its dict.

    An ``expensive`` read (one that may scan: list, stat, history) holds one of
    its token's read slots while it runs (``worker.api.slots``).
    """

    async def route(request: Request, scope: CallerScope, token: CallerToken, body: JsonBody,
                    settings: AppSettings, connections: AppConnections) -> JSONResponse:
        slots: Slots = request.app.state.read_slots
        with slots.held(token) if expensive else nullcontext():
            return JSONResponse(await run_in_threadpool(read, connections.db(), scope, body, settings))

    return route


def add_reads(router: APIRouter, resource: Resource, documented: Documented) -> None:
    """get, list and stat of ``resource`` on ``router``, described by its request and response models."""
    requests, responses = request_models(resource), response_models(resource)
    name = router.prefix.rsplit("/", 1)[-1].replace("-", "_")
    routes = (
        ("get", get_item, requests.get, responses.get, f"Get one {resource.name}"),
        ("list", list_items, requests.list, responses.list, f"List {resource.plural}"),
        ("stat", stat_items, requests.stat, responses.stat, f"Statistics of {resource.plural}"),
    )
    for method, read, request_model, response_model, summary in routes:
        router.add_api_route(
            f"/{method}",
            endpoint(lambda db, scope, body, settings, read=read: read(resource, db, scope, body, settings),
                     expensive=method != "get"),
            methods=["POST"], name=f"{name}_{method}", summary=summary,
            openapi_extra=documented.post(request_model, response_model, READ_ERRORS),
        )

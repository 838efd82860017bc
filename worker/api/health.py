"""``GET /healthz``: whether the store and the broker answer, each said apart, within ``HEALTH_LIMIT``.

Both are asked at once, each in a thread of its own and bounded by its
driver (the store's ping by pymongo's timeout, the broker's by its socket
timeout: ``CHECK_SECONDS``). A check that has still not answered at
``HEALTH_LIMIT`` is reported as ``no answer within 2 s`` and the answer goes
out all the same: a peer gone silent never makes ``/healthz`` hang with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from worker.api.connections import BROKER_TIMEOUT
from worker.api.deps import AppConnections
from worker.store.client import ping

HEALTH_LIMIT = 2.0  # seconds: /healthz answers within this, whatever the peers do
CHECK_SECONDS = BROKER_TIMEOUT  # each driver gives up after this, well within the limit

router = APIRouter()
# The checks' own threads: a check abandoned at the limit (its driver ends it
# soon after) never holds a thread the API's requests need.
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jobtask-healthz")


@router.get("/healthz", summary="Store and broker reachable")
async def healthz(connections: AppConnections) -> JSONResponse:
    store, broker = await asyncio.gather(
        _within(lambda: ping(connections.db(), CHECK_SECONDS)),
        _within(lambda: connections.broker().ping()),
    )
    checks = {"store": store, "broker": broker}
    healthy = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _within(check: Callable[[], Any]) -> str:
    future = asyncio.get_running_loop().run_in_executor(_checks, _check, check)
    try:
        return await asyncio.wait_for(future, HEALTH_LIMIT)
    except TimeoutError:
        return f"no answer within {HEALTH_LIMIT:g} s"


def _check(ping_peer: Callable[[], Any]) -> str:
    try:
        ping_peer()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"unreachable ({type(exc).__name__})"

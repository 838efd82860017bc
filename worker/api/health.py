"""``GET /healthz``: whether the store and the broker answer, each said apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from worker.api.deps import AppConnections

router = APIRouter()


@router.get("/healthz", summary="Store and broker reachable")
async def healthz(connections: AppConnections) -> JSONResponse:
    checks = {
        "store": await run_in_threadpool(_check, lambda: connections.db().client.admin.command("ping")),
        "broker": await run_in_threadpool(_check, lambda: connections.broker().ping()),
    }
    healthy = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


def _check(ping: Callable[[], Any]) -> str:
    try:
        ping()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"unreachable ({type(exc).__name__})"

"""``GET /cost-analysis/v1/job-task/watch``: stored changes as Server-Sent Events.

Each change of a JobTask or Job the caller may read arrives as one event:
``event: job_task`` or ``event: job``, ``data:`` the object as ``get``
returns it, ``id:`` the change's entry in the stream (``worker.api.hub``
reads it; the worker writes it after each batch). Optional query
parameters ``job_id`` and ``status`` narrow what arrives.

The token comes as everywhere, as ``Authorization: Bearer``, and only so:
never in the URL, which proxies and access logs keep (the console reads the
stream with ``fetch``, which sends headers, rather than EventSource, which
cannot). A client that reconnects with ``Last-Event-ID`` (the header, or the
``last_event_id`` parameter) gets what it missed, or ``event: reset`` when
that is no longer held: reload what you show. A reset carries the id to
resume from, so the browser's next reconnect does not ask again. The stream
starts with that id too, and sends a comment every
``JOBTASK_WATCH_HEARTBEAT`` seconds so proxies keep an idle one open.
A token keeps at most ``JOBTASK_WATCH_STREAMS_PER_TOKEN`` streams open, the
API ``JOBTASK_WATCH_STREAMS`` in all (``slots``); one more is a 429.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from starlette.background import BackgroundTask

from worker.api.deps import app_settings, authenticate, bearer_token
from worker.api.hub import ChangeHub, Start, Watcher
from worker.api.job_tasks import PREFIX
from worker.api.openapi import BEARER
from worker.api.slots import Slots
from worker.contract.changes import RESET, Change, entry_id_key
from worker.contract.errors import ERROR_INVALID_PARAMETER, ERROR_WATCH_UNAVAILABLE
from worker.contract.jobs import JOB_STATUSES
from worker.contract.lifecycle import STATUSES

WATCHED_STATUSES = tuple(dict.fromkeys((*STATUSES, *JOB_STATUSES)))
RETRY_MS = 2_000  # what a browser waits before it reconnects a dropped stream


def watch_router(hub: ChangeHub) -> APIRouter:
    """``GET {PREFIX}/watch``, fed by ``hub`` (which the app closes when it stops)."""
    router = APIRouter(prefix=PREFIX)

    async def watch(
        request: Request,
        job_id: str | None = Query(None, description="Only this Job and its JobTasks"),
        status: str | None = Query(None, description="Only objects now in this status"),
        last_event_id: str | None = Query(None, description="Resume after this event id, like the "
                                             "Last-Event-ID header"),
    ) -> StreamingResponse:
        settings = app_settings(request)
        authorization = request.headers.get("authorization")
        scope = authenticate(request, authorization)
        if status is not None and status not in WATCHED_STATUSES:
            raise ERROR_INVALID_PARAMETER(key="status", reason=f"one of {', '.join(WATCHED_STATUSES)}")
        resume = request.headers.get("last-event-id") or last_event_id
        watcher = Watcher(scope, job_id or None, status)
        if not settings.broker_url:
            raise ERROR_WATCH_UNAVAILABLE(reason="JOBTASK_BROKER_URL is not set")
        slots: Slots = request.app.state.watch_slots
        release = slots.acquire(bearer_token(authorization))  # given back when the stream ends, however
        try:
            start = await hub.register(watcher, resume.strip() if resume else None)
        except (RedisError, OSError) as exc:
            release()
            raise ERROR_WATCH_UNAVAILABLE(reason=type(exc).__name__) from None
        return StreamingResponse(
            _events(hub, watcher, start, settings.watch_heartbeat, release),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(release),  # also when the client left before the stream began
        )

    router.add_api_route(
        "/watch",
        watch,
        methods=["GET"],
        name="job_task_watch",
        summary="Stored changes of JobTasks and Jobs, as Server-Sent Events",
        response_class=StreamingResponse,
        responses={
            200: {"description": "An endless text/event-stream: events job_task, job and reset",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            401: {"description": "ERROR_AUTHENTICATE_FAILURE"},
            429: {"description": "ERROR_TOO_MANY_REQUESTS: the token's or the API's streams are at their "
                                 "limit (JOBTASK_WATCH_STREAMS_PER_TOKEN, JOBTASK_WATCH_STREAMS)"},
            503: {"description": "ERROR_WATCH_UNAVAILABLE"},
        },
        openapi_extra={"security": BEARER},
    )
    return router


async def _events(hub: ChangeHub, watcher: Watcher, start: Start, heartbeat: float,
                  release: Callable[[], None]) -> AsyncIterator[str]:
    """The event stream of one watcher, until the client goes or the API stops."""
    try:
        yield f"retry: {RETRY_MS}\n"
        sent = start.position
        if start.reset:
            yield _event(Change(sent, RESET))
        else:
            yield f"id: {sent}\n\n"  # sets the client's Last-Event-ID, dispatches nothing
        if start.replay_after is not None:
            async for missed in hub.replay(start.replay_after, start.position):
                if watcher.wants(missed):
                    yield _event(missed)
        while True:
            try:
                change = await asyncio.wait_for(watcher.queue.get(), heartbeat)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if change is None:
                return  # the API is stopping
            if watcher.take_overflow():
                sent = hub.position
                yield _event(Change(sent, RESET))
                continue
            if entry_id_key(change.entry_id) <= entry_id_key(sent) and change.kind != RESET:
                continue  # replayed already, or before this watcher's start
            sent = max(sent, change.entry_id, key=entry_id_key)
            yield _event(change)
    finally:
        hub.unregister(watcher)
        release()


def _event(change: Change) -> str:
    data = "{}" if change.kind == RESET else change.data
    return f"id: {change.entry_id}\nevent: {change.kind}\ndata: {data}\n\n"

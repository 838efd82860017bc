"""What routes take from a request, written once: the app's settings and clients, the caller's scope, the body.

The token alone decides the caller's domain, workspaces and permissions
(``JOBTASK_API_TOKENS``), and failed authentications are counted per client
address (``auth_throttle``); a body is parsed as JSON here and validated by the
read or command it is for, against the same request models that
``/openapi.json`` describes (``worker.api.openapi``), so that SpaceONE's
error codes name what is wrong.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import Depends, Request

from worker.api.auth_throttle import AuthThrottle
from worker.api.body_limit import MAX_BODY_BYTES
from worker.api.connections import Connections
from worker.contract.errors import (
    ERROR_AUTHENTICATE_FAILURE,
    ERROR_INVALID_PARAMETER,
    ERROR_PERMISSION_DENIED,
    ERROR_REQUEST_TOO_LARGE,
    CodedError,
)
from worker.read.query import Scope
from worker.settings import Settings


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 without one."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ERROR_AUTHENTICATE_FAILURE(message="send 'Authorization: Bearer <token>'")
    return token


def token_scope(authorization: str | None, settings: Settings) -> Scope:
    """The scope of a bearer token; 401 without a known token, 403 if it may read nothing."""
    token = bearer_token(authorization)
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
    return Scope(found.domain_id, workspaces, tuple(found.permissions))


def parse_body(raw: bytes) -> Any:
    """The JSON body; an empty one is ``{}``, a malformed one a coded 400."""
    if len(raw) > MAX_BODY_BYTES:  # BodyLimit refuses it before; a body read another way is held to it too
        raise ERROR_REQUEST_TOO_LARGE(limit=MAX_BODY_BYTES)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise ERROR_INVALID_PARAMETER(key="body", reason=f"malformed JSON ({reason})") from None


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def app_connections(request: Request) -> Connections:
    connections: Connections = request.app.state.connections
    return connections


def authenticate(request: Request, authorization: str | None) -> Scope:
    """``token_scope``, with failures counted per client address and refused past their limit (``auth_throttle``)."""
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else "unknown"
    throttle.check(address)
    try:
        return token_scope(authorization, app_settings(request))
    except CodedError as error:
        if error.code == ERROR_AUTHENTICATE_FAILURE.code:
            throttle.failed(address)
        raise


def caller_scope(request: Request) -> Scope:
    """The caller's scope, from ``Authorization: Bearer <token>`` (documented as the bearer scheme)."""
    return authenticate(request, request.headers.get("authorization"))


def caller_token(request: Request) -> str:
    """The caller's token itself, which the per-token limits count by (after ``caller_scope`` checked it)."""
    return bearer_token(request.headers.get("authorization"))


async def json_body(request: Request) -> Any:
    return parse_body(await request.body())


AppSettings = Annotated[Settings, Depends(app_settings)]
AppConnections = Annotated[Connections, Depends(app_connections)]
CallerScope = Annotated[Scope, Depends(caller_scope)]
CallerToken = Annotated[str, Depends(caller_token)]
JsonBody = Annotated[Any, Depends(json_body)]

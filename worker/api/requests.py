"""What every route does first with a request: the caller's scope from its token, its body as JSON.

The token alone decides the caller's domain, workspaces and permissions
(``JOBTASK_API_TOKENS``); a body is parsed here and validated by the read
functions against their models.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from worker.contract.errors import ERROR_AUTHENTICATE_FAILURE, ERROR_INVALID_PARAMETER, ERROR_PERMISSION_DENIED
from worker.read.reads import Scope
from worker.settings import Settings

MAX_BODY_BYTES = 1_000_000


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
    return Scope(found.domain_id, workspaces, tuple(found.permissions))


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

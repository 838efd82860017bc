"""Security headers on every answer of the API, errors and streams included.

Every answer says ``X-Content-Type-Options: nosniff`` (a JSON body is never
run as a script), ``X-Frame-Options: DENY`` and ``Referrer-Policy:
no-referrer``, and carries a Content-Security-Policy: for JSON and streams
one that allows nothing (``default-src 'none'; frame-ancestors 'none'``);
the console sends its own (``worker.api.console``), which is kept; the
documentation pages, when ``JOBTASK_API_DOCS`` turns them on, one that
allows the scripts FastAPI loads for them from its CDN and nothing else.
Plain ASGI, so streamed answers pass through untouched.
"""

from __future__ import annotations

from typing import Any

from worker.api.middleware import HttpMiddleware

NOTHING = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs (Swagger UI) and /redoc pages: their scripts and styles from jsDelivr, one inline
# script that starts them, the API's own /openapi.json.
DOCS = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
ALWAYS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}


class SecurityHeaders(HttpMiddleware):
    """ASGI middleware: adds the headers above where the answer did not set them itself."""

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        policy = DOCS if scope["path"].startswith(DOCS_PATHS) else NOTHING

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                wanted = {**ALWAYS, b"content-security-policy": policy.encode()}
                headers += [(name, value) for name, value in wanted.items() if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

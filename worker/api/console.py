"""The operators' console: ``GET /console`` serves a static page that reads the API from the browser.

The page is three files shipped in the package (``worker/api/static/``:
``index.html``, ``console.js``, ``console.css``) with no build step and
nothing loaded from elsewhere, so the Content-Security-Policy allows this
origin only. Only the files in that directory are served, by name; any other
name is the API's coded 404. The page keeps its token in the tab's
``sessionStorage`` and sends it as a bearer header; see the files themselves
for what it shows.
"""

from __future__ import annotations

import logging
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from worker.contract.errors import ERROR_UNSUPPORTED_API

LOGGER = logging.getLogger("jobtask.api")

CONSOLE_PATH = "/console"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Everything comes from this origin; no inline script, no framing (clickjacking
# of the Cancel button), no referrer (the watch stream's URL carries a token).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def console_files() -> dict[str, bytes]:
    """The page's files by name, read once: they are part of the installed package."""
    directory = resources.files("worker.api") / "static"
    if not directory.is_dir():
        # An install without the package data still serves the API.
        LOGGER.warning("the console's files are not installed; GET %s answers 404", CONSOLE_PATH)
        return {}
    return {
        entry.name: entry.read_bytes()
        for entry in directory.iterdir()
        if entry.is_file() and "." + entry.name.rsplit(".", 1)[-1] in MEDIA_TYPES
    }


def console_router() -> APIRouter:
    """``GET /console`` (the page) and ``GET /console/{file}`` (its script and style)."""
    files = console_files()
    router = APIRouter()

    def serve(name: str, request: Request) -> Response:
        content = files.get(name)
        if content is None:
            raise ERROR_UNSUPPORTED_API(method=request.method, path=request.url.path)
        media_type = MEDIA_TYPES["." + name.rsplit(".", 1)[-1]]
        return Response(content, media_type=media_type, headers=SECURITY_HEADERS)

    @router.get(CONSOLE_PATH, include_in_schema=False)
    async def console_page(request: Request) -> Response:
        return serve("index.html", request)

    @router.get(CONSOLE_PATH + "/{name}", include_in_schema=False)
    async def console_file(name: str, request: Request) -> Response:
        return serve(name, request)

    return router


"""Request bodies capped before they are read: ``413 ERROR_REQUEST_TOO_LARGE`` past ``MAX_BODY_BYTES``.

A body whose ``Content-Length`` says it is larger is refused at once, before
one byte of it is read; any other (chunked, or a length that lies) is
counted as it arrives and refused as soon as it passes the cap, so the API
never holds more than the cap of one body. The answer closes the
connection (the rest of the body is never read into the app). Plain ASGI, outside the
routes, so it holds for every path.
"""

from __future__ import annotations

from typing import Any

from worker.api.errors import error_response
from worker.api.middleware import HttpMiddleware
from worker.contract.errors import ERROR_REQUEST_TOO_LARGE, CodedError

# The largest body a request may have: a query is a few kilobytes; a megabyte is generous.
MAX_BODY_BYTES = 1_000_000


class BodyLimit(HttpMiddleware):
    """ASGI middleware: refuses a body larger than ``limit`` bytes, on its length or as it streams."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        overflowed = False

        async def counted() -> Any:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the route's read of the body: the app's handler answers it (413).
                    overflowed = True
                    raise self.too_large()
            return message

        async def closing(message: Any) -> None:
            if overflowed and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, counted, closing)

    def too_large(self) -> CodedError:
        return ERROR_REQUEST_TOO_LARGE(limit=self.limit)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        response = error_response(self.too_large(), headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Any) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

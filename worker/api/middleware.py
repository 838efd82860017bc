"""What the API's own ASGI middlewares share: they act on HTTP requests, anything else passes through."""

from __future__ import annotations

from typing import Any


class HttpMiddleware:
    """An ASGI middleware whose ``http`` sees each HTTP request; lifespan and other scopes go straight on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError

"""The HTTP face: the read API (``uvicorn worker.api:app``).

``server`` builds the FastAPI app and its routes; ``models`` describes the
responses for ``/openapi.json``; ``history`` serves a task's deliveries,
``watch`` the change stream as Server-Sent Events, read by ``hub``. May import: ``worker.read``,
``worker.contract``, ``worker.settings``.
"""

from worker.api.server import app, create_app

__all__ = ["app", "create_app"]

"""The HTTP face: the read API (``uvicorn worker.api:app``).

``server`` builds the FastAPI app and its routes (``requests`` reads a
request's token and body; ``scope``, ``job_cancel`` and ``history`` are
routes of their own; ``watch`` serves the change stream as Server-Sent
Events, read from Redis by ``hub``); ``models`` describes the responses for
``/openapi.json``. May import: ``worker.read``, ``worker.contract``,
``worker.client`` (a Job's cancel), ``worker.observe`` (metrics, log
format), ``worker.settings``.
"""

from worker.api.server import app, create_app

__all__ = ["app", "create_app"]

"""The HTTP face: the read API (``uvicorn worker.api:app``).

``app`` is built on first use from the environment's settings, so that
importing the package builds nothing; ``create_app(settings)`` builds
another (tests, embedding). ``worker.api.server`` says how it is put together.
May import: ``worker.commands``, ``worker.read``, ``worker.store``,
``worker.contract``, ``worker.client`` (a Job's cancel), ``worker.observe``
(metrics, log format), ``worker.settings``.
"""

from __future__ import annotations

from typing import Any

from worker.api.server import create_app

__all__ = ["app", "create_app"]


def __getattr__(name: str) -> Any:
    """The app of ``create_app()``, made once, when uvicorn (or anyone) first asks for it."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    built = globals().get("_app")
    if built is None:
        built = globals()["_app"] = create_app()
    return built

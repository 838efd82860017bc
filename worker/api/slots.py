"""Slots: at most so many requests of one kind in progress per token, and in all; more answer 429 at once.

One more than a limit allows is refused with ``ERROR_TOO_MANY_REQUESTS``
(429, with ``Retry-After``) rather than left to wait, so a client backs off
instead of piling up. Only tokens with something in progress are
remembered, so memory is bounded by the configured tokens. The limits:

- **reads**: a list, a stat or a history may scan much of a domain and the
  store runs each in a thread of its own, so a token holds at most
  ``JOBTASK_API_READS_PER_TOKEN`` (default 4: the console sends three at
  once) such reads at once; a get, read by its id, takes none;
- **watch streams**: each holds a connection and a queue for as long as it
  is open, so a token holds at most ``JOBTASK_WATCH_STREAMS_PER_TOKEN``
  (default 10) and the API ``JOBTASK_WATCH_STREAMS`` (default 500) in all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from worker.contract.errors import ERROR_TOO_MANY_REQUESTS


class Slots:
    """Counts what is in progress per token, thread-safe (reads run in threads, streams in the loop)."""

    def __init__(self, what: str, per_token: int, setting: str, total: int | None = None,
                 total_setting: str = "", retry_after: int = 1) -> None:
        self.what, self.per_token, self.setting = what, per_token, setting
        self.total, self.total_setting = total, total_setting
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._all = 0

    def in_progress(self, token: str | None = None) -> int:
        """What ``token`` holds now (all tokens' with none)."""
        with self._lock:
            return self._all if token is None else self._held.get(token, 0)

    def acquire(self, token: str) -> Callable[[], None]:
        """One slot of ``token``, and the function that gives it back (once, however often called)."""
        with self._lock:
            held = self._held.get(token, 0)
            if held >= self.per_token:
                raise ERROR_TOO_MANY_REQUESTS(
                    reason=f"this token has {held} {self.what} in progress, the most it may ({self.setting})",
                    retry_after=self.retry_after)
            if self.total is not None and self._all >= self.total:
                raise ERROR_TOO_MANY_REQUESTS(
                    reason=f"the API has {self._all} {self.what} in progress, the most it serves "
                    f"({self.total_setting})", retry_after=self.retry_after)
            self._held[token] = held + 1
            self._all += 1
        given_back = threading.Event()

        def release() -> None:
            with self._lock:
                if given_back.is_set():
                    return
                given_back.set()
                self._all -= 1
                left = self._held[token] - 1
                if left:
                    self._held[token] = left
                else:
                    del self._held[token]

        return release

    @contextmanager
    def held(self, token: str) -> Iterator[None]:
        """One slot of ``token`` while the block runs."""
        release = self.acquire(token)
        try:
            yield
        finally:
            release()

"""Retrying store work through an outage: exponential backoff with full jitter.

A batch is retried whole: every write in it is idempotent, so running it again
after a connection error can neither lose nor double an event. When the
budget is spent the caller hands the messages back to the broker, which
redelivers them; they are never acknowledged unapplied.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pymongo.errors import ConnectionFailure, OperationFailure, WTimeoutError

from worker.store import TRANSIENT_WRITE_ERRORS

logger = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store stayed unreachable for the whole retry budget."""


class BatchNotSettled(Exception):
    """Concurrent writers kept a batch from settling; worth another attempt."""


def is_transient(exc: BaseException) -> bool:
    """Errors that say "try again later", not "this input is wrong"."""
    if isinstance(exc, (ConnectionFailure, WTimeoutError, BatchNotSettled)):
        return True
    if isinstance(exc, OperationFailure):
        labels = (exc.details or {}).get("errorLabels", [])
        return exc.code in TRANSIENT_WRITE_ERRORS or "RetryableWriteError" in labels
    return False


@dataclass(frozen=True)
class Backoff:
    """Delays of base * 2**n capped at ``cap``, each drawn uniformly below it.

    base: first delay's ceiling in seconds (JOBTASK_STORE_RETRY_BASE, 0.2).
    cap: longest single delay (JOBTASK_STORE_RETRY_CAP, 10).
    budget: total time before giving up (JOBTASK_STORE_RETRY_BUDGET, 120).
    """

    base: float = 0.2
    cap: float = 10.0
    budget: float = 120.0

    def delay(self, attempt: int, rng: random.Random = random) -> float:
        return rng.uniform(0, min(self.cap, self.base * 2**attempt))


def retry_transient(
    work: Callable[[], T],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``work`` until it succeeds, a non-transient error, or the budget is spent."""
    deadline = clock() + backoff.budget
    attempt = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.delay(attempt)
            if clock() + delay > deadline:
                raise StoreUnavailable(f"store unavailable for {backoff.budget:.0f}s: {exc}") from exc
            logger.warning("store unavailable (%s); retry %d in %.2fs", exc, attempt + 1, delay)
            sleep(delay)
            attempt += 1

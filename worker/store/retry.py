"""Store errors told apart, and retried through an outage with backoff and jitter.

Every write of a batch is idempotent, so the whole batch is retried after
any error that says "try again later": a lost connection, a failover, a write
whose write concern was not met (it may be rolled back, so it does not count
as done). ``is_transient`` is the one place that decides, for every path:
a bulk write's error is transient when any error inside it is. When the
budget is spent the caller hands the messages back to the broker, which
redelivers them; they are never acknowledged unapplied.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from collections.abc import Collection as Codes
from dataclasses import dataclass
from typing import Any, TypeVar

from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    WriteConcernError,
    WTimeoutError,
)

from worker.store.collections import DUPLICATE_KEY

logger = logging.getLogger(__name__)
T = TypeVar("T")

# MongoDB error codes that a later attempt can get past: network and
# failover errors, write conflicts, time limits.
TRANSIENT_CODES = frozenset({
    6,      # HostUnreachable
    7,      # HostNotFound
    24,     # LockTimeout
    50,     # MaxTimeMSExpired
    64,     # WriteConcernFailed
    89,     # NetworkTimeout
    91,     # ShutdownInProgress
    112,    # WriteConflict
    189,    # PrimarySteppedDown
    262,    # ExceededTimeLimit
    9001,   # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
})
TRANSIENT_LABELS = frozenset({"RetryableWriteError", "TransientTransactionError"})


class StoreUnavailable(Exception):
    """The store stayed unreachable for the whole retry budget."""


class BatchNotSettled(Exception):
    """Concurrent writers kept a batch from settling; worth another attempt."""


class WriteNotDurable(Exception):
    """A write's concern was not met (or it failed in passing): it may not last; retry it."""


def _bulk_is_transient(details: Mapping[str, Any]) -> bool:
    if details.get("writeConcernErrors"):
        return True
    return any(error.get("code") in TRANSIENT_CODES for error in details.get("writeErrors", []))


def is_transient(exc: BaseException) -> bool:
    """Errors that say "try again later", not "this input is wrong"."""
    if isinstance(exc, (ConnectionFailure, WTimeoutError, WriteConcernError, BatchNotSettled,
                        WriteNotDurable)):
        return True
    if isinstance(exc, BulkWriteError):
        return _bulk_is_transient(exc.details or {})
    if isinstance(exc, OperationFailure):
        labels = set((exc.details or {}).get("errorLabels", []))
        return exc.code in TRANSIENT_CODES or bool(labels & TRANSIENT_LABELS)
    return False


def check_bulk_errors(exc: BulkWriteError, tolerated: Codes[int]) -> list[dict]:
    """The bulk's write errors whose codes the caller expects; raises for anything else.

    A write concern that was not met, or a transient error inside the bulk,
    raises ``WriteNotDurable`` so the batch is retried whole (its writes are
    idempotent); any other unexpected error is raised as it is.
    """
    details = exc.details or {}
    if _bulk_is_transient(details):
        raise WriteNotDurable(
            f"bulk write not durable: {details.get('writeConcernErrors') or details.get('writeErrors')}"
        ) from exc
    errors = details.get("writeErrors", [])
    if any(error.get("code") not in tolerated for error in errors):
        raise exc
    return errors


def insert_new(collection: Collection, records: list[dict]) -> list[dict]:
    """Insert, skipping records already there (a retried batch); returns the skipped ones."""
    if not records:
        return []
    try:
        collection.insert_many(records, ordered=False)
    except BulkWriteError as exc:
        return [records[error["index"]] for error in check_bulk_errors(exc, tolerated={DUPLICATE_KEY})]
    return []


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

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0, min(self.cap, self.base * 2**attempt))


def retry_transient(
    work: Callable[[], T],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    deadline: float | None = None,
) -> T:
    """Run ``work`` until it succeeds, a non-transient error, or the budget is spent.

    ``deadline`` (on ``clock``) ends the retries earlier than the budget would.
    """
    end = clock() + backoff.budget
    if deadline is not None:
        end = min(end, deadline)
    attempt = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.delay(attempt)
            if clock() + delay > end:
                raise StoreUnavailable(f"store unavailable for {backoff.budget:.0f}s: {exc}") from exc
            logger.warning("store unavailable (%s); retry %d in %.2fs", exc, attempt + 1, delay)
            sleep(delay)
            attempt += 1

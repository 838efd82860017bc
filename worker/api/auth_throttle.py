"""Failed authentications slowed per client address: a token bucket per address, in bounded memory.

Each address may fail ``JOBTASK_API_AUTH_FAILURES`` authentications (default
20) in a burst; the bucket refills at ``JOBTASK_API_AUTH_FAILURES_PER_MINUTE``
(default 30). An address whose bucket is empty gets ``ERROR_TOO_MANY_REQUESTS``
(429, with ``Retry-After``) before its token is even compared, so guessing
from one address runs at the refill rate, whatever it sends. Success costs
nothing and refunds nothing. At most ``MAX_ADDRESSES`` addresses are
remembered, the least recently failed forgotten first; a forgotten address
starts again with a full bucket, which is what a new address gets anyway.

The address is the connection's (``request.client``); behind a reverse
proxy, run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so
that it is the client's, not the proxy's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from worker.contract.errors import ERROR_TOO_MANY_REQUESTS

MAX_ADDRESSES = 10_000


class AuthThrottle:
    """Per address: how many failures it may still make now."""

    def __init__(self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.per_second = per_minute / 60
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.per_second)

    def check(self, address: str) -> None:
        """``ERROR_TOO_MANY_REQUESTS`` if ``address`` has no failure left to spend now."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(address, now)
        if tokens < 1:
            wait = math.ceil((1 - tokens) / self.per_second) if self.per_second else 60
            raise ERROR_TOO_MANY_REQUESTS(
                reason="too many failed authentications from this address", retry_after=wait)

    def failed(self, address: str) -> None:
        """Spend one of ``address``'s failures."""
        with self._lock:
            now = self.clock()
            self._buckets[address] = (max(0.0, self._tokens(address, now) - 1), now)
            self._buckets.move_to_end(address)
            while len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)

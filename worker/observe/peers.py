"""Whether this process reaches the broker and the store, told without waiting on either.

A ``PeerProbe`` per peer makes one round trip every ``interval`` seconds
(a third of JOBTASK_PEER_TIMEOUT, between 1 and 10 s) in a thread of its
own, on a connection of its own whose every wait is bounded by the bound
itself, and notes when the peer last answered. ``PeerGauges`` reads only
those notes, so a scrape never waits on a dead peer:

- ``jobtask_broker_up``, ``jobtask_store_up``: 1 while the last round trip
  answered and did so within the bound, else 0;
- ``jobtask_broker_answer_age_seconds``, ``jobtask_store_answer_age_seconds``:
  seconds since the peer last answered (since the probe started, while it
  never has).

A probe logs one line when its peer stops answering and one when it answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

PEERS = ("broker", "store")


def probe_interval(bound: float) -> float:
    """Seconds between two round trips: a third of the bound, 1 to 10 s."""
    return min(10.0, max(1.0, bound / 3))


class PeerProbe:
    """One peer's round trips (``round_trip`` raises when the peer does not answer) and their last answer."""

    def __init__(self, peer: str, round_trip: Callable[[], Any], bound: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.peer = peer
        self.round_trip = round_trip
        self.bound = bound
        self.interval = probe_interval(bound)
        self.clock = clock
        self.started_at = clock()
        self.answered_at: float | None = None
        self.answering = False
        self._stop = threading.Event()

    def probe(self) -> None:
        """One round trip, noted; never raises."""
        try:
            self.round_trip()
        except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
            if self.answering or self.answered_at is None:
                logger.warning("the %s does not answer (%s: %s)", self.peer, type(exc).__name__, exc)
            self.answering = False
            return
        if not self.answering and self.answered_at is not None:
            logger.info("the %s answers again", self.peer)
        self.answered_at = self.clock()
        self.answering = True

    def age(self) -> float:
        return self.clock() - (self.answered_at if self.answered_at is not None else self.started_at)

    def up(self) -> bool:
        return self.answering and self.age() <= self.bound

    def start(self) -> PeerProbe:
        def run() -> None:
            while True:
                self.probe()
                if self._stop.wait(self.interval):
                    return

        threading.Thread(target=run, name=f"jobtask-probe-{self.peer}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()


class PeerGauges(Collector):
    """``jobtask_{peer}_up`` and ``jobtask_{peer}_answer_age_seconds`` for each probe, from its notes."""

    def __init__(self, probes: list[PeerProbe]) -> None:
        self.probes = list(probes)

    def answering(self, peer: str) -> bool:
        """Whether ``peer`` is up, as far as a probe of it says (True without one: nothing says otherwise)."""
        return all(probe.up() for probe in self.probes if probe.peer == peer)

    def describe(self):
        for peer in PEERS:
            yield GaugeMetricFamily(f"jobtask_{peer}_up", f"Whether the {peer} answers")
            yield GaugeMetricFamily(f"jobtask_{peer}_answer_age_seconds", f"Seconds since the {peer} last answered")

    def collect(self):
        for probe in self.probes:
            yield GaugeMetricFamily(f"jobtask_{probe.peer}_up", f"1 while the {probe.peer} answers this "
                                    f"process's round trips (one every {probe.interval:g} s), within "
                                    f"{probe.bound:g} s (JOBTASK_PEER_TIMEOUT)", value=int(probe.up()))
            yield GaugeMetricFamily(f"jobtask_{probe.peer}_answer_age_seconds",
                                    f"Seconds since the {probe.peer} last answered a round trip",
                                    value=round(probe.age(), 3))

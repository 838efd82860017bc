"""What the peer gauges say, from a probe's notes alone: up within the bound, and the age of the last answer."""

from __future__ import annotations

import socket

from prometheus_client import CollectorRegistry, generate_latest

from worker.observe.peers import PeerGauges, PeerProbe, probe_interval
from worker.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Peer:
    """A round trip that answers or raises, as told."""

    def __init__(self) -> None:
        self.answering = True

    def __call__(self) -> None:
        if not self.answering:
            raise TimeoutError("no answer")


def scraped(probe: PeerProbe) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(PeerGauges([probe]))
    lines = generate_latest(registry).decode().splitlines()
    return {name: float(value) for name, value in (line.split() for line in lines if not line.startswith("#"))}


def test_a_peer_is_up_while_it_answers_within_the_bound():
    clock, peer = Clock(), Peer()
    probe = PeerProbe("broker", peer, bound=30, clock=clock)
    assert scraped(probe) == {"jobtask_broker_up": 0, "jobtask_broker_answer_age_seconds": 0}  # never asked
    probe.probe()
    clock.now += 10
    assert scraped(probe) == {"jobtask_broker_up": 1, "jobtask_broker_answer_age_seconds": 10}
    # Its probe hangs (the thread waits on a silent socket): up no more once the bound has passed.
    clock.now += 25
    assert scraped(probe) == {"jobtask_broker_up": 0, "jobtask_broker_answer_age_seconds": 35}


def test_a_peer_that_refuses_is_down_at_once_and_up_at_its_next_answer():
    clock, peer = Clock(), Peer()
    probe = PeerProbe("store", peer, bound=30, clock=clock)
    probe.probe()
    clock.now += 5
    peer.answering = False
    probe.probe()
    assert scraped(probe) == {"jobtask_store_up": 0, "jobtask_store_answer_age_seconds": 5}
    clock.now += 100
    assert scraped(probe)["jobtask_store_answer_age_seconds"] == 105
    peer.answering = True
    probe.probe()
    assert scraped(probe) == {"jobtask_store_up": 1, "jobtask_store_answer_age_seconds": 0}


def test_every_wait_derives_from_the_peer_timeout():
    settings = load_settings(peer_timeout=9)
    options = settings.redis_options
    assert options["socket_timeout"] == options["socket_connect_timeout"] == options["health_check_interval"] == 9
    keepalive = options["socket_keepalive_options"]
    assert options["socket_keepalive"] and keepalive
    assert keepalive[socket.TCP_KEEPIDLE] + keepalive[socket.TCP_KEEPINTVL] * keepalive[socket.TCP_KEEPCNT] <= 9
    assert settings.store_socket_timeout_ms() == 9000
    assert settings.store_socket_timeout_ms(longest_query_ms=10_000) == 11_000
    assert probe_interval(9) == 3 and probe_interval(300) == 10 and probe_interval(2) == 1

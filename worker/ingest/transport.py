"""Redis transport that cannot lose a message to a worker killed mid-fetch.

kombu's Redis transport takes a message off the queue with BRPOP and only
then, in Python, records it as unacknowledged. A worker killed between the
two (SIGKILL, OOM) loses that message: our crash test caught it about one run
in five. This transport fetches with BLMOVE instead, which atomically moves
the message into an in-flight list owned by the fetching channel; the message
leaves that list only once kombu has recorded it as unacknowledged. Each
channel keeps a liveness key fresh; a sweep (with kombu's own sweep for
expired unacknowledged messages) hands the in-flight lists of dead channels
back to their queues. A message may so come twice, never zero times; the
worker's idempotent updates make twice harmless.

Selected by ``broker_transport`` in ``worker.celery``; the URL stays
``redis://``. Limits: message priorities are not used (every message goes to
the queue's one list), and ``global_keyprefix`` is not supported.
"""

from __future__ import annotations

import logging
import time
import uuid

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

logger = logging.getLogger(__name__)

INFLIGHT = "jobtask:inflight:"
ALIVE = "jobtask:alive:"


class QoS(kombu_redis.QoS):
    def restore_visible(self, start=0, num=10, interval=10):
        super().restore_visible(start=start, num=num, interval=interval)
        if (self._vrestore_count - 1) % (interval or 1) == 0:
            self.channel.reclaim_orphans()


class Channel(kombu_redis.Channel):
    QoS = QoS
    priority_steps = [0]
    #: Seconds a channel may go without refreshing its liveness key before
    #: another worker reclaims its in-flight messages (transport option).
    inflight_alive_ttl = 30
    from_transport_options = kombu_redis.Channel.from_transport_options + ("inflight_alive_ttl",)

    def __init__(self, *args, **kwargs):
        self.owner = uuid.uuid4().hex
        self._refreshed_at = 0.0
        self._fetching_from = None
        self._fetched_queues: set[str] = set()
        self._commands = None
        super().__init__(*args, **kwargs)

    @property
    def commands(self):
        """One client on the channel's pool for our own commands (kombu makes one per call)."""
        if self._commands is None:
            self._commands = self._create_client()
        return self._commands

    def _inflight_key(self, queue: str) -> str:
        return f"{INFLIGHT}{self.owner}:{queue}"

    def _keep_alive(self) -> None:
        now = time.monotonic()
        ttl = max(2, int(self.inflight_alive_ttl))
        if now - self._refreshed_at >= ttl / 3:
            self.commands.set(ALIVE + self.owner, 1, ex=ttl)
            self._refreshed_at = now

    def _brpop_start(self, timeout=None):
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        self._keep_alive()
        queue = queues[0]
        self._fetching_from = queue
        self._fetched_queues.add(queue)
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()
        self.client.connection.send_command(
            "BLMOVE", self._q_for_pri(queue, 0), self._inflight_key(queue), "RIGHT", "LEFT", timeout or 0
        )

    def _brpop_read(self, **options):
        queue = self._fetching_from
        try:
            try:
                item = self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not item:
                self._queue_cycle.rotate(queue)
                raise kombu_redis.Empty()
            self._queue_cycle.rotate(queue)
            try:
                self.connection._deliver(loads(bytes_to_str(item)), queue)
            finally:
                # Now in kombu's unacked hash (or handed back): out of flight.
                self.commands.lrem(self._inflight_key(queue), 1, item)
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def reclaim_orphans(self) -> int:
        """Hand the in-flight lists of channels that stopped refreshing back to their queues."""
        moved = 0
        try:
            with self.conn_or_acquire() as client:
                for key in client.scan_iter(match=INFLIGHT + "*", count=100):
                    name = bytes_to_str(key)
                    owner, _, queue = name[len(INFLIGHT):].partition(":")
                    if owner == self.owner or client.exists(ALIVE + owner):
                        continue
                    while client.lmove(name, self._q_for_pri(queue, 0), "RIGHT", "RIGHT") is not None:
                        moved += 1
            if moved:
                logger.warning("returned %d messages a dead worker had in flight", moved)
        except self.connection_errors:
            logger.warning("could not sweep in-flight messages; will try again", exc_info=True)
        return moved

    def close(self):
        try:
            with self.conn_or_acquire() as client:
                for queue in self._fetched_queues:
                    while client.lmove(self._inflight_key(queue), self._q_for_pri(queue, 0),
                                       "RIGHT", "RIGHT") is not None:
                        pass
                client.delete(ALIVE + self.owner)
        except Exception:
            logger.debug("in-flight cleanup at close failed", exc_info=True)
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel

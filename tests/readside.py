"""Helpers of the read-side tests: datasets driven through the worker, API clients.

Every JobTask the read tests see was produced by events sent with the producer
SDK and applied by a real Celery worker (``tests.harness.Pipeline``); nothing
is written to the store by hand. The dataset is small (a dozen tasks) and
written so each operator's expected answer can be read off the table below.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from tests.harness import Pipeline
from worker.api import create_app
from worker.dev.embedded import EmbeddedStore
from worker.settings import MIN_TOKEN_LENGTH, Settings, load_settings

SEED_DOMAIN = "domain-58010aa2e451"
DOMAIN_A = "domain-a"
DOMAIN_B = "domain-b"

TOKENS = {
    "token-seed": {"domain_id": SEED_DOMAIN},
    "token-a": {"domain_id": DOMAIN_A},
    "token-a-ws1": {"domain_id": DOMAIN_A, "workspace_ids": ["ws-1"]},
    "token-b": {"domain_id": DOMAIN_B},
    "token-nothing": {"domain_id": DOMAIN_A, "workspace_ids": []},
}

# The seed's two examples, field for field as its responses show them.
SEED_GET = {
    "job_task_id": "job-task-3622d860a776",
    "status": "SUCCESS",
    "options": {"month": "202207", "platform": "gcp"},
    "created_count": 1,
    "job_id": "job-85cf2c385252",
    "data_source_id": "ds-c96609f5afeb",
    "domain_id": SEED_DOMAIN,
    "created_at": "2022-07-17T16:00:08.266Z",
    "started_at": "2022-07-17T16:01:28.243Z",
    "updated_at": "2022-07-17T16:01:28.939Z",
    "finished_at": "2022-07-17T16:01:28.939Z",
}
SEED_SECOND = {
    "job_task_id": "job-task-038c0b076ec5",
    "status": "SUCCESS",
    "options": {"account": "257706363616", "start": "2022-07-01"},
    "created_count": 5756,
    "job_id": "job-6b6765f757a9",
    "data_source_id": "ds-fcba92ca73b1",
    "domain_id": SEED_DOMAIN,
    "created_at": "2022-07-17T16:00:05.099Z",
    "started_at": "2022-07-17T16:00:47.356Z",
    "updated_at": "2022-07-17T16:01:20.856Z",
    "finished_at": "2022-07-17T16:01:20.856Z",
}


@dataclass
class TaskSpec:
    """One JobTask as the events that make it: created, then optional later events."""

    job_task_id: str
    domain_id: str
    job_id: str
    data_source_id: str
    created_at: datetime
    options: dict = field(default_factory=dict)
    workspace_id: str | None = None
    started_after: timedelta | None = None
    progressed: tuple[tuple[timedelta, int], ...] = ()
    end: tuple[str, timedelta, dict] | None = None  # (kind, after created, extra fields)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed_specs() -> list[TaskSpec]:
    """The seed's tasks, with its exact times: created, started, progressed, succeeded."""
    first = at(SEED_GET["created_at"])
    second = at(SEED_SECOND["created_at"])
    return [
        TaskSpec(
            SEED_GET["job_task_id"],
            SEED_DOMAIN,
            SEED_GET["job_id"],
            SEED_GET["data_source_id"],
            first,
            SEED_GET["options"],
            started_after=at(SEED_GET["started_at"]) - first,
            progressed=((timedelta(seconds=80, milliseconds=500), 1),),
            end=("succeeded", at(SEED_GET["finished_at"]) - first, {}),
        ),
        TaskSpec(
            SEED_SECOND["job_task_id"],
            SEED_DOMAIN,
            SEED_SECOND["job_id"],
            SEED_SECOND["data_source_id"],
            second,
            SEED_SECOND["options"],
            started_after=at(SEED_SECOND["started_at"]) - second,
            progressed=((timedelta(seconds=50), 5000), (timedelta(seconds=60), 756)),
            end=("succeeded", at(SEED_SECOND["finished_at"]) - second, {}),
        ),
    ]


MINUTE = timedelta(minutes=1)


def operator_specs(now: datetime) -> list[TaskSpec]:
    """Eight tasks of domain-a (a08 is recent, the others from 2024) and two of domain-b.

    id   workspace  job    data source  status       count  options
    a01  (DOMAIN)   job-1  ds-aws       SUCCESS      10     aws, tags cpu+gpu, items ec2/3 s3/1
    a02  ws-1       job-1  ds-aws       SUCCESS      20     aws, tags cpu, items ec2/7
    a03  ws-1       job-1  ds-gcp       FAILURE      0      gcp, tags []
    a04  ws-2       job-2  ds-gcp       CANCELED     0      gcp
    a05  ws-2       job-2  ds-azure     IN_PROGRESS  5      Azure
    a06  (DOMAIN)   job-2  ds-azure     PENDING      0      (month only)
    a07  ws-1       job-3  ds-aws       TIMEOUT      2      aws (no month)
    a08  (DOMAIN)   job-3  ds-aws       SUCCESS      40     AWS-China, created 2 hours ago
    """
    a, b = DOMAIN_A, DOMAIN_B
    done = ("succeeded", 10 * MINUTE, {})
    return [
        TaskSpec(
            "job-task-a01",
            a,
            "job-1",
            "ds-aws",
            at("2024-03-01T10:00:00.000Z"),
            {
                "month": "202403",
                "platform": "aws",
                "tags": ["cpu", "gpu"],
                "items": [{"name": "ec2", "size": 3}, {"name": "s3", "size": 1}],
            },
            started_after=MINUTE,
            progressed=((2 * MINUTE, 10),),
            end=done,
        ),
        TaskSpec(
            "job-task-a02",
            a,
            "job-1",
            "ds-aws",
            at("2024-03-01T11:00:00.000Z"),
            {"month": "202403", "platform": "aws", "tags": ["cpu"], "items": [{"name": "ec2", "size": 7}]},
            workspace_id="ws-1",
            started_after=MINUTE,
            progressed=((2 * MINUTE, 20),),
            end=done,
        ),
        TaskSpec(
            "job-task-a03",
            a,
            "job-1",
            "ds-gcp",
            at("2024-03-02T09:00:00.000Z"),
            {"month": "202403", "platform": "gcp", "tags": []},
            workspace_id="ws-1",
            started_after=MINUTE,
            end=("failed", 5 * MINUTE, {"error_code": "ERROR_PLUGIN", "error_message": "quota exceeded"}),
        ),
        TaskSpec(
            "job-task-a04",
            a,
            "job-2",
            "ds-gcp",
            at("2024-02-15T08:00:00.000Z"),
            {"month": "202402", "platform": "gcp"},
            workspace_id="ws-2",
            end=("canceled", 2 * MINUTE, {}),
        ),
        TaskSpec(
            "job-task-a05",
            a,
            "job-2",
            "ds-azure",
            at("2024-02-20T08:00:00.000Z"),
            {"month": "202402", "platform": "Azure"},
            workspace_id="ws-2",
            started_after=MINUTE,
            progressed=((3 * MINUTE, 5),),
        ),
        TaskSpec("job-task-a06", a, "job-2", "ds-azure", at("2024-02-20T08:00:00.000Z"), {"month": "202402"}),
        TaskSpec(
            "job-task-a07",
            a,
            "job-3",
            "ds-aws",
            at("2024-01-31T23:30:00.000Z"),
            {"platform": "aws"},
            workspace_id="ws-1",
            started_after=MINUTE,
            progressed=((5 * MINUTE, 2),),
            end=("timed_out", 30 * MINUTE, {}),
        ),
        TaskSpec(
            "job-task-a08",
            a,
            "job-3",
            "ds-aws",
            now - timedelta(hours=2),
            {"month": "202401", "platform": "AWS-China"},
            started_after=MINUTE,
            end=("succeeded", 60 * MINUTE, {"created_count_delta": 40}),
        ),
        TaskSpec(
            "job-task-b01",
            b,
            "job-9",
            "ds-aws",
            at("2024-03-01T10:30:00.000Z"),
            {"month": "202403", "platform": "aws", "tags": ["cpu"], "items": [{"name": "ec2", "size": 9}]},
            started_after=MINUTE,
            end=("succeeded", 4 * MINUTE, {"created_count_delta": 100}),
        ),
        TaskSpec(
            "job-task-b02",
            b,
            "job-9",
            "ds-aws",
            at("2024-03-03T10:30:00.000Z"),
            {"platform": "aws"},
            workspace_id="ws-9",
            started_after=MINUTE,
            end=("failed", 4 * MINUTE, {"error_code": "ERROR_B", "error_message": "b failed"}),
        ),
    ]


def drive(pipeline: Pipeline, specs: list[TaskSpec]) -> None:
    """Send every spec's events through the worker and wait until all are applied."""
    events = pipeline.events
    for spec in specs:
        events.created(
            job_task_id=spec.job_task_id,
            domain_id=spec.domain_id,
            job_id=spec.job_id,
            data_source_id=spec.data_source_id,
            workspace_id=spec.workspace_id,
            options=spec.options,
            occurred_at=text(spec.created_at),
        )
        ids = {"domain_id": spec.domain_id}
        if spec.started_after is not None:
            events.started(spec.job_task_id, occurred_at=text(spec.created_at + spec.started_after), **ids)
        for after, delta in spec.progressed:
            events.progressed(
                spec.job_task_id, created_count_delta=delta, occurred_at=text(spec.created_at + after), **ids
            )
        if spec.end is not None:
            kind, after, extra = spec.end
            getattr(events, kind)(spec.job_task_id, occurred_at=text(spec.created_at + after), **ids, **extra)
    pipeline.wait_until_idle()
    missing = [spec.job_task_id for spec in specs if pipeline.task(spec.job_task_id) is None]
    assert not missing, f"the worker did not store {missing}"


def secret(name: str) -> str:
    """The token a test calls ``name``: the name, padded to the length the API requires of every token.

    Tests name their tokens ("token-a", "token-a-ws1"); what is configured and sent is this, so
    that a test reads as the name and the API sees a token it accepts. A wrong token a test sends
    ("nope") is padded alike and stays unknown.
    """
    return name.ljust(MIN_TOKEN_LENGTH, ".")


def configured(tokens: dict) -> dict:
    """``JOBTASK_API_TOKENS`` for tokens named as the tests name them (``secret``)."""
    return {secret(name): scope for name, scope in tokens.items()}


def bearer(name: str) -> dict[str, str]:
    """The ``Authorization`` header of the token a test calls ``name``."""
    return {"Authorization": f"Bearer {secret(name)}"}


def api_settings(store_url: str, db_name: str, broker_url: str, **overrides) -> Settings:
    values = dict(mongo_url=store_url, mongo_db=db_name, broker_url=broker_url, api_tokens=TOKENS,
                  # The suite sends many unknown tokens on purpose (fuzzing, schemathesis' auth checks)
                  # from one address; the tests of the throttle itself set it low.
                  api_auth_failures=100_000)
    values.update(overrides)
    values["api_tokens"] = configured(values["api_tokens"])
    return load_settings(**values)


class ReadClient:
    """A TestClient on ``create_app`` that posts bodies with a token, to one resource's routes."""

    def __init__(self, settings: Settings, prefix: str = "/cost-analysis/v1/job-task",
                 id_field: str = "job_task_id") -> None:
        self.settings = settings
        self.prefix, self.id_field = prefix, id_field
        self.http = TestClient(create_app(settings), raise_server_exceptions=False)

    def post(self, method: str, body, token: str | None = "token-a", headers: dict | None = None):
        headers = dict(headers or {})
        if token is not None:
            headers.update(bearer(token))
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.http.post(
            f"{self.prefix}/{method}",
            content=content,
            headers={"Content-Type": "application/json", **headers},
        )

    def ok(self, method: str, body, token: str = "token-a") -> dict:
        response = self.post(method, body, token)
        assert response.status_code == 200, response.text
        return response.json()

    def ids(self, body: dict, token: str = "token-a") -> set[str]:
        return {row[self.id_field] for row in self.ok("list", body, token)["results"]}

    def error(self, method: str, body, token: str | None = "token-a", status: int = 400) -> dict:
        response = self.post(method, body, token)
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert set(detail) == {"code", "message"} and detail["code"].startswith("ERROR_"), detail
        return detail

    def close(self) -> None:
        self.http.close()


class TestCommandStore(EmbeddedStore):
    """A private secantusdb with test commands on, for the maxTimeMS failpoint."""

    __test__ = False

    def command(self) -> list[str]:
        return [*super().command(), "--enable-test-commands"]


def start_test_command_store(directory: Path) -> TestCommandStore:
    return TestCommandStore(directory).start()


def stat(api: ReadClient, query: dict, token: str = "token-a") -> dict:
    return api.ok("stat", {"query": query}, token)


@contextmanager
def worker_dataset(broker_url: str, store_url: str, directory: Path):
    """A pipeline whose worker applied the seed's and the operator tasks."""
    pipeline = Pipeline(broker_url, store_url, directory)
    try:
        pipeline.start_worker(concurrency=2)
        drive(pipeline, seed_specs() + operator_specs(datetime.now(UTC)))
        yield pipeline
    finally:
        pipeline.close()


def cli_runner(monkeypatch, capsys, **env: str):
    """``run(*argv) -> (exit code, stdout, stderr)`` of ``jobtask`` with ``JOBTASK_<NAME>`` set from ``env``."""
    from worker.cli import jobtask as cli  # noqa: PLC0415 - only the CLI tests need it

    for name, value in env.items():
        monkeypatch.setenv(f"JOBTASK_{name.upper()}", value)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run

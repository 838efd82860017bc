"""JSON Schemas of event contract v1, generated from the pydantic models.

``python -m worker.contract.schema [DIR]`` writes one schema per event to
``DIR/<task name>.json`` (default ``docs/schemas``), titled with the task name,
refusing unknown kwargs (``additionalProperties: false``) and carrying an
example. The output is deterministic, so the committed files can be checked
against the models (``tests/unit/test_schema.py``). What JSON Schema cannot say
(occurred_at at most 5 minutes ahead, options at most 16 KiB as JSON) is in
the descriptions, and the worker checks it all the same.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from worker.contract.events import EVENT_TYPES, MAX_OPTIONS_BYTES, MAX_OPTIONS_DEPTH

DEFAULT_DIR = Path("docs/schemas")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_RULE = "characters of [A-Za-z0-9._:-]"

EVENTS = {
    "job_task.created": "A scheduler created the task: fixes its job, data source, domain, "
    "workspace and options. Status PENDING.",
    "job_task.started": "A plugin began the work: IN_PROGRESS, unless the task has already ended.",
    "job_task.progressed": "A plugin created created_count_delta more records.",
    "job_task.succeeded": "The work finished: SUCCESS, with an optional last created_count_delta.",
    "job_task.failed": "The work failed: FAILURE, with error_code and error_message.",
    "job_task.canceled": "An operator or the scheduler canceled the task: CANCELED.",
    "job_task.timed_out": "A scheduler's watchdog (or jobtask's sweep) gave up on the task: TIMEOUT, "
    "error_code ERROR_JOB_TASK_TIMEOUT.",
    "job.created": "A scheduler declares a job and how many tasks it will have; until then the job "
    "cannot finish.",
    "job.canceled": "An operator canceled the job: CANCELED, and each of its tasks as by a "
    "job_task.canceled at this occurred_at.",
    "job.timed_out": "The job outlived its deadline: TIMEOUT, and each of its tasks as by a "
    "job_task.timed_out at this occurred_at.",
}

FIELDS = {
    "event_id": f"Idempotency key within the job task, 1 to 128 {ID_RULE}. "
    "Keep it (and occurred_at) when you resend.",
    "domain_id": f"The task's domain, 1 to 64 {ID_RULE}; must match the domain of its created event.",
    "job_task_id": f"Chosen by the producer, 1 to 64 {ID_RULE} "
    "(the SDK makes job-task- and 12 lowercase hex digits).",
    "job_id": f"The job, 1 to 64 {ID_RULE}; a task's must name a job of its own domain.",
    "total_tasks": "How many tasks the job will have, 0 to 50,000; the job ends once that many have "
    "ended.",
    "data_source_id": f"The data source whose plugin runs the task, 1 to 64 {ID_RULE}.",
    "workspace_id": f"The task's workspace, 1 to 64 {ID_RULE}.",
    "resource_group": "DOMAIN or WORKSPACE; default WORKSPACE when workspace_id is given, else DOMAIN.",
    "options": f"How the plugin divided the job: an object of at most {MAX_OPTIONS_BYTES} bytes as "
    f"JSON, nested at most {MAX_OPTIONS_DEPTH} levels, whose keys are not empty, do not "
    "start with '$' and contain no '.'.",
    "created_count_delta": "Records created since the last report, added to created_count "
    "(a succeeded's only when it is the terminal event that decides the task).",
    "error_code": "The failure's code, 1 to 128 characters.",
    "error_message": "The failure's message, at most 4096 characters.",
    "reason": "Why, for the operators; at most 4096 characters.",
    "occurred_at": "When it happened: ISO 8601 with a UTC offset ('Z' allowed), at most 5 minutes "
    "ahead of the worker's clock. Missing: the time the worker received the event.",
}

_IDS = {"domain_id": "domain-58010aa2e451", "job_task_id": "job-task-3622d860a776"}
EXAMPLES = {
    "job_task.created": {
        "event_id": "3622d860a776-created", **_IDS, "job_id": "job-85cf2c385252",
        "data_source_id": "ds-c96609f5afeb", "options": {"month": "202207", "platform": "gcp"},
        "occurred_at": "2022-07-17T16:00:08.266Z",
    },
    "job_task.started": {
        "event_id": "3622d860a776-started", **_IDS, "occurred_at": "2022-07-17T16:01:28.243Z",
    },
    "job_task.progressed": {
        "event_id": "3622d860a776-progress-1", **_IDS, "created_count_delta": 1,
        "occurred_at": "2022-07-17T16:01:28.500Z",
    },
    "job_task.succeeded": {
        "event_id": "3622d860a776-succeeded", **_IDS, "occurred_at": "2022-07-17T16:01:28.939Z",
    },
    "job_task.failed": {
        "event_id": "3622d860a776-failed", **_IDS, "error_code": "ERROR_PLUGIN_REQUEST",
        "error_message": "the billing API answered 503", "occurred_at": "2022-07-17T16:01:28.939Z",
    },
    "job_task.canceled": {
        "event_id": "3622d860a776-canceled", **_IDS, "reason": "canceled by an operator",
        "occurred_at": "2022-07-17T16:01:28.939Z",
    },
    "job_task.timed_out": {
        "event_id": "3622d860a776-timed-out", **_IDS, "reason": "no progress for 2 hours",
        "occurred_at": "2022-07-17T18:01:28.939Z",
    },
    "job.created": {
        "event_id": "85cf2c385252-created", "domain_id": "domain-58010aa2e451",
        "job_id": "job-85cf2c385252", "data_source_id": "ds-c96609f5afeb", "total_tasks": 2,
        "options": {"month": "202207"}, "occurred_at": "2022-07-17T16:00:00.000Z",
    },
    "job.canceled": {
        "event_id": "85cf2c385252-canceled", "domain_id": "domain-58010aa2e451",
        "job_id": "job-85cf2c385252", "reason": "wrong month, rerun tomorrow",
        "occurred_at": "2022-07-17T16:05:00.000Z",
    },
    "job.timed_out": {
        "event_id": "85cf2c385252-timed-out", "domain_id": "domain-58010aa2e451",
        "job_id": "job-85cf2c385252", "reason": "in progress for more than 86400 s",
        "occurred_at": "2022-07-18T16:00:00.000Z",
    },
}


def _property(name: str, generated: dict[str, Any]) -> dict[str, Any]:
    prop = {key: value for key, value in generated.items() if key not in ("title", "description")}
    if name == "occurred_at":  # the model's own hint is for the non-null branch only
        prop = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "default": None}
    return {"description": FIELDS[name], **prop}


def schema_for(task_name: str, model: type[BaseModel]) -> dict[str, Any]:
    """The schema producers validate against: the model's, without the internal ``kind``."""
    generated = model.model_json_schema()
    names = [name for name in generated["properties"] if name not in ("kind", "occurred_at")]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "title": task_name,
        "description": EVENTS[task_name],
        "type": "object",
        "properties": {
            name: _property(name, generated["properties"][name]) for name in [*names, "occurred_at"]
        },
        "required": [name for name in generated.get("required", []) if name != "kind"],
        "additionalProperties": False,
    }
    if "resource_group" in schema["properties"]:
        schema["if"] = {"properties": {"resource_group": {"const": "WORKSPACE"}},
                        "required": ["resource_group"]}
        schema["then"] = {"required": ["workspace_id"], "properties": {"workspace_id": {"type": "string"}}}
    schema["examples"] = [EXAMPLES[task_name]]
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every event's schema; remove those of events that no longer exist."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for task_name, model in EVENT_TYPES.items():
        path = directory / f"{task_name}.json"
        path.write_text(render(schema_for(task_name, model)), encoding="utf-8")
        written.append(path)
    for stale in set(directory.glob("job*.json")) - set(written):
        stale.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    directory = Path(argv[0]) if argv else DEFAULT_DIR
    for path in write_schemas(directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

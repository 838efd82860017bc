"""The committed JSON Schemas (docs/schemas) are current and agree with the models.

``jsonschema`` is not among our dependencies, so ``conforms`` checks the
keywords the generated schemas use; every verdict is compared with what the
worker's own validation (``parse_event``) says about the same kwargs.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from tests.harness import ROOT
from worker.contract.events import EVENT_TYPES, InvalidEvent, parse_event
from worker.contract.schema import write_schemas

COMMITTED = ROOT / "docs" / "schemas"
TYPES = {"string": str, "object": dict, "null": type(None), "array": list}


def conforms(schema: dict, value) -> bool:
    """A small validator for the keywords of our schemas (2020-12 semantics)."""
    if "anyOf" in schema and not any(conforms(option, value) for option in schema["anyOf"]):
        return False
    kind = schema.get("type")
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return False
    elif kind and not isinstance(value, TYPES[kind]):
        return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return False
    if isinstance(value, int) and not isinstance(value, bool) \
            and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(properties):
            return False
        if not all(conforms(properties[name], item) for name, item in value.items() if name in properties):
            return False
        if "if" in schema and conforms(schema["if"], value) and not conforms(schema["then"], value):
            return False
    return True


def load(task_name: str) -> dict:
    return json.loads((COMMITTED / f"{task_name}.json").read_text(encoding="utf-8"))


def test_committed_schemas_are_current(tmp_path):
    written = write_schemas(tmp_path)
    assert sorted(path.name for path in written) == sorted(f"{name}.json" for name in EVENT_TYPES)
    committed = sorted(path.name for path in COMMITTED.glob("*.json"))
    assert committed == sorted(path.name for path in written), "run `make schema` and commit"
    for path in written:
        assert (COMMITTED / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"docs/schemas/{path.name} is stale: run `make schema` and commit"
        )


def test_generation_is_deterministic(tmp_path):
    first = {p.name: p.read_text() for p in write_schemas(tmp_path / "a")}
    second = {p.name: p.read_text() for p in write_schemas(tmp_path / "b")}
    assert first == second


@pytest.mark.parametrize("task_name", sorted(EVENT_TYPES))
def test_schema_agrees_with_the_worker(task_name):
    schema = load(task_name)
    assert schema["title"] == task_name
    assert schema["additionalProperties"] is False
    assert "kind" not in schema["properties"]
    (example,) = schema["examples"]

    def verdicts(kwargs: dict) -> tuple[bool, bool]:
        return conforms(schema, kwargs), not isinstance(parse_event(task_name, [], kwargs), InvalidEvent)

    assert verdicts(example) == (True, True)
    assert verdicts({**example, "unknown_field": 1}) == (False, False)
    for name in schema["required"]:
        assert verdicts({k: v for k, v in example.items() if k != name}) == (False, False), name
    for name in set(schema["properties"]) - set(schema["required"]):
        assert verdicts({k: v for k, v in example.items() if k != name}) == (True, True), name
    assert verdicts({**example, "event_id": "has space"}) == (False, False)
    assert verdicts({**example, "job_task_id": "j" * 65}) == (False, False)


def test_created_workspace_rules():
    schema, name = load("job_task.created"), "job_task.created"
    (example,) = schema["examples"]
    for kwargs, valid in [
        ({**example, "resource_group": "WORKSPACE"}, False),
        ({**example, "resource_group": "WORKSPACE", "workspace_id": "workspace-1"}, True),
        ({**example, "workspace_id": "workspace-1"}, True),
        ({**example, "resource_group": "PROJECT"}, False),
        ({**example, "options": "month=202207"}, False),
    ]:
        worker_says = not isinstance(parse_event(name, [], kwargs), InvalidEvent)
        assert (conforms(schema, kwargs), worker_says) == (valid, valid), kwargs


def test_delta_is_a_non_negative_integer():
    schema = load("job_task.progressed")
    (example,) = schema["examples"]
    for delta, valid in [(0, True), (7, True), (-1, False), ("7", False), (True, False)]:
        kwargs = {**example, "created_count_delta": delta}
        worker_says = not isinstance(parse_event("job_task.progressed", [], kwargs), InvalidEvent)
        assert (conforms(schema, kwargs), worker_says) == (valid, valid), delta

"""docs/OPERATIONS.md holds: its alert rules parse and name metrics that exist, and every metric is described."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from worker.observe.gauges import QueueGauge, StoreGauges
from worker.observe.http import HttpMetrics
from worker.observe.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def yaml_blocks() -> list:
    text = OPERATIONS.read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def served_metrics() -> set[str]:
    """The names of every jobtask metric the worker and the API serve."""
    registries = [WorkerMetrics().registry, HttpMetrics(lambda: None).registry]
    names = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
    names |= {family.name for collector in (QueueGauge(lambda: None, []), StoreGauges(lambda: None))
              for family in collector.describe()}
    return {name for name in names if name.startswith("jobtask_")}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_alert_rules_parse_and_name_served_metrics():
    rule_files = [block for block in yaml_blocks() if isinstance(block, dict) and "groups" in block]
    assert len(rule_files) == 1
    rules = [rule for group in rule_files[0]["groups"] for rule in group["rules"]]
    assert len(rules) >= 3
    served = served_metrics()
    for rule in rules:
        assert rule["alert"] and rule["expr"] and "summary" in rule["annotations"]
        named = set(re.findall(r"\bjobtask_[a-z_]+", rule["expr"]))
        assert named, f"{rule['alert']} names no jobtask metric"
        for name in named:
            assert base_name(name) in served, f"{rule['alert']}: {name} is not a metric we serve"
    assert {"JobTasksStuck", "JobTaskDeadLettersRising", "JobTaskEventLagHigh"} <= {r["alert"] for r in rules}


def test_scrape_config_parses():
    configs = [block for block in yaml_blocks() if isinstance(block, dict) and "scrape_configs" in block]
    assert [job["job_name"] for job in configs[0]["scrape_configs"]] == ["jobtask-worker", "jobtask-api"]


def test_every_served_metric_is_described():
    text = OPERATIONS.read_text()
    for name in served_metrics():
        described = f"`{name}`" in text or f"`{name}_total`" in text
        assert described, f"{name} is not in docs/OPERATIONS.md"

"""docs/OPERATIONS.md holds: its alert rules parse, name served metrics and fire as meant; every metric is described."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from worker.observe.gauges import QueueGauge, StoreGauges
from worker.observe.http import HttpMetrics
from worker.observe.metrics import WorkerMetrics
from worker.observe.peers import PeerGauges

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
    names |= {family.name for collector in (QueueGauge(lambda: None, []), StoreGauges(lambda: None), PeerGauges([]))
              for family in collector.describe()}
    return {name for name in names if name.startswith("jobtask_")}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rule_file() -> dict:
    rule_files = [block for block in yaml_blocks() if isinstance(block, dict) and "groups" in block]
    assert len(rule_files) == 1
    return rule_files[0]


def test_alert_rules_parse_and_name_served_metrics():
    rules = [rule for group in rule_file()["groups"] for rule in group["rules"]]
    assert len(rules) >= 3
    served = served_metrics()
    for rule in rules:
        assert rule["alert"] and rule["expr"] and "summary" in rule["annotations"]
        named = set(re.findall(r"\bjobtask_[a-z_]+", rule["expr"]))
        assert named, f"{rule['alert']} names no jobtask metric"
        for name in named:
            assert base_name(name) in served, f"{rule['alert']}: {name} is not a metric we serve"
    assert {"JobTasksStuck", "JobTaskDeadLettersRising", "JobTaskEventLagHigh",
            "JobTaskWorkerBrokerUnreachable", "JobTaskWorkerStoreUnreachable"} <= {r["alert"] for r in rules}


def unreachable_case(peer: str, alert: str) -> dict:
    """A worker whose ``peer`` answers, then stops (its answer's age grows a minute a minute)."""
    labels = {"job": "jobtask-worker", "instance": "worker-1:9808"}
    series = f'jobtask_{peer}_answer_age_seconds{{job="jobtask-worker",instance="worker-1:9808"}}'
    other = "store" if peer == "broker" else "broker"
    return {
        "interval": "1m",
        "input_series": [
            # Answering every few seconds for 3 minutes, then no answer: 60, 120, 180 ... seconds.
            {"series": series, "values": "5 5 5 60+60x8"},
            {"series": f'jobtask_{other}_answer_age_seconds{{job="jobtask-worker",instance="worker-1:9808"}}',
             "values": "5x11"},
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": alert, "exp_alerts": []},  # 120 s: not yet above
            {"eval_time": "5m", "alertname": alert, "exp_alerts": []},  # above, pending for its minute
            {"eval_time": "6m", "alertname": alert, "exp_alerts": [{
                "exp_labels": {"severity": "critical", **labels},
                "exp_annotations": {
                    "summary": f"Worker worker-1:9808 cannot reach its {peer}",
                    "description": UNREACHABLE_DESCRIPTIONS[peer],
                },
            }]},
        ],
    }


UNREACHABLE_DESCRIPTIONS = {
    "broker": "No answer from Redis for 4m 0s; check Redis and the network between them "
              "(the worker's log says what it tried).",
    "store": "No answer from the store for 4m 0s; events wait in the queue until it answers.",
}


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian's prometheus package; .ci/run installs it)")
def test_the_unreachable_peer_alerts_fire_after_two_minutes_of_silence(tmp_path):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_file()))
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
             "tests": [unreachable_case("broker", "JobTaskWorkerBrokerUnreachable"),
                       unreachable_case("store", "JobTaskWorkerStoreUnreachable")]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    for command in (["check", "rules", "rules.yml"], ["test", "rules", "tests.yml"]):
        run = subprocess.run(["promtool", *command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr


def test_scrape_config_parses():
    configs = [block for block in yaml_blocks() if isinstance(block, dict) and "scrape_configs" in block]
    assert [job["job_name"] for job in configs[0]["scrape_configs"]] == ["jobtask-worker", "jobtask-api"]


def test_every_served_metric_is_described():
    text = OPERATIONS.read_text()
    for name in served_metrics():
        described = f"`{name}`" in text or f"`{name}_total`" in text
        assert described, f"{name} is not in docs/OPERATIONS.md"

"""The ``jobtask`` command line on a real store filled by the worker.

``main()`` runs in-process for most cases (its output captured); one test
runs the installed console script to prove the entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.harness import Pipeline
from tests.readside import DOMAIN_A, SEED_DOMAIN, SEED_GET, cli_runner, drive, operator_specs, seed_specs
from worker.cli import jobtask as cli


@pytest.fixture(scope="module")
def store(broker_url, store_url, tmp_path_factory):
    pipeline = Pipeline(broker_url, store_url, tmp_path_factory.mktemp("cli"))
    pipeline.start_worker(concurrency=1)
    drive(pipeline, seed_specs() + operator_specs(datetime.now(UTC)))
    yield pipeline
    pipeline.close()


@pytest.fixture
def jobtask(store, monkeypatch, capsys):
    return cli_runner(monkeypatch, capsys, mongo_url=store.store_url, mongo_db=store.db_name)


def test_get_prints_a_table_and_json(jobtask):
    code, out, _ = jobtask("get", "job-task-3622d860a776", "--domain", SEED_DOMAIN)
    assert code == 0
    assert "job_task_id     job-task-3622d860a776" in out
    assert "created_at      2022-07-17T16:00:08.266Z" in out
    code, out, _ = jobtask("get", "job-task-3622d860a776", "--domain", SEED_DOMAIN, "--json")
    info = json.loads(out)
    assert info.pop("resource_group") == "DOMAIN" and info == SEED_GET


def test_get_of_another_domain_is_not_found(jobtask):
    code, out, err = jobtask("get", "job-task-3622d860a776", "--domain", DOMAIN_A)
    assert code == 1 and out == ""
    assert err.strip() == ("ERROR_NOT_FOUND: Resource cannot be found or access is denied. "
                           "(job_task_id = job-task-3622d860a776)")


def test_list_table_with_filters(jobtask):
    code, out, _ = jobtask("list", "--domain", DOMAIN_A, "--status", "SUCCESS", "--job-id", "job-1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["JOB_TASK_ID", "STATUS", "CREATED_COUNT", "JOB_ID", "DATA_SOURCE_ID",
                                "WORKSPACE_ID", "CREATED_AT", "FINISHED_AT"]
    assert [line.split()[0] for line in lines[1:-1]] == ["job-task-a02", "job-task-a01"]
    assert lines[-1] == "2 shown of total_count 2"


def test_list_options_json_and_query(jobtask):
    code, out, _ = jobtask("list", "--domain", DOMAIN_A, "--status", "FAILURE", "--status", "CANCELED",
                           "--data-source-id", "ds-gcp", "--json")
    assert code == 0
    assert [row["job_task_id"] for row in json.loads(out)["results"]] == ["job-task-a03", "job-task-a04"]
    query = {"filter": [{"k": "options.platform", "v": "aws", "o": "contain"}], "only": ["job_task_id"],
             "sort": [{"key": "created_count", "desc": True}], "page": {"limit": 2}}
    code, out, _ = jobtask("list", "--domain", DOMAIN_A, "--workspace-id", "ws-1", "--query", json.dumps(query),
                           "--json")
    assert json.loads(out) == {"results": [{"job_task_id": "job-task-a02"}, {"job_task_id": "job-task-a07"}],
                               "total_count": 2}


def test_stat_aggregate_and_distinct(jobtask):
    query = {"aggregate": [{"group": {"keys": [{"key": "status", "name": "status"}],
                                      "fields": [{"operator": "count", "name": "n"}]}},
                           {"sort": [{"key": "n", "desc": True}, {"key": "status"}]}]}
    code, out, _ = jobtask("stat", "--domain", DOMAIN_A, "--query", json.dumps(query))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["STATUS", "N"] and lines[1].split() == ["SUCCESS", "3"]
    code, out, _ = jobtask("stat", "--domain", DOMAIN_A, "--query", '{"distinct": "job_id"}', "--json")
    assert json.loads(out) == {"results": ["job-1", "job-2", "job-3"]}
    code, out, _ = jobtask("stat", "--domain", DOMAIN_A, "--query", '{"distinct": "job_id", "page": {"limit": 1}}')
    assert out.splitlines() == ["VALUE", "job-1", "total_count 3"]


def test_errors_are_coded_and_usage_errors_exit_2(jobtask, capsys):
    code, _, err = jobtask("stat", "--domain", DOMAIN_A, "--query", '{"filter": []}')
    assert code == 1 and err.startswith("ERROR_REQUIRED_PARAMETER: ")
    code, _, err = jobtask("list", "--domain", DOMAIN_A, "--query", '{"filter": [{"k": "$where", "v": 1, "o": "eq"}]}')
    assert code == 1 and err.startswith("ERROR_INVALID_PARAMETER: ")
    for argv in (["list"], ["stat", "--domain", "d"], ["list", "--domain", "d", "--query", "{oops"],
                 ["list", "--domain", "d", "--status", "DONE"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_store_url_is_required(monkeypatch, capsys):
    monkeypatch.delenv("JOBTASK_MONGO_URL", raising=False)
    assert cli.main(["list", "--domain", "d"]) == 1
    assert "ERROR_DB_UNAVAILABLE" in capsys.readouterr().err


def test_console_script(store):
    script = Path(sys.executable).parent / "jobtask"
    if not script.exists():
        pytest.skip("the package is not installed in this interpreter's environment")
    env = {**os.environ, "JOBTASK_MONGO_URL": store.store_url, "JOBTASK_MONGO_DB": store.db_name}
    done = subprocess.run([str(script), "list", "--domain", SEED_DOMAIN, "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [row["job_task_id"] for row in json.loads(done.stdout)["results"]] == [
        "job-task-3622d860a776", "job-task-038c0b076ec5"]

"""``python -m worker run`` (``make run``) end to end: embedded servers, worker, API, clean stop.

The run gets a private data dir and API port; its embedded Redis and store
take the default ports 6390 / 27090 only when they are free, so it never
touches the data of a ``make run`` on the same machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.harness import ROOT, wait_for
from worker.client import JobTaskEvents
from worker.dev.embedded import free_port
from worker.dev.run import port_is_free
from worker.store.client import connect
from worker.store.tasks import stored_task

BANNER_FIELDS = ("broker", "store", "api", "console", "token")


def run_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBTASK_")}
    env.update(JOBTASK_DATA_DIR=str(data_dir), JOBTASK_API_PORT=str(free_port()), **extra)
    return env


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (children in their own sessions included)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def read_banner(log: Path, process: subprocess.Popen, timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = {name: re.search(rf"^  {name} +(\S+)", text, re.M) for name in BANNER_FIELDS}
        if all(found.values()):
            return {name: match.group(1) for name, match in found.items()}
        if process.poll() is not None:
            pytest.fail(f"python -m worker run exited with {process.returncode}:\n{text[-4000:]}")
        time.sleep(0.2)
    pytest.fail(f"no banner in {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


def start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "run"], cwd=ROOT, env=run_env(tmp_path / "data"),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    return process, log


def kill_all(process: subprocess.Popen, tree: set[int]) -> None:
    """After a failed test: leave nothing running."""
    if process.poll() is None:
        tree |= descendants(process.pid)
        process.kill()
        process.wait()
    for pid in tree:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@needs_proc
def test_run_serves_an_event_and_stops_cleanly(tmp_path):
    process, log = start_run(tmp_path)
    tree: set[int] = set()
    try:
        banner = read_banner(log, process)
        events = JobTaskEvents(banner["broker"])
        job_task_id = events.created(domain_id="domain-dev", job_id="job-1", data_source_id="ds-1",
                                     options={"month": "202207"})
        events.succeeded(job_task_id, domain_id="domain-dev", created_count_delta=3)
        events.close()

        db = connect(banner["store"], "cost_analysis", timeout_ms=10_000)
        stored = wait_for(lambda: (task := stored_task(db, job_task_id)) and
                          task["status"] == "SUCCESS" and task, timeout=60)
        db.client.close()
        assert stored["created_count"] == 3

        request = urllib.request.Request(
            banner["api"] + "/cost-analysis/v1/job-task/list",
            data=json.dumps({"query": {}}).encode(), method="POST",
            headers={"Authorization": f"Bearer {banner['token']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert [task["job_task_id"] for task in body["results"]] == [job_task_id]
        assert body["total_count"] == 1
        # The console's address, as printed, serves the page.
        assert banner["console"] == banner["api"] + "/console"
        with urllib.request.urlopen(banner["console"], timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/html")
            assert b"jobtask console" in response.read()

        tree = descendants(process.pid)
        assert len(tree) >= 5, "redis, store, worker (with its pool), beat and API"
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in tree if running(pid)]
        assert any(b"beat" in command and b"celery" in command for command in commands), "celery beat runs"
        ports = [int(re.search(r":(\d+)", banner[name]).group(1)) for name in ("broker", "store", "api")]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 0, log.read_text(errors="replace")[-4000:]
        assert not [pid for pid in tree if running(pid)], "a child outlived python -m worker run"
        assert all(port_is_free(port) for port in ports)
        text = log.read_text(errors="replace")
        assert "Warm shutdown" in text and "jobtask: stopped" in text
    finally:
        kill_all(process, tree)


@needs_proc
def test_a_dead_child_stops_the_rest(tmp_path):
    process, log = start_run(tmp_path)
    tree: set[int] = set()
    try:
        read_banner(log, process)
        tree = descendants(process.pid)
        api = [pid for pid in tree if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(api[0], signal.SIGKILL)
        assert process.wait(timeout=90) == 1
        assert not [pid for pid in tree if running(pid)], "a child outlived python -m worker run"
        assert "jobtask: api exited with status -9; stopping" in log.read_text(errors="replace")
    finally:
        kill_all(process, tree)


def test_a_bad_setting_names_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "worker", "run"], cwd=ROOT, capture_output=True, text=True,
        env=run_env(tmp_path / "data", JOBTASK_BATCH_SIZE="zero"), timeout=60,
    )
    assert result.returncode != 0
    assert "JOBTASK_BATCH_SIZE" in result.stderr + result.stdout
    assert not (tmp_path / "data").exists(), "nothing started before the settings were read"

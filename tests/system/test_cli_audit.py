"""``jobtask history`` and ``jobtask dead-letters`` on what a real worker recorded."""

from __future__ import annotations

import json

import pytest

from tests.readside import cli_runner

COMMON = {"domain_id": "domain-a", "job_task_id": "job-task-aud1"}


@pytest.fixture
def jobtask(pipeline, monkeypatch, capsys):
    run = cli_runner(monkeypatch, capsys, mongo_url=pipeline.store_url, mongo_db=pipeline.db_name,
                     broker_url=pipeline.broker_url, queue=pipeline.queue)
    return lambda *argv: run(*argv)[:2]


def test_history_shows_each_delivery_and_hides_other_domains(pipeline, jobtask):
    created = {**COMMON, "event_id": "c1", "job_id": "j", "data_source_id": "d",
               "occurred_at": "2024-05-01T10:00:00Z"}
    pipeline.events.send_raw("job_task.created", created)
    pipeline.wait_until_idle()
    pipeline.events.send_raw("job_task.created", created)
    pipeline.wait_until_idle()

    code, out = jobtask("history", "job-task-aud1", "--domain", "domain-a", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [(row["kind"], row["outcome"]) for row in rows] == [("created", "applied"), ("created", "duplicate")]
    assert rows[0]["received_at"].endswith("Z")
    code, out = jobtask("history", "job-task-aud1", "--domain", "domain-a")
    assert out.splitlines()[0].split() == ["RECEIVED_AT", "KIND", "EVENT_ID", "OCCURRED_AT", "OUTCOME", "REASON"]
    code, out = jobtask("history", "job-task-aud1", "--domain", "domain-b", "--json")
    assert json.loads(out) == []


def test_a_fixed_dead_letter_can_be_replayed(pipeline, jobtask):
    # Refused: sent before the producer learned that options must be an object.
    bad = {**COMMON, "job_task_id": "job-task-aud2", "event_id": "c1", "job_id": "j",
           "data_source_id": "d", "options": "none"}
    message_id = pipeline.events.send_raw("job_task.created", bad)
    pipeline.wait_until_idle()
    code, out = jobtask("dead-letters", "--json")
    (letter,) = json.loads(out)
    assert letter["_id"] == message_id and "options" in letter["reason"]

    # Replaying the same payload is refused again, and recorded as replayed.
    code, out = jobtask("dead-letters", "--replay", message_id)
    assert code == 0 and out.startswith(f"replayed {message_id} as ")
    pipeline.wait_until_idle()
    letters = pipeline.dead_letters()
    assert len(letters) == 2
    original = next(letter for letter in letters if letter["_id"] == message_id)
    assert original["replayed_as"] in {letter["_id"] for letter in letters}

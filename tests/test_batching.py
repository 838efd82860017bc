"""The main process's pure parts: how a batch is formed, how a message is read."""

from __future__ import annotations

import json
from collections import OrderedDict

from kombu.message import Message

from worker.ingest.batching import Held, take_batch
from worker.ingest.intake import held_message


def waiting_of(arrivals: list[str]) -> OrderedDict[str, list[Held]]:
    """The buffer's waiting line after messages of these tasks arrived, in order."""
    waiting: OrderedDict[str, list[Held]] = OrderedDict()
    for index, task in enumerate(arrivals):
        waiting.setdefault(task, []).append(Held(f"m{index}", (f"m{index}",), task))
    return waiting


def formed(batch: list[Held]) -> list[tuple[str, str]]:
    return [(held.group, held.message) for held in batch]


def test_a_batch_takes_whole_tasks_oldest_first():
    waiting = waiting_of(["a", "b", "c", "a", "b", "a", "d"])
    assert formed(take_batch(waiting, 5)) == [("a", "m0"), ("a", "m3"), ("a", "m5"), ("b", "m1"), ("b", "m4")]
    assert formed(take_batch(waiting, 5)) == [("c", "m2"), ("d", "m6")]
    assert not waiting


def test_a_task_that_does_not_fit_gives_what_fits_and_stays_first():
    waiting = waiting_of(["a", "b", "a", "a"])
    assert formed(take_batch(waiting, 2)) == [("a", "m0"), ("a", "m2")]
    assert list(waiting) == ["a", "b"]
    assert formed(take_batch(waiting, 2)) == [("a", "m3"), ("b", "m1")]


def test_round_robin_tasks_are_served_first_come_first_served():
    arrivals = [f"t{task}" for _ in range(3) for task in range(4)]
    waiting = waiting_of(arrivals)
    batches = [take_batch(waiting, 3) for _ in range(4)]
    assert [[held.group for held in batch] for batch in batches] == [["t0"] * 3, ["t1"] * 3, ["t2"] * 3, ["t3"] * 3]


def message(body, content_type="application/json", **headers) -> Message:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Message(body=raw, content_type=content_type, content_encoding="utf-8",
                   headers=headers, delivery_tag="tag-1", properties={})


def test_an_event_message_is_read_without_a_celery_request():
    kwargs = {"job_task_id": "job-task-1", "event_id": "e1"}
    held = held_message(message([[], kwargs, {}], id="m-1", task="job_task.started"))
    message_id, task_name, args, read_kwargs, _received_at, refusal = held.delivery
    assert (message_id, task_name, args, read_kwargs, refusal) == ("m-1", "job_task.started", [], kwargs, None)
    assert held.group == "job-task-1"


def test_a_message_without_a_job_task_id_is_a_group_of_its_own():
    held = held_message(message([[], {"event_id": "e1"}, {}], id="m-2", task="job_task.started"))
    assert held.group == "m-2"


def test_an_unknown_task_name_is_read_like_any_other_and_refused_later():
    held = held_message(message([[], {"job_task_id": "j"}, {}], id="m-3", task="job_task.exploded"))
    assert held.delivery[1] == "job_task.exploded" and held.delivery[5] is None


def test_a_protocol_1_message_is_read():
    body = {"task": "job_task.started", "id": "m-4", "args": [], "kwargs": {"job_task_id": "j"}}
    held = held_message(message(body))
    assert held.delivery[:4] == ("m-4", "job_task.started", [], {"job_task_id": "j"})


def test_what_cannot_be_read_is_refused_with_its_reason():
    pickled = held_message(message(b"\x80\x04K\x01.", "application/x-python-serialize",
                                   id="m-5", task="job_task.started"))
    assert "pickle" in pickled.delivery[5] and pickled.delivery[0] == "m-5"
    not_a_task = held_message(message({"hello": "world"}))
    assert "not a Celery task message" in not_a_task.delivery[5]
    assert not_a_task.delivery[0] == "tag-1"
    broken = held_message(message(b"{not json", task="job_task.started", id="m-6"))
    assert broken.delivery[5].startswith("message could not be decoded")

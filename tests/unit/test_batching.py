"""The main process's pure parts: how a batch is formed, how a message is read."""

from __future__ import annotations

import json

from kombu.message import Message

from worker.contract.delivery import MAX_MESSAGE_ID, MESSAGE, bounded_message_id
from worker.ingest.batching import Held
from worker.ingest.intake import control_task, held_message
from worker.ingest.waiting import WaitingLine


def waiting_of(arrivals: list[str], jobs: dict[str, str] | None = None) -> WaitingLine:
    """The buffer's waiting line after messages of these tasks arrived, in order.

    ``jobs`` names the job of a task; its first message is then its created.
    """
    line = WaitingLine()
    named = set()
    for index, task in enumerate(arrivals):
        job = (jobs or {}).get(task) if task not in named else None
        named.add(task)
        line.add(Held(f"m{index}", (f"m{index}",), task, job))
    return line


def formed(batch: list[Held]) -> list[tuple[str, str]]:
    return [(held.group, held.message) for held in batch]


def take(line: WaitingLine, size: int, busy=frozenset()) -> list[tuple[str, str]]:
    return formed(line.take(size, busy)[0])


def test_a_batch_takes_whole_tasks_oldest_first():
    waiting = waiting_of(["a", "b", "c", "a", "b", "a", "d"])
    assert take(waiting, 5) == [("a", "m0"), ("a", "m3"), ("a", "m5"), ("b", "m1"), ("b", "m4")]
    assert take(waiting, 5) == [("c", "m2"), ("d", "m6")]
    assert not waiting


def test_a_task_that_does_not_fit_gives_what_fits_and_stays_first():
    waiting = waiting_of(["a", "b", "a", "a"])
    assert take(waiting, 2) == [("a", "m0"), ("a", "m2")]
    assert take(waiting, 2) == [("a", "m3"), ("b", "m1")]


def test_round_robin_tasks_are_served_first_come_first_served():
    arrivals = [f"t{task}" for _ in range(3) for task in range(4)]
    waiting = waiting_of(arrivals)
    batches = [waiting.take(3)[0] for _ in range(4)]
    assert [[held.group for held in batch] for batch in batches] == [["t0"] * 3, ["t1"] * 3, ["t2"] * 3, ["t3"] * 3]


def test_the_tasks_of_a_job_go_together():
    jobs = {"a": "j1", "b": "j2", "c": "j1", "d": "j2"}
    waiting = waiting_of(["a", "b", "c", "d", "a", "b", "c", "d"], jobs)
    batch, lanes = waiting.take(4)
    assert formed(batch) == [("a", "m0"), ("a", "m4"), ("c", "m2"), ("c", "m6")]
    assert lanes == {"job/j1"}
    assert take(waiting, 4) == [("b", "m1"), ("b", "m5"), ("d", "m3"), ("d", "m7")]


def test_a_lane_in_flight_waits_while_other_work_is_there():
    waiting = waiting_of(["a", "b", "a"], {"a": "j1", "b": "j2"})
    assert take(waiting, 10, busy={"job/j1"}) == [("b", "m1"), ("a", "m0"), ("a", "m2")], \
        "the busy lane last, but taken rather than left idle"
    waiting = waiting_of(["a", "b"], {"a": "j1", "b": "j2"})
    assert take(waiting, 1, busy={"job/j1"}) == [("b", "m1")]
    assert take(waiting, 1, busy={"job/j2"}) == [("a", "m0")]


def test_events_before_their_created_join_the_jobs_lane_when_it_arrives():
    line = WaitingLine()
    line.add(Held("m0", ("m0",), "x"))  # x's started, its job not known yet
    line.add(Held("m1", ("m1",), "y", "j1"))
    line.add(Held("m2", ("m2",), "z"))
    line.add(Held("m3", ("m3",), "x", "j1"))  # x's created
    line.add(Held("m4", ("m4",), "x"))  # later events of x: its job is remembered
    batch, lanes = line.take(10, busy=set())
    assert lanes == {"job/j1", "task/z"}
    assert formed(batch)[:4] == [("y", "m1"), ("x", "m0"), ("x", "m3"), ("x", "m4")]


def test_a_jobs_own_events_share_its_lane_and_teach_nothing():
    line = WaitingLine()
    line.add(Held("m0", ("m0",), "#j1", "j1"))
    line.add(Held("m1", ("m1",), "a", "j1"))
    assert line.lane_key("#j1") == "task/#j1", "a job group is not remembered as a task of the job"
    batch, lanes = line.take(5)
    assert formed(batch) == [("#j1", "m0"), ("a", "m1")] and lanes == {"job/j1"}

def test_a_batch_put_back_is_first_in_line_again():
    line = waiting_of(["a", "b", "a", "c"], {"a": "j1", "b": "j2", "c": "j3"})
    batch, _ = line.take(3)
    assert formed(batch) == [("a", "m0"), ("a", "m2"), ("b", "m1")]
    line.put_back(batch)
    assert len(line) == 4
    assert take(line, 10) == [("a", "m0"), ("a", "m2"), ("b", "m1"), ("c", "m3")]


def test_what_the_line_remembers_is_bounded():
    line = WaitingLine(jobs_remembered=2)
    for task in "abc":
        line.add(Held(task, (task,), task, "j"))
    line.clear()
    assert [line.lane_key(task) for task in "abc"] == ["task/a", "job/j", "job/j"]


def message(body, content_type="application/json", **headers) -> Message:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Message(body=raw, content_type=content_type, content_encoding="utf-8",
                   headers=headers, delivery_tag="tag-1", properties={})


def test_an_event_message_is_read_without_a_celery_request():
    kwargs = {"job_task_id": "job-task-1", "event_id": "e1"}
    held = held_message(message([[], kwargs, {}], id="m-1", task="job_task.started"))
    delivery = held.delivery
    assert (delivery.message_id, delivery.task_name, delivery.args, delivery.kwargs, delivery.refusal) == (
        "m-1", "job_task.started", [], kwargs, None)
    assert delivery.source == MESSAGE and held.group == "job-task-1"


def test_a_long_message_id_is_bounded_where_it_enters():
    long_id = "m-" + "x" * 300
    held = held_message(message([[], {"job_task_id": "job-task-1"}, {}], id=long_id, task="job_task.started"))
    assert held.delivery.message_id == bounded_message_id(long_id)
    assert held.delivery.message_id.startswith("sha256:") and len(held.delivery.message_id) <= MAX_MESSAGE_ID


def test_a_message_without_a_job_task_id_is_a_group_of_its_own():
    held = held_message(message([[], {"event_id": "e1"}, {}], id="m-2", task="job_task.started"))
    assert held.group == "m-2" and held.job is None


def test_a_created_names_its_job_and_a_jobs_event_is_grouped_under_it():
    created = held_message(message([[], {"job_task_id": "t", "job_id": "j"}, {}], id="m-7", task="job_task.created"))
    assert (created.group, created.job) == ("t", "j")
    canceled = held_message(message([[], {"job_id": "j", "event_id": "e"}, {}], id="m-8", task="job.canceled"))
    assert (canceled.group, canceled.job) == ("#j", "j")
    odd = held_message(message([[], {"job_id": 5}, {}], id="m-9", task="job.canceled"))
    assert (odd.group, odd.job) == ("m-9", None)


def test_an_unknown_task_name_is_read_like_any_other_and_refused_later():
    held = held_message(message([[], {"job_task_id": "j"}, {}], id="m-3", task="job_task.exploded"))
    assert held.delivery.task_name == "job_task.exploded" and held.delivery.refusal is None


def test_a_protocol_1_message_is_read():
    body = {"task": "job_task.started", "id": "m-4", "args": [], "kwargs": {"job_task_id": "j"}}
    held = held_message(message(body))
    delivery = held.delivery
    assert (delivery.message_id, delivery.task_name, delivery.args, delivery.kwargs) == (
        "m-4", "job_task.started", [], {"job_task_id": "j"})


def test_what_cannot_be_read_is_refused_with_its_reason():
    pickled = held_message(message(b"\x80\x04K\x01.", "application/x-python-serialize",
                                   id="m-5", task="job_task.started"))
    assert "pickle" in pickled.delivery.refusal and pickled.delivery.message_id == "m-5"
    not_a_task = held_message(message({"hello": "world"}))
    assert "not a Celery task message" in not_a_task.delivery.refusal
    assert not_a_task.delivery.message_id == "tag-1"
    broken = held_message(message(b"{not json", task="job_task.started", id="m-6"))
    assert broken.delivery.refusal.startswith("message could not be decoded")


def test_only_a_sweep_in_the_form_celery_runs_goes_to_celerys_handler():
    assert control_task(message([[], {}, {}], id="s-1", task="job_task.sweep"))
    # Celery would refuse these and drop them: they go to the buffer, which dead-letters them.
    assert not control_task(message(b"\x80\x04K\x01.", "application/x-python-serialize", id="s-2",
                                    task="job_task.sweep"))
    assert not control_task(message({}, id="s-3", task="job_task.sweep"))
    assert not control_task(message([[], {}, {}], id="s-4", task="job_task.started"))
    pickled = held_message(message(b"\x80\x04K\x01.", "application/x-python-serialize", id="s-2",
                                   task="job_task.sweep"))
    assert "pickle" in pickled.delivery.refusal and pickled.delivery.task_name == "job_task.sweep"

"""The benchmark's event streams: which events, in which order, and what they must yield.

Pure data, no I/O. Each stream is one ordered list of messages, the order the
queue holds them in; ``split`` hands it to several producers without
reordering any task's events. Every task sends created, started, some
progressed (random deltas) and one terminal event (80 % succeeded, 10 %
failed, 10 % canceled); ``Expected`` is what the store must then hold.

- ``friendly``: each task's events together, one task after another.
- ``interleaved``: every task in progress at once: the created of all tasks,
  then the started of all, then rounds of one progressed per task, then the
  terminal events. ``interleaved`` over two tasks of thousands of events is
  the long-task stream (tasks that heartbeat for hours).
- ``resend``: a stream in which a share of the messages is sent once more,
  some messages later, under the same message id: a producer's retry after a
  lost reply, which the worker must take as a redelivery.
- ``soak_chunk``: one interleaved block of a long, bounded-window stream, made
  from the seed and its number alone, so producers and the checker can each
  make the same block without passing millions of events around.

``jobs`` spreads the tasks over that many distinct ``job_id`` (task n in job
n mod jobs); ``None`` gives every task a job of its own.
"""

from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from worker.contract import lifecycle

DOMAIN = "domain-bench"
FRIENDLY_EVENTS_PER_TASK = 11
INTERLEAVED_EVENTS_PER_TASK = 10
MIN_EVENTS_PER_TASK = 4  # created, started, one progressed, a terminal

Message = tuple[str, dict]  # Celery task name, kwargs


class Expected(NamedTuple):
    """What one task must read back as once its stream is applied."""

    status: str
    created_count: int
    job_id: str


@dataclass
class Plan:
    """A stream's messages in queue order, and what each task must end as."""

    name: str
    messages: list[Message]
    expected: dict[str, Expected]  # job_task_id -> its end state
    jobs: int
    resent: int = 0  # messages that are a copy of an earlier one (``resend``)

    @property
    def events(self) -> int:
        """Distinct events: the messages less the copies sent again."""
        return len(self.messages) - self.resent

    @property
    def sent(self) -> int:
        """Messages queued: the events and the copies."""
        return len(self.messages)

    @property
    def tasks(self) -> int:
        return len(self.expected)

    def declared_jobs(self) -> dict[str, int]:
        """job_id -> total_tasks of the job.created messages the stream sends."""
        return {kwargs["job_id"]: kwargs["total_tasks"] for name, kwargs in self.messages
                if name == "job.created"}


def task_events(rng: random.Random, job_task_id: str, job_id: str,
                events_per_task: int) -> tuple[list[Message], Expected]:
    """One task's lifecycle in the order it happens, without ids and times yet."""
    common = {"domain_id": DOMAIN, "job_task_id": job_task_id}
    deltas = [rng.randint(0, 1_000) for _ in range(events_per_task - 3)]
    events: list[Message] = [
        ("job_task.created", {**common, "job_id": job_id, "data_source_id": "ds-bench",
                              "workspace_id": "workspace-bench", "options": {"month": "202407"}}),
        ("job_task.started", dict(common)),
        *(("job_task.progressed", {**common, "created_count_delta": delta}) for delta in deltas),
    ]
    roll, created_count = rng.random(), sum(deltas)
    if roll < 0.8:
        last_delta = rng.randint(0, 100)
        events.append(("job_task.succeeded", {**common, "created_count_delta": last_delta}))
        return events, Expected(lifecycle.SUCCESS, created_count + last_delta, job_id)
    if roll < 0.9:
        events.append(("job_task.failed", {**common, "error_code": "ERROR_BENCH", "error_message": "bench"}))
        return events, Expected(lifecycle.FAILURE, created_count, job_id)
    events.append(("job_task.canceled", {**common, "reason": "bench"}))
    return events, Expected(lifecycle.CANCELED, created_count, job_id)


def _lifecycles(rng: random.Random, tasks: int, events_per_task: int, jobs: int | None,
                prefix: str) -> tuple[list[list[Message]], dict[str, Expected]]:
    if events_per_task < MIN_EVENTS_PER_TASK or tasks < 1:
        raise ValueError(f"need >= 1 task of >= {MIN_EVENTS_PER_TASK} events, not {tasks} x {events_per_task}")
    per_task, expected = [], {}
    for number in range(tasks):
        job_task_id = f"job-task-{rng.getrandbits(48):012x}"
        job_id = f"job-{prefix}{number % jobs if jobs else number}"
        events, expected[job_task_id] = task_events(rng, job_task_id, job_id, events_per_task)
        per_task.append(events)
    return per_task, expected


def _stamp(rng: random.Random, ordered: list[Message], start: datetime) -> list[Message]:
    """Give each message an event_id and an occurred_at that rises in queue order."""
    return [(name, {**kwargs, "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "occurred_at": (start + timedelta(milliseconds=n)).isoformat(timespec="milliseconds")})
            for n, (name, kwargs) in enumerate(ordered)]


def _start() -> datetime:
    """An hour ago: events stay in the past (the worker refuses times ahead of its clock)."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def friendly(tasks: int, seed: int, events_per_task: int = FRIENDLY_EVENTS_PER_TASK,
             jobs: int | None = None) -> Plan:
    """Each task's events together, one task after another."""
    rng = random.Random(seed)
    per_task, expected = _lifecycles(rng, tasks, events_per_task, jobs, "bench-")
    ordered = [message for events in per_task for message in events]
    return Plan("friendly", _stamp(rng, ordered, _start()), expected, jobs or tasks)


def interleave(per_task: list[list[Message]]) -> list[Message]:
    """Created of all, started of all, rounds of one progressed per task, terminals of all."""
    rounds = max(len(events) for events in per_task)
    heads = [events[:2] for events in per_task]
    middles = [events[2:-1] for events in per_task]
    ordered = [head[0] for head in heads] + [head[1] for head in heads]
    for step in range(rounds - 3):
        ordered.extend(middle[step] for middle in middles if step < len(middle))
    ordered.extend(events[-1] for events in per_task)
    return ordered


def interleaved(tasks: int, seed: int, events_per_task: int = INTERLEAVED_EVENTS_PER_TASK,
                jobs: int | None = None, name: str = "interleaved", declare: bool = False) -> Plan:
    """Every task in progress at once; see the module docstring.

    ``declare`` sends each job's ``job.created`` (with its number of tasks)
    before the tasks' events, as a scheduler declares a job it splits.
    """
    rng = random.Random(seed)
    per_task, expected = _lifecycles(rng, tasks, events_per_task, jobs, "bench-")
    ordered = interleave(per_task)
    if declare:
        ordered = job_declarations(expected) + ordered
    return Plan(name, _stamp(rng, ordered, _start()), expected, jobs or tasks)


def resend(plan: Plan, share: float, lag: int, seed: int) -> Plan:
    """The plan with ``share`` of its messages sent again, each ``lag`` messages after its original.

    A copy is the very same message: the same kwargs, so the same event_id,
    and (``message_id``) the same message id, as a producer's retry after a
    lost reply sends it. Copies of the last messages come at the end.
    """
    rng = random.Random(f"{seed}/resend")
    chosen = sorted(rng.sample(range(plan.events), round(plan.events * share)))
    later: dict[int, list[Message]] = {}
    for position in chosen:
        later.setdefault(min(position + lag, plan.events - 1), []).append(plan.messages[position])
    messages = []
    for position, message in enumerate(plan.messages):
        messages.append(message)
        messages.extend(later.get(position, ()))
    return Plan(plan.name, messages, plan.expected, plan.jobs, plan.resent + len(chosen))


def message_id(kwargs: dict) -> str:
    """A message's id, made from its event's id: a copy sent again has the same one."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"jobtask-bench:{kwargs['event_id']}"))


def job_declarations(expected: dict[str, Expected]) -> list[Message]:
    """One job.created per job of ``expected``, declaring how many tasks it has."""
    sizes: dict[str, int] = {}
    for end in expected.values():
        sizes[end.job_id] = sizes.get(end.job_id, 0) + 1
    return [("job.created", {"domain_id": DOMAIN, "job_id": job_id, "data_source_id": "ds-bench",
                             "total_tasks": total}) for job_id, total in sorted(sizes.items())]


def soak_chunk(seed: int, number: int, tasks: int, start: datetime) -> Plan:
    """Block ``number`` of the soak: ``tasks`` new tasks x 10 events, interleaved.

    Blocks follow each other in time (occurred_at keeps rising across them) and
    each task has a job of its own.
    """
    rng = random.Random(f"{seed}/soak/{number}")
    per_task, expected = _lifecycles(rng, tasks, INTERLEAVED_EVENTS_PER_TASK, None, f"soak{number}-")
    offset = timedelta(milliseconds=number * tasks * INTERLEAVED_EVENTS_PER_TASK)
    return Plan(f"soak block {number}", _stamp(rng, interleave(per_task), start + offset),
                expected, tasks)


def soak_blocks(events: int, window: int) -> list[int]:
    """Tasks per soak block: ``window`` tasks in progress at once, ``events`` in all."""
    tasks = max(1, events // INTERLEAVED_EVENTS_PER_TASK)
    return [min(window, tasks - first) for first in range(0, tasks, window)]


def split(messages: list[Message], producers: int) -> list[list[Message]]:
    """One list per producer; all events of a task (or job) go to the same one, in order."""
    streams: list[list[Message]] = [[] for _ in range(producers)]
    for name, kwargs in messages:
        key = kwargs.get("job_task_id") or kwargs.get("job_id") or ""
        streams[zlib.crc32(key.encode()) % producers].append((name, kwargs))
    return streams

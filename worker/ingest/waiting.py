"""The buffer's waiting line: messages by job, then by task, oldest first.

A batch costs the store about one update per task it touches and one per
Job (``worker.ingest.jobs``), and two batches in flight that touch the
same task or Job race for the same document: one of them writes again. So
the line keeps a task's messages together, and the tasks of one Job
together in a *lane*, and a batch takes whole lanes, oldest first, skipping
the lanes another batch in flight holds while other work waits.

A task's Job is known from its ``job_task.created`` (the only task event
that names it); the line remembers it (``JOBS_REMEMBERED`` tasks at most, least recently
seen forgotten first). A task whose Job is not known yet is a lane of its
own, moved into its Job's lane when its created arrives. A Job's own events
(``job.*``) are grouped as ``#<job_id>`` in its lane. Lanes are an
optimisation only: any batch may hold any message, and the rules make the
result the same.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Set
from typing import Protocol

JOBS_REMEMBERED = 200_000
JOB_GROUP = "#"  # a group named so holds a Job's own events, not a task's


class Waiting(Protocol):
    """What the line needs of a held message (``worker.ingest.batching.Held``)."""

    group: str  # its task (the message id when it names none)
    job: str | None  # the Job it names, if it does


Lane = OrderedDict[str, list]  # task -> its waiting messages, in arrival order


class WaitingLine:
    """Held messages not yet in a batch."""

    def __init__(self, jobs_remembered: int = JOBS_REMEMBERED) -> None:
        self._lanes: OrderedDict[str, Lane] = OrderedDict()
        self._lane_of: dict[str, str] = {}  # task -> the lane holding its messages now
        self._job_of: OrderedDict[str, str] = OrderedDict()
        self._jobs_remembered = jobs_remembered
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator:
        for lane in self._lanes.values():
            for messages in lane.values():
                yield from messages

    def lane_key(self, group: str, job: str | None = None) -> str:
        """The lane a task's messages join: its Job's, when known."""
        job = job or self._job_of.get(group)
        return f"job/{job}" if job is not None else f"task/{group}"

    def add(self, held: Waiting) -> None:
        if held.job is not None and not held.group.startswith(JOB_GROUP):
            self._learn(held.group, held.job)
        key = self._lane_of.get(held.group) or self.lane_key(held.group, held.job)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = OrderedDict()
        lane.setdefault(held.group, []).append(held)
        self._lane_of[held.group] = key
        self.count += 1

    def _learn(self, task: str, job: str) -> None:
        self._job_of[task] = job
        self._job_of.move_to_end(task)
        if len(self._job_of) > self._jobs_remembered:
            self._job_of.popitem(last=False)
        own = f"task/{task}"
        if self._lane_of.get(task) == own:  # events that came before their created
            messages = self._lanes.pop(own)[task]
            target = self._lanes.setdefault(f"job/{job}", OrderedDict())
            target.setdefault(task, []).extend(messages)
            self._lane_of[task] = f"job/{job}"

    def put_back(self, batch: Iterable[Waiting]) -> None:
        """Messages of a batch that never ran: first in line again, in their order."""
        for held in reversed(list(batch)):
            key = self._lane_of.get(held.group) or self.lane_key(held.group, held.job)
            lane = self._lanes.setdefault(key, OrderedDict())
            self._lanes.move_to_end(key, last=False)
            lane.setdefault(held.group, []).insert(0, held)
            lane.move_to_end(held.group, last=False)
            self._lane_of[held.group] = key
            self.count += 1

    def take(self, size: int, busy: Set[str] = frozenset()) -> tuple[list, set[str]]:
        """The next batch of up to ``size`` messages, and the lanes it took from.

        Whole lanes and whole tasks, oldest first, lanes in ``busy`` last. A
        task that does not fit gives what fits and stays first in line.
        """
        batch: list = []
        taken: set[str] = set()
        while self._lanes and len(batch) < size:
            key = next((key for key in self._lanes if key not in busy), None) or next(iter(self._lanes))
            lane = self._lanes[key]
            taken.add(key)
            while lane and len(batch) < size:
                task, messages = next(iter(lane.items()))
                room = size - len(batch)
                if len(messages) <= room:
                    batch += messages
                    del lane[task]
                    del self._lane_of[task]
                else:
                    batch += messages[:room]
                    del messages[:room]
            if not lane:
                del self._lanes[key]
        self.count -= len(batch)
        return batch, taken

    def clear(self) -> list:
        """Every waiting message, the line emptied."""
        messages = list(self)
        self._lanes.clear()
        self._lane_of.clear()
        self.count = 0
        return messages

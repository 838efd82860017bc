"""A Job's tasks, kept a part at a time; pure, no I/O.

A Job of 50,000 tasks cannot keep a view of each task in one document that
every batch rewrites: the cost of a batch would grow with the Job. So a
Job's tasks are kept in parts of about ``PART_SIZE`` tasks (``PartState``),
and the Job keeps one ``PartSummary`` per part, which is all its fields are
derived from. A batch rewrites the parts of the tasks it touched and their
summaries in the Job, nothing that grows with the Job.

A task's part is fixed when the task is founded (``part_of`` the tasks its
Job knew then), so it never moves. Concurrent founders may put a few more
than ``PART_SIZE`` tasks in one part; nothing depends on the exact size.

A summary carries its part's version, and a Job replaces a part's summary
only by a newer one (``PartSummary.newer_than``), so two workers that
write one part and then its Job, in either order, leave the Job with the
part's last state; one that dies between the two leaves the summary behind
until the next batch that touches the part (its redelivery does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from worker.contract.lifecycle import STATUSES, Summary, derived

PART_SIZE = 256


def part_of(tasks_known: int) -> int:
    """The part of a task founded when its Job knew ``tasks_known`` tasks."""
    return tasks_known // PART_SIZE


@dataclass(frozen=True)
class TaskView:
    """What a Job knows of one of its tasks: its state at one version."""

    version: int
    status: str
    created_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    # The job's endings (event ids) already sent to this task as task events.
    endings_sent: frozenset[str] = frozenset()

    def newer_than(self, other: TaskView | None) -> bool:
        return other is None or self.version > other.version

    @classmethod
    def of(cls, version: int, summary: Summary) -> TaskView:
        """What a Job keeps of one of its tasks, at the task's version."""
        fields = derived(summary)
        return cls(version, fields["status"], fields["created_count"], fields["created_at"],
                   fields["updated_at"], fields["finished_at"])


def _latest(moments: Iterable[datetime | None]) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


@dataclass(frozen=True)
class PartSummary:
    """What a Job keeps of one part: what its fields need, at the part's version."""

    version: int
    tasks: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)  # tasks per status, zeros left out
    created_count: int = 0
    created_at: datetime | None = None  # the earliest of its tasks'
    updated_at: datetime | None = None  # the latest
    finished_at: datetime | None = None  # the latest
    endings_done: frozenset[str] = frozenset()  # the endings sent to every task of the part

    def newer_than(self, other: PartSummary | None) -> bool:
        return other is None or self.version > other.version


@dataclass(frozen=True)
class PartState:
    """One part of a Job: the latest view of each of its tasks, at the part's version."""

    number: int
    version: int = 0  # 0: not stored yet
    tasks: Mapping[str, TaskView] = field(default_factory=dict)

    def with_task(self, job_task_id: str, view: TaskView) -> PartState:
        """A newer view of a task replaces the one known, keeping what was sent to it; an older one changes nothing."""
        known = self.tasks.get(job_task_id)
        if not view.newer_than(known):
            return self
        if known is not None:
            view = replace(view, endings_sent=view.endings_sent | known.endings_sent)
        return replace(self, tasks={**self.tasks, job_task_id: view})

    def with_endings_sent(self, job_task_id: str, ending_ids: set[str]) -> PartState:
        known = self.tasks.get(job_task_id)
        if known is None or ending_ids <= known.endings_sent:
            return self
        view = replace(known, endings_sent=known.endings_sent | ending_ids)
        return replace(self, tasks={**self.tasks, job_task_id: view})

    def unsent(self, ending_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(task, ending id) pairs of this part still to be sent: every ending acts on every task."""
        wanted = sorted(ending_ids)
        return [(job_task_id, ending_id) for job_task_id, view in sorted(self.tasks.items())
                for ending_id in wanted if ending_id not in view.endings_sent]

    def summary(self) -> PartSummary:
        views = list(self.tasks.values())
        counts = {status: sum(1 for view in views if view.status == status) for status in STATUSES}
        done = frozenset.intersection(*(view.endings_sent for view in views)) if views else frozenset()
        return PartSummary(
            version=self.version,
            tasks=len(views),
            counts={status: count for status, count in counts.items() if count},
            created_count=sum(view.created_count for view in views),
            created_at=_earliest(view.created_at for view in views),
            updated_at=_latest(view.updated_at for view in views),
            finished_at=_latest(view.finished_at for view in views),
            endings_done=done,
        )


def plan_part(before: PartState, views: Iterable[tuple[str, TaskView]],
              endings_sent: Mapping[str, set[str]]) -> PartState:
    """The part after a batch: its tasks' newer views, the endings sent noted, one version on if it changed."""
    after = before
    for job_task_id, view in views:
        after = after.with_task(job_task_id, view)
    for job_task_id, ending_ids in endings_sent.items():
        after = after.with_endings_sent(job_task_id, ending_ids)
    return after if after == before else replace(after, version=before.version + 1)

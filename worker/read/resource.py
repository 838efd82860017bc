"""What the read side needs to know about one kind of stored document, as a value.

A ``Resource`` names a collection and its public fields; the query
translation, the request models, the reads, the HTTP routes and the CLI take
one and know nothing else about the documents they serve. ``JOB_TASK`` is
the JobTask, ``JOB`` the Job its tasks belong to (derived by the worker,
``worker.store.jobs``); each face serves both with one call per resource
(``worker.api.reads.add_reads``, ``worker.cli.jobtask.add_read_commands``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.contract.jobs import JOB_STATUSES
from worker.contract.lifecycle import STATUSES as JOB_TASK_STATUSES
from worker.store.collections import JOB_TASKS, JOBS
from worker.store.documents import JOB_FIELDS, JOB_TASK_FIELDS


@dataclass(frozen=True, eq=False)
class Resource:
    """One readable kind of document: its collection, fields and list defaults.

    ``fields`` maps each public field, in response order, to the type it is
    returned as (``datetime`` fields are stored as dates, compared as dates
    and returned as ``2022-07-17T16:00:08.266Z``); nothing else ever leaves
    the store. ``open_fields`` are the objects a dotted path may go into
    (``options.month``). ``param_filters`` are the request parameters of
    list and stat that narrow like an ``eq`` filter. Every resource carries
    ``domain_id``, ``workspace_id`` and ``resource_group``, which the
    caller's scope filters on.
    """

    name: str
    plural: str
    collection: str
    id_field: str
    fields: Mapping[str, Any]
    minimal_fields: tuple[str, ...]
    statuses: tuple[str, ...]
    param_filters: tuple[str, ...]
    default_sort: tuple[tuple[str, int], ...] = (("created_at", -1),)
    open_fields: frozenset[str] = field(default_factory=lambda: frozenset({"options"}))

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.fields)

    @property
    def datetime_fields(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.fields.items() if kind is datetime)

    @property
    def tiebreaker(self) -> tuple[str, int]:
        """The last sort key, so equal sort values still page in one stable order."""
        return (self.id_field, 1)

    @property
    def get_params(self) -> tuple[str, ...]:
        """What ``get`` accepts: the id, and a workspace that narrows it like in list."""
        return (self.id_field, "workspace_id")


JOB_TASK = Resource(
    name="JobTask",
    plural="JobTasks",
    collection=JOB_TASKS,
    id_field="job_task_id",
    fields=JOB_TASK_FIELDS,
    minimal_fields=("job_task_id", "status", "created_count", "job_id", "data_source_id", "workspace_id"),
    statuses=JOB_TASK_STATUSES,
    param_filters=("job_task_id", "status", "workspace_id", "job_id", "data_source_id"),
)


JOB = Resource(
    name="Job",
    plural="Jobs",
    collection=JOBS,
    id_field="job_id",
    fields=JOB_FIELDS,
    minimal_fields=("job_id", "status", "total_tasks", "remained_tasks", "data_source_id", "workspace_id"),
    statuses=JOB_STATUSES,
    param_filters=("job_id", "status", "data_source_id", "workspace_id"),
    # Newest first: the jobs' index domain_created (worker.store.collections).
    default_sort=(("created_at", -1),),
    # task_counts.FAILURE and the like are queried like options.month.
    open_fields=frozenset({"options", "task_counts"}),
)

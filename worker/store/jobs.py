"""The Job documents: one document per Job, derived from its events and its tasks' states.

A Job document keeps what it is derived from (``contract.jobs.JobState``):
its accepted events (``_events``), the accepted ``job.created`` and its
endings (``_state``), and a summary of each part of its tasks (``_parts``,
by part number; the parts themselves are ``worker.store.job_parts``), each
replaced only by a newer version of its part, so the document's size grows
with a Job's tasks by one small summary per few hundred tasks, and a batch
names only the summaries it changed. ``_task_count`` is the tasks it knows,
which fixes a new task's part. The public fields are recomputed from these by
``contract.jobs.job_fields`` on every change, and the document moves from
one ``_v`` to the next by a ``$set`` guarded by the ``_v`` it had, so two
workers changing one Job at once never lose each other's change: the one
that lost reads the Job again and redoes its change.

A Job exists as soon as an event names it. ``found_jobs`` inserts the Job a
task's created names before that created is committed, so that the Job's
domain is fixed first and a task of another domain is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.contract.events import Created
from worker.contract.jobs import (
    Declaration,
    Ending,
    JobState,
    LoggedJobEvent,
    job_fields,
)
from worker.contract.readers import READER_FIELD, reader_key
from worker.store import documents
from worker.store.collections import DUPLICATE_KEY, JOBS
from worker.store.documents import JOB_FIELDS, as_key, from_key
from worker.store.guarded import write_guarded
from worker.store.job_parts import summary_doc, summary_from
from worker.store.retry import check_bulk_errors

# --- the state as BSON --------------------------------------------------------------------------------


def _declaration_doc(declaration: Declaration) -> dict:
    return {"event_id": declaration.event_id, "at": declaration.occurred_at,
            "total_tasks": declaration.total_tasks, "data_source_id": declaration.data_source_id,
            "workspace_id": declaration.workspace_id, "resource_group": declaration.resource_group,
            "options": declaration.options}


def _declaration_from(doc: dict | None) -> Declaration | None:
    if not doc:
        return None
    return Declaration(doc["event_id"], doc["at"], doc["total_tasks"], doc["data_source_id"],
                       doc.get("workspace_id"), doc["resource_group"], doc.get("options") or {})


def _ending_doc(ending: Ending) -> dict:
    return {"status": ending.status, "event_id": ending.event_id, "at": ending.occurred_at,
            "reason": ending.reason}


def _ending_from(doc: dict) -> Ending:
    return Ending(doc["status"], doc["event_id"], doc["at"], doc.get("reason"))


@dataclass
class JobRow:
    """A Job document as the worker reads it."""

    version: int
    state: JobState
    events: dict[str, LoggedJobEvent] = field(default_factory=dict)
    created_on: datetime | None = None  # the worker's clock when the Job was first stored
    write_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # who wrote this version


def row_from(doc: dict) -> JobRow:
    kept = doc.get("_state") or {}
    state = JobState(
        job_id=doc["job_id"],
        domain_id=doc["domain_id"],
        data_source_id=kept.get("data_source_id"),
        workspace_id=kept.get("workspace_id"),
        resource_group=kept.get("resource_group") or "DOMAIN",
        declaration=_declaration_from(kept.get("declaration")),
        endings=tuple(_ending_from(ending) for ending in kept.get("endings", ())),
        parts={int(number): summary_from(part) for number, part in (doc.get("_parts") or {}).items()},
    )
    events = {from_key(key): LoggedJobEvent(item["f"], item.get("m", ""))
              for key, item in (doc.get("_events") or {}).items()}
    return JobRow(doc.get("_v", 0), state, events, doc.get("_created_on"))


def read_jobs(db: Database, job_ids: set[str]) -> dict[str, JobRow]:
    if not job_ids:
        return {}
    return {doc["job_id"]: row_from(doc) for doc in db[JOBS].find({"_id": {"$in": sorted(job_ids)}})}


def _public(state: JobState) -> tuple[dict, dict]:
    """($set, $unset) of the public fields."""
    fields = job_fields(state)
    return ({name: value for name, value in fields.items() if value is not None},
            {name: "" for name, value in fields.items() if value is None})


def _reader(state: JobState) -> str:
    return reader_key(state.resource_group, state.workspace_id)


def _kept(state: JobState) -> dict:
    return {
        "data_source_id": state.data_source_id,
        "workspace_id": state.workspace_id,
        "resource_group": state.resource_group,
        "declaration": _declaration_doc(state.declaration) if state.declaration else None,
        "endings": [_ending_doc(ending) for ending in state.endings],
    }


def job_update(before: JobRow | None, after: JobRow) -> UpdateOne:
    """Move a Job document from ``before`` to ``after``, if nobody has meanwhile.

    Only what changed is named: secantusdb's cost grows with what an update names.
    """
    changes, cleared = _public(after.state)
    if before is not None:
        known, known_cleared = _public(before.state)
        changes = {name: value for name, value in changes.items() if known.get(name) != value}
        cleared = {name: "" for name in cleared if name not in known_cleared}
    changes.update(_v=after.version, _w=after.write_id)
    readers = _reader(after.state)
    if before is None or readers != _reader(before.state):
        changes[READER_FIELD] = readers
    kept = _kept(after.state)
    if before is None or kept != _kept(before.state):
        changes["_state"] = kept
    if before is None or after.state.task_count != before.state.task_count:
        changes["_task_count"] = after.state.task_count
    old_parts = before.state.parts if before else {}
    for number, part in after.state.parts.items():
        if old_parts.get(number) != part:
            changes[f"_parts.{number}"] = summary_doc(part)
    old_events = before.events if before else {}
    for event_id, logged in after.events.items():
        if event_id not in old_events:
            changes[f"_events.{as_key(event_id)}"] = {"f": logged.fingerprint, "m": logged.message_id}
    update: dict = {"$set": changes}
    if before is None:
        changes["_created_on"] = datetime.now(UTC)
        if not after.state.parts:
            changes["_parts"] = {}
    if cleared:
        update["$unset"] = cleared
    guard = {"_id": after.state.job_id, "_v": before.version if before else {"$exists": False}}
    return UpdateOne(guard, update, upsert=before is None)


def write_jobs(db: Database, rows: list[tuple[JobRow | None, JobRow]]) -> set[str]:
    """Apply guarded Job updates; returns the jobs another writer changed first."""
    return write_guarded(db[JOBS], {after.state.job_id: (job_update(before, after), after.write_id)
                                    for before, after in rows})


def found_jobs(db: Database, founders: dict[str, Created]) -> dict[str, tuple[str, int]]:
    """Make sure the Jobs that new tasks name exist; returns each one's (domain, tasks known).

    A Job that does not exist is inserted from the created that names it
    (its domain, data source and placement), so that its domain is fixed
    before the task is committed.
    """
    if not founders:
        return {}
    fields = {"job_id": 1, "domain_id": 1, "_task_count": 1}
    known = {doc["job_id"]: (doc["domain_id"], doc.get("_task_count", 0))
             for doc in db[JOBS].find({"_id": {"$in": sorted(founders)}}, fields)}
    missing = {job_id: created for job_id, created in founders.items() if job_id not in known}
    if not missing:
        return known
    ops = []
    for job_id, created in missing.items():
        state = JobState(job_id, created.domain_id, created.data_source_id, created.workspace_id,
                         created.resource_group or "DOMAIN")
        public, _cleared = _public(state)
        ops.append(UpdateOne(
            {"_id": job_id},
            {"$setOnInsert": {**public, "_v": 0, READER_FIELD: _reader(state), "_state": _kept(state),
                              "_parts": {}, "_events": {},
                              "_task_count": 0, "_created_on": datetime.now(UTC)}},
            upsert=True,
        ))
    try:
        db[JOBS].bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        check_bulk_errors(exc, tolerated={DUPLICATE_KEY})  # inserted by another writer meanwhile
    cursor = db[JOBS].find({"_id": {"$in": sorted(missing)}}, fields)
    known.update({doc["job_id"]: (doc["domain_id"], doc.get("_task_count", 0)) for doc in cursor})
    return known


def stored_job(db: Database, job_id: str) -> dict | None:
    """One Job as readers see it (internal fields left out); for tests and tools."""
    doc = db[JOBS].find_one({"_id": job_id})
    if doc is None:
        return None
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def public_jobs(db: Database, job_ids: set[str]) -> list[dict]:
    """These Jobs as readers see them, by id (for the change feed); their internal maps stay behind."""
    return documents.public_by_id(db[JOBS], JOB_FIELDS, job_ids)


def count_by_status(db: Database) -> list[dict]:
    """Jobs per status (for the gauges)."""
    return documents.count_by_status(db[JOBS])

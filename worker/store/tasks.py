"""The JobTask documents: each task's event log folded, moved one entry at a time.

Every task has a log (``worker.store.log``): one entry per batch that
added events to it, numbered without gaps; inserting an entry is the commit.

The task document (``job_tasks``) is the log folded: its ``_v`` says how many
entries it holds, and it moves from one number to the next by a plain
``$set`` guarded by the number it had, so each entry is folded exactly once,
by whichever worker gets there first. A worker that dies between the two
writes leaves an entry that the next writer of the task folds (``catch_up``).

So the cost of an event does not grow with the events its task already has:
the task document has a fixed size, and an entry holds one batch's events.

Internal fields start with ``_`` and are never returned by the read API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.contract.acceptance import Identity, StoredTask
from worker.contract.events import Created, identity_fields
from worker.contract.lifecycle import EMPTY, derived, merge
from worker.contract.readers import READER_FIELD, reader_key
from worker.store import documents
from worker.store.collections import DUPLICATE_KEY, JOB_TASKS
from worker.store.documents import JOB_TASK_FIELDS
from worker.store.log import LogEntry, entries_after
from worker.store.retry import check_bulk_errors
from worker.store.summaries import summary_doc, summary_from

# --- task documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    """A task document as the worker reads it: its log number and its state."""

    job_task_id: str
    version: int
    state: StoredTask
    job_id: str
    part: int = 0  # its part of its Job's tasks (worker.contract.job_parts), fixed at founding


NO_ROW_VERSION = 0  # a task without a document has folded no entry


def row_from(doc: dict) -> TaskRow:
    identity = Identity(doc["domain_id"], doc["_identity"])
    state = StoredTask(identity, summary_from(doc["_state"]), doc["_events"])
    return TaskRow(doc["job_task_id"], doc["_v"], state, doc["job_id"], doc.get("_part", 0))


ROW_FIELDS = {"_id": 0, "job_task_id": 1, "job_id": 1, "domain_id": 1, "_identity": 1, "_v": 1,
              "_state": 1, "_events": 1, "_part": 1}


def read_tasks(db: Database, job_task_ids: set[str]) -> dict[str, TaskRow]:
    if not job_task_ids:
        return {}
    cursor = db[JOB_TASKS].find({"_id": {"$in": sorted(job_task_ids)}}, ROW_FIELDS)
    return {doc["job_task_id"]: row_from(doc) for doc in cursor}


def task_update(before: TaskRow | None, after: TaskRow, founding: dict | None) -> UpdateOne:
    """Move a task document from ``before`` to ``after``, if nobody has meanwhile.

    ``founding`` is the identity of a task that has no document yet (its
    first entry's): the update then inserts it. The guard on ``_v`` makes the
    update happen once: a second writer of the same step matches nothing (or,
    for a new task, hits the unique job_task_id and is refused).
    """
    fields = derived(after.state.summary)
    known = derived(before.state.summary) if before else dict.fromkeys(fields)
    # Only what changed: secantusdb's cost grows with what an update names.
    changes = {name: value for name, value in fields.items() if value is not None and value != known[name]}
    changes.update(
        _v=after.version, _state=summary_doc(after.state.summary), _events=after.state.events,
        # When an event was last applied, on the worker's clock: what the sweep
        # measures staleness by (never a producer's occurred_at).
        _applied_at=datetime.now(UTC),
    )
    update: dict = {"$set": changes}
    cleared = {name: "" for name, value in fields.items() if value is None and known[name] is not None}
    if before is None:
        changes.update(founding or {}, job_task_id=after.job_task_id)
    elif cleared:
        update["$unset"] = cleared
    version = before.version if before else NO_ROW_VERSION
    return UpdateOne({"_id": after.job_task_id, "_v": version}, update, upsert=before is None)


def write_tasks(db: Database, updates: list[UpdateOne]) -> None:
    """Apply guarded task updates; one that lost its race to another writer is fine."""
    if not updates:
        return
    try:
        db[JOB_TASKS].bulk_write(updates, ordered=False)
    except BulkWriteError as exc:
        # A new task inserted by another writer meanwhile: that writer folded
        # the same first entry, so nothing is lost.
        check_bulk_errors(exc, tolerated={DUPLICATE_KEY})


def founding_fields(created: Created, fingerprint: str, part: int) -> dict:
    """What a task's first entry fixes for good: its identity fields, and its part of its Job."""
    fields = {key: value for key, value in identity_fields(created).items() if value is not None}
    return {**fields, "_identity": fingerprint, "_part": part,
            READER_FIELD: reader_key(created.resource_group, created.workspace_id)}


def advance(before: TaskRow | None, entry: LogEntry) -> TaskRow:
    """The task after folding ``entry``, the entry right after ``before``."""
    if before is None:
        founding = entry.founding or {}
        state = StoredTask(Identity(founding["domain_id"], founding["_identity"]), EMPTY, 0)
        job_id, part = founding["job_id"], founding.get("_part", 0)
    else:
        state, job_id, part = before.state, before.job_id, before.part
    summary = merge(state.summary, entry.contribution)
    return TaskRow(entry.job_task_id, entry.version,
                   StoredTask(state.identity, summary, state.events + len(entry.events)), job_id, part)


def catch_up(db: Database, rows: dict[str, TaskRow | None]) -> dict[str, TaskRow]:
    """Fold every entry a task document does not hold yet; returns the tasks as folded.

    Entries are immutable and numbered without gaps, so whoever folds them
    computes the same document; the guarded update makes it happen once.
    """
    folded, updates = {}, []
    for job_task_id, row in rows.items():
        entries = entries_after(db, job_task_id, row.version if row else NO_ROW_VERSION)
        if not entries:
            if row is not None:
                folded[job_task_id] = row
            continue
        after = advance(row, entries[0])
        for entry in entries[1:]:
            after = advance(after, entry)
        founding = entries[0].founding if row is None else None
        updates.append(task_update(row, after, founding))
        folded[job_task_id] = after
    write_tasks(db, updates)
    return folded


def stored_task(db: Database, job_task_id: str) -> dict | None:
    """One task as readers see it (internal fields left out); for tests and tools."""
    doc = db[JOB_TASKS].find_one({"_id": job_task_id})
    if doc is None:
        return None
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def public_tasks(db: Database, job_task_ids: set[str]) -> list[dict]:
    """These tasks as readers see them, by id (for the change feed)."""
    return documents.public_by_id(db[JOB_TASKS], JOB_TASK_FIELDS, job_task_ids)


def count_by_status(db: Database) -> list[dict]:
    """Tasks per status (for the gauges)."""
    return documents.count_by_status(db[JOB_TASKS])

"""The JobTask store: each task's event log, and its document derived from it.

Every task has a log (``job_task_log``): one entry per batch that added
events to it, numbered 1, 2, 3... without gaps. An entry lists the events it
adds (``ev``, each once: a unique index on the task and event_id refuses an
event logged before) and their merged ``lifecycle.Summary``; the first entry
also carries the identity from the task's ``created``. Inserting an entry is
the commit: it claims the task's next number and its events in one atomic
write, or fails whole.

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

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pymongo
from pymongo import InsertOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.contract.acceptance import Identity, StoredTask
from worker.contract.events import Created, identity_fields
from worker.contract.history_keys import HISTORY_COLLECTION
from worker.contract.lifecycle import EMPTY, Summary, Terminal, derived, merge
from worker.ingest.jobs import ensure_job_indexes
from worker.ingest.retry import check_bulk_errors

JOB_TASKS = "job_tasks"
LOG = "job_task_log"
EVENTS = HISTORY_COLLECTION
DEAD_LETTERS = "job_task_dead_letters"

DUPLICATE_KEY = 11000
# The largest event a log entry holds: its key (task id up to 64, '/', event
# id up to 128), its fingerprint (32), its message id (up to 128 or a 71
# character digest), with BSON's names and lengths. An entry holds one batch
# (JOBTASK_BATCH_SIZE, at most 10,000 events) plus a summary and an identity
# whose options are at most 16 KiB.
MAX_LOGGED_EVENT_BYTES = 420
MAX_ENTRY_BYTES = 10_000 * MAX_LOGGED_EVENT_BYTES + 64 * 1024
LOGGED_EVENT_INDEX = "logged_event_unique"
# A log entry's number, zero-padded so that entries sort by number as text.
VERSION_DIGITS = 10


def ensure_indexes(db: Database) -> None:
    """Create what the worker and the read API rely on; safe to run at every start.

    A task's ``_id`` is its job_task_id, so the index every collection has is
    also the one that finds a task by id. On MongoDB an index whose keys an
    update does not change costs that update nothing; secantusdb rewrites
    every index entry of a document on each update, so each index here is
    one the reads need: a domain's tasks newest first, of one status, of one
    job, and of the workspaces a token may read (the sweep uses the status
    index too). Filters on other fields (data_source_id, resource_group)
    read a domain's tasks in created_at order and filter them.
    """
    refuse_older_layout(db)
    ensure_job_indexes(db)
    tasks = db[JOB_TASKS]
    newest_first = [("created_at", pymongo.DESCENDING), ("job_task_id", pymongo.ASCENDING)]
    tasks.create_index([("domain_id", 1), *newest_first], name="domain_created")
    for key in ("status", "job_id", "workspace_id"):
        tasks.create_index([("domain_id", 1), (key, 1), *newest_first], name=f"domain_{key}_created")
    db[LOG].create_index("ev.i", unique=True, name=LOGGED_EVENT_INDEX)
    events = db[EVENTS]
    # A task's history is one _id range (history_keys.owned_by); only what waits
    # for its created needs an index of its own.
    events.create_index(
        [("job_task_id", 1)],
        name="parked_by_job_task",
        partialFilterExpression={"outcome": "parked"},
    )
    db[DEAD_LETTERS].create_index([("dead_lettered_at", -1)], name="dead_lettered_at")


class OlderLayout(RuntimeError):
    """The store holds JobTasks written by an earlier, incompatible version."""


def refuse_older_layout(db: Database) -> None:
    """Stop at start rather than write beside documents of another layout."""
    older = db[JOB_TASKS].find_one({"_v": {"$exists": False}}, {"job_task_id": 1})
    if older is not None:
        raise OlderLayout(
            f"database {db.name} holds JobTasks of an earlier layout (e.g. {older.get('job_task_id')}); "
            "rebuild them from the history into a new database, or start on an empty one"
        )


# --- the mergeable state as BSON ----------------------------------------------------------------


def _terminal_doc(terminal: Terminal) -> dict:
    doc = {
        "at": terminal.occurred_at,
        "event_id": terminal.event_id,
        "status": terminal.status,
        "delta": terminal.created_count_delta,
    }
    if terminal.error_code is not None:
        doc["error_code"] = terminal.error_code
        doc["error_message"] = terminal.error_message
    return doc


def _terminal_from(doc: dict | None) -> Terminal | None:
    if not doc:
        return None
    return Terminal(
        occurred_at=doc["at"],
        event_id=doc["event_id"],
        status=doc["status"],
        error_code=doc.get("error_code"),
        error_message=doc.get("error_message"),
        created_count_delta=doc.get("delta", 0),
    )


def summary_doc(summary: Summary) -> dict:
    doc = {
        "created_at": summary.created_at,
        "started_at": summary.started_at,
        "progress": summary.progress_count,
        "activity_at": summary.activity_at,
        "terminal": _terminal_doc(summary.terminal) if summary.terminal else None,
    }
    return {key: value for key, value in doc.items() if value is not None}


def summary_from(doc: dict) -> Summary:
    return Summary(
        created_at=doc.get("created_at"),
        started_at=doc.get("started_at"),
        progress_count=doc.get("progress", 0),
        activity_at=doc.get("activity_at"),
        terminal=_terminal_from(doc.get("terminal")),
    )


# --- task documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    """A task document as the worker reads it: its log number and its state."""

    job_task_id: str
    version: int
    state: StoredTask
    job_id: str


NO_ROW_VERSION = 0  # a task without a document has folded no entry


def row_from(doc: dict) -> TaskRow:
    identity = Identity(doc["domain_id"], doc["_identity"])
    state = StoredTask(identity, summary_from(doc["_state"]), doc["_events"])
    return TaskRow(doc["job_task_id"], doc["_v"], state, doc["job_id"])


ROW_FIELDS = {"_id": 0, "job_task_id": 1, "job_id": 1, "domain_id": 1, "_identity": 1, "_v": 1,
              "_state": 1, "_events": 1}


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


# --- the log ----------------------------------------------------------------------------------------


def entry_id(job_task_id: str, version: int) -> str:
    return f"{job_task_id}/{version:0{VERSION_DIGITS}d}"


def event_key(job_task_id: str, event_id: str) -> str:
    """Ids cannot contain '/', so the pair is unambiguous."""
    return f"{job_task_id}/{event_id}"


@dataclass(frozen=True)
class LoggedEvent:
    """An event as its task's log holds it: enough to tell a resend from a conflict."""

    event_id: str
    fingerprint: str
    message_id: str


@dataclass(frozen=True)
class LogEntry:
    """One batch's events added to one task: the step from ``version - 1`` to ``version``."""

    job_task_id: str
    version: int
    batch_id: str
    events: tuple[LoggedEvent, ...]
    contribution: Summary
    founding: dict | None = None  # identity fields and fingerprint, on a task's first entry

    def doc(self) -> dict:
        doc = {
            "_id": entry_id(self.job_task_id, self.version),
            "t": self.job_task_id,
            "v": self.version,
            "b": self.batch_id,
            "at": datetime.now(UTC),
            "ev": [
                {"i": event_key(self.job_task_id, e.event_id), "f": e.fingerprint, "m": e.message_id}
                for e in self.events
            ],
            "s": summary_doc(self.contribution),
        }
        if self.founding is not None:
            doc["c"] = self.founding
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> LogEntry:
        prefix = len(doc["t"]) + 1
        events = tuple(LoggedEvent(e["i"][prefix:], e["f"], e.get("m", "")) for e in doc["ev"])
        return cls(doc["t"], doc["v"], doc.get("b", ""), events, summary_from(doc["s"]), doc.get("c"))


def founding_fields(created: Created, fingerprint: str) -> dict:
    """What a task's first entry fixes for good: its identity fields."""
    fields = {key: value for key, value in identity_fields(created).items() if value is not None}
    return {**fields, "_identity": fingerprint}


def advance(before: TaskRow | None, entry: LogEntry) -> TaskRow:
    """The task after folding ``entry``, the entry right after ``before``."""
    if before is None:
        founding = entry.founding or {}
        state = StoredTask(Identity(founding["domain_id"], founding["_identity"]), EMPTY, 0)
        job_id = founding["job_id"]
    else:
        state, job_id = before.state, before.job_id
    summary = merge(state.summary, entry.contribution)
    return TaskRow(entry.job_task_id, entry.version,
                   StoredTask(state.identity, summary, state.events + len(entry.events)), job_id)


@dataclass
class ClaimReport:
    """What became of each entry of a ``claim``, by its index."""

    committed: set[int] = field(default_factory=set)
    taken: set[int] = field(default_factory=set)  # another entry holds this number
    logged_before: set[int] = field(default_factory=set)  # one of its events is logged already


def claim(db: Database, entries: list[LogEntry]) -> ClaimReport:
    """Insert the entries; each one commits whole or not at all."""
    report = ClaimReport()
    if not entries:
        return report
    try:
        db[LOG].bulk_write([InsertOne(entry.doc()) for entry in entries], ordered=False)
    except BulkWriteError as exc:
        for error in check_bulk_errors(exc, tolerated={DUPLICATE_KEY}):
            pattern = error.get("keyPattern") or {}
            is_event = "ev.i" in pattern or LOGGED_EVENT_INDEX in error.get("errmsg", "")
            (report.logged_before if is_event else report.taken).add(error["index"])
    failed = report.taken | report.logged_before
    report.committed = {index for index in range(len(entries)) if index not in failed}
    return report


def logged_events(db: Database, keys: set[str]) -> dict[str, tuple[int, LoggedEvent]]:
    """Where each of these event keys is logged: (entry number, event)."""
    if not keys:
        return {}
    found: dict[str, tuple[int, LoggedEvent]] = {}
    for doc in db[LOG].find({"ev.i": {"$in": sorted(keys)}}, {"t": 1, "v": 1, "ev": 1}):
        prefix = len(doc["t"]) + 1
        for item in doc["ev"]:
            if item["i"] in keys:
                found[item["i"]] = (doc["v"], LoggedEvent(item["i"][prefix:], item["f"], item.get("m", "")))
    return found


def entries_after(db: Database, job_task_id: str, version: int) -> list[LogEntry]:
    """The task's entries after ``version``, in order."""
    query = {"_id": {"$gt": entry_id(job_task_id, version), "$lte": entry_id(job_task_id, 10**VERSION_DIGITS - 1)}}
    return [LogEntry.from_doc(doc) for doc in db[LOG].find(query).sort("_id", 1)]


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

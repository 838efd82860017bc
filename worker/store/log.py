"""Each task's log: the numbered entries of its accepted events; inserting one is the commit.

Every task has a log (``job_task_log``): one entry per batch that added
events to it, numbered 1, 2, 3... without gaps. An entry lists the events it
adds (``ev``, each once: a unique index on the task and event_id refuses an
event logged before) and their merged ``lifecycle.Summary``; the first entry
also carries the identity from the task's ``created``. Inserting an entry is
the commit: it claims the task's next number and its events in one atomic
write, or fails whole. ``worker.store.tasks`` folds the entries into the
task's document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymongo import InsertOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.contract.lifecycle import Summary
from worker.store.collections import DUPLICATE_KEY, LOG, LOGGED_EVENT_INDEX
from worker.store.retry import check_bulk_errors
from worker.store.summaries import summary_doc, summary_from

# The largest event a log entry holds: its key (task id up to 64, '/', event
# id up to 128), its fingerprint (32), its message id (up to 128 or a 71
# character digest), with BSON's names and lengths. An entry holds one batch
# (JOBTASK_BATCH_SIZE, at most 10,000 events) plus a summary and an identity
# whose options are at most 16 KiB.
MAX_LOGGED_EVENT_BYTES = 420
MAX_ENTRY_BYTES = 10_000 * MAX_LOGGED_EVENT_BYTES + 64 * 1024
# A log entry's number, zero-padded so that entries sort by number as text.
VERSION_DIGITS = 10
# Entries asked for at once when a task's document catches up with its log:
# it is behind by one or two, unless a writer died many times over.
CATCH_UP_WINDOW = 8


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
    """The task's entries after ``version``, in order.

    Entries are numbered without gaps, so they are asked for by their ids, a
    window at a time, until one is missing: a lookup by key, whatever the log
    holds (a range of ``_id`` is a collection scan on the embedded store).
    """
    entries: list[LogEntry] = []
    while True:
        wanted = [entry_id(job_task_id, version + step) for step in range(1, CATCH_UP_WINDOW + 1)]
        found = {doc["v"]: LogEntry.from_doc(doc) for doc in db[LOG].find({"_id": {"$in": wanted}})}
        for step in range(1, CATCH_UP_WINDOW + 1):
            if version + step not in found:
                return entries
            entries.append(found[version + step])
        version += CATCH_UP_WINDOW



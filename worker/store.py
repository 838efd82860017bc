"""The JobTask store: the lifecycle rules as atomic MongoDB updates.

Every accepted event reaches its task document through one conditional
update whose pipeline is ``lifecycle.merge`` written in aggregation
expressions; no value is read, changed in Python and written back, so two
workers applying events of one task at once still end in the rule's state.

Idempotency lives in the document itself: ``_applied`` lists each applied
event_id with the fingerprint of its content and the batch and message that
applied it,
and every update is guarded by "none of these event_ids applied yet". A batch
groups the events of one task into a single update, so the store sees one
round trip per task and batch rather than one per event.

Internal fields start with ``_`` and are never returned by the read API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import pymongo
from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from worker.events import Created, identity_fields
from worker.lifecycle import AppliedMarker, StoredView, Summary, Terminal

JOB_TASKS = "job_tasks"
EVENTS = "job_task_events"
DEAD_LETTERS = "job_task_dead_letters"

DUPLICATE_KEY = 11000
SHIP_WHOLE_BELOW = 256  # _applied markers read back whole rather than filtered
# Write errors that a later attempt can get past (MongoDB's error codes).
TRANSIENT_WRITE_ERRORS = frozenset({6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


def connect(mongo_url: str, database: str, timeout_ms: int = 5_000, app: str = "jobtask") -> Database:
    client = pymongo.MongoClient(
        mongo_url,
        appname=app,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, 30_000),
    )
    return client[database]


def ensure_indexes(db: Database) -> None:
    """Create what the worker and the read API rely on; safe to run at every start."""
    tasks = db[JOB_TASKS]
    tasks.create_index("job_task_id", unique=True, name="job_task_id_unique")
    newest_first = [("created_at", pymongo.DESCENDING), ("job_task_id", pymongo.ASCENDING)]
    tasks.create_index([("domain_id", 1), *newest_first], name="domain_created")
    # resource_group: a workspace token's scope is "its workspaces, or DOMAIN".
    for key in ("status", "workspace_id", "job_id", "data_source_id", "resource_group"):
        tasks.create_index([("domain_id", 1), (key, 1), *newest_first], name=f"domain_{key}_created")
    events = db[EVENTS]
    events.create_index([("job_task_id", 1), ("received_at", 1)], name="job_task_received")
    events.create_index(
        [("job_task_id", 1)],
        name="parked_by_job_task",
        partialFilterExpression={"outcome": "parked"},
    )
    db[DEAD_LETTERS].create_index([("dead_lettered_at", -1)], name="dead_lettered_at")


# --- the rules as pipeline stages ---------------------------------------------


def _lit(value):
    """A value as data: a producer's "$x" must never be read as a field path."""
    return {"$literal": value}


def _missing(path: str) -> dict:
    return {"$eq": [{"$type": path}, "missing"]}


# Derived fields, recomputed from the mergeable state after every change
# (lifecycle.status_of and lifecycle.project).
DERIVE = {
    "$set": {
        "status": {
            "$switch": {
                "branches": [
                    {"case": {"$not": [_missing("$_terminal")]}, "then": "$_terminal.status"},
                    {"case": {"$not": [_missing("$started_at")]}, "then": "IN_PROGRESS"},
                ],
                "default": "PENDING",
            }
        },
        "finished_at": {"$ifNull": ["$_terminal.at", "$$REMOVE"]},
        "error_code": {
            "$cond": [{"$eq": ["$_terminal.status", "FAILURE"]}, "$_terminal.error_code", "$$REMOVE"]
        },
        "error_message": {
            "$cond": [{"$eq": ["$_terminal.status", "FAILURE"]}, "$_terminal.error_message", "$$REMOVE"]
        },
        "created_count": {
            "$add": [{"$ifNull": ["$_progress_count", 0]}, {"$ifNull": ["$_terminal.delta", 0]}]
        },
        "updated_at": {"$max": ["$_activity_at", "$_terminal.at"]},
    }
}


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


def _precedes_stored(terminal: Terminal) -> dict:
    """Terminal.precedes against the stored one, as an expression."""
    at, event_id = _lit(terminal.occurred_at), _lit(terminal.event_id)
    return {
        "$or": [
            _missing("$_terminal"),
            {"$lt": [at, "$_terminal.at"]},
            {"$and": [{"$eq": [at, "$_terminal.at"]}, {"$lt": [event_id, "$_terminal.event_id"]}]},
        ]
    }


def merge_stage(summary: Summary, applied: list[dict]) -> dict:
    """lifecycle.merge(stored, summary), plus the applied markers."""
    changes: dict = {"_applied": {"$concatArrays": [{"$ifNull": ["$_applied", []]}, _lit(applied)]}}
    if summary.started_at is not None:
        changes["started_at"] = {"$min": ["$started_at", _lit(summary.started_at)]}
    if summary.progress_count:
        changes["_progress_count"] = {
            "$add": [{"$ifNull": ["$_progress_count", 0]}, summary.progress_count]
        }
    if summary.activity_at is not None:
        changes["_activity_at"] = {"$max": ["$_activity_at", _lit(summary.activity_at)]}
    if summary.terminal is not None:
        changes["_terminal"] = {
            "$cond": [
                _precedes_stored(summary.terminal),
                _lit(_terminal_doc(summary.terminal)),
                "$_terminal",
            ]
        }
    return {"$set": changes}


@dataclass(frozen=True)
class Marker:
    """An applied event as ``_applied`` keeps it."""

    event_id: str
    fingerprint: str
    batch_id: str
    message_id: str

    def doc(self) -> dict:
        return {"e": self.event_id, "f": self.fingerprint, "b": self.batch_id, "m": self.message_id}


def created_update(event: Created, identity: str, summary: Summary, marker: Marker, max_events: int) -> UpdateOne:
    """Upsert for a created: fixes identity on a new document, else must match it."""
    fresh = "$_fresh"
    fixed = {**identity_fields(event), "_identity": identity}
    keep_or_set = {
        name: {"$cond": [fresh, "$$REMOVE" if value is None else _lit(value), f"${name}"]}
        for name, value in fixed.items()
    }
    accept = {
        "$and": [
            {"$or": [fresh, {"$eq": ["$_identity", _lit(identity)]}]},
            # "$_applied.e" would do on MongoDB; secantusdb does not traverse
            # arrays in expression paths, and $map means the same on both.
            {"$not": [{"$in": [_lit(marker.event_id), {
                "$map": {"input": {"$ifNull": ["$_applied", []]}, "in": "$$this.e"}
            }]}]},
            {"$lt": [{"$size": {"$ifNull": ["$_applied", []]}}, max_events]},
        ]
    }
    merged = merge_stage(summary, [marker.doc()])["$set"]
    merged["created_at"] = {"$min": ["$created_at", _lit(summary.created_at)]}
    guarded = {name: {"$cond": ["$_accept", value, f"${name}"]} for name, value in merged.items()}
    guarded["_progress_count"] = {"$ifNull": ["$_progress_count", 0]}
    pipeline = [
        {"$set": {"_fresh": _missing("$_identity")}},
        {"$set": {**keep_or_set, "_accept": accept}},
        {"$set": guarded},
        DERIVE,
        {"$unset": ["_fresh", "_accept"]},
    ]
    return UpdateOne({"job_task_id": event.job_task_id}, pipeline, upsert=True)


def events_update(
    job_task_id: str, domain_id: str, summary: Summary, markers: list[Marker], max_events: int
) -> UpdateOne:
    """One update for any number of non-created events of one created task."""
    event_ids = [marker.event_id for marker in markers]
    room = max_events - len(markers)
    guard = {
        "job_task_id": job_task_id,
        "domain_id": domain_id,
        "_applied.e": {"$nin": event_ids},
        f"_applied.{max(room, 0)}": {"$exists": False},
    }
    return UpdateOne(guard, [merge_stage(summary, [m.doc() for m in markers]), DERIVE])


@dataclass
class WriteReport:
    """What a bulk of task updates did that the read-back cannot tell."""

    created_new: set[str] = field(default_factory=set)  # job_task_ids inserted by a created
    refused: dict[int, str] = field(default_factory=dict)  # op index -> store's reason


def write_tasks(db: Database, ops: list[UpdateOne], created_ids: list[str | None]) -> WriteReport:
    """Run the updates unordered; ``created_ids[i]`` names op i's task if it is a created."""
    report = WriteReport()
    if not ops:
        return report
    try:
        result = db[JOB_TASKS].bulk_write(ops, ordered=False)
        upserted = result.upserted_ids
    except BulkWriteError as exc:
        details = exc.details
        upserted = {item["index"]: item["_id"] for item in details.get("upserted", [])}
        for error in details.get("writeErrors", []):
            code = error.get("code")
            if code == DUPLICATE_KEY or code in TRANSIENT_WRITE_ERRORS:
                continue  # two creates raced, or a passing fault: the next round retries
            report.refused[error["index"]] = f"store refused the update: {error.get('errmsg')}"
    for index in upserted:
        if created_ids[index] is not None:
            report.created_new.add(created_ids[index])
    return report


def read_views(db: Database, job_task_ids: set[str], event_ids: set[str]) -> dict[str, StoredView]:
    """The batch's tasks after its writes, with only the batch's applied markers."""
    if not job_task_ids:
        return {}
    projection = {
        "_id": 0,
        "job_task_id": 1,
        "domain_id": 1,
        "_identity": 1,
        "terminal_event_id": "$_terminal.event_id",
        # Small lists come whole and are filtered here: a server-side $filter
        # costs markers x batch ids per document, which dominated secantusdb's
        # time; large ones are filtered there so a big task is not shipped.
        "applied": {
            "$cond": [
                {"$lte": [{"$size": {"$ifNull": ["$_applied", []]}}, SHIP_WHOLE_BELOW]},
                {"$ifNull": ["$_applied", []]},
                {"$filter": {
                    "input": {"$ifNull": ["$_applied", []]},
                    "cond": {"$in": ["$$this.e", _lit(sorted(event_ids))]},
                }},
            ]
        },
        "applied_count": {"$size": {"$ifNull": ["$_applied", []]}},
    }
    views = {}
    for doc in db[JOB_TASKS].find({"job_task_id": {"$in": sorted(job_task_ids)}}, projection):
        views[doc["job_task_id"]] = StoredView(
            domain_id=doc.get("domain_id"),
            identity=doc.get("_identity"),
            terminal_event_id=doc.get("terminal_event_id"),
            applied={
                m["e"]: AppliedMarker(m["f"], m["b"], m.get("m"))
                for m in doc.get("applied") or []
                if m["e"] in event_ids
            },
            applied_count=doc.get("applied_count", 0),
        )
    return views


def stored_task(db: Database, job_task_id: str) -> dict | None:
    """One task as readers see it (internal fields left out); for tests and tools."""
    doc = db[JOB_TASKS].find_one({"job_task_id": job_task_id})
    if doc is None:
        return None
    return {key: value for key, value in doc.items() if not key.startswith("_")}

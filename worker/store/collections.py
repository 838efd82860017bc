"""The store's collections: their names, their indexes, and the check that a database fits this layout.

Every collection is named here and only here; each module of this package
owns the documents of one of them. ``ensure_indexes`` makes every index
the worker, the sweep and the read API rely on, safe to run at every start.

On MongoDB an index whose keys an update does not change costs that update
nothing; secantusdb (the embedded store) rewrites every index entry of a
document on each update, so each index here is one a read or the sweep
needs, and the reason is written beside it.
"""

from __future__ import annotations

import logging

import pymongo
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

from worker.contract.readers import READER_FIELD, reader_key

logger = logging.getLogger(__name__)

JOB_TASKS = "job_tasks"  # one document per JobTask, its log folded (worker.store.tasks)
LOG = "job_task_log"  # each task's accepted events, in numbered entries (worker.store.log)
HISTORY = "job_task_history"  # every delivery and its outcome (worker.store.history)
DEAD_LETTERS = "job_task_dead_letters"  # what an operator must look at (worker.store.dead_letters)
JOBS = "jobs"  # one document per Job, derived from its events and tasks (worker.store.jobs)
JOB_PARTS = "job_parts"  # a Job's tasks' views, a few hundred to a document (worker.store.job_parts)
# The history's name before it was told apart from the events queue (job_task_events).
FORMER_HISTORY = "job_task_events"

DUPLICATE_KEY = 11000  # MongoDB's error code for a unique index refusing a write
LOGGED_EVENT_INDEX = "logged_event_unique"
RUNNING_JOBS_INDEX = "running_created_on"


def ensure_indexes(db: Database) -> None:
    """Create what the worker, the sweep and the read API rely on; refuse a database of another layout."""
    refuse_older_layout(db)
    adopt_former_history(db)
    newest_first = [("created_at", pymongo.DESCENDING), ("job_task_id", pymongo.ASCENDING)]
    tasks = db[JOB_TASKS]
    # A task's _id is its job_task_id: the index every collection has finds a
    # task by id. The reads need a domain's tasks newest first, of one status
    # (the sweep too), of one job, and of the workspaces a token may read.
    # Filters on other fields (data_source_id, resource_group) read a domain's
    # tasks in created_at order and filter them.
    tasks.create_index([("domain_id", 1), *newest_first], name="domain_created")
    for key in ("status", "job_id"):
        tasks.create_index([("domain_id", 1), (key, 1), *newest_first], name=f"domain_{key}_created")
    # A workspace token's reads ask for its reader keys (worker.contract.readers),
    # which also serve a filter on workspace_id; this replaces an index on it.
    tasks.create_index([("domain_id", 1), (READER_FIELD, 1), *newest_first], name="domain_reader_created")
    drop_index(tasks, "domain_workspace_id_created")
    # The exactly-once check: an event of a task is logged once (worker.store.log).
    db[LOG].create_index("ev.i", unique=True, name=LOGGED_EVENT_INDEX)
    # A task's history is one _id range (worker.store.history.owned_by), read
    # by the read API and rebuilds, not by the write path. What waits for its
    # created has an index (partial: parked records only), and so has a
    # message's records: a redelivery asks whether its earlier delivery was
    # recorded. History records are written once, so these cost inserts.
    db[HISTORY].create_index([("job_task_id", 1)], name="parked_by_job_task",
                             partialFilterExpression={"outcome": "parked"})
    db[HISTORY].create_index([("message_id", 1)], name="message")
    db[DEAD_LETTERS].create_index([("dead_lettered_at", -1)], name="dead_lettered_at")
    jobs = db[JOBS]
    job_newest_first = [("created_at", -1), ("job_id", 1)]
    # A Job's _id is its job_id. A domain's jobs newest first (list, stat), and
    # of one status (the filter operators and the console use first):
    # secantusdb plans a find on an index only when the index holds every
    # equality it asks, so without the second a status filter scans every
    # domain's jobs. Other filters (data source, workspace) do scan: a domain
    # has far fewer jobs than tasks.
    jobs.create_index([("domain_id", 1), *job_newest_first], name="domain_created")
    jobs.create_index([("domain_id", 1), ("status", 1), *job_newest_first], name="domain_status_created")
    jobs.create_index([("domain_id", 1), (READER_FIELD, 1), *job_newest_first], name="domain_reader_created")
    for collection in (tasks, jobs):
        give_readers(collection)
    # The sweep's: the running Jobs by when the worker stored them. Partial, so
    # it holds only IN_PROGRESS Jobs and a Job stops costing it once it ends.
    jobs.create_index([("_created_on", 1)], name=RUNNING_JOBS_INDEX,
                      partialFilterExpression={"status": "IN_PROGRESS"})


def drop_index(collection: Collection, name: str) -> None:
    """An index an earlier version made and this one does not use (each costs every update)."""
    if name in collection.index_information():
        collection.drop_index(name)
        logger.info("dropped the index %s of %s, no longer used", name, collection.name)


def domains_in(collection: Collection) -> list[str]:
    """Every domain a collection holds: one seek of its ``domain_created`` index per domain.

    (``distinct`` would be the same on MongoDB; the embedded store answers it
    by reading every document.)
    """
    found: list[str] = []
    while True:
        after = {"$gt": found[-1]} if found else {"$gte": ""}
        document = collection.find_one({"domain_id": after}, {"_id": 0, "domain_id": 1}, sort=[("domain_id", 1)])
        if document is None:
            return found
        found.append(document["domain_id"])


def give_readers(collection: Collection) -> None:
    """Give the documents an earlier version wrote their reader key, once.

    Looked for per domain on the reader index (a document without the key is
    indexed as null, and the key is never null), so that a start finds
    nothing to do on an index rather than by reading every document.
    """
    for domain_id in domains_in(collection):
        missing = collection.find({"domain_id": domain_id, READER_FIELD: None},
                                  {"workspace_id": 1, "resource_group": 1})
        updates = [UpdateOne({"_id": doc["_id"], READER_FIELD: None},
                             {"$set": {READER_FIELD: reader_key(doc.get("resource_group"), doc.get("workspace_id"))}})
                   for doc in missing]
        if updates:
            collection.bulk_write(updates, ordered=False)
            logger.info("gave %d documents of %s in %s their reader key", len(updates), collection.name, domain_id)


class OlderLayout(RuntimeError):
    """The store holds JobTasks written by an earlier, incompatible version."""


def refuse_older_layout(db: Database) -> None:
    """Stop at start rather than write beside documents of another layout.

    An earlier layout's tasks all lack ``_v``, and its Jobs keep their
    tasks' views in ``_tasks`` rather than in parts: one document of each,
    the first of its domain index, tells (a search for a field missing or
    present would read them all).
    """
    first = db[JOB_TASKS].find_one({"domain_id": {"$gt": ""}}, {"job_task_id": 1, "domain_id": 1, "_v": 1},
                                   sort=[("domain_id", 1)])
    job = db[JOBS].find_one({"domain_id": {"$gt": ""}}, {"job_id": 1, "domain_id": 1, "_tasks": 1, "_parts": 1},
                            sort=[("domain_id", 1)])
    older = None
    if first is not None and "_v" not in first:
        older = f"JobTasks of an earlier layout (e.g. {first.get('job_task_id')})"
    elif job is not None and "_tasks" in job and "_parts" not in job:
        older = f"Jobs of an earlier layout, without parts (e.g. {job.get('job_id')})"
    if older is not None:
        raise OlderLayout(
            f"database {db.name} holds {older}; "
            "rebuild them from the history into a new database, or start on an empty one"
        )


def adopt_former_history(db: Database) -> None:
    """A database whose history still has its former name gets it renamed, once, before use."""
    names = set(db.list_collection_names())
    if FORMER_HISTORY not in names or HISTORY in names:
        return
    try:
        db[FORMER_HISTORY].rename(HISTORY)
        logger.info("renamed the history collection %s to %s", FORMER_HISTORY, HISTORY)
    except OperationFailure as exc:
        if HISTORY not in db.list_collection_names():  # not another process renaming it at once
            raise
        logger.debug("history renamed meanwhile by another process: %s", exc)

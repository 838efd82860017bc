"""A Job's parts: the latest view of each of its tasks, a few hundred tasks to a document.

One document per part (``job_parts``), ``_id`` ``{job_id}/{number}`` (ids
never hold '/'), its views under ``views`` by task. It moves from one ``_v``
to the next by a guarded ``$set`` of the views that changed
(``worker.store.guarded``), like the Job it belongs to, whose document
keeps the part's summary (``worker.store.jobs``). The rules are
``worker.contract.job_parts``.
"""

from __future__ import annotations

import uuid

from pymongo import UpdateOne
from pymongo.database import Database

from worker.contract.job_parts import PartState, PartSummary, TaskView
from worker.store.collections import JOB_PARTS
from worker.store.documents import as_key, from_key
from worker.store.guarded import write_guarded

PartKey = tuple[str, int]  # (job_id, part number)


def part_id(job_id: str, number: int) -> str:
    return f"{job_id}/{number}"


def _view_doc(view: TaskView) -> dict:
    doc = {"v": view.version, "s": view.status, "c": view.created_count, "a": view.created_at,
           "u": view.updated_at, "f": view.finished_at}
    if view.endings_sent:
        doc["e"] = sorted(view.endings_sent)
    return doc


def _view_from(doc: dict) -> TaskView:
    return TaskView(doc["v"], doc["s"], doc.get("c", 0), doc.get("a"), doc.get("u"), doc.get("f"),
                    frozenset(doc.get("e", ())))


def read_parts(db: Database, keys: set[PartKey]) -> dict[PartKey, PartState]:
    """These parts as stored; one not stored yet is empty, at version 0."""
    if not keys:
        return {}
    wanted = {part_id(job_id, number): (job_id, number) for job_id, number in keys}
    parts = {key: PartState(key[1]) for key in keys}
    for doc in db[JOB_PARTS].find({"_id": {"$in": sorted(wanted)}}):
        key = wanted[doc["_id"]]
        views = {from_key(task): _view_from(view) for task, view in (doc.get("views") or {}).items()}
        parts[key] = PartState(key[1], doc["_v"], views)
    return parts


def write_parts(db: Database, changes: dict[PartKey, tuple[PartState, PartState]]) -> set[PartKey]:
    """Move each part from its state before to its state after; returns those another writer changed first."""
    writes: dict[str, tuple[UpdateOne, str]] = {}
    keys = {}
    for (job_id, number), (before, after) in changes.items():
        write_id = uuid.uuid4().hex
        fields: dict = {"_v": after.version, "_w": write_id}
        for job_task_id, view in after.tasks.items():
            if before.tasks.get(job_task_id) != view:
                fields[f"views.{as_key(job_task_id)}"] = _view_doc(view)
        update: dict = {"$set": fields}
        if before.version == 0:
            update["$setOnInsert"] = {"job_id": job_id, "number": number}
        guard = {"_id": part_id(job_id, number), "_v": before.version if before.version else {"$exists": False}}
        writes[part_id(job_id, number)] = (UpdateOne(guard, update, upsert=before.version == 0), write_id)
        keys[part_id(job_id, number)] = (job_id, number)
    return {keys[doc_id] for doc_id in write_guarded(db[JOB_PARTS], writes)}


# --- a part's summary, as its Job's document keeps it -------------------------------------------------


def summary_doc(summary: PartSummary) -> dict:
    doc: dict = {"v": summary.version, "n": summary.tasks, "s": dict(summary.counts), "c": summary.created_count,
                 "a": summary.created_at, "u": summary.updated_at, "f": summary.finished_at}
    if summary.endings_done:
        doc["e"] = sorted(summary.endings_done)
    return doc


def summary_from(doc: dict) -> PartSummary:
    return PartSummary(doc["v"], doc.get("n", 0), doc.get("s") or {}, doc.get("c", 0), doc.get("a"),
                       doc.get("u"), doc.get("f"), frozenset(doc.get("e", ())))

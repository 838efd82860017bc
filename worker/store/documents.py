"""Stored documents as readers see them: the one place that shapes what get, the change feed and the watch return.

A JobTask or Job document leaves the store with its public fields only (never
an internal ``_`` field), in its resource's field order, absent values left
out, dates as ``2022-07-17T16:00:08.266Z`` (UTC, milliseconds) and ObjectIds
as text. ``public_document`` does it for the read API's answers and the
change feed's entries alike, so an object reads the same on every face.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.collection import Collection

# The public fields of each kind of document, in the order readers get them,
# with the type each is returned as (dates as text). Nothing else leaves the store.
JOB_TASK_FIELDS: dict[str, type] = {
    "job_task_id": str,
    "status": str,
    "options": dict,
    "created_count": int,
    "error_code": str,
    "error_message": str,
    "resource_group": str,
    "job_id": str,
    "data_source_id": str,
    "domain_id": str,
    "workspace_id": str,
    "created_at": datetime,
    "started_at": datetime,
    "updated_at": datetime,
    "finished_at": datetime,
}
JOB_FIELDS: dict[str, type] = {
    "job_id": str,
    "status": str,
    "total_tasks": int,
    "remained_tasks": int,
    "task_counts": dict,
    "created_count": int,
    "options": dict,
    "data_source_id": str,
    "domain_id": str,
    "workspace_id": str,
    "resource_group": str,
    "error_code": str,
    "error_message": str,
    "created_at": datetime,
    "updated_at": datetime,
    "finished_at": datetime,
}


def timestamp_text(moment: datetime) -> str:
    """A stored date as the read API returns it: UTC, milliseconds, ``Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def plain(value: Any) -> Any:
    """JSON-ready: datetimes as text, ObjectIds as text, recursively."""
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def public_document(fields: Iterable[str], document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as readers see it: ``fields`` in their order, values present only."""
    shown = {}
    for name in fields:
        value = document.get(name)
        if value is not None:
            shown[name] = plain(value)
    return shown


def public_by_id(collection: Collection, fields: Iterable[str], ids: set[str]) -> list[dict[str, Any]]:
    """These documents as readers see them, in ``_id`` order (for the change feed)."""
    if not ids:
        return []
    found = collection.find({"_id": {"$in": sorted(ids)}}, dict.fromkeys(fields, 1))
    return [public_document(fields, doc) for doc in sorted(found, key=lambda doc: doc["_id"])]


def count_by_status(collection: Collection) -> list[dict[str, Any]]:
    """``{"_id": status, "n": count}`` rows over every document (for the gauges)."""
    return list(collection.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]))


def as_key(identifier: str) -> str:
    """An id as a key of an internal map: ids may hold '.', never '%'."""
    return identifier.replace(".", "%2E")


def from_key(key: str) -> str:
    return key.replace("%2E", ".")

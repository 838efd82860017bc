"""How history records are keyed: the write path makes the keys, the read path reads ranges of them.

A record's ``_id`` is ``{owner}/{message_id}/{batch_id}``: the owner (a
task's id, ``#job_id`` for a Job's own event, ``-`` for a message that is no
event) comes first, so one owner's whole history is one ``_id`` range and no
other index is needed to read it. Shared by ``worker.ingest.history`` (which
writes records) and ``worker.read.history`` (which serves them).
"""

from __future__ import annotations

from typing import Any

HISTORY_COLLECTION = "job_task_events"


def record_id(owner: str, message_id: str, batch_id: str) -> str:
    """One record per delivery and batch: a retried batch rewrites, never adds."""
    return f"{owner}/{message_id}/{batch_id}"


def owned_by(owner: str, message_id: str | None = None) -> dict[str, Any]:
    """The ``_id`` range of an owner's records (of one of its messages, if given)."""
    prefix = f"{owner}/{message_id}/" if message_id is not None else f"{owner}/"
    return {"$gte": prefix, "$lt": prefix[:-1] + "0"}  # '0' follows '/'

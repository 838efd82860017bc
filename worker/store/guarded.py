"""Guarded writes of derived documents (Jobs and their parts): whose write holds, after a race.

A derived document moves from one ``_v`` to the next by an update guarded
by the ``_v`` it had, and names its writer in ``_w``. Two workers deriving
one document at once both try the same step; one matches nothing. Versions
alone cannot tell the loser which: the other may have made the very step it
tried. So whoever's write did not match reads back ``_w`` and redoes its
change on what is stored, which changes nothing twice (a view only moves
forward, an event counts once).
"""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from worker.store.collections import DUPLICATE_KEY
from worker.store.retry import check_bulk_errors


def write_guarded(collection: Collection, writes: dict[str, tuple[UpdateOne, str]]) -> set[str]:
    """Apply ``{_id: (guarded update, write id)}``; returns the ids another writer changed first."""
    if not writes:
        return set()
    try:
        result = collection.bulk_write([update for update, _ in writes.values()], ordered=False)
        if result.matched_count + result.upserted_count == len(writes):
            return set()  # every guard held: each write is ours
    except BulkWriteError as exc:
        check_bulk_errors(exc, tolerated={DUPLICATE_KEY})  # a document another writer inserted first
    stored = {doc["_id"]: doc.get("_w") for doc in collection.find({"_id": {"$in": sorted(writes)}}, {"_w": 1})}
    return {doc_id for doc_id, (_, write_id) in writes.items() if stored.get(doc_id) != write_id}

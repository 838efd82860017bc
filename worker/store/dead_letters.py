"""The dead letters: what an operator must look at, and what ``jobtask dead-letters`` lists and replays.

Messages that are not valid events, conflicts and events of another domain
land here with the raw payload, the reason, the field to fix and the time;
they are acknowledged, and the worker keeps going.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pymongo.database import Database

from worker.contract.delivery import Delivery
from worker.contract.events import Event
from worker.contract.outcomes import Outcome
from worker.store.collections import DEAD_LETTERS
from worker.store.history import whose
from worker.store.retry import insert_new

logger = logging.getLogger(__name__)


def dead_letter_record(delivery: Delivery, outcome: Outcome, event: Event | None, field: str | None) -> dict:
    payload, truncated = delivery.raw_payload()
    record = {
        "_id": delivery.message_id,
        "task_name": delivery.task_name,
        "payload": payload,
        "payload_truncated": truncated,
        "outcome": outcome.kind,
        "reason": outcome.reason,
        "received_at": delivery.received_at,
        "dead_lettered_at": datetime.now(UTC),
    }
    if field:
        record["field"] = field
    if event is not None:
        record.update(**whose(event), event_id=event.event_id)
    return record


def write_dead_letters(db: Database, records: list[dict]) -> None:
    for record in records:
        logger.warning(
            "dead-lettered %s message %s: %s", record["task_name"], record["_id"], record["reason"]
        )
    insert_new(db[DEAD_LETTERS], records)


def newest_dead_letters(db: Database, limit: int) -> list[dict]:
    return list(db[DEAD_LETTERS].find().sort("dead_lettered_at", -1).limit(max(1, limit)))


def dead_letter(db: Database, message_id: str) -> dict | None:
    return db[DEAD_LETTERS].find_one({"_id": message_id})


def mark_replayed(db: Database, message_id: str, replayed_as: str) -> None:
    db[DEAD_LETTERS].update_one({"_id": message_id},
                                {"$set": {"replayed_at": datetime.now(UTC), "replayed_as": replayed_as}})

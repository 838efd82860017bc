"""One delivery of an event, made once where it enters the worker, and what becomes of its message.

A ``Delivery`` is the value that travels the whole write path by name: the
worker's consumer makes one per message off the broker
(``worker.ingest.intake``), a batch makes one for an event parked by an
earlier batch and for each task event that a Job's ending sends; the
buffer, the pool process, the store's history and the report all read the
same fields. Its ``source`` says which of the three it is, so that the
report never has to guess. Message ids are bounded here, where they enter:
a producer may set any id, and one longer than ``MAX_MESSAGE_ID`` is kept as
its digest everywhere after. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Where a delivery came from.
MESSAGE = "message"  # a message off the broker, in this batch
PARKED_EARLIER = "parked"  # an event an earlier batch parked, taken up when its created came
JOB_ENDING = "job_ending"  # a task event that a Job's cancel or timeout sends to each of its tasks

# What the pool process answers for each message of a batch, and the buffer tells the broker.
ACK = "ack"  # its outcome is stored: the broker may forget it
REQUEUE = "requeue"  # it could not be settled: the broker delivers it again

MAX_MESSAGE_ID = 128  # longer ids are kept as a digest
MAX_RAW_PAYLOAD = 64 * 1024  # what the history and the dead letters keep of a message's text


def bounded_message_id(raw: Any) -> str:
    """A message id as the worker keeps it: as sent, or ``sha256:...`` when longer than 128."""
    text = str(raw)
    if len(text) <= MAX_MESSAGE_ID:
        return text
    return "sha256:" + hashlib.sha256(text.encode(errors="replace")).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One received event message, or an event the worker takes up again, on its way to an outcome."""

    message_id: str
    task_name: str
    received_at: datetime
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None  # why it could not even be decoded
    source: str = MESSAGE

    @classmethod
    def of_message(cls, message_id: Any, task_name: Any, args: Any, kwargs: Any, received_at: datetime,
                   refusal: str | None = None) -> Delivery:
        """A message off the broker: its id bounded, its kwargs always a mapping (or kept whole under ``kwargs``)."""
        return cls(
            message_id=bounded_message_id(message_id),
            task_name=str(task_name),
            received_at=received_at,
            args=list(args) if isinstance(args, (list, tuple)) else args,
            kwargs=kwargs if isinstance(kwargs, dict) else {"kwargs": kwargs},
            refusal=refusal,
        )

    def raw_payload(self) -> tuple[str, bool]:
        """The message as JSON text, cut at 64 KiB: any content can be stored."""
        text = json.dumps({"args": self.args, "kwargs": self.kwargs}, default=repr, ensure_ascii=False)
        if len(text) > MAX_RAW_PAYLOAD:
            return text[:MAX_RAW_PAYLOAD], True
        return text, False

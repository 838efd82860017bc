"""The change feed: what the worker tells watchers after a batch, as entries of a Redis stream.

After a batch's writes are stored, the worker adds one entry per JobTask
and Job it changed (``worker.ingest.feed``) to the stream
``Settings.change_stream`` on the broker; the API's watch endpoint reads it
(``worker.api.watch``). An entry's fields are flat strings:

- ``kind``: ``job_task``, ``job``, or ``reset`` (the worker could not publish
  some change: watchers must reload);
- ``domain_id``, ``workspace_id``, ``resource_group``: for scoping, without
  decoding ``data``;
- ``job_id``, ``status``: for the watch's filters;
- ``data``: the object as ``get`` returns it, as JSON, shaped by the store
  (``worker.store.documents``) like every answer of the read API; the watch
  stream sends it on as it is.

Nothing here does I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JOB_TASK = "job_task"
JOB = "job"
RESET = "reset"
KINDS = (JOB_TASK, JOB)
# What an entry carries besides its data, for scoping and filtering.
ROUTING_FIELDS = ("domain_id", "workspace_id", "resource_group", "job_id", "status")


def change_entry(kind: str, public: dict[str, Any]) -> dict[str, str]:
    """The stream entry announcing a JobTask or Job as it now is, ``public`` as ``get`` returns it."""
    entry = {"kind": kind}
    for name in ROUTING_FIELDS:
        value = public.get(name)
        entry[name] = value if isinstance(value, str) else ""
    entry["data"] = json.dumps(public, separators=(",", ":"), ensure_ascii=False, default=str)
    return entry


def reset_entry() -> dict[str, str]:
    """The entry telling every watcher that changes were lost and it must reload."""
    return {"kind": RESET}


@dataclass(frozen=True)
class Change:
    """One entry read back from the stream; ``data`` is still JSON text."""

    entry_id: str
    kind: str
    domain_id: str = ""
    workspace_id: str = ""
    resource_group: str = ""
    job_id: str = ""
    status: str = ""
    data: str = "{}"

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[Any, Any]) -> Change:
        text = {_text(key): _text(value) for key, value in fields.items()}
        known = {name: text[name] for name in (*ROUTING_FIELDS, "data") if name in text}
        return cls(_text(entry_id), text.get("kind", RESET), **known)

    @property
    def routing(self) -> dict[str, Any]:
        """The fields ``worker.read.query.in_scope`` looks at."""
        return {"domain_id": self.domain_id, "workspace_id": self.workspace_id or None,
                "resource_group": self.resource_group or None}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entry_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id (``1700000000000-3``) as a pair that sorts like Redis sorts ids."""
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def is_entry_id(text: str) -> bool:
    milliseconds, dash, sequence = text.partition("-")
    return bool(dash) and milliseconds.isdigit() and sequence.isdigit()

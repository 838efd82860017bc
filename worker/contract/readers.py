"""Who may read a JobTask or a Job: its reader key, written beside it.

A workspace token reads its workspaces' documents and the domain-level ones
(``resource_group`` DOMAIN). Asked as ``workspace_id in (...) or
resource_group == DOMAIN``, that is an ``$or``, which a store plans as a
scan of the domain at best. The document carries the answer instead, one
value a token's scope asks for with ``$in`` on an index: ``*`` for a
domain-level document, ``ws:<workspace_id>`` for another. The prefix keeps a
workspace named like the marker from reading what it should not.
"""

from __future__ import annotations

DOMAIN_READERS = "*"
NO_WORKSPACE_READERS = ""
READER_FIELD = "_reader"


def reader_key(resource_group: str | None, workspace_id: str | None) -> str:
    """The key of a document placed so; empty: no workspace token reads it (a domain token does).

    Never null, so that a document without the key (an earlier version's)
    is told apart from one no workspace reads.
    """
    if resource_group == "DOMAIN":
        return DOMAIN_READERS
    return f"ws:{workspace_id}" if workspace_id else NO_WORKSPACE_READERS


def readers_of(workspace_ids: tuple[str, ...]) -> list[str]:
    """The keys a token limited to ``workspace_ids`` reads."""
    return [DOMAIN_READERS, *(f"ws:{workspace_id}" for workspace_id in workspace_ids)]

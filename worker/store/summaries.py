"""A task's mergeable state (``lifecycle.Summary``) as BSON, shared by its log entries and its document."""

from __future__ import annotations

from worker.contract.lifecycle import Summary, Terminal


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


def _terminal_from(doc: dict | None) -> Terminal | None:
    if not doc:
        return None
    return Terminal(
        occurred_at=doc["at"],
        event_id=doc["event_id"],
        status=doc["status"],
        error_code=doc.get("error_code"),
        error_message=doc.get("error_message"),
        created_count_delta=doc.get("delta", 0),
    )


def summary_doc(summary: Summary) -> dict:
    doc = {
        "created_at": summary.created_at,
        "started_at": summary.started_at,
        "progress": summary.progress_count,
        "activity_at": summary.activity_at,
        "terminal": _terminal_doc(summary.terminal) if summary.terminal else None,
    }
    return {key: value for key, value in doc.items() if value is not None}


def summary_from(doc: dict) -> Summary:
    return Summary(
        created_at=doc.get("created_at"),
        started_at=doc.get("started_at"),
        progress_count=doc.get("progress", 0),
        activity_at=doc.get("activity_at"),
        terminal=_terminal_from(doc.get("terminal")),
    )

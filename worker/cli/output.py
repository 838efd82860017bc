"""What every ``jobtask`` command shares: the store connection and the table / JSON output."""

from __future__ import annotations

import json
from typing import Any

from pymongo.database import Database

from worker.settings import Settings


def connect_store(settings: Settings) -> Database:
    """The store of ``JOBTASK_MONGO_URL``; the caller checks that it is set and closes the client."""
    from worker.store.client import connect  # noqa: PLC0415 - only commands that read need the driver

    assert settings.mongo_url, "the caller says what to do when JOBTASK_MONGO_URL is unset"

    return connect(settings.mongo_url, settings.mongo_db, timeout_ms=settings.store_timeout_ms,
                   socket_timeout_ms=settings.store_socket_timeout_ms(settings.query_time_limit_ms),
                   app="jobtask-cli")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_record(record: dict[str, Any], as_json: bool) -> None:
    """One object: as JSON, or a field per line with the names aligned."""
    if as_json:
        print_json(record)
        return
    width = max(len(name) for name in record)
    for name, value in record.items():
        print(f"{name:<{width}}  {cell(value)}")


def cell(value: Any) -> str:
    """One value as table text: objects and lists as compact JSON, nothing as empty."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "" if value is None else str(value)


def print_table(rows: list[dict], columns: list[str] | None) -> None:
    """Rows under a header, columns as wide as their widest cell (all keys when ``columns`` is None)."""
    if columns is None:
        columns = list(dict.fromkeys(name for row in rows for name in row))
    if not columns:
        print("(no results)")
        return
    cells = [[cell(row.get(name)) for name in columns] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(columns)]
    print("  ".join(name.upper().ljust(width) for name, width in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())

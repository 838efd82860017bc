"""``jobtask``: the operators' command line, reading the store directly.

    jobtask get JOB_TASK_ID --domain DOMAIN [--json]
    jobtask list --domain DOMAIN [--status S] [--job-id J] [--data-source-id D]
                 [--workspace-id W] [--query JSON] [--json]
    jobtask stat --domain DOMAIN --query JSON [--json]

It connects with ``JOBTASK_MONGO_URL`` / ``JOBTASK_MONGO_DB`` and runs the
same ``worker.read`` functions as the HTTP API, scoped to ``--domain``, so a
query behaves and fails the same way on both faces. Output is a table by
default and the API's JSON body with ``--json``. Exit status: 0 done, 1 a
coded error (printed as ``ERROR_...: message``), 2 bad usage.

``jobtask history`` and ``jobtask dead-letters`` (worker.cli_audit) show
what the worker did with each delivery. A subcommand sets ``func``
(``args -> exit status``) with ``set_defaults``.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from typing import Any, Callable, Sequence

from worker.errors import ERROR_DB_UNAVAILABLE, ERROR_INVALID_PARAMETER, ReadError
from worker.read import Scope, get_item, list_items, stat_items
from worker.resource import JOB_TASK
from worker.settings import Settings, load_settings

LIST_COLUMNS = (
    "job_task_id", "status", "created_count", "job_id", "data_source_id", "workspace_id",
    "created_at", "finished_at",
)


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``jobtask`` parser with the read commands, and its subparsers for more."""
    parser = argparse.ArgumentParser(prog="jobtask", description="Operate and read JobTasks.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_read_commands(subparsers)
    from worker.cli_audit import add_audit_commands  # noqa: PLC0415 - it uses this module's output

    add_audit_commands(subparsers)
    return parser, subparsers


def add_read_commands(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--domain", required=True, help="the domain_id to read in")
    common.add_argument("--json", action="store_true", help="print the API's JSON body")

    get = subparsers.add_parser("get", parents=[common], help="one JobTask")
    get.add_argument("job_task_id")
    get.set_defaults(func=_get)

    listing = subparsers.add_parser("list", parents=[common], help="JobTasks, newest first")
    listing.add_argument("--status", action="append", choices=JOB_TASK.statuses, help="repeatable")
    listing.add_argument("--job-id")
    listing.add_argument("--data-source-id")
    listing.add_argument("--workspace-id")
    listing.add_argument("--query", type=_json_object, help="a SpaceONE Query as JSON")
    listing.set_defaults(func=_list)

    stat = subparsers.add_parser("stat", parents=[common], help="aggregate or distinct")
    stat.add_argument("--query", type=_json_object, required=True, help="a StatisticsQuery as JSON")
    stat.set_defaults(func=_stat)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser, _subparsers = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ReadError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 1


# --- the read commands ------------------------------------------------------------------------


def _read(args: argparse.Namespace, read: Callable, body: dict) -> dict:
    settings = load_settings()
    if not settings.mongo_url:
        raise ERROR_DB_UNAVAILABLE(reason="set JOBTASK_MONGO_URL to the store's URL")
    db = _connect(settings)
    try:
        return read(db, Scope(args.domain), body, settings)
    finally:
        db.client.close()


def _connect(settings: Settings):
    from worker.store import connect  # noqa: PLC0415 - only commands that read need the driver

    return connect(settings.mongo_url, settings.mongo_db, timeout_ms=settings.store_timeout_ms,
                   app="jobtask-cli")


def _get(args: argparse.Namespace) -> int:
    info = _read(args, partial(get_item, JOB_TASK), {"job_task_id": args.job_task_id})
    if args.json:
        _print_json(info)
    else:
        width = max(len(name) for name in info)
        for name, value in info.items():
            print(f"{name:<{width}}  {_cell(value)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "job_id": args.job_id,
        "data_source_id": args.data_source_id,
        "workspace_id": args.workspace_id,
    }
    query = dict(args.query or {})
    statuses = args.status or []
    if len(statuses) == 1:
        body["status"] = statuses[0]
    elif statuses:
        extra = query.get("filter", [])
        if not isinstance(extra, list):
            raise ERROR_INVALID_PARAMETER(key="query.filter", reason="must be a list")
        query["filter"] = [*extra, {"k": "status", "v": statuses, "o": "in"}]
    body = {name: value for name, value in body.items() if value is not None}
    body["query"] = query
    response = _read(args, partial(list_items, JOB_TASK), body)
    if args.json:
        _print_json(response)
        return 0
    results = response["results"]
    columns = list(LIST_COLUMNS) if not query.get("only") and not query.get("minimal") else None
    _print_table(results, columns)
    shown = len(results)
    print(f"{shown} shown of total_count {response['total_count']}")
    return 0


def _stat(args: argparse.Namespace) -> int:
    response = _read(args, partial(stat_items, JOB_TASK), {"query": args.query})
    if args.json:
        _print_json(response)
        return 0
    rows = [row if isinstance(row, dict) else {"value": row} for row in response["results"]]
    _print_table(rows, None)
    if "total_count" in response:
        print(f"total_count {response['total_count']}")
    return 0


# --- output -----------------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "" if value is None else str(value)


def _print_table(rows: list[dict], columns: list[str] | None) -> None:
    """Rows under a header, columns as wide as their widest cell."""
    if columns is None:
        columns = list(dict.fromkeys(name for row in rows for name in row))
    if not columns:
        print("(no results)")
        return
    cells = [[_cell(row.get(name)) for name in columns] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(columns)]
    print("  ".join(name.upper().ljust(width) for name, width in zip(columns, widths)).rstrip())
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


if __name__ == "__main__":
    sys.exit(main())

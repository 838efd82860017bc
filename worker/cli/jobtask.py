"""``jobtask``: the operators' command line, reading the store directly.

    jobtask get JOB_TASK_ID --domain DOMAIN [--json]
    jobtask list --domain DOMAIN [--status S] [--workspace-id W] [--job-id J]
                 [--data-source-id D] [--query JSON] [--json]
    jobtask stat --domain DOMAIN --query JSON [--json]
    jobtask job get JOB_ID --domain DOMAIN [--json]
    jobtask job list --domain DOMAIN [--status S] [--workspace-id W]
                     [--data-source-id D] [--query JSON] [--json]
    jobtask job stat --domain DOMAIN --query JSON [--json]
    jobtask job cancel JOB_ID --domain DOMAIN [--workspace-id W ...] [--reason TEXT] [--json]

It connects with ``JOBTASK_MONGO_URL`` / ``JOBTASK_MONGO_DB`` and runs the
same ``worker.read.reads`` functions as the HTTP API, scoped to ``--domain``, so a
query behaves and fails the same way on both faces. Output is a table by
default and the API's JSON body with ``--json``. Exit status: 0 done, 1 a
coded error (printed as ``ERROR_...: message``), 2 bad usage.

The commands are built from a ``Resource`` (``add_read_commands``): the
JobTask's at the top, the Job's under ``jobtask job`` beside its cancel
(worker.cli.cancel, which also needs ``JOBTASK_BROKER_URL``). ``jobtask history`` and ``jobtask
dead-letters`` (worker.cli.audit) show what the worker did with each
delivery; both modules print through worker.cli.output. A subcommand sets
``func`` (``args -> exit status``) with ``set_defaults``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from worker.cli.audit import add_audit_commands
from worker.cli.cancel import add_cancel_command
from worker.cli.output import connect_store, print_json, print_record, print_table
from worker.contract.errors import ERROR_DB_UNAVAILABLE, ERROR_INVALID_PARAMETER, CodedError
from worker.read.reads import Scope, get_item, list_items, stat_items
from worker.read.resource import JOB, JOB_TASK, Resource
from worker.settings import load_settings


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``jobtask`` parser with the read commands, and its subparsers for more."""
    parser = argparse.ArgumentParser(prog="jobtask", description="Operate and read JobTasks and Jobs.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_read_commands(subparsers, JOB_TASK)
    jobs = subparsers.add_parser("job", help="Jobs: get, list, stat, cancel")
    job_commands = jobs.add_subparsers(dest="job_command", metavar="COMMAND", required=True)
    add_read_commands(job_commands, JOB)
    add_cancel_command(job_commands)
    add_audit_commands(subparsers)
    return parser, subparsers


def add_read_commands(subparsers: argparse._SubParsersAction, resource: Resource) -> None:
    """``get``, ``list`` and ``stat`` of ``resource`` on ``subparsers``.

    ``list`` has a flag per request parameter of the resource (``--status``
    repeatable) and shows its minimal fields with its times as a table.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--domain", required=True, help="the domain_id to read in")
    common.add_argument("--json", action="store_true", help="print the API's JSON body")

    get = subparsers.add_parser("get", parents=[common], help=f"one {resource.name}")
    get.add_argument(resource.id_field)
    get.set_defaults(func=partial(_get, resource))

    listing = subparsers.add_parser("list", parents=[common], help=f"{resource.plural}, newest first")
    for param in resource.param_filters:
        if param == "status":
            listing.add_argument("--status", action="append", choices=resource.statuses, help="repeatable")
        elif param != resource.id_field:
            listing.add_argument(f"--{param.replace('_', '-')}")
    listing.add_argument("--query", type=_json_object, help="a SpaceONE Query as JSON")
    listing.set_defaults(func=partial(_list, resource))

    stat = subparsers.add_parser("stat", parents=[common], help="aggregate or distinct")
    stat.add_argument("--query", type=_json_object, required=True, help="a StatisticsQuery as JSON")
    stat.set_defaults(func=partial(_stat, resource))


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
    except CodedError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 1


# --- the read commands ------------------------------------------------------------------------


def _read(args: argparse.Namespace, read: Callable, body: dict) -> dict:
    settings = load_settings()
    if not settings.mongo_url:
        raise ERROR_DB_UNAVAILABLE(reason="set JOBTASK_MONGO_URL to the store's URL")
    db = connect_store(settings)
    try:
        return read(db, Scope(args.domain), body, settings)
    finally:
        db.client.close()


def _get(resource: Resource, args: argparse.Namespace) -> int:
    info = _read(args, partial(get_item, resource), {resource.id_field: getattr(args, resource.id_field)})
    print_record(info, args.json)
    return 0


def _list(resource: Resource, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        param: getattr(args, param)
        for param in resource.param_filters
        if param not in ("status", resource.id_field) and getattr(args, param) is not None
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
    body["query"] = query
    response = _read(args, partial(list_items, resource), body)
    if args.json:
        print_json(response)
        return 0
    results = response["results"]
    columns = None
    if not query.get("only") and not query.get("minimal"):
        columns = [*resource.minimal_fields, "created_at", "finished_at"]
    print_table(results, columns)
    shown = len(results)
    print(f"{shown} shown of total_count {response['total_count']}")
    return 0


def _stat(resource: Resource, args: argparse.Namespace) -> int:
    response = _read(args, partial(stat_items, resource), {"query": args.query})
    if args.json:
        print_json(response)
        return 0
    rows = [row if isinstance(row, dict) else {"value": row} for row in response["results"]]
    print_table(rows, None)
    if "total_count" in response:
        print(f"total_count {response['total_count']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

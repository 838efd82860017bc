"""``jobtask history`` and ``jobtask dead-letters``: what the worker did, for operators.

    jobtask history JOB_TASK_ID --domain DOMAIN [--json]
    jobtask dead-letters [--limit N] [--json]
    jobtask dead-letters --replay MESSAGE_ID

``history`` lists every delivery of a task's events in the order they
occurred, with its outcome (applied, duplicate, ignored, parked, conflict,
rejected) and reason: the records of ``POST .../job-task/history``, read by
the same function (``worker.read.history``); another domain's task shows
nothing. ``dead-letters``
lists the refused messages, newest first; ``--replay`` sends one back to the
queue as it was received (after its producer or the worker was fixed) and
marks it replayed.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from worker.cli.output import connect_store, print_json, print_table
from worker.contract.errors import ERROR_NOT_FOUND, CodedError
from worker.read.history import task_deliveries
from worker.read.query import Scope
from worker.settings import load_settings
from worker.store import dead_letters

HISTORY_COLUMNS = ("received_at", "kind", "event_id", "occurred_at", "outcome", "reason")
LETTER_COLUMNS = ("dead_lettered_at", "_id", "task_name", "job_task_id", "outcome", "reason")


def add_audit_commands(subparsers: argparse._SubParsersAction) -> None:
    history = subparsers.add_parser("history", help="every delivery of a task's events")
    history.add_argument("job_task_id")
    history.add_argument("--domain", required=True, help="the domain_id the task belongs to")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=_history)

    letters = subparsers.add_parser("dead-letters", help="refused messages, newest first")
    letters.add_argument("--limit", type=int, default=50)
    letters.add_argument("--json", action="store_true")
    letters.add_argument("--replay", metavar="MESSAGE_ID", help="send this message to the queue again")
    letters.set_defaults(func=_dead_letters)


def _db(settings):
    if not settings.mongo_url:
        raise SystemExit("jobtask: set JOBTASK_MONGO_URL to the store's URL")
    return connect_store(settings)


def _history(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db(settings)
    try:
        records, _ = task_deliveries(db, Scope(args.domain), args.job_task_id, settings)
    except CodedError as error:
        if error.code != ERROR_NOT_FOUND.code:
            raise SystemExit(f"jobtask: {error.message}") from None
        records = []  # another domain's task is indistinguishable from none
    _show(records, HISTORY_COLUMNS, args.json)
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db(settings)
    if args.replay:
        return _replay(db, settings, args.replay)
    records = dead_letters.newest_dead_letters(db, args.limit)
    _show(records, LETTER_COLUMNS, args.json)
    return 0


def _replay(db, settings, message_id: str) -> int:
    from worker.client import JobTaskEvents  # noqa: PLC0415 - only replay needs the broker

    letter = dead_letters.dead_letter(db, message_id)
    if letter is None:
        raise SystemExit(f"jobtask: no dead letter {message_id}")
    if letter.get("payload_truncated") or letter["outcome"] != "rejected":
        raise SystemExit("jobtask: only whole, rejected messages can be replayed (a conflict "
                         "stays a conflict; a cut payload is not the message)")
    payload = json.loads(letter["payload"])
    if not settings.broker_url:
        raise SystemExit("jobtask: set JOBTASK_BROKER_URL to replay")
    events = JobTaskEvents(settings.broker_url, queue=settings.queue, transport_options=settings.redis_options)
    new_id = events.send_raw(letter["task_name"], payload.get("kwargs", {}), payload.get("args", ()))
    events.close()
    dead_letters.mark_replayed(db, message_id, new_id)
    print(f"replayed {message_id} as {new_id}")
    return 0


def _show(records: list[dict], columns: tuple[str, ...], as_json: bool) -> None:
    rows = [{key: _plain(value) for key, value in record.items()} for record in records]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, list(columns) if rows else [])


def _plain(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value

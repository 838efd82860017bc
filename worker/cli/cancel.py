"""``jobtask job cancel JOB_ID --domain D [--workspace-id W ...] [--reason TEXT] [--json]``: cancel a Job.

The same rules as ``POST /cost-analysis/v1/job/cancel`` (``worker.commands.cancel``),
for an operator who reaches the store (``JOBTASK_MONGO_URL``) and the broker
(``JOBTASK_BROKER_URL``): the Job must exist in ``--domain`` and be
IN_PROGRESS; a ``job.canceled`` goes to the worker's queue through the
producer SDK, and the Job is printed as it stands about a second later (the
worker applies the cancel asynchronously). With ``--workspace-id`` the
operator acts as a token limited to those workspaces would: only a Job wholly
inside them is canceled. Without it the operator acts for the whole domain.
"""

from __future__ import annotations

import argparse

from worker.cli.output import connect_store, print_record
from worker.client import JobTaskEvents
from worker.commands.cancel import CANCEL, cancel_job
from worker.contract.errors import ERROR_BROKER_UNAVAILABLE, ERROR_DB_UNAVAILABLE
from worker.read.reads import Scope
from worker.settings import load_settings


def add_cancel_command(subparsers: argparse._SubParsersAction) -> None:
    cancel = subparsers.add_parser("cancel", help="cancel a Job and its running tasks")
    cancel.add_argument("job_id")
    cancel.add_argument("--domain", required=True, help="the Job's domain_id")
    cancel.add_argument("--workspace-id", action="append", dest="workspace_ids", metavar="W",
                        help="act for this workspace only, as a token limited to it would (repeatable)")
    cancel.add_argument("--reason", help="why, for the operators (the Job's error_message)")
    cancel.add_argument("--json", action="store_true", help="print the Job as the API's JSON body")
    cancel.set_defaults(func=_cancel)


def _cancel(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.mongo_url:
        raise ERROR_DB_UNAVAILABLE(reason="set JOBTASK_MONGO_URL to the store's URL")
    if not settings.broker_url:
        raise ERROR_BROKER_UNAVAILABLE(reason="set JOBTASK_BROKER_URL to the broker's URL")
    body = {"job_id": args.job_id}
    if args.reason is not None:
        body["reason"] = args.reason
    scope = Scope(args.domain, tuple(args.workspace_ids) if args.workspace_ids else None, ("read", CANCEL))
    db = connect_store(settings)
    events = JobTaskEvents(settings.broker_url, settings.queue, transport_options=settings.redis_options)
    try:
        job = cancel_job(
            db, scope, body, settings,
            lambda job_id, domain_id, reason: events.job_canceled(job_id, domain_id=domain_id, reason=reason),
        )
    finally:
        events.close()
        db.client.close()
    print_record(job, args.json)
    return 0

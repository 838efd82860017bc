"""The read benchmark: ``make bench``'s second table, JobTask and Job reads against raw queries.

Issue 9 asks that Job reads meet the bound of task reads: within 1.2 x the
raw query on the same store, on an index. This module seeds a fresh database
and, per row, times a read through ``worker.read.reads`` (what the HTTP API
and the CLI run: parsing, planning, the query, shaping the answer) against
the equivalent hand-written pymongo query, the two alternating, and reports
the medians and their ratio.

- Seeding: ``tasks`` JobTasks (20,000 at scale 1) over ``jobs`` Jobs (2,000),
  each Job declared by a ``job.created``, every event applied by the worker's
  own batch code (``worker.ingest.processor.process_batch``, in process, no
  broker), so tasks, logs and Jobs are exactly the worker's documents. Nine
  Jobs in ten belong to the domain that is read, the tenth to another.
  Tasks end 70 % SUCCESS, 10 % FAILURE, 5 % CANCELED; 15 % stay IN_PROGRESS.
- Rows, for the JobTask and for the Job: list newest first (a page of 100,
  with total_count), list of one status (FAILURE, a page of 100), and stat
  counting the domain's documents by status.
- Raw: ``count_documents`` plus ``find(...).sort(...).limit(100)`` with the
  public fields' projection, or ``aggregate([$match, $group])``; the same
  answer is checked (a fast wrong answer is worth nothing).
- Plan: the winning plan of our query, from ``explain`` (secantusdb answers
  it); "index" when an IXSCAN feeds it.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from worker.contract.delivery import Delivery
from worker.ingest.processor import process_batch
from worker.read.query import plan_list
from worker.read.reads import Scope, list_items, stat_items
from worker.read.resource import JOB, JOB_TASK, Resource
from worker.read.stat_query import plan_stat
from worker.settings import Settings

DOMAIN = "domain-read"
OTHER_DOMAIN = "domain-other"
TARGET = 1.2
PAGE = 100
BATCH = 200
READ_TIME_LIMIT_MS = 300_000
BY_STATUS = {"aggregate": [{"group": {"keys": [{"key": "status", "name": "status"}],
                                      "fields": [{"operator": "count", "name": "count"}]}}]}


# --- seeding -----------------------------------------------------------------------------------


def seed_messages(tasks: int, jobs: int, seed: int) -> list[tuple[str, dict]]:
    """(task name, kwargs) of every event: each job's job.created, then its tasks' events."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    messages: list[tuple[str, dict]] = []
    per_job, extra = divmod(tasks, jobs)
    number = 0
    for job_number in range(jobs):
        domain = OTHER_DOMAIN if job_number % 10 == 9 else DOMAIN
        job_id = f"job-{job_number:06d}"
        count = per_job + (job_number < extra)
        placement = {"workspace_id": f"ws-{job_number % 4}"}
        messages.append(("job.created", {
            "event_id": "declared", "domain_id": domain, "job_id": job_id,
            "data_source_id": f"ds-{job_number % 5}", "total_tasks": count, **placement,
            "occurred_at": _text(start + timedelta(seconds=number)),
        }))
        for _ in range(count):
            task = {"domain_id": domain, "job_task_id": f"job-task-{number:07d}"}
            created_at = start + timedelta(seconds=number + 1)
            messages.append(("job_task.created", {
                **task, **placement, "event_id": "created", "job_id": job_id,
                "data_source_id": f"ds-{job_number % 5}", "occurred_at": _text(created_at)}))
            messages.append(("job_task.started", {
                **task, "event_id": "started", "occurred_at": _text(created_at + timedelta(seconds=1))}))
            end = rng.random()
            ended = {**task, "event_id": "end", "occurred_at": _text(created_at + timedelta(seconds=2))}
            if end < 0.70:
                messages.append(("job_task.succeeded", {**ended, "created_count_delta": rng.randrange(100)}))
            elif end < 0.80:
                messages.append(("job_task.failed", {**ended, "error_code": "ERROR_PLUGIN",
                                                     "error_message": "the plugin failed"}))
            elif end < 0.85:
                messages.append(("job_task.canceled", ended))
            number += 1
    return messages


def seed(db: Database, tasks: int, jobs: int, seed_value: int = 1,
         progress: Callable[[str], None] | None = None) -> int:
    """Apply the seeding events through the worker's batch code; returns how many."""
    messages = seed_messages(tasks, jobs, seed_value)
    now = datetime.now(UTC)
    for offset in range(0, len(messages), BATCH):
        chunk = messages[offset:offset + BATCH]
        deliveries = [Delivery(uuid.uuid4().hex, name, now, kwargs=kwargs) for name, kwargs in chunk]
        process_batch(db, deliveries, f"seed-{offset}", max_events=1_000)
        if progress and (offset // BATCH) % 50 == 0:
            progress(f"seeded {offset + len(chunk):,} of {len(messages):,} events")
    return len(messages)


# --- one row --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """One read through worker.read.reads and its raw pymongo equivalent, each giving a comparable answer."""

    name: str
    resource: Resource
    ours: Callable[[], Any]
    raw: Callable[[], Any]
    explain: Callable[[], dict]


@dataclass(frozen=True)
class Row:
    read: str
    resource: str
    documents: int
    ours_ms: float
    raw_ms: float
    same_answer: bool
    plan: str

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.raw_ms if self.raw_ms else float("inf")

    @property
    def index_backed(self) -> bool:
        return "IXSCAN" in self.plan


def reads_of(db: Database, resource: Resource, settings: Settings) -> list[Read]:
    scope = Scope(DOMAIN)
    collection = db[resource.collection]
    projection = {"_id": 0, **dict.fromkeys(resource.fields, 1)}
    sort = [("created_at", -1), (resource.id_field, 1)]
    now = datetime.now(UTC)

    def listing(body: dict, raw_filter: dict, label: str) -> Read:
        def ours():
            response = list_items(resource, db, scope, body, settings)
            return response["total_count"], [row[resource.id_field] for row in response["results"]]

        def raw():
            total = collection.count_documents(raw_filter)
            found = collection.find(raw_filter, projection).sort(sort).limit(PAGE)
            return total, [document[resource.id_field] for document in found]

        def explain():
            plan = plan_list(resource, body, scope, settings.max_page_size, now)
            return db.command("explain", {"find": resource.collection, "filter": plan.filter,
                                          "sort": dict(plan.sort), "limit": plan.limit},
                              verbosity="queryPlanner")

        return Read(label, resource, ours, raw, explain)

    def stat() -> Read:
        body = {"query": BY_STATUS}

        def ours():
            rows = stat_items(resource, db, scope, body, settings)["results"]
            return sorted((row["status"], row["count"]) for row in rows)

        def raw():
            rows = collection.aggregate([{"$match": {"domain_id": DOMAIN}},
                                         {"$group": {"_id": "$status", "count": {"$sum": 1}}}])
            return sorted((row["_id"], row["count"]) for row in rows)

        def explain():
            plan = plan_stat(resource, body, scope, settings.max_page_size, now)
            return db.command("explain", {"aggregate": resource.collection,
                                          "pipeline": [{"$match": plan.match}, *plan.stages], "cursor": {}},
                              verbosity="queryPlanner")

        return Read("stat: count by status", resource, ours, raw, explain)

    page = {"page": {"start": 1, "limit": PAGE}}
    return [
        listing({"query": page}, {"domain_id": DOMAIN}, f"list newest first, page of {PAGE}"),
        listing({"status": "FAILURE", "query": page}, {"domain_id": DOMAIN, "status": "FAILURE"},
                f"list status FAILURE, page of {PAGE}"),
        stat(),
    ]


def winning_plan(explained: dict) -> str:
    """The winning plan's stages, outermost first: ``SORT <- FETCH <- IXSCAN domain_created``."""
    planner = explained.get("queryPlanner")
    if planner is None:  # an aggregate: the plan of its first ($cursor) stage
        first = (explained.get("stages") or [{}])[0]
        planner = first.get("$cursor", {}).get("queryPlanner", {})
    stage, names = planner.get("winningPlan"), []
    while stage:
        names.append(stage.get("stage", "?") + (f" {stage['indexName']}" if stage.get("indexName") else ""))
        stage = stage.get("inputStage")
    return " <- ".join(names) or "explain gave no plan"


def time_read(read: Read, repeat: int) -> Row:
    """Medians over ``repeat`` alternating runs of ours and raw, after one warm-up of each."""
    same = read.ours() == read.raw()
    ours_times, raw_times = [], []
    for _ in range(repeat):
        for call, times in ((read.ours, ours_times), (read.raw, raw_times)):
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
    try:
        plan = winning_plan(read.explain())
    except Exception as exc:  # noqa: BLE001 - a store without explain: say so
        plan = f"explain unsupported ({type(exc).__name__})"
    return Row(read.name, read.resource.name, 0, statistics.median(ours_times) * 1000,
               statistics.median(raw_times) * 1000, same, plan)


def copy_tasks(db: Database, domain_tasks: int, progress: Callable[[str], None] | None = None) -> int:
    """Copies of the domain's worker-written tasks under new ids until it holds ``domain_tasks``; how many.

    Seeding a hundred thousand tasks through the batch code would take most
    of the run; the reads only need as many documents of the worker's shape.
    """
    collection = db[JOB_TASK.collection]
    originals = list(collection.find({"domain_id": DOMAIN}))
    missing = domain_tasks - len(originals)
    copied = 0
    while originals and copied < missing:
        chunk = []
        for original in originals[:min(1_000, missing - copied)]:
            task_id = f"job-task-copy-{copied + len(chunk):07d}"
            chunk.append({**original, "_id": task_id, "job_task_id": task_id})
        collection.insert_many(chunk, ordered=False)
        copied += len(chunk)
        if progress and copied % 20_000 < len(chunk):
            progress(f"copied {copied:,} of {missing:,} tasks")
    return max(copied, 0)


def run_reads(db: Database, tasks: int, jobs: int, repeat: int, seed_value: int = 1,
              progress: Callable[[str], None] | None = None, domain_tasks: int = 0) -> list[Row]:
    """Seed ``db`` (fresh, with the worker's indexes) and time every read of both resources.

    ``domain_tasks``: the JobTasks the domain read holds, copies of the
    seeded ones making up what the seeding did not write.
    """
    seed(db, tasks, jobs, seed_value, progress)
    copy_tasks(db, domain_tasks, progress)
    # The raw query runs without a time limit; ours gets one far above what a
    # read of the whole domain takes here, so both do the same work.
    settings = Settings(query_time_limit_ms=READ_TIME_LIMIT_MS)
    rows = []
    for resource in (JOB_TASK, JOB):
        documents = db[resource.collection].count_documents({"domain_id": DOMAIN})
        for read in reads_of(db, resource, settings):
            if progress:
                progress(f"timing {resource.name}: {read.name}")
            row = time_read(read, repeat)
            rows.append(Row(row.read, row.resource, documents, row.ours_ms, row.raw_ms, row.same_answer, row.plan))
    return rows


def reads_table(rows: list[Row], tasks: int, jobs: int, repeat: int, domain_tasks: int = 0) -> str:
    header = ["read", "resource (documents in the domain)", "worker.read.reads ms", "raw pymongo ms",
              "ratio", "target", "same answer", "plan of our query (explain)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in rows:
        met = row.ratio <= TARGET and row.index_backed
        cells = [row.read, f"{row.resource} ({row.documents:,})", f"{row.ours_ms:,.2f}", f"{row.raw_ms:,.2f}",
                 f"**{row.ratio:.2f}x**", f"<= {TARGET}x, index: {'met' if met else '**NOT met**'}",
                 "yes" if row.same_answer else "**NO**", row.plan]
        lines.append("| " + " | ".join(cells) + " |")
    method = (f"{tasks:,} tasks in {jobs:,} declared jobs (9 in 10 in the domain read) applied by the worker's "
              f"batch code into a fresh database"
              + (f", the domain's tasks then copied under new ids up to {domain_tasks:,}" if domain_tasks else "")
              + f"; medians of {repeat} alternating runs after a warm-up, one "
              "client in process; ours: parse, plan, query and shape through worker.read.reads (list also "
              "counts total_count); raw: the same filter, sort, page and projection, or $match + $group")
    lines.append("| " + " | ".join(["method", method] + [""] * (len(header) - 2)) + " |")
    return "\n".join(lines)


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

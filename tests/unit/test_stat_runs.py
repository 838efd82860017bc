"""A paged stat runs its pipeline once: the page and total_count come from the same run."""

from __future__ import annotations

from worker.read.query import Scope
from worker.read.reads import stat_items
from worker.read.resource import JOB_TASK
from worker.settings import Settings


class Collection:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.pipelines: list[list[dict]] = []

    def aggregate(self, pipeline, **_options):
        self.pipelines.append(pipeline)
        return iter(self.rows)


class Database(dict):
    pass


def test_a_paged_stat_groups_once_and_counts_every_row():
    groups = Collection([{"_id": {"status": status}, "n": n}
                         for n, status in enumerate(["CANCELED", "FAILURE", "IN_PROGRESS", "PENDING", "SUCCESS"])])
    db = Database({JOB_TASK.collection: groups})
    body = {"query": {"aggregate": [{"group": {"keys": [{"key": "status", "name": "status"}],
                                               "fields": [{"operator": "count", "name": "n"}]}}],
                      "page": {"start": 2, "limit": 2}}}
    answer = stat_items(JOB_TASK, db, Scope("domain-a"), body, Settings())
    assert answer == {"results": [{"status": "FAILURE", "n": 1}, {"status": "IN_PROGRESS", "n": 2}],
                      "total_count": 5}
    assert len(groups.pipelines) == 1
    assert not any("$count" in stage or "$skip" in stage for stage in groups.pipelines[0])

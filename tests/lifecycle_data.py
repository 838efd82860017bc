"""Hypothesis strategies for lifecycle events, and the rules restated plainly.

``expected_task`` is a second, deliberately naive reading of the issue's
rules over a *set* of events; the pure ``lifecycle.fold`` and the worker are
both held to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from worker.contract.events import EVENT_TYPES, TASK_PREFIX, Created

BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
KINDS_TERMINAL = ("succeeded", "failed", "canceled", "timed_out")
STATUS = {"succeeded": "SUCCESS", "failed": "FAILURE", "canceled": "CANCELED", "timed_out": "TIMEOUT"}


def at(milliseconds: int) -> str:
    return (BASE + timedelta(milliseconds=milliseconds)).isoformat(timespec="milliseconds")


def interleaved(rng, per_task: list[list]) -> list:
    """The tasks' events merged at random, each task's in its own order (``per_task`` is emptied)."""
    stream = []
    while any(per_task):
        events = rng.choice([events for events in per_task if events])
        stream.append(events.pop(0))
    return stream


def when(kwargs: dict) -> datetime:
    return datetime.fromisoformat(kwargs["occurred_at"])


@st.composite
def task_events(draw, job_task_id: str, domain_id: str = "domain-a") -> list[tuple[str, dict]]:
    """(task name, kwargs) for one task: a created, and a random mix of the rest.

    Times fall in a narrow window so that ties on occurred_at happen; event ids
    are drawn so that ties break either way.
    """
    times = st.integers(min_value=0, max_value=40).map(lambda n: at(n * 250))
    ids = iter(draw(st.lists(st.text("abcdefghij0123456789", min_size=4, max_size=6),
                             min_size=14, max_size=14, unique=True)))
    common = {"domain_id": domain_id, "job_task_id": job_task_id}
    workspace = draw(st.sampled_from([None, "workspace-1"]))
    created = {**common, "event_id": "c-" + next(ids), "occurred_at": draw(times),
               "job_id": "job-1", "data_source_id": "ds-1",
               "options": draw(st.sampled_from([{}, {"month": "202207"}, {"a": {"b": [1, 2]}}]))}
    if workspace:
        created["workspace_id"] = workspace
    events = [("job_task.created", created)]
    if draw(st.booleans()):  # an identical created sent again under another id
        events.append(("job_task.created", {**created, "event_id": "c-" + next(ids),
                                            "occurred_at": draw(times)}))
    for _ in range(draw(st.integers(0, 2))):
        events.append(("job_task.started", {**common, "event_id": "s-" + next(ids),
                                            "occurred_at": draw(times)}))
    for _ in range(draw(st.integers(0, 4))):
        events.append(("job_task.progressed", {**common, "event_id": "p-" + next(ids),
                                               "occurred_at": draw(times),
                                               "created_count_delta": draw(st.integers(0, 1000))}))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(KINDS_TERMINAL))
        event = {**common, "event_id": "t-" + next(ids), "occurred_at": draw(times)}
        if kind == "succeeded":
            event["created_count_delta"] = draw(st.integers(0, 1000))
        if kind == "failed":
            event.update(error_code="ERROR_PLUGIN", error_message="quota exceeded")
        events.append((TASK_PREFIX + kind, event))
    if draw(st.booleans()):  # another domain's plugin touching this task: refused
        events.append(("job_task.progressed", {**common, "domain_id": "domain-z",
                                               "event_id": "x-" + next(ids),
                                               "occurred_at": draw(times),
                                               "created_count_delta": 99999}))
    return events


@st.composite
def deliveries(draw, events: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The events, some sent twice or thrice, in a random order."""
    repeated = [event for event in events for _ in range(draw(st.integers(1, 3)) if draw(st.booleans()) else 1)]
    return draw(st.permutations(repeated))


def parsed(events: list[tuple[str, dict]]):
    """(Event, occurred_at) pairs for lifecycle.fold."""
    out = []
    for name, kwargs in events:
        event = EVENT_TYPES[name].model_validate(kwargs)
        out.append((event, event.occurred_at))
    return out


def expected_task(events: list[tuple[str, dict]]) -> dict | None:
    """The issue's rules, read literally, over the set of distinct events."""
    created = [kw for name, kw in events if name == "job_task.created"]
    if not created:
        return None
    first = min(created, key=when)
    domain = first["domain_id"]
    mine = {kw["event_id"]: (name, kw) for name, kw in events if kw["domain_id"] == domain}
    of = lambda kind: [kw for name, kw in mine.values() if name == TASK_PREFIX + kind]  # noqa: E731
    terminals = [(when(kw), kw["event_id"], name, kw) for name, kw in mine.values()
                 if name.removeprefix(TASK_PREFIX) in KINDS_TERMINAL]
    deciding = min(terminals, default=None, key=lambda t: (t[0], t[1]))
    started = [when(kw) for kw in of("started")]
    counted = [when(kw) for kw in of("created") + of("started") + of("progressed")]
    if deciding:
        counted.append(deciding[0])
    identity = Created.model_validate(first)
    task = {
        "job_task_id": first["job_task_id"],
        "status": STATUS[deciding[2].removeprefix(TASK_PREFIX)] if deciding
        else "IN_PROGRESS" if started else "PENDING",
        "options": first.get("options", {}),
        "created_count": sum(kw["created_count_delta"] for kw in of("progressed"))
        + (deciding[3].get("created_count_delta", 0) if deciding and deciding[2].endswith("succeeded") else 0),
        "resource_group": identity.resource_group,
        "domain_id": domain,
        "job_id": first["job_id"],
        "data_source_id": first["data_source_id"],
        "created_at": min(when(kw) for kw in of("created")),
        "updated_at": max(counted),
    }
    if first.get("workspace_id"):
        task["workspace_id"] = first["workspace_id"]
    if started:
        task["started_at"] = min(started)
    if deciding:
        task["finished_at"] = deciding[0]
        if deciding[2].endswith("failed"):
            task["error_code"] = deciding[3]["error_code"]
            task["error_message"] = deciding[3]["error_message"]
        if deciding[2].endswith("timed_out"):
            task["error_code"] = "ERROR_JOB_TASK_TIMEOUT"
            task["error_message"] = deciding[3].get("reason", "the job task timed out")
    return task

"""A Server-Sent Events client for the watch tests: httpx streaming in a thread, parsed per the spec.

``Watching(url, token=..., params=..., last_event_id=...)`` opens the
stream and queues each dispatched event (``Event``), and notes the ids and
heartbeat comments it saw; ``wait_for`` collects events until a predicate
holds. The API under test should send heartbeats often (the tests set
``JOBTASK_WATCH_HEARTBEAT`` low) so the reading thread notices ``close``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass

import httpx

from tests.readside import bearer


@dataclass
class Event:
    id: str
    event: str
    data: str

    @property
    def object(self) -> dict:
        return json.loads(self.data)


class Watching:
    def __init__(self, base_url: str, token: str | None = None, params: dict | None = None,
                 last_event_id: str | None = None) -> None:
        self.url = f"{base_url}/cost-analysis/v1/job-task/watch"
        self.params = dict(params or {})
        self.headers = {"Accept": "text/event-stream"}
        if token is not None:
            self.headers.update(bearer(token))
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue[Event] = queue.Queue()
        self.received: list[Event] = []
        self.last_event_id: str | None = None  # as a browser keeps it
        self.heartbeats = 0
        self.status: int | None = None
        self.body = b""
        self.opened = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self, timeout: float = 15) -> Watching:
        self.thread.start()
        if not self.opened.wait(timeout):
            raise TimeoutError("the watch stream did not open")
        return self

    def _run(self) -> None:
        try:
            with httpx.stream("GET", self.url, params=self.params, headers=self.headers,
                              timeout=httpx.Timeout(10.0, read=30.0)) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    self.body = response.read()
                    self.opened.set()
                    return
                self._parse(response)
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()

    def _parse(self, response: httpx.Response) -> None:
        fields: dict[str, list[str]] = {}
        for line in response.iter_lines():
            if self.stopping.is_set():
                return
            if line == "":
                if "id" in fields:
                    self.last_event_id = fields["id"][-1]
                if "data" in fields:
                    event = Event(fields.get("id", [""])[-1], fields.get("event", ["message"])[-1],
                                  "\n".join(fields["data"]))
                    self.events.put(event)
                fields = {}
                self.opened.set()
                continue
            if line.startswith(":"):
                self.heartbeats += 1
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)

    def wait_for(self, predicate, timeout: float = 30) -> list[Event]:
        """Events received so far until ``predicate(all received)`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"not seen in time; received {[(e.event, e.data[:80]) for e in self.received]}")
            with contextlib.suppress(queue.Empty):
                self.received.append(self.events.get(timeout=min(left, 0.5)))
        return self.received

    def drain(self, seconds: float) -> list[Event]:
        """Whatever arrives within ``seconds`` more (to show that something does not)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.received.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return self.received

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)


def of_task(events: list[Event], job_task_id: str) -> list[dict]:
    return [event.object for event in events
            if event.event == "job_task" and event.object.get("job_task_id") == job_task_id]

"""What the benchmark watches while a worker drains: the queue in Redis and processes in /proc.

Reading only: nothing here sends, starts or stops anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import redis


class Backlog:
    """A queue's messages in Redis: waiting, or fetched and not yet acknowledged.

    Waiting: the queue's list (and kombu's priority lists, named after it).
    Fetched: any other list naming the queue (the in-flight lists of
    ``worker.ingest.transport``) and kombu's unacknowledged hash.
    """

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue

    def read(self) -> tuple[int, int]:
        keys = [key.decode() for key in self.client.scan_iter(match=f"*{self.queue}*", _type="LIST")]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        pipe.hlen("unacked")  # the benchmark's Redis serves one worker at a time
        *lengths, unacked = pipe.execute()
        waiting = sum(length for key, length in zip(keys, lengths, strict=True) if key.startswith(self.queue))
        return waiting, sum(lengths) - waiting + unacked


class ProcessGroup:
    """The live processes of a process group (a worker and its pool, the store), from /proc."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, leader: int) -> None:
        self.leader = leader

    @staticmethod
    def _read(field: str, pids=None) -> dict[int, str]:
        found = {}
        for entry in (Path("/proc", str(pid)) for pid in pids) if pids is not None else Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    found[int(entry.name)] = (entry / field).read_text()
                except OSError:
                    continue  # it exited meanwhile
        return found

    def cpu_seconds(self) -> dict[int, float]:
        """User plus system CPU seconds of each process so far."""
        seconds = {}
        for pid, stat in self._read("stat").items():
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.leader:
                seconds[pid] = (int(fields[11]) + int(fields[12])) / self.TICKS
        return seconds

    def _memory_kib(self, key: str) -> tuple[int, int]:
        members = self.cpu_seconds()
        values = [int(line.split()[1]) for status in self._read("status", members).values()
                  for line in status.splitlines() if line.startswith(key)]
        return sum(values), len(values)

    def peak_rss_kib(self) -> tuple[int, int]:
        """Sum of VmHWM (each process's peak) over the group, and the number of processes."""
        return self._memory_kib("VmHWM:")

    def rss_kib(self) -> tuple[int, int]:
        """Sum of VmRSS (resident now) over the group, and the number of processes."""
        return self._memory_kib("VmRSS:")


def cpu_shares(groups: dict[str, ProcessGroup], before: dict[str, dict[int, float]],
               seconds: float) -> dict[str, float]:
    """Share of one core each watched part used since ``before``: worker main, its pool, the store.

    Several workers ("worker", "worker-2"...) add up: main is all their main
    processes, pool all their pool processes.
    """
    used = {"main": 0.0, "pool": 0.0}
    for name, group in groups.items():
        after = group.cpu_seconds()
        spent = {pid: after[pid] - before[name].get(pid, 0.0) for pid in after}
        if name.startswith("worker"):
            used["main"] += spent.pop(group.leader, 0.0) / seconds
            used["pool"] += sum(spent.values()) / seconds
        else:
            used[name] = sum(spent.values()) / seconds
    return used

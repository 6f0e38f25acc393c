"""A two-worker cluster for bench/moves.py: blockers, apps, their documents and clean-up.

`MoveCluster` is an `EmbeddedCluster` (the planner in this process, two `python -m faabric
worker` subprocesses) with the kernels of the migration benchmarks uploaded and one client.
Slots are taken by blockers (`kernels/hold.c`: sleeps, so it holds a slot without using a
core) to give an app the split placement it must start with; `settle` ends whatever still
runs (POST /v1/reset) and waits until every slot is free again. Every wait has a deadline;
the cluster is always stopped when the `with` block ends, also on errors.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.common import KERNEL_DIR, build_wasm

KERNELS = ("hold", "mpi_pause", "mpi_alltoall")
LONG_MS = 600_000  # a blocker that outlives every app here; `settle` ends it
SETTLE_TIMEOUT = 30.0


class BenchError(RuntimeError):
    """A run did not go as the benchmark needs (wrong placement, failure, no migration)."""


def build_kernels(cache_dir: Path) -> dict[str, bytes]:
    return {name: build_wasm(KERNEL_DIR / f"{name}.c", cache_dir) for name in KERNELS}


class MoveCluster:
    """Two workers of `slots` slots each, the kernels uploaded (see the module docstring)."""

    def __init__(self, slots: int, kernels: dict[str, bytes]) -> None:
        from faabric.runtime import EmbeddedCluster
        from faabric.transport.auth import new_token

        logging.getLogger("faabric").setLevel(logging.WARNING)
        self._cluster = EmbeddedCluster(hosts=2, slots=slots, token=new_token())
        self._kernels = kernels
        self._digests: dict[str, str] = {}
        self._client: Any = None

    def __enter__(self) -> MoveCluster:
        from faabric.planner.client import PlannerClient

        self._cluster.start()
        try:
            self._client = PlannerClient(self._cluster.url, token=self._cluster.token,
                                         timeout=120)
            self._digests = {name: self._client.upload_module(data)
                             for name, data in self._kernels.items()}
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._cluster.close()

    def submit(self, kernel: str, size: int, *args: object, **extra: Any) -> dict[str, Any]:
        """Start an app of `size` granules; returns its document (it must not be queued)."""
        app = {"module": self._digests[kernel], "size": size, "program": kernel,
               "args": [str(a) for a in args], **extra}
        doc = self._client.submit(app)
        if doc["state"] != "running":
            raise BenchError(f"{kernel} x{size} did not start at once: {doc['state']}")
        return dict(doc)

    def app(self, app_id: int) -> dict[str, Any]:
        return dict(self._client.app(app_id))

    def finish(self, app_id: int, timeout: float) -> dict[str, Any]:
        """The app's document once it finished with status 0."""
        doc = self._client.wait_app(app_id, timeout)
        if doc["finished"] is None:
            raise BenchError(f"app {app_id} did not finish within {timeout:g} s")
        if doc["status"] != 0:
            why = "; ".join(f"{r['index']}: {r['outcome']} {_text(r['stderr'])[-300:]}"
                            for r in doc["results"] if r["status"] != 0)
            raise BenchError(f"app {app_id} failed: {why}")
        return dict(doc)

    def settle(self) -> None:
        """Stop every app and wait until no slot is used."""
        self._client.reset()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while any(h.get("used", 0) for h in self._client.hosts()):
            if time.monotonic() > deadline:
                raise BenchError(f"slots still used {SETTLE_TIMEOUT:g} s after a reset: "
                                 f"{self._client.hosts()}")
            time.sleep(0.05)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds used so far by the whole machine, and by this process and its
        workers: the difference over a run is what other processes took from it."""
        tick = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as stat:
            user, nice, system, _, _, irq, softirq = map(int, stat.readline().split()[1:8])
        mine = sum(os.times()[:2])
        for proc in self._cluster.workers:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            mine += (int(fields[11]) + int(fields[12])) / tick
        return (user + nice + system + irq + softirq) / tick, mine

    def split_start(self, blocked: int, short_ms: float, kernel: str, size: int,
                    *args: object, **extra: Any) -> tuple[dict[str, Any], str]:
        """Block `blocked` slots on each worker (the first blocker outlives the app, the
        second ends after `short_ms`), then start the app half on each worker. Returns the
        app's document and the worker whose blocker ends (the app's ranks gather there)."""
        self.settle()
        long = self.submit("hold", blocked, LONG_MS)
        short = self.submit("hold", blocked, f"{short_ms:.0f}")
        long_hosts, short_hosts = _hosts(long), _hosts(short)
        if len(long_hosts) != 1 or len(short_hosts) != 1 or long_hosts == short_hosts:
            raise BenchError(f"blockers not one per worker: {long_hosts} {short_hosts}")
        doc = self.submit(kernel, size, *args, **extra)
        counts = Counter(p["host"] for p in doc["placement"])
        if sorted(counts.values()) != [size // 2, size - size // 2] or len(counts) != 2:
            raise BenchError(f"{kernel} did not start split over both workers: {counts}")
        doc["blocker_started"] = short["started"]
        return doc, next(iter(short_hosts))


def _hosts(doc: dict[str, Any]) -> set[str]:
    return {p["host"] for p in doc["placement"]}


def _text(data: bytes | str) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def stdout_of(doc: dict[str, Any]) -> str:
    """Every granule's stdout, by index."""
    return "".join(_text(r["stdout"]) for r in sorted(doc["results"], key=lambda r: r["index"]))


def events_of(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in doc.get("events", ()) if e["kind"] == kind]

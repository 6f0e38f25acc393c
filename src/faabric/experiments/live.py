"""A trace run for real, to check the replay against: every job of an MPI trace submitted at
its arrival time to a planner with worker processes (`EmbeddedCluster`), once per baseline,
and the makespans set beside the replay of the same trace under the same cost model.

A job runs `guests/trace_job.c`: its ranks sleep out the job's work (work x `unit` seconds)
in steps of `step` seconds, each ending at a world barrier (a migration point), so that many
ranks fit on the few cores of one machine. Its cost model (`live_calibration`) is therefore
the shipped one with `unit` seconds per unit of work and no cost for cross-host pairs
(sleeping ranks exchange nothing but barriers). Each baseline is a per-app choice on the
same cluster: its planner policy (`whole-vm`, `bin-pack`) and whether ranks may move at the
barriers. It must not change the planner, and every wait has a deadline.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from faabric.errors import ConfigError, FaabricError
from faabric.experiments.baselines import Baseline
from faabric.experiments.calibration import Calibration
from faabric.experiments.trace import Job, Kind

SETTLE_SECONDS = 60.0  # most a baseline waits for the slots of the one before to free


@dataclass(frozen=True, slots=True)
class LiveSetup:
    """The real cluster: `hosts` workers of `slots` slots; a unit of trace work lasts
    `unit` seconds and a job reaches a migration point every `step` seconds."""

    hosts: int = 3
    slots: int = 4
    unit: float = 0.005
    step: float = 0.5

    def __post_init__(self) -> None:
        if self.hosts < 1 or self.slots < 1:
            raise ConfigError(f"a live run needs hosts and slots >= 1, got {self.hosts} "
                              f"and {self.slots}")
        if not (self.unit > 0 and self.step > 0):
            raise ConfigError(f"--unit and --step must be > 0, got {self.unit} and {self.step}")


@dataclass(frozen=True, slots=True)
class LiveResult:
    """One baseline's real run: makespan (last job end minus first submission, on the
    planner's clock), migrations made, the slowest job's wait for slots, and how long each
    migration stood its app still (its `started` to its `migrated` event)."""

    baseline: str
    makespan: float
    migrations: int
    longest_wait: float
    pauses: tuple[float, ...] = ()


def live_calibration(
    setup: LiveSetup, shipped: Calibration, pauses: Sequence[float] = ()
) -> Calibration:
    """The cost model of a live run's jobs (see the module doc); with `pauses` measured in
    the run, a migration stands still for their median whatever it moves."""
    cal = dataclasses.replace(shipped, compute_seconds_per_unit=setup.unit,
                              cross_host_pair_cost=0.0)
    if not pauses:
        return cal
    return dataclasses.replace(cal, migration_pause_seconds=statistics.median(pauses),
                               migration_pause_seconds_per_mib=0.0)


def check_trace(jobs: Sequence[Job], slots: int) -> None:
    """Raise ConfigError unless every job is an MPI job that fits on the cluster."""
    for job in jobs:
        if job.kind is not Kind.MPI:
            raise ConfigError(f"job {job.job_id} is an OpenMP job: live runs take MPI traces "
                              "(--mix mpi)")
        if job.size > slots:
            raise ConfigError(f"job {job.job_id} needs {job.size} slots; the cluster has "
                              f"{slots}")


def job_source() -> Path:
    """The C source of a trace job (shipped with faabric)."""
    return Path(str(resources.files("faabric.experiments") / "guests" / "trace_job.c"))


def run_trace(client: Any, module: str, jobs: Sequence[Job], baseline: Baseline,
              setup: LiveSetup, *, progress: Callable[[str], None] = lambda line: None,
              ) -> LiveResult:
    """Submit each job at its arrival time (relative to now) under `baseline`, wait for all
    of them, and measure. `client` is a `PlannerClient`; `module` the job's digest.

    Raises:
        FaabricError: a job failed, or did not finish within its deadline.
    """
    ordered = sorted(jobs, key=lambda job: (job.arrival, job.job_id))
    first = ordered[0].arrival if ordered else 0.0
    began = time.monotonic()
    ids: list[int] = []
    for job in ordered:
        due = began + job.arrival - first
        time.sleep(max(0.0, due - time.monotonic()))
        ids.append(int(client.submit(_app(module, job, baseline, setup))["app_id"]))
    progress(f"{baseline.name}: {len(ids)} jobs submitted")
    deadline = _deadline(ordered, setup)
    docs = client.wait_apps(ids, timeout=deadline)
    return _measure(baseline.name, docs)


def _app(module: str, job: Job, baseline: Baseline, setup: LiveSetup) -> dict[str, Any]:
    return {
        "module": module,
        "size": job.size,
        "program": "trace_job",
        "args": [f"{job.work * setup.unit:.6f}", f"{setup.step:.6f}"],
        "policy": baseline.policy.name,
        "migrate_every": 1 if baseline.migrate else 0,
    }


def _deadline(jobs: Sequence[Job], setup: LiveSetup) -> float:
    # Every job one after the other, twice over, plus a minute: far beyond any schedule.
    serial = sum(job.work * setup.unit + setup.step for job in jobs)
    return 2 * serial + 60.0


def _measure(name: str, docs: Sequence[dict[str, Any]]) -> LiveResult:
    unfinished = [d["app_id"] for d in docs if d.get("finished") is None]
    if unfinished:
        raise FaabricError(f"{name}: apps {unfinished} did not finish in time")
    failed = [(d["app_id"], d["status"]) for d in docs if d["status"] != 0]
    if failed:
        raise FaabricError(f"{name}: apps failed (id, status): {failed}")
    start = min(d["submitted"] for d in docs)
    end = max(d["finished"] for d in docs)
    wait = max(d["started"] - d["submitted"] for d in docs)
    pauses = tuple(p for doc in docs for p in _pauses(doc["events"]))
    return LiveResult(name, end - start, sum(d["migrations"] for d in docs), wait, pauses)


def _pauses(events: Sequence[dict[str, Any]]) -> list[float]:
    started = {e["epoch"]: e["time"] for e in events if e["kind"] == "started"}
    return [e["time"] - started[e["epoch"]] for e in events
            if e["kind"] == "migrated" and e["epoch"] in started]


def wait_idle(client: Any, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until no slot of the cluster is used (the apps of a run released them).

    Raises:
        FaabricError: slots are still used after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        hosts = client.hosts()
        if all(host["used"] == 0 for host in hosts):
            return
        if time.monotonic() > deadline:
            raise FaabricError(f"slots still used {timeout:.0f} s after the last run: {hosts}")
        time.sleep(0.1)

"""Job traces for cluster experiments: Poisson arrivals of MPI and OpenMP jobs, each with a
work model, written and read as JSON lines (one job per line).

Generation is deterministic for a seed (one `random.Random`, drawn in a fixed order). This
module only makes and checks traces: it must not schedule, replay or read the clock.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from faabric.errors import ConfigError


class TraceError(ConfigError):
    """A trace file or a trace request is malformed."""


class Kind(StrEnum):
    """What a job runs: MPI ranks, or the threads of one OpenMP team."""

    MPI = "mpi"
    OPENMP = "openmp"


class Mix(StrEnum):
    """Which jobs a trace holds (`spot`: MPI jobs of 4-15 ranks, as the original's spot runs)."""

    MPI = "mpi"
    OPENMP = "openmp"
    SPOT = "spot"


@dataclass(frozen=True, slots=True)
class Job:
    """One job of a trace.

    Attributes:
        job_id: unique, from 1, in arrival order.
        arrival: seconds after the trace's start.
        kind: MPI or OpenMP.
        size: ranks (MPI) or threads (OpenMP).
        work: units of compute per granule (seconds = work x compute_seconds_per_unit, all
            ranks on one host; for OpenMP, of the whole team's work run by one thread).
    """

    job_id: int
    arrival: float
    kind: Kind
    size: int
    work: float


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """How to generate a trace: `jobs` jobs arriving at `rate` per second (Poisson), sizes
    uniform in [lo, hi) per kind, work uniform in `work` units (`spot_work` for the spot
    mix: its jobs must outlive hosts evicted every minute)."""

    jobs: int
    rate: float
    mix: Mix
    seed: int
    mpi_sizes: tuple[int, int] = (2, 16)
    openmp_sizes: tuple[int, int] = (1, 8)
    spot_sizes: tuple[int, int] = (4, 16)
    work: tuple[float, float] = (400.0, 1200.0)
    spot_work: tuple[float, float] = (20.0, 60.0)

    def work_range(self) -> tuple[float, float]:
        """The work range of this mix."""
        return self.spot_work if self.mix is Mix.SPOT else self.work

    def check(self) -> None:
        """Raise TraceError for a request no trace can satisfy."""
        if self.jobs < 1:
            raise TraceError(f"--jobs must be >= 1, got {self.jobs}")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise TraceError(f"--rate must be > 0, got {self.rate}")
        for name, (lo, hi) in (("MPI", self.mpi_sizes), ("OpenMP", self.openmp_sizes),
                               ("spot", self.spot_sizes)):
            if not 1 <= lo < hi:
                raise TraceError(f"{name} sizes [{lo}, {hi}) must satisfy 1 <= lo < hi")
        least, most = self.work_range()
        if not 0 < least <= most:
            raise TraceError(f"work range {(least, most)} must satisfy 0 < lo <= hi")


def generate(spec: TraceSpec) -> tuple[Job, ...]:
    """The jobs of `spec`, in arrival order (the first arrives at 0)."""
    spec.check()
    rng = random.Random(spec.seed)
    kind = Kind.OPENMP if spec.mix is Mix.OPENMP else Kind.MPI
    lo, hi = {Mix.MPI: spec.mpi_sizes, Mix.OPENMP: spec.openmp_sizes,
              Mix.SPOT: spec.spot_sizes}[spec.mix]
    jobs: list[Job] = []
    now = 0.0
    for job_id in range(1, spec.jobs + 1):
        size = rng.randrange(lo, hi)
        work = rng.uniform(*spec.work_range())
        jobs.append(Job(job_id, round(now, 6), kind, size, round(work, 6)))
        now += rng.expovariate(spec.rate)
    return tuple(jobs)


def write_trace(jobs: Iterable[Job], path: str | Path) -> None:
    """Write one JSON object per job, one per line."""
    lines = [json.dumps({"id": j.job_id, "arrival": j.arrival, "kind": str(j.kind),
                         "size": j.size, "work": j.work}) for j in jobs]
    try:
        Path(path).write_text("".join(line + "\n" for line in lines))
    except OSError as exc:
        raise TraceError(f"trace {path}: cannot write: {exc.strerror}") from None


def read_trace(path: str | Path) -> tuple[Job, ...]:
    """Read and check a trace file: ids unique, arrivals not decreasing.

    Raises:
        TraceError: unreadable, or a line that is not a valid job.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TraceError(f"trace {path}: cannot read: {exc.strerror}") from None
    return parse_trace(text.splitlines(), str(path))


def parse_trace(lines: Sequence[str], where: str) -> tuple[Job, ...]:
    """Check the lines of a trace (`where` names it in errors); blank lines are skipped."""
    jobs: list[Job] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            jobs.append(_job(line, f"trace {where} line {number}"))
    if not jobs:
        raise TraceError(f"trace {where}: no jobs")
    if len({j.job_id for j in jobs}) != len(jobs):
        raise TraceError(f"trace {where}: job ids are not unique")
    if any(b.arrival < a.arrival for a, b in itertools.pairwise(jobs)):
        raise TraceError(f"trace {where}: arrivals must not decrease")
    return tuple(jobs)


def _job(line: str, where: str) -> Job:
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise TraceError(f"{where}: expected a JSON object")
    try:
        job = Job(int(data["id"]), float(data["arrival"]), Kind(data["kind"]),
                  int(data["size"]), float(data["work"]))
    except KeyError as exc:
        raise TraceError(f"{where}: missing field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise TraceError(f"{where}: bad field: {exc}") from None
    if job.size < 1 or job.arrival < 0 or not job.work > 0 or not math.isfinite(job.work):
        raise TraceError(f"{where}: need size >= 1, arrival >= 0 and work > 0")
    return job

"""What a replay measures: makespan, idle slot-seconds, cross-host rank pairs over time, and
each job's wait and run time.

`Meter` integrates the cluster's state between the replay's events (the replay tells it each
change); `Outcome` is the frozen result. It must not schedule or drive the planner core.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobTimes:
    """One job: arrived, started (its last run's dispatch), ended (last granule), in virtual
    seconds; `migrations` is how many times its ranks moved, `restarts` how many times it
    was lost with a host and started again from scratch."""

    job_id: int
    arrived: float
    started: float
    ended: float
    migrations: int
    restarts: int = 0

    @property
    def wait(self) -> float:
        """Seconds queued."""
        return self.started - self.arrived

    @property
    def run(self) -> float:
        """Seconds from start to end."""
        return self.ended - self.started


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one replay.

    Attributes:
        makespan: last job end minus first arrival.
        idle_percent: free slot-seconds while any job was queued or running, over all
            slot-seconds of that time.
        crosshost: time-weighted mean of the cross-host rank pairs of all running apps, over
            the time jobs were queued or running.
        queued_percent: share of that time in which some job waited in the queue (the core
            offers no migration then).
        jobs: every finished job, by id.
        rejected: ids of jobs larger than the cluster.
        events: planner events handled.
    """

    makespan: float
    idle_percent: float
    crosshost: float
    queued_percent: float
    jobs: tuple[JobTimes, ...]
    rejected: tuple[int, ...]
    events: int

    def line(self, name: str) -> str:
        """`NAME makespan=SECONDS idle=PERCENT crosshost=MEAN_PAIRS` (scripts parse it)."""
        return (f"{name} makespan={self.makespan:.1f} idle={self.idle_percent:.1f} "
                f"crosshost={self.crosshost:.2f}")

    def mean_wait(self) -> float:
        """Mean seconds a job waited in the queue (0 without jobs)."""
        return statistics.fmean(j.wait for j in self.jobs) if self.jobs else 0.0

    def mean_run(self) -> float:
        """Mean seconds a job ran (0 without jobs)."""
        return statistics.fmean(j.run for j in self.jobs) if self.jobs else 0.0


class Meter:
    """Integrals of free slots and cross-host pairs over the time jobs are in the system.

    Args:
        slots: total slots of the cluster.
    """

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._last = 0.0
        self.busy = 0.0  # seconds with a job queued or running
        self.idle = 0.0  # free slot-seconds within `busy`
        self.pairs = 0.0  # cross-host pair-seconds within `busy`
        self.queued = 0.0  # seconds within `busy` with a job waiting
        self.running = 0  # apps running now
        self.used = 0  # slots running granules now
        self.in_system = 0  # jobs queued or running now
        self.crosshost = 0  # cross-host pairs of the running apps now

    def advance(self, now: float) -> None:
        """Integrate the current state from the last call up to `now`."""
        span = now - self._last
        if span > 0 and self.in_system:
            self.busy += span
            self.idle += span * (self._slots - self.used)
            self.pairs += span * self.crosshost
            if self.in_system > self.running:
                self.queued += span
        self._last = now

    def outcome(
        self, jobs: list[JobTimes], first: float, rejected: list[int], events: int
    ) -> Outcome:
        """The frozen result, once every job ended."""
        last = max((j.ended for j in jobs), default=first)
        slot_seconds = self.busy * self._slots
        return Outcome(
            makespan=last - first,
            idle_percent=100.0 * self.idle / slot_seconds if slot_seconds else 0.0,
            crosshost=self.pairs / self.busy if self.busy else 0.0,
            queued_percent=100.0 * self.queued / self.busy if self.busy else 0.0,
            jobs=tuple(sorted(jobs, key=lambda j: j.job_id)),
            rejected=tuple(sorted(rejected)),
            events=events,
        )

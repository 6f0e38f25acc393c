"""What a replay measures: makespan, idle slot-seconds, cross-host rank pairs and
fragmentation (free slots stranded on partly used hosts), as time-weighted means and as a
time series sampled at every change, and each job's wait and run time.

`Meter` follows the cluster's state between the replay's events (the replay tells it each
change, slot by slot and host by host); `Outcome` is the frozen result. It must not schedule
or drive the planner core.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable
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
class Sample:
    """The cluster from `time` until the next sample (the state after every event at `time`).

    Attributes:
        time: virtual seconds.
        used: slots running granules.
        idle: free slots of the hosts that are up.
        crosshost: cross-host rank pairs of all running apps.
        stranded: free slots on hosts that have at least one used slot.
    """

    time: float
    used: int
    idle: int
    crosshost: int
    stranded: int

    @property
    def idle_percent(self) -> float:
        """Free slots as a share of the slots of the hosts that are up."""
        slots = self.used + self.idle
        return 100.0 * self.idle / slots if slots else 0.0

    @property
    def fragmentation(self) -> float | None:
        """Stranded free slots as a share of all free slots; None when no slot is free."""
        return 100.0 * self.stranded / self.idle if self.idle else None


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
        fragmentation: stranded free slot-seconds (on hosts with a used slot) over all free
            slot-seconds, in percent, over the time jobs were queued or running.
        series: the cluster's state from the first arrival to the last end, one sample per
            change.
    """

    makespan: float
    idle_percent: float
    crosshost: float
    queued_percent: float
    jobs: tuple[JobTimes, ...]
    rejected: tuple[int, ...]
    events: int
    fragmentation: float = 0.0
    series: tuple[Sample, ...] = ()

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
    """Slots used per host, and integrals of free slots, stranded free slots and cross-host
    pairs over the time jobs are in the system; a sample of the state at every change.

    The replay tells it which hosts are up (`host_up`, `host_down`) and which slots granules
    take and give back (`take`, `give`: one host name per slot); it sets `running`,
    `in_system` and `crosshost` itself.
    """

    def __init__(self) -> None:
        self._last = 0.0
        self._slots: dict[str, int] = {}  # slots of each host that is up
        self._on: dict[str, int] = {}  # used slots per host (hosts that left keep theirs)
        self.busy = 0.0  # seconds with a job queued or running
        self.capacity = 0.0  # slot-seconds of the hosts up within `busy`
        self.idle = 0.0  # free slot-seconds within `busy`
        self.lost = 0.0  # stranded free slot-seconds within `busy`
        self.pairs = 0.0  # cross-host pair-seconds within `busy`
        self.queued = 0.0  # seconds within `busy` with a job waiting
        self.running = 0  # apps running now
        self.used = 0  # slots running granules now
        self.up = 0  # slots of the hosts that are up now
        self.stranded = 0  # free slots on hosts with a used slot now
        self.in_system = 0  # jobs queued or running now
        self.crosshost = 0  # cross-host pairs of the running apps now
        self._series: list[Sample] = []

    def host_up(self, host: str, slots: int) -> None:
        """`host` joined with `slots` slots."""
        self._slots[host] = slots
        self._on.setdefault(host, 0)
        self.up += slots
        self.stranded += self._strands(host)

    def host_down(self, host: str) -> None:
        """`host` went away."""
        self.stranded -= self._strands(host)
        self.up -= self._slots.pop(host)

    def take(self, hosts: Iterable[str]) -> None:
        """A granule took one slot on each of `hosts` (a name per slot)."""
        self._change(hosts, 1)

    def give(self, hosts: Iterable[str]) -> None:
        """A granule gave back one slot on each of `hosts` (a name per slot)."""
        self._change(hosts, -1)

    def _change(self, hosts: Iterable[str], by: int) -> None:
        for host in hosts:
            before = self._strands(host)
            self._on[host] += by
            self.used += by
            self.stranded += self._strands(host) - before

    def _strands(self, host: str) -> int:
        """Free slots of `host` that count as stranded: all of them if one slot is used."""
        slots = self._slots.get(host)
        used = self._on[host]
        return slots - used if slots is not None and used > 0 else 0

    def advance(self, now: float) -> None:
        """Integrate the current state from the last call up to `now`, and sample it."""
        span = now - self._last
        if span > 0 and self.in_system:
            free = self.up - self.used
            self.busy += span
            self.capacity += span * self.up
            self.idle += span * free
            self.lost += span * self.stranded
            self.pairs += span * self.crosshost
            if self.in_system > self.running:
                self.queued += span
        if span > 0:
            self._sample()
        self._last = now

    def _sample(self) -> None:
        """Record the state that held from the last call on, unless nothing changed."""
        state = (self.used, self.up - self.used, self.crosshost, self.stranded)
        if self._series:
            last = self._series[-1]
            if (last.used, last.idle, last.crosshost, last.stranded) == state:
                return
        self._series.append(Sample(self._last, *state))

    def outcome(
        self, jobs: list[JobTimes], first: float, rejected: list[int], events: int
    ) -> Outcome:
        """The frozen result, once every job ended."""
        self._sample()
        last = max((j.ended for j in jobs), default=first)
        return Outcome(
            makespan=last - first,
            idle_percent=_percent(self.idle, self.capacity),
            crosshost=self.pairs / self.busy if self.busy else 0.0,
            queued_percent=_percent(self.queued, self.busy),
            jobs=tuple(sorted(jobs, key=lambda j: j.job_id)),
            rejected=tuple(sorted(rejected)),
            events=events,
            fragmentation=_percent(self.lost, self.idle),
            series=_window(self._series, first, last),
        )


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _window(series: list[Sample], first: float, last: float) -> tuple[Sample, ...]:
    """The samples from `first` to `last`: the one in force at `first` starts there."""
    before = [s for s in series if s.time <= first]
    start = [dataclasses.replace(before[-1], time=first)] if before else []
    return (*start, *(s for s in series if first < s.time <= last))

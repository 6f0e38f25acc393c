"""Whether a parallel region pays for spanning hosts, decided from its measured times.

A region of a granule (its outlined function at one team size) that the planner spread over
several workers spans hosts for its first `SPAN_RUNS` runs, each timed from fork to join.
Its next run is a trial on the granule's worker alone (the whole team there, oversubscribed
if need be), timed too. From then on the region runs the faster way: if the trial beat every
spanning run but the first (which also ships the whole memory), it stays on one host and
the app is told why. A region run once only never gets a trial. This module is a pure state
machine fed with durations: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

SPAN_RUNS = 2  # spanning runs timed before the trial on one host


class Way(Enum):
    """How the next run of a region goes."""

    SPAN = "span"  # across hosts, as planned
    TRIAL = "trial"  # on one host, timed against the spanning runs
    LOCAL = "local"  # on one host: spanning did not pay


@dataclass(frozen=True, slots=True)
class KeptLocal:
    """The verdict that a region runs on one host from now on, and the times behind it."""

    spanning: float  # seconds of its best spanning run (but the first, if there were more)
    local: float  # seconds of its run on one host

    def describe(self) -> str:
        return (f"a run across hosts took {self.spanning * 1e3:.1f} ms at best, "
                f"one on this worker {self.local * 1e3:.1f} ms")


@dataclass(slots=True)
class SpanChoice:
    """The runs of one region so far and the way it runs next."""

    spanned: list[float] = field(default_factory=list)
    local: float | None = None

    def next_way(self) -> Way:
        if self.local is None:
            return Way.SPAN if len(self.spanned) < SPAN_RUNS else Way.TRIAL
        return Way.LOCAL if self.local < self._best_span() else Way.SPAN

    def ran_spanning(self, seconds: float) -> None:
        """A run across hosts took `seconds` (fork to join)."""
        self.spanned.append(seconds)

    def ran_trial(self, seconds: float) -> KeptLocal | None:
        """The trial on one host took `seconds`: the verdict if the region stays there."""
        if self.local is not None or not self.spanned:
            return None
        self.local = seconds
        if seconds < self._best_span():
            return KeptLocal(self._best_span(), seconds)
        return None

    def _best_span(self) -> float:
        warm = self.spanned[1:] or self.spanned
        return min(warm)

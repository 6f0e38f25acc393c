"""The planner's record of one app, and the read-only views it hands out.

`AppRecord` is mutable and private to the planner core; `AppView` and `Statistics` are frozen
snapshots safe to give to other threads. No I/O, no clock, no scheduling decisions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faabric.messages.types import AppInfo, AppSpec, AppState, GranuleResult


@dataclass(frozen=True, slots=True)
class AppView:
    """A snapshot of one app: its placement, the results so far, and when things happened.

    Attributes:
        app_id: the id the shell chose at submission.
        spec: what was submitted.
        state: queued, running or finished.
        placement: (granule index, host name) pairs, by index; empty while queued.
        results: the results received so far, by index.
        submitted: clock time of submission.
        started: clock time the app was dispatched; None if it never was.
        finished: clock time the last result arrived; None while in flight.
        scaled: (host name, slots) granted by scale changes and still held, by host name.
    """

    app_id: int
    spec: AppSpec
    state: AppState
    placement: tuple[tuple[int, str], ...]
    results: tuple[GranuleResult, ...]
    submitted: float
    started: float | None
    finished: float | None
    scaled: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Statistics:
    """Counts describing the planner at one moment, for logs and tests."""

    hosts: int
    total_slots: int
    used_slots: int
    queued: int
    running: int
    finished: int
    scaled_slots: int = 0  # slots held by running apps through scale changes


@dataclass(slots=True)
class AppRecord:
    """The planner's mutable bookkeeping for one app."""

    app_id: int
    spec: AppSpec
    submitted: float
    state: AppState = AppState.QUEUED
    started: float | None = None
    finished: float | None = None
    placement: dict[int, str] = field(default_factory=dict)
    results: dict[int, GranuleResult] = field(default_factory=dict)
    # Granules failed as "cancelled" whose worker has not reported yet: they still hold a slot.
    cancelled: set[int] = field(default_factory=set)
    # Slots granted by scale changes and not yet released, by host name (running apps only).
    scaled: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every granule has a result."""
        return len(self.results) == self.spec.size

    def view(self) -> AppView:
        """A frozen snapshot of this record."""
        return AppView(
            app_id=self.app_id,
            spec=self.spec,
            state=self.state,
            placement=tuple(sorted(self.placement.items())),
            results=tuple(result for _, result in sorted(self.results.items())),
            submitted=self.submitted,
            started=self.started,
            finished=self.finished,
            scaled=tuple(sorted(self.scaled.items())),
        )

    def info(self) -> AppInfo:
        """The status-listing summary of this record."""
        return AppInfo(
            app_id=self.app_id,
            program=self.spec.program,
            size=self.spec.size,
            state=self.state,
            placement=tuple(sorted(self.placement.items())),
            done=len(self.results),
            scaled=tuple(sorted(self.scaled.items())),
        )

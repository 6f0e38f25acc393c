"""Stopping running wasm from outside: cancellation tokens and the per-slice verdict.

Every store runs in short slices of epoch ticks. At the end of each slice wasmtime calls back
into the launcher, which asks a `Watch` whether the instance may go on: it must stop when its
`Cancellation` was cancelled, when the run's wall-clock deadline has passed, or when its team
(the instances sharing its memory) is being stopped. This module holds only those decisions;
it must not import wasmtime or know how the callback is installed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
DEFAULT_SLICE = 0.1  # seconds between checks of a running instance


class Cancellation:
    """A token another thread uses to stop a run: `cancel(reason)` (the first reason wins).

    One is made per granule, so it is cheap: a lock and a reason. The run polls it between
    slices of epoch ticks.
    """

    __slots__ = ("_lock", "_reason")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None

    def cancel(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason

    @property
    def cancelled(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str:
        """Why it was cancelled ("" while it is not)."""
        return self._reason or ""


# -- why a running instance was stopped: a tagged union ----------------------------------------


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """Its `Cancellation` was cancelled."""

    reason: str


@dataclass(frozen=True, slots=True)
class DeadlinePassed:
    """The run's wall-clock timeout expired."""


@dataclass(frozen=True, slots=True)
class TeamStopped:
    """Another instance of its team ended the granule (it returned, exited or trapped)."""


Verdict = CancelRequested | DeadlinePassed | TeamStopped


@dataclass(frozen=True, slots=True)
class Watch:
    """What a running instance is checked against at the end of every slice."""

    deadline: float  # on `clock`
    cancel: Cancellation
    team_stop: threading.Event
    clock: Clock
    slice: float = DEFAULT_SLICE

    def verdict(self) -> Verdict | None:
        """Why the instance must stop now, or None if it may run another slice."""
        if self.cancel.cancelled:
            return CancelRequested(self.cancel.reason)
        if self.clock() >= self.deadline:
            return DeadlinePassed()
        if self.team_stop.is_set():
            return TeamStopped()
        return None

    def next_slice(self) -> float:
        """Seconds until the next check: one slice, or less if the deadline comes first."""
        return max(0.0, min(self.slice, self.deadline - self.clock()))

"""Stopping running wasm from outside: cancellation tokens, verdicts and the watchdog.

A running instance must stop when its `Cancellation` was cancelled, when the run's
wall-clock deadline has passed, or when its team (the instances sharing its memory) is being
stopped. A `Watch` holds those decisions; a `Watchdog` thread asks every watched instance's
`Watch` at least once a slice and hands a verdict to the instance's `stop` (which raises its
stop flag, see stopcheck.py). This module must not import wasmtime or know how an instance
is stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
DEFAULT_SLICE = 0.1  # seconds between checks of a running instance
MIN_WAIT = 0.001  # the watchdog's shortest sleep, when a deadline is about to pass
IDLE_EXIT = 5.0  # seconds the watchdog's thread waits for work before it ends


class Cancellation:
    """A token another thread uses to stop a run: `cancel(reason)` (the first reason wins).

    One is made per granule, so it is cheap: a lock and a reason. The watchdog polls it once
    a slice.
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


Stop = Callable[[Verdict], None]


class Watchdog:
    """One thread that asks each watched instance's `Watch` at least once a slice (and when
    its deadline comes) and calls its `stop(verdict)` once, then forgets it. The thread ends
    after `IDLE_EXIT` seconds with nothing to watch (starting one per run would cost more
    than the run of a short granule). `stop` runs under the watchdog's lock, so once `forget`
    returns it is not running and will not be called: the instance may then be released."""

    def __init__(self, slice_seconds: float = DEFAULT_SLICE) -> None:
        self._slice = slice_seconds
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._watched: dict[int, tuple[Watch, Stop]] = {}
        self._running = False
        self._wake_at = 0.0  # time.monotonic() of the thread's next round

    def watch(self, key: int, watch: Watch, stop: Stop) -> None:
        """Check `watch` from now on; `stop` gets its verdict (from the watchdog's thread)."""
        with self._lock:
            self._watched[key] = (watch, stop)
            if self._running:
                # Waking the thread costs the caller a GIL hand-off: only when the new
                # watch is due before the thread's next round.
                if watch.next_slice() < self._wake_at - time.monotonic():
                    self._wake.notify()
                return
            self._running = True
        threading.Thread(target=self._run, name="wasm-watchdog", daemon=True).start()

    def forget(self, key: int) -> None:
        """Stop checking `key` (no-op if it is not watched, or was stopped)."""
        with self._lock:
            self._watched.pop(key, None)

    def _run(self) -> None:
        with self._lock:
            while True:
                if not self._watched:
                    self._wake_at = 0.0  # idle: every new watch wakes the thread
                    if not self._wake.wait(IDLE_EXIT) and not self._watched:
                        break
                    continue
                wait = self._round()
                self._wake_at = time.monotonic() + wait
                self._wake.wait(wait)
            self._running = False

    def _round(self) -> float:
        """Stop the instances that must stop; seconds until the next round is due."""
        wait = self._slice
        for key, (watch, stop) in list(self._watched.items()):
            verdict = watch.verdict()
            if verdict is None:
                wait = min(wait, watch.next_slice())
                continue
            del self._watched[key]
            stop(verdict)
        return max(MIN_WAIT, wait)

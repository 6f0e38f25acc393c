"""A worker's side of scale changes: ask the planner for more slots for a running app.

A granule that wants to grow (an OpenMP team, say) calls `request`, which sends a
`ScaleRequest` over the worker's control connection and waits for the planner's answer,
`ScaleGranted` or `ScaleRefused`; the read loop hands answers in through `answered`. Granted
slots are given back with `release`; an elastic team's new size is reported with `resized`,
and a team kept on its granule's own worker with `kept_local`.
Every wait has a deadline; a lost planner refuses every request in flight. This module must
not decide what to do with the slots.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from faabric.messages.control import (
    ScaleGranted,
    ScaleRefused,
    ScaleRelease,
    ScaleRequest,
    TeamKeptLocal,
    TeamResized,
)

ScaleAnswer = ScaleGranted | ScaleRefused
ToPlanner = ScaleRequest | ScaleRelease | TeamResized | TeamKeptLocal
DEFAULT_TIMEOUT = 10.0


@dataclass(slots=True)
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    answer: ScaleAnswer | None = None


class ScaleClient:
    """Scale requests of this worker's granules, matched to the planner's answers."""

    def __init__(self, send: Callable[[ToPlanner], bool]) -> None:
        self._send = send
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._given_up: dict[int, int] = {}  # request id -> app id, for answers too late

    def request(
        self, app_id: int, count: int, *, local: bool = False, up_to: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ScaleAnswer:
        """Ask for `count` more slots for app `app_id` (with `local`, on this worker only;
        with `up_to`, as many of them as are free); the planner answers at once."""
        pending = _Pending()
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = pending
        try:
            if not self._send(ScaleRequest(app_id, request_id, count, local, up_to)):
                return ScaleRefused(request_id, "the planner is not connected", 0)
            if not pending.done.wait(timeout):
                with self._lock:
                    self._given_up[request_id] = app_id
                return ScaleRefused(request_id, f"no answer from the planner in {timeout:g} s", 0)
            assert pending.answer is not None
            return pending.answer
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def release(self, app_id: int, count: int) -> None:
        """Give back `count` granted slots of app `app_id` on this worker (best effort)."""
        if count > 0:
            self._send(ScaleRelease(app_id, count))

    def resized(self, app_id: int, index: int, threads: int) -> None:
        """Granule `index` of elastic app `app_id` ran a region with `threads` threads, not
        as many as its previous one (best effort)."""
        self._send(TeamResized(app_id, index, threads))

    def kept_local(self, app_id: int, index: int, threads: int, detail: str) -> None:
        """Granule `index` of app `app_id` runs its `threads`-thread team on this worker from
        now on, because spanning hosts did not pay (`detail`: what was measured; best
        effort)."""
        self._send(TeamKeptLocal(app_id, index, threads, detail))

    def answered(self, answer: ScaleAnswer) -> None:
        """The planner answered request `answer.request_id`."""
        with self._lock:
            pending = self._pending.get(answer.request_id)
            late_app = self._given_up.pop(answer.request_id, None)
        if pending is not None:
            pending.answer = answer
            pending.done.set()
        elif late_app is not None and isinstance(answer, ScaleGranted):
            # Nobody waits for these slots any more: give back those on this worker.
            self.release(late_app, sum(n for _, n in answer.placement))

    def disconnected(self) -> None:
        """The planner connection broke: refuse every request in flight."""
        with self._lock:
            waiting = list(self._pending.items())
        for request_id, pending in waiting:
            pending.answer = ScaleRefused(request_id, "lost the planner", 0)
            pending.done.set()

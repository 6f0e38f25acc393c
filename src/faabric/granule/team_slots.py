"""Slots for a granule's threads: asked of the planner when its team first grows, then kept.

A thread-capable granule holds one slot for its main thread. When it starts more threads
than it holds slots for, `TeamSlots.reserve` asks the planner (a SCALE_CHANGE request for
slots on this worker only) for the difference, rounded up to the worker's default team size
so that a typical OpenMP team costs one round trip for the granule's whole life; forks of a
warm team ask nothing. If a whole team does not fit, it asks for exactly what it needs. The
slots are given back when the granule ends. Threads always run on the granule's own worker
(they share its memory); if the planner refuses, they still run here and the worker is
oversubscribed meanwhile. This module must not start threads or talk to sockets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from faabric.abi.state import state_of
from faabric.messages.control import ScaleGranted, ScaleRefused
from faabric.wasm.host import HostCall

log = logging.getLogger(__name__)

Request = Callable[[int, int], ScaleGranted | ScaleRefused]  # (app id, count) -> answer,
# asking for slots on this worker only
Release = Callable[[int, int], None]  # (app id, count)


class TeamSlots:
    """How many extra slots each running granule holds, and the planner calls behind them."""

    def __init__(self, request: Request, release: Release, team_size: int) -> None:
        self._request = request
        self._release = release
        self._team_size = max(1, team_size)
        self._lock = threading.Lock()
        self._held: dict[tuple[int, int], int] = {}  # (app id, index) -> extra slots held
        self._refused: set[tuple[int, int]] = set()  # granules refused their exact need

    def reserve(self, call: HostCall, threads: int) -> None:
        """The calling granule is about to run `threads` threads besides its main one."""
        state = state_of(call)
        key = (state.app_id, state.io.index)
        with self._lock:
            held = self._held.get(key, 0)
            if threads <= held or key in self._refused:
                return  # enough slots, or the planner already refused this granule
        needed = threads - held
        answer = self._request(state.app_id, max(needed, self._team_size - 1 - held))
        if isinstance(answer, ScaleRefused) and answer.free >= needed:
            answer = self._request(state.app_id, needed)  # a whole team did not fit
        with self._lock:
            if isinstance(answer, ScaleRefused):
                self._refused.add(key)
            else:
                self._held[key] = held + sum(n for _, n in answer.placement)
        if isinstance(answer, ScaleRefused):
            log.info("app %d granule %d runs %d threads without slots: %s", state.app_id,
                     state.io.index, threads, answer.reason)

    def ended(self, app_id: int, index: int) -> None:
        """The granule ended: give its extra slots back."""
        with self._lock:
            held = self._held.pop((app_id, index), 0)
            self._refused.discard((app_id, index))
        if held:
            self._release(app_id, held)

"""Slots for a granule's threads: asked of the planner when its team first grows, then kept.

A thread-capable granule holds one slot for its main thread. When it starts more threads
than it holds slots for, `TeamSlots.reserve` asks the planner (a SCALE_CHANGE request for
slots on this worker only) for the difference, rounded up to the worker's default team size
so that a typical OpenMP team costs one round trip for the granule's whole life; forks of a
warm team ask nothing. If a whole team does not fit, it asks for exactly what it needs. The
slots are given back when the granule ends. If the planner refuses, pthreads and OpenMP
teams still run here and the worker is oversubscribed meanwhile.

`plan` serves OpenMP teams, which may span hosts: when this worker lacks slots for a whole
team it asks for slots anywhere, and the threads granted on other workers run there (see
faabric.threads.regions). Slots granted on other workers stay the app's until it ends.

`elastic_fork` / `elastic_join` serve the forks of elastic apps (docs/openmp.md, "Elastic
teams"): each fork asks for as many of the slots it wants as are free on this worker right
now (a local "up to" request, never refused), the region runs with those, and the join gives
them back and reports the team's size when it changed. They never span workers.
`kept_local` reports a team that could span workers but is kept on this one.
This module must not start threads or talk to sockets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from faabric.abi.state import TeamPlan, state_of
from faabric.messages.control import ScaleGranted, ScaleRefused
from faabric.wasm.host import GuestFault, HostCall

log = logging.getLogger(__name__)

Request = Callable[[int, int, bool], ScaleGranted | ScaleRefused]  # (app id, count, only on
# this worker) -> answer
Release = Callable[[int, int], None]  # (app id, count)
Learn = Callable[[tuple[tuple[str, str], ...]], None]  # data-plane addresses of workers


def _unreported(app_id: int, index: int, threads: int, detail: str) -> None:
    """A link without a planner to tell that a team is kept on its worker."""


@dataclass(frozen=True, slots=True)
class ElasticLink:
    """The planner calls of elastic forks and team reports: `request(app id, count)` asks
    for up to `count` slots on this worker (a grant, possibly empty, or a refusal if the
    planner is lost); `resized(app id, granule index, threads)` reports a team's new size;
    `kept_local(app id, granule index, threads, detail)` reports that a team which could
    span workers runs on this one from now on (`detail`: what was measured)."""

    request: Callable[[int, int], ScaleGranted | ScaleRefused]
    resized: Callable[[int, int, int], None]
    kept_local: Callable[[int, int, int, str], None] = _unreported


class TeamSlots:
    """How many extra slots each running granule holds, and the planner calls behind them."""

    def __init__(self, request: Request, release: Release, team_size: int, host: str,
                 learn: Learn | None = None, elastic: ElasticLink | None = None) -> None:
        self._request = request
        self._release = release
        self._team_size = max(1, team_size)
        self._host = host
        self._learn = learn
        self._elastic_link = elastic
        self._lock = threading.Lock()
        self._held: dict[tuple[int, int], int] = {}  # (app id, index) -> extra slots held
        self._refused: set[tuple[int, int]] = set()  # granules refused their exact need
        self._lent: dict[tuple[int, int], int] = {}  # slots of the elastic region running
        self._sizes: dict[tuple[int, int], int] = {}  # team size of the last elastic region

    def reserve(self, call: HostCall, threads: int) -> None:
        """The calling granule is about to run `threads` threads besides its main one."""
        state = state_of(call)
        self._reserve((state.app_id, state.io.index), threads)

    def plan(self, app_id: int, index: int, team: int) -> TeamPlan:
        """Where a team of `team` threads of the granule runs (its own thread counted)."""
        key = (app_id, index)
        extra = team - 1
        if self._reserve(key, extra):
            return TeamPlan(team, team)
        with self._lock:
            held = self._held.get(key, 0)
        answer = self._request(app_id, extra - held, False)
        if isinstance(answer, ScaleRefused):
            log.info("app %d granule %d runs a team of %d on one worker: %s", app_id, index,
                     team, answer.reason, extra={"app": app_id, "granule": index})
            return TeamPlan(team, min(team, 1 + held + answer.free))
        here = sum(n for h, n in answer.placement if h == self._host)
        with self._lock:
            self._held[key] = self._held.get(key, 0) + here
            self._refused.discard(key)
        if self._learn is not None and answer.peers:
            self._learn(answer.peers)
        remote = tuple((h, n) for h, n in answer.placement if h != self._host)
        return TeamPlan(team - sum(n for _, n in remote), team, remote)

    def _reserve(self, key: tuple[int, int], threads: int) -> bool:
        """Hold slots here for `threads` extra threads; False if the planner refused."""
        app_id, index = key
        with self._lock:
            held = self._held.get(key, 0)
            if threads <= held + self._lent.get(key, 0):
                return True
            if key in self._refused:
                return False  # the planner already refused this granule
        needed = threads - held
        answer = self._request(app_id, max(needed, self._team_size - 1 - held), True)
        if isinstance(answer, ScaleRefused) and answer.free >= needed:
            answer = self._request(app_id, needed, True)  # a whole team did not fit
        with self._lock:
            if isinstance(answer, ScaleRefused):
                self._refused.add(key)
            else:
                self._held[key] = held + sum(n for _, n in answer.placement)
        if isinstance(answer, ScaleRefused):
            log.info("app %d granule %d has no slots here for %d threads: %s", app_id, index,
                     threads, answer.reason, extra={"app": app_id, "granule": index})
            return False
        return True

    def elastic_fork(self, app_id: int, index: int, wanted: int) -> int:
        """Threads (its own counted, 1..`wanted`) the granule's elastic region may run with:
        the slots it holds plus as many of the missing ones as are free here now. They are
        lent until `elastic_join`."""
        key = (app_id, index)
        with self._lock:
            held = self._held.get(key, 0)
            if key in self._lent:
                raise GuestFault("an elastic fork inside an elastic region")
        lent = 0
        if wanted - 1 > held and self._elastic_link is not None:
            answer = self._elastic_link.request(app_id, wanted - 1 - held)
            if isinstance(answer, ScaleGranted):
                lent = sum(n for host, n in answer.placement if host == self._host)
            else:
                log.info("app %d granule %d: no elastic slots: %s", app_id, index,
                         answer.reason, extra={"app": app_id, "granule": index})
        with self._lock:
            self._lent[key] = lent
        return max(1, min(wanted, 1 + held + lent))

    def elastic_join(self, app_id: int, index: int, threads: int) -> None:
        """The granule's elastic region, which ran `threads` threads, ended: give back the
        slots lent to it and report its size if it differs from the previous region's."""
        key = (app_id, index)
        with self._lock:
            lent = self._lent.pop(key, 0)
            previous = self._sizes.get(key, 1)
            self._sizes[key] = threads
        if lent:
            self._release(app_id, lent)
        if threads != previous and self._elastic_link is not None:
            self._elastic_link.resized(app_id, index, threads)

    def kept_local(self, app_id: int, index: int, threads: int, detail: str) -> None:
        """The granule's `threads`-thread team runs on this worker from now on, because
        spanning hosts did not pay (`detail` says what was measured): tell the planner."""
        if self._elastic_link is not None:
            self._elastic_link.kept_local(app_id, index, threads, detail)

    def ended(self, app_id: int, index: int) -> None:
        """The granule ended: give its extra slots back (with those of a region cut short)."""
        key = (app_id, index)
        with self._lock:
            held = self._held.pop(key, 0) + self._lent.pop(key, 0)
            self._refused.discard(key)
            self._sizes.pop(key, None)
        if held:
            self._release(app_id, held)

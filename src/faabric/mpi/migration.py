"""The migration protocol of one MPI world on one worker: moving ranks between hosts.

Every rank of the app enters `enter` at the same migration point with the epoch rank 0 was
offered. Rank 0's worker claims that epoch from the planner; the planner answers every host
of the old and new placement (`decided`). On a start, each old host waits until all of its
ranks are at the point, then sends a fence to every other old host on the data plane; a
fence arrives after every message its host sent before it, so once a host has every fence,
all messages for its ranks are in its queues. Leaving ranks then take their matching state
with them (`Leave`); the runner suspends them and sends them to their new host, where they
come back in through `arrived`. Each new host says it is ready once all ranks the new
placement puts there are in; a rank returns from the point (and the world switches to the
new placement) only when every new host is ready, so no message is ever sent to a rank that
is not installed yet. A freeze is a move of every rank to one worker that keeps them
without running them; a thaw later sends them on, and they come back in through `arrived`
like any moved rank. Every wait ends at the rank's deadline or when the world fails.

Rank 0's worker also keeps the app's current offer and counts its world barriers, so that
it moves only at every K-th one. This module must not know about wasm or the planner's
messages: it is given a planner link and a network that carries fences and ready notes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from faabric.mpi.moving import RankRecord
from faabric.mpi.ranks import Layout
from faabric.mpi.world import WAIT_SLICE, LocalWorld
from faabric.wasm.host import GuestFault

Clock = Callable[[], float]
KEPT_EPOCHS = 4  # epochs remembered per world (late fences of old ones are dropped)


class Planner(Protocol):
    """What the protocol tells the planner (faabric.mpi.worlds.PlannerLink)."""

    def points(self, app_id: int) -> None: ...

    def claim(self, app_id: int, epoch: int) -> None: ...


class MoveNetwork(Protocol):
    """How a world's hosts tell each other where they are in a migration."""

    def fence(self, host: str, app_id: int, epoch: int, sender: str) -> None: ...

    def ready(self, host: str, app_id: int, epoch: int, sender: str) -> None: ...


# -- the planner's answer to a claim, and what a rank does at the point: tagged unions --------


@dataclass(frozen=True, slots=True)
class Start:
    """Move: rank i runs on `placement[i]`; `peers` are the data-plane addresses."""

    placement: tuple[str, ...]
    peers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Freeze:
    """Every rank goes to worker `park`, which keeps it without running it (the app is
    frozen until the planner thaws it elsewhere); `peers` has park's data-plane address."""

    park: str
    peers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CalledOff:
    """Nothing moves."""

    reason: str


Decision = Start | Freeze | CalledOff


@dataclass(frozen=True, slots=True)
class Stay:
    """The rank goes on here; `moved` says whether the world's placement changed."""

    moved: bool


@dataclass(frozen=True, slots=True)
class Leave:
    """The rank must suspend and go to `host`, carrying `record`."""

    host: str
    record: RankRecord
    decision: Start | Freeze


@dataclass(slots=True)
class _Epoch:
    decision: Decision | None = None
    entered: set[int] = field(default_factory=set)
    claimed: bool = False
    fenced: bool = False
    fences: set[str] = field(default_factory=set)
    present: set[int] = field(default_factory=set)
    readied: bool = False
    ready: set[str] = field(default_factory=set)


class Migrations:
    """The migrations of one world as seen from this worker, plus its migration offers."""

    def __init__(self, world: LocalWorld, here: str, network: MoveNetwork,
                 planner: Planner, clock: Clock = time.monotonic) -> None:
        self._world = world
        self._here = here
        self._network = network
        self._planner = planner
        self._clock = clock
        self._cond = world.moves
        self._epochs: dict[int, _Epoch] = {}
        self._offer: int | None = None  # the epoch the planner offers now
        self._declared = False  # the planner was told the app has migration points
        self._barriers = 0
        self.period = 0  # every how many world barriers the app may move (0: never)

    # -- offers, at rank 0's worker ---------------------------------------------------------

    def set_offer(self, epoch: int) -> None:
        with self._cond:
            self._offer = max(self._offer or 0, epoch)

    def drop_offer(self, epoch: int) -> None:
        with self._cond:
            if self._offer == epoch:
                self._offer = None

    def offered(self, at_barrier: bool) -> int:
        """Rank 0 is at a migration point (after a world barrier, or an explicit one): the
        epoch it should move under, or 0 (the guest's "no"). The first point tells the
        planner the app can move at all."""
        with self._cond:
            if self.period <= 0:
                return 0
            declare, self._declared = not self._declared, True
            self._barriers += 1 if at_barrier else 0
            due = not at_barrier or self._barriers % self.period == 0
            epoch = self._offer if due and self._offer is not None else 0
        if declare:
            self._planner.points(self._world.app_id)
        return epoch

    # -- from the planner and from other hosts -----------------------------------------------

    def decided(self, epoch: int, decision: Decision) -> None:
        with self._cond:
            self._epoch(epoch).decision = decision
            if self._offer == epoch:
                self._offer = None
            self._cond.notify_all()

    def fenced(self, epoch: int, host: str) -> None:
        with self._cond:
            self._epoch(epoch).fences.add(host)
            self._cond.notify_all()

    def readied(self, epoch: int, host: str) -> None:
        with self._cond:
            self._epoch(epoch).ready.add(host)
            self._cond.notify_all()

    # -- from the ranks -------------------------------------------------------------------------

    def enter(self, rank: int, epoch: int, base: int) -> Stay | Leave:
        """Rank `rank` (memory at host address `base`) is at the migration point `epoch`."""
        with self._cond:
            state = self._epoch(epoch)
            state.entered.add(rank)
            claim = rank == 0 and not state.claimed
            state.claimed |= claim
            self._cond.notify_all()
        if claim:
            self._planner.claim(self._world.app_id, epoch)
        with self._cond:
            self._wait(rank, lambda: state.decision is not None, "the planner's decision")
            decision = state.decision
            if isinstance(decision, CalledOff) or decision is None:
                return Stay(False)
            old = self._world.layout
            mine = sum(1 for host in old.placement if host == self._here)
            self._wait(rank, lambda: len(state.entered) >= mine, "the other ranks here")
            send_fences, state.fenced = not state.fenced, True
        others = {host for host in old.hosts() if host != self._here}
        if send_fences:
            for host in sorted(others):
                self._network.fence(host, self._world.app_id, epoch, self._here)
        with self._cond:
            self._wait(rank, lambda: others <= state.fences, "the other hosts' fences")
            if isinstance(decision, Freeze):
                return Leave(decision.park, self._world.take_rank(rank, base), decision)
            destination = decision.placement[rank]
            if destination != self._here:
                return Leave(destination, self._world.take_rank(rank, base), decision)
            state.present.add(rank)
        self._finish(rank, epoch, state, decision)
        return Stay(True)

    def arrived(self, rank: int, epoch: int, decision: Start) -> None:
        """Rank `rank` moved here under `epoch` (its state is installed); returns once every
        host of the new placement is ready."""
        with self._cond:
            state = self._epoch(epoch)
            if state.decision is None:
                state.decision = decision
            state.present.add(rank)
        self._finish(rank, epoch, state, decision)

    def _finish(self, rank: int, epoch: int, state: _Epoch, decision: Start) -> None:
        placement = decision.placement
        others = {host for host in placement if host != self._here}
        with self._cond:
            mine = sum(1 for host in placement if host == self._here)
            send_ready = len(state.present) >= mine and not state.readied
            state.readied |= send_ready
            if send_ready:
                self._cond.notify_all()
        if send_ready:
            for host in sorted(others):
                self._network.ready(host, self._world.app_id, epoch, self._here)
        with self._cond:
            self._wait(rank, lambda: len(state.present) >= mine and others <= state.ready,
                       "the moved ranks to be in place")
            self._world.switch_layout(Layout(placement, self._here))

    # -- internals ----------------------------------------------------------------------------

    def _epoch(self, epoch: int) -> _Epoch:
        found = self._epochs.get(epoch)
        if found is None:
            found = self._epochs[epoch] = _Epoch()
            while len(self._epochs) > KEPT_EPOCHS:
                del self._epochs[min(self._epochs)]
        return found

    def _wait(self, rank: int, ready: Callable[[], bool], what: str) -> None:
        """Wait on the world's lock (held) until `ready()`; GuestFault on failure or at the
        rank's deadline."""
        deadline = self._world.deadline_of(rank)
        while not ready():
            self._world.check()
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise GuestFault(f"timed out during a migration waiting for {what}")
            self._cond.wait(min(remaining, WAIT_SLICE))


"""The MPI worlds of one worker: created when a rank starts or a message arrives, removed
when the app's last local rank ends.

`Worlds` is the router of the data plane (frames for an app reach its world, even before
the app's first rank started here) and what granules use to join and leave a world. A rank
that ends badly (a trap, a non-zero exit, or an exit without `MPI_Finalize` after
`MPI_Init`) breaks its world here and on every other host of the app, so no rank waits
forever for it. Frames for an app with no rank here yet are kept only within the bounds of
`faabric.mpi.early`; past them the app is dropped here (a rank of it starting later fails
at once, saying why). This module must not know about wasm instances or the planner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faabric.mpi.early import EarlyArrivals, EarlyLimits
from faabric.mpi.matching import Envelope
from faabric.mpi.migration import Decision, Freeze, Migrations, Start
from faabric.mpi.network import DataPlane, PayloadReader
from faabric.mpi.ranks import Layout, Traffic
from faabric.mpi.world import LocalWorld

log = logging.getLogger(__name__)

FINISHED_MEMORY = 4096  # ids of recently finished apps kept to drop their late frames


@dataclass(frozen=True, slots=True)
class Membership:
    """A rank's view of where its world runs: worker names by rank and their addresses,
    and every how many world barriers it may migrate (0: never)."""

    app_id: int
    placement: tuple[str, ...]
    peers: tuple[tuple[str, str], ...]
    migrate_every: int = 0


class PlannerLink(Protocol):
    """What the migration protocol tells the planner."""

    def points(self, app_id: int) -> None:
        """The app's rank 0 runs here and reached its first migration point."""
        ...

    def claim(self, app_id: int, epoch: int) -> None:
        """Every rank of the app is at a migration point and takes offer `epoch`."""
        ...


class _NoPlanner:
    """The link of a worker whose apps never migrate (tests without a planner)."""

    def points(self, app_id: int) -> None:
        pass

    def claim(self, app_id: int, epoch: int) -> None:
        pass


class Worlds:
    """All worlds with ranks or messages on this worker."""

    def __init__(self, here: str, network: DataPlane, planner: PlannerLink | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 early: EarlyLimits | None = None) -> None:
        self.here = here
        self._network = network
        self._planner = planner or _NoPlanner()
        self._clock = clock
        self._lock = threading.Lock()
        self._worlds: dict[int, LocalWorld] = {}
        self._moves: dict[int, Migrations] = {}
        self._left: dict[int, int] = {}  # app -> local ranks not yet ended
        self._running: dict[int, int] = {}  # app -> local ranks running now
        self._stopped: set[int] = set()  # apps stopped while some local ranks never ran
        self._finished: OrderedDict[int, str] = OrderedDict()  # app -> why, if it failed
        self._early = EarlyArrivals(early or EarlyLimits())
        self._sweeper: threading.Thread | None = None
        self._ended = Traffic()  # what the worlds removed here had sent

    def join(self, membership: Membership, rank: int, timeout: float,
             moved_in: bool = False) -> LocalWorld:
        """Rank `rank` of the app starts here (or, `moved_in`, resumes here after a
        migration); returns its world."""
        self._network.learn(membership.peers)
        app_id = membership.app_id
        with self._lock:
            ended = self._finished.get(app_id)
            self._early.forget(app_id)
            world = self._world(app_id)
            if app_id not in self._left:
                here = sum(1 for host in membership.placement if host == self.here)
                self._left[app_id] = 0 if moved_in else here
                world.configure(Layout(membership.placement, self.here))
                self._migrations(app_id).period = membership.migrate_every
            self._left[app_id] += 1 if moved_in else 0
            self._running[app_id] = self._running.get(app_id, 0) + 1
        if ended is not None:  # the rest of the world ended here already (stopped, or failed)
            why = f": {ended}" if ended else ""
            world.fail(f"the MPI world of app {app_id} had already ended on this worker{why}")
        world.attach(rank, timeout)
        return world

    def leave(self, world: LocalWorld, rank: int, problem: str | None) -> None:
        """Rank `rank` ended; `problem` says how if it ended badly."""
        if problem is None and not world.ended_cleanly(rank):
            problem = "exited without calling MPI_Finalize"
        if problem is not None:
            world.break_(f"rank {rank} {problem}")
        app_id = world.app_id
        with self._lock:
            self._left[app_id] = self._left.get(app_id, 1) - 1
            self._running[app_id] = self._running.get(app_id, 1) - 1
            idle = self._running[app_id] <= 0
            if self._left[app_id] <= 0 or (idle and app_id in self._stopped):
                self._forget(app_id)

    def moved_away(self, world: LocalWorld, rank: int) -> None:
        """Rank `rank` left for another host; the world goes once no rank is left here (it
        is not ended: ranks may come back)."""
        app_id = world.app_id
        with self._lock:
            self._left[app_id] = self._left.get(app_id, 1) - 1
            self._running[app_id] = self._running.get(app_id, 1) - 1
            if self._left[app_id] <= 0 and self._worlds.get(app_id) is world:
                self._ended.add(world.traffic)
                for table in (self._worlds, self._moves, self._left, self._running):
                    table.pop(app_id, None)

    def traffic(self) -> Traffic:
        """The bytes every MPI world here has sent so far, same-host and cross-host."""
        total = Traffic()
        with self._lock:
            total.add(self._ended)
            for world in self._worlds.values():
                total.add(world.traffic)
        return total

    def migrations(self, app_id: int) -> Migrations:
        """The migration protocol of the app's world here."""
        with self._lock:
            return self._migrations(app_id)

    def offered(self, app_id: int, epoch: int) -> None:
        """The planner offers the app (rank 0 runs here) a move under `epoch`."""
        moves = self._live_migrations(app_id)
        if moves is not None:
            moves.set_offer(epoch)

    def withdrawn(self, app_id: int, epoch: int) -> None:
        """The planner took offer `epoch` back."""
        moves = self._live_migrations(app_id)
        if moves is not None:
            moves.drop_offer(epoch)

    def decided(self, app_id: int, epoch: int, decision: Decision) -> None:
        """The planner answered the app's claim of `epoch`."""
        if isinstance(decision, Start | Freeze):
            self._network.learn(decision.peers)
        moves = self._live_migrations(app_id)
        if moves is not None:
            moves.decided(epoch, decision)

    def never_started(self, membership: Membership, rank: int, problem: str) -> None:
        """Rank `rank` of a multi-host app cannot run here (its module could not be had):
        if the app is an MPI world, its other ranks must not wait for this one."""
        world = self.join(membership, rank, timeout=0.0)
        self.leave(world, rank, problem)

    def stop(self, app_id: int, reason: str) -> None:
        """The app is being stopped: every blocked call of its ranks here fails, and its
        world goes as soon as no rank runs here (ranks that never started never leave)."""
        with self._lock:
            world = self._worlds.get(app_id)
            if world is not None and self._running.get(app_id, 0) <= 0:
                self._forget(app_id)
            elif world is not None:
                self._stopped.add(app_id)
        if world is not None:
            world.fail(reason)

    # -- the data plane's router --------------------------------------------------------------

    def arrive(self, app_id: int, envelope: Envelope, dest: int, token: int,
               reader: PayloadReader) -> None:
        with self._lock:
            world = self._routed(app_id, envelope.length)
        if world is None:
            reader.skip()
            return
        world.arrive(envelope, dest, reader.read_into, reader.read_bytes, token)

    def acknowledged(self, app_id: int, token: int) -> None:
        with self._lock:
            world = self._worlds.get(app_id)
        if world is not None:
            world.acknowledged(token)

    def fenced(self, app_id: int, epoch: int, host: str) -> None:
        moves = self._routed_migrations(app_id)
        if moves is not None:
            moves.fenced(epoch, host)

    def readied(self, app_id: int, epoch: int, host: str) -> None:
        moves = self._routed_migrations(app_id)
        if moves is not None:
            moves.readied(epoch, host)

    def failed(self, app_id: int, reason: str) -> None:
        with self._lock:
            world = self._routed(app_id, 0)
        if world is not None:
            world.fail(reason)

    # -- frames for apps with no rank here yet ------------------------------------------------

    def sweep(self) -> None:
        """Drop the apps whose frames waited longer than allowed for a rank to start here."""
        with self._lock:
            limit = self._early.limits.max_seconds
            for app_id in self._early.expired(self._clock()):
                self._drop_early(app_id, f"no rank of it started here within {limit:g} s "
                                         "of its first message (early_seconds)")

    def _routed(self, app_id: int, size: int) -> LocalWorld | None:
        """The world a data-plane frame of `size` bytes for the app goes to; None to drop
        it (the app ended here, or it has no rank here and its frames are over the bounds).
        Call with the lock held."""
        if app_id in self._finished:
            return None
        if app_id not in self._left:  # no rank of it started here yet
            if not self._early.admit(app_id, size, self._clock()):
                limit = self._early.limits.max_bytes
                self._drop_early(app_id, "its messages arrived before any of its ranks "
                                         f"started here, over the {limit} bytes kept for "
                                         "such apps (early_bytes)")
                return None
            self._start_sweeper()
        return self._world(app_id)

    def _routed_migrations(self, app_id: int) -> Migrations | None:
        with self._lock:
            return None if self._routed(app_id, 0) is None else self._migrations(app_id)

    def _drop_early(self, app_id: int, reason: str) -> None:
        """Forget an app that has no rank here, with what arrived for it. Lock held."""
        held = self._early.forget(app_id)
        log.warning("dropped app %d (%d bytes of frames): %s", app_id, held, reason,
                    extra={"app": app_id})
        self._forget(app_id, reason)

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="early-frames",
                                             daemon=True)
            self._sweeper.start()

    def _sweep_loop(self) -> None:
        """Runs while some app waits for its first rank here; sleeps until it may expire."""
        while True:
            self.sweep()
            with self._lock:
                next_expiry = self._early.next_expiry()
                if next_expiry is None:
                    self._sweeper = None
                    return
                wait = next_expiry - self._clock()
            time.sleep(min(max(wait, 0.01), self._early.limits.max_seconds))

    # -- internals ----------------------------------------------------------------------------

    def _world(self, app_id: int) -> LocalWorld:
        world = self._worlds.get(app_id)
        if world is None:
            world = self._worlds[app_id] = LocalWorld(app_id, self._network, self._clock)
        return world

    def _live_migrations(self, app_id: int) -> Migrations | None:
        """The app's migration protocol here, made if needed; None once the app ended."""
        with self._lock:
            return None if app_id in self._finished else self._migrations(app_id)

    def _migrations(self, app_id: int) -> Migrations:
        found = self._moves.get(app_id)
        if found is None:
            found = self._moves[app_id] = Migrations(
                self._world(app_id), self.here, self._network, self._planner, self._clock)
        return found

    def _forget(self, app_id: int, reason: str = "") -> None:
        world = self._worlds.pop(app_id, None)
        if world is not None:
            self._ended.add(world.traffic)
        self._moves.pop(app_id, None)
        self._left.pop(app_id, None)
        self._running.pop(app_id, None)
        self._stopped.discard(app_id)
        self._early.forget(app_id)
        self._finished[app_id] = reason
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

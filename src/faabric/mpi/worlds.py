"""The MPI worlds of one worker: created when a rank starts or a message arrives, removed
when the app's last local rank ends.

`Worlds` is the router of the data plane (frames for an app reach its world, even before
the app's first rank started here) and what granules use to join and leave a world. A rank
that ends badly (a trap, a non-zero exit, or an exit without `MPI_Finalize` after
`MPI_Init`) breaks its world here and on every other host of the app, so no rank waits
forever for it. This module must not know about wasm instances or the planner.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from faabric.mpi.matching import Envelope
from faabric.mpi.network import DataPlane, PayloadReader
from faabric.mpi.ranks import Layout
from faabric.mpi.world import LocalWorld

FINISHED_MEMORY = 4096  # ids of recently finished apps kept to drop their late frames


@dataclass(frozen=True, slots=True)
class Membership:
    """A rank's view of where its world runs: worker names by rank and their addresses."""

    app_id: int
    placement: tuple[str, ...]
    peers: tuple[tuple[str, str], ...]


class Worlds:
    """All worlds with ranks or messages on this worker."""

    def __init__(self, here: str, network: DataPlane,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.here = here
        self._network = network
        self._clock = clock
        self._lock = threading.Lock()
        self._worlds: dict[int, LocalWorld] = {}
        self._left: dict[int, int] = {}  # app -> local ranks not yet ended
        self._running: dict[int, int] = {}  # app -> local ranks running now
        self._stopped: set[int] = set()  # apps stopped while some local ranks never ran
        self._finished: OrderedDict[int, None] = OrderedDict()

    def join(self, membership: Membership, rank: int, timeout: float) -> LocalWorld:
        """Rank `rank` of the app starts here; returns its world."""
        self._network.learn(membership.peers)
        app_id = membership.app_id
        with self._lock:
            ended = app_id in self._finished
            world = self._world(app_id)
            if app_id not in self._left:
                here = sum(1 for host in membership.placement if host == self.here)
                self._left[app_id] = here
                world.configure(Layout(membership.placement, self.here))
            self._running[app_id] = self._running.get(app_id, 0) + 1
        if ended:  # the rest of the world ended here already (stopped, or failed)
            world.fail(f"the MPI world of app {app_id} had already ended on this worker")
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
            world = None if app_id in self._finished else self._world(app_id)
        if world is None:
            reader.skip()
            return
        world.arrive(envelope, dest, reader.read_into, reader.read_bytes, token)

    def acknowledged(self, app_id: int, token: int) -> None:
        with self._lock:
            world = self._worlds.get(app_id)
        if world is not None:
            world.acknowledged(token)

    def failed(self, app_id: int, reason: str) -> None:
        with self._lock:
            world = None if app_id in self._finished else self._world(app_id)
        if world is not None:
            world.fail(reason)

    # -- internals ----------------------------------------------------------------------------

    def _world(self, app_id: int) -> LocalWorld:
        world = self._worlds.get(app_id)
        if world is None:
            world = self._worlds[app_id] = LocalWorld(app_id, self._network, self._clock)
        return world

    def _forget(self, app_id: int) -> None:
        self._worlds.pop(app_id, None)
        self._left.pop(app_id, None)
        self._running.pop(app_id, None)
        self._stopped.discard(app_id)
        self._finished[app_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

"""Runs one granule of an app: fetch the module, run it in a sandbox, report a GranuleResult.

`GranuleRunner.run` never raises for anything the guest or its module does: every failure is
an `Outcome` in the result. It is safe to call from many threads at once (the worker runs one
granule per slot thread). A granule whose module imports the MPI interface joins its app's
MPI world for its run and leaves it when it ends; a thread-capable granule gets a
`TeamContext` for OpenMP teams that span hosts, and `run_part` runs the share of such a team
that another worker started here. It must not schedule, talk to the planner or decide
placement.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from faabric.abi import FAABRIC_FUNCTIONS, GranuleIO
from faabric.abi.mpi import IMPORT_MODULE as MPI_MODULE
from faabric.abi.mpi import MPI_FUNCTIONS
from faabric.abi.state import GranuleState, MpiRank, TeamContext
from faabric.errors import FaabricError
from faabric.granule.team_slots import TeamSlots
from faabric.messages.team import TeamStart
from faabric.messages.types import (
    AppSpec,
    Batch,
    Exited,
    Failed,
    GranuleResult,
    Outcome,
    Trapped,
    describe,
)
from faabric.mpi.worlds import Membership, Worlds
from faabric.snapshot import MemfdImage
from faabric.threads.host_copy import HostCopy
from faabric.threads.part_region import PartRegion
from faabric.threads.regions import MainRegion
from faabric.threads.service import PartResult, TeamService
from faabric.wasm import Cancellation, HostFunction, Launcher, ModuleCache, RunSpec, WasmEngine
from faabric.wasm.cache import LoadedModule
from faabric.wasm.host import SharedMemoryAccess

Clock = Callable[[], float]
STOPPED_MEMORY = 4096  # ids of stopped apps remembered for granules starting late


class GranuleRunner:
    """Turns (batch, index) into a GranuleResult on this host."""

    def __init__(
        self,
        engine: WasmEngine,
        modules: ModuleCache,
        host: str,
        *,
        worlds: Worlds | None = None,
        team_slots: TeamSlots | None = None,
        teams: TeamService | None = None,
        extra_functions: Sequence[HostFunction] = (),
        clock: Clock = time.time,
    ) -> None:
        self._modules = modules
        self._host = host
        self._worlds = worlds
        self._team_slots = team_slots
        self._teams = teams
        self._clock = clock
        functions = (*FAABRIC_FUNCTIONS, *extra_functions)
        if worlds is not None:
            functions = (*functions, *MPI_FUNCTIONS)
        self._launcher = Launcher(engine, functions)
        self._cancels: dict[int, list[Cancellation]] = {}  # app id -> its running granules'
        self._stopped: OrderedDict[int, str] = OrderedDict()  # recently stopped apps: reason
        self._cancels_lock = threading.Lock()
        self._mpi_modules: dict[str, bool] = {}  # module digest -> whether it imports MPI

    def run(self, batch: Batch, index: int) -> GranuleResult:
        """Run granule `index` of `batch`'s app to completion and describe how it ended."""
        spec = batch.spec
        started = self._clock()
        io = GranuleIO(index=index, count=spec.size, input=spec.input)
        stdout = stderr = b""
        outcome: Outcome
        cancel = self._track(batch.app_id)
        try:
            module = self._load(batch, index)
            outcome, stdout, stderr = self._run(module, batch, index, io, cancel)
        except FaabricError as error:
            outcome = Failed(str(error))
        except Exception as error:  # a granule always ends as a result
            outcome = Failed(f"internal error: {type(error).__name__}: {error}")
        finally:
            self._untrack(batch.app_id, cancel)
            if self._team_slots is not None:
                self._team_slots.ended(batch.app_id, index)
        return GranuleResult(
            app_id=batch.app_id,
            index=index,
            host=self._host,
            outcome=outcome,
            stdout=stdout,
            stderr=stderr,
            output=io.output(),
            started=started,
            finished=self._clock(),
        )

    def _load(self, batch: Batch, index: int) -> LoadedModule:
        """The app's module. If it cannot be had, the granule's peers of a multi-host app
        must not wait for it (it may be an MPI rank): its world, if any, is told."""
        try:
            return self._modules.get(batch.spec.module)
        except FaabricError as error:
            if self._worlds is not None and batch.peers:
                membership = Membership(batch.app_id, batch.placement, batch.peers)
                self._worlds.never_started(membership, index, f"could not start: {error}")
            raise

    def stop(self, app_id: int, reason: str) -> None:
        """Make the app's granules on this host end soon: their MPI calls fail with `reason`
        and running wasm is interrupted within a slice (outcome `Cancelled(reason)`)."""
        with self._cancels_lock:
            running = list(self._cancels.get(app_id, ()))
            self._stopped[app_id] = reason
            while len(self._stopped) > STOPPED_MEMORY:
                self._stopped.popitem(last=False)
        for cancel in running:
            cancel.cancel(reason)
        if self._worlds is not None:
            self._worlds.stop(app_id, reason)
        if self._teams is not None:
            self._teams.stop_app(app_id, reason)

    def _track(self, app_id: int) -> Cancellation:
        cancel = Cancellation()
        with self._cancels_lock:
            self._cancels.setdefault(app_id, []).append(cancel)
            reason = self._stopped.get(app_id)
        if reason is not None:  # stopped just before this granule started
            cancel.cancel(reason)
        return cancel

    def _untrack(self, app_id: int, cancel: Cancellation) -> None:
        with self._cancels_lock:
            running = self._cancels.get(app_id, [])
            if cancel in running:
                running.remove(cancel)
            if not running:
                self._cancels.pop(app_id, None)

    def _run(
        self, module: LoadedModule, batch: Batch, index: int, io: GranuleIO,
        cancel: Cancellation,
    ) -> tuple[Outcome, bytes, bytes]:
        rank = self._join(module, batch, index)
        team = None
        if module.shared_memory is not None:
            team = TeamContext(batch, index, time.monotonic() + batch.spec.timeout)
        state = GranuleState(batch.app_id, io, rank, team)
        problem: str | None = "failed inside faabric"
        try:
            result = self._launcher.run(
                module, _run_spec(batch.spec), state,
                None if rank is None else lambda: rank.world.detach(rank.rank), cancel=cancel,
            )
            problem = None if result.outcome == Exited(0) else describe(result.outcome)
        finally:
            if team is not None:
                self._end_region(team)
            if rank is not None and self._worlds is not None:
                self._worlds.leave(rank.world, rank.rank, problem)
        return result.outcome, result.stdout, result.stderr

    def _end_region(self, team: TeamContext) -> None:
        """The granule ended: end the region it was in, if any (it failed there), and let
        the workers that keep its memory forget it."""
        region, team.region = team.region, None
        if isinstance(region, MainRegion):
            try:
                region.stop("the granule leading the team ended")
            finally:
                if self._teams is not None:
                    self._teams.closed(region)
                region.close()
        if team.sent is not None:
            if self._teams is not None:
                self._teams.forget(team.sent.key, team.sent.hosts)
            team.sent.image.close()

    def run_part(self, start: TeamStart, part: PartRegion, image: MemfdImage) -> PartResult:
        """Run the threads another worker's granule placed here for one parallel region, on
        a copy-on-write copy of the memory `image`."""
        batch = start.batch
        module = self._modules.get(batch.spec.module)
        io = GranuleIO(index=start.index, count=batch.spec.size)
        context = TeamContext(batch, start.index, part.deadline, part)
        state = GranuleState(batch.app_id, io, team=context)

        def restore(memory: SharedMemoryAccess) -> None:
            now = memory.now()
            image.map_onto(now.base, now.size)
            part.copy = HostCopy(memory.now, memory.grow, image.private_copy(), start.exclude)

        diffs = []
        members = [(start.entry, m.arg, m.stack_top) for m in start.members]
        cancel = self._track(batch.app_id)
        part.when_stopped(cancel.cancel)
        spec = dataclasses.replace(_run_spec(batch.spec),
                                   timeout=max(0.0, part.deadline - time.monotonic()))
        try:
            result = self._launcher.run_members(
                module, spec, state, image.size, restore, members,
                lambda: diffs.append(part.last_writes()), cancel=cancel)
        finally:
            self._untrack(batch.app_id, cancel)
        outcome = _name_thread(result.outcome, [m.tid for m in start.members])
        return PartResult(outcome, result.stdout, result.stderr, diffs[0] if diffs else None)

    def _join(self, module: LoadedModule, batch: Batch, index: int) -> MpiRank | None:
        if self._worlds is None or not self._uses_mpi(module):
            return None
        placement = batch.placement or (self._host,) * batch.spec.size
        membership = Membership(batch.app_id, placement, batch.peers)
        world = self._worlds.join(membership, index, batch.spec.timeout)
        return MpiRank(world, index, self._host)

    def _uses_mpi(self, module: LoadedModule) -> bool:
        found = self._mpi_modules.get(module.digest)
        if found is None:
            found = any(i.module == MPI_MODULE for i in module.imports)
            self._mpi_modules[module.digest] = found
        return found


def _name_thread(outcome: Outcome, tids: list[int]) -> Outcome:
    """A part's trap names its thread by number within the part (1, 2, ...): name it by its
    OpenMP thread number instead."""
    if isinstance(outcome, Trapped):
        number, found, rest = outcome.message.partition(" trapped: ")
        if found and number.startswith("thread "):
            index = int(number.removeprefix("thread ")) - 1
            if 0 <= index < len(tids):
                return Trapped(f"OpenMP thread {tids[index]} trapped: {rest}")
    return outcome


def _run_spec(spec: AppSpec) -> RunSpec:
    return RunSpec(
        argv=(spec.program, *spec.args),
        env=spec.env,
        timeout=spec.timeout,
        memory_limit=spec.memory_limit,
    )

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
from dataclasses import dataclass

from faabric.abi import CLOCK_FUNCTIONS, FAABRIC_FUNCTIONS, GranuleIO
from faabric.abi.mpi import IMPORT_MODULE as MPI_MODULE
from faabric.abi.mpi import MPI_FUNCTIONS
from faabric.abi.state import Arrival, GranuleState, MpiRank, TeamContext
from faabric.errors import FaabricError
from faabric.granule import transfer
from faabric.granule.streaming import GranuleTap, OutputStreamer
from faabric.granule.team_slots import TeamSlots
from faabric.granule.transfer import RankLeft, RankPackage
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
from faabric.mpi.migration import Freeze, Start
from faabric.mpi.worlds import Membership, Worlds
from faabric.snapshot import MemfdImage
from faabric.threads.host_copy import HostCopy
from faabric.threads.part_region import PartRegion
from faabric.threads.regions import MainRegion
from faabric.threads.service import PartResult, TeamService
from faabric.threads.team_functions import ATOMIC_IMPORT
from faabric.wasm import (
    Cancellation,
    HostFunction,
    Launcher,
    ModuleCache,
    RunResult,
    RunSpec,
    Suspended,
    WasmEngine,
)
from faabric.wasm.cache import LoadedModule
from faabric.wasm.capture import OUTPUT_LIMIT
from faabric.wasm.host import GuestFault, SharedMemoryAccess

Clock = Callable[[], float]
RankSender = Callable[[str, tuple[bytes | memoryview, ...]], None]  # host, MOVE frame parts
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
        send_rank: RankSender | None = None,
        clock: Clock = time.time,
        output_limit: int = OUTPUT_LIMIT,
        streamer: OutputStreamer | None = None,
    ) -> None:
        self._modules = modules
        self._streamer = streamer  # sends granules' output as it is produced
        self._host = host
        self._worlds = worlds
        self._team_slots = team_slots
        self._teams = teams
        self._clock = clock
        self._send_rank = send_rank or _cannot_send
        functions = (*FAABRIC_FUNCTIONS, *CLOCK_FUNCTIONS, *extra_functions)
        if worlds is not None:
            functions = (*functions, *MPI_FUNCTIONS)
        self._launcher = Launcher(engine, functions, output_limit)
        self._cancels: dict[int, list[Cancellation]] = {}  # app id -> its running granules'
        self._stopped: OrderedDict[int, str] = OrderedDict()  # recently stopped apps: reason
        self._cancels_lock = threading.Lock()
        self._mpi_modules: dict[str, bool] = {}  # module digest -> whether it imports MPI

    def run(self, batch: Batch, index: int) -> GranuleResult | RankLeft:
        """Run granule `index` of `batch`'s app until it ends here: its result, or (an MPI
        rank that migrated) where it went on."""
        spec = batch.spec
        io = GranuleIO(index=index, count=spec.size, input=spec.input)
        return self._attempt(batch, index, io, self._clock(), None)

    def resume(self, package: RankPackage, memory: memoryview) -> GranuleResult | RankLeft:
        """Carry on with a rank another worker moved here, from inside the call it left
        from; the result covers the whole run, from its first start."""
        batch = package.batch
        # Its monotonic clock goes on from where it stopped, plus the time it was away.
        away = max(0, time.time_ns() - package.left_at)
        io = GranuleIO(index=package.index, count=batch.spec.size, input=batch.spec.input,
                       _output=bytearray(package.output),
                       clock_base=time.monotonic_ns() - package.clock - away)
        moved = _MovedIn(package, Suspended(memory, package.stack_pointer, package.area))
        return self._attempt(batch, package.index, io, package.started, moved)

    def _attempt(self, batch: Batch, index: int, io: GranuleIO, started: float,
                 moved: _MovedIn | None) -> GranuleResult | RankLeft:
        stdout = stderr = b""
        truncated = False
        outcome: Outcome | RankLeft
        cancel = self._track(batch.app_id)
        try:
            module = self._load(batch, index)
            outcome, stdout, stderr, truncated = self._run(module, batch, index, io, cancel,
                                                           moved, started)
        except FaabricError as error:
            outcome = Failed(str(error))
        except Exception as error:  # a granule always ends as a result
            outcome = Failed(f"internal error: {type(error).__name__}: {error}")
        finally:
            self._untrack(batch.app_id, cancel)
            if self._team_slots is not None:
                self._team_slots.ended(batch.app_id, index)
        if isinstance(outcome, RankLeft):
            return outcome
        if moved is not None:  # what it wrote before it moved comes first
            stdout, stderr, truncated = _joined(moved.package, (stdout, stderr), truncated,
                                                self._launcher.output_limit)
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
            truncated=truncated,
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
        cancel: Cancellation, moved: _MovedIn | None = None, started: float = 0.0,
    ) -> tuple[Outcome | RankLeft, bytes, bytes, bool]:
        spec = _run_spec(batch.spec)
        if moved is not None:
            spec = dataclasses.replace(spec, timeout=moved.package.seconds_left)
        rank = self._join(module, batch, index, spec.timeout, moved)
        team = None
        if module.shared_memory is not None:
            team = TeamContext(batch, index, time.monotonic() + batch.spec.timeout,
                               may_span=ATOMIC_IMPORT in {i.qualified for i in module.imports})
        state = GranuleState(batch.app_id, io, rank, team)
        problem: str | None = "failed inside faabric"
        suspended = False  # the rank left for another host: it does not leave its world
        deadline = time.monotonic() + spec.timeout
        try:
            result = self._launcher.run(
                module, spec, state,
                None if rank is None else lambda: rank.world.detach(rank.rank), cancel=cancel,
                resume=None if moved is None else moved.suspended,
                tap=self._tap(batch.app_id, index, moved),
            )
            outcome = result.outcome
            suspended = isinstance(outcome, Suspended)
            problem = None if isinstance(outcome, Suspended) or outcome == Exited(0) else \
                describe(outcome)
        finally:
            if team is not None:
                self._end_region(team)
            if rank is not None and self._worlds is not None and not suspended:
                self._worlds.leave(rank.world, rank.rank, problem)
        if rank is not None and suspended:
            left = self._depart(rank, batch, io, result, (started, deadline))
            return left, b"", b"", False
        assert not isinstance(result.outcome, Suspended)
        return result.outcome, result.stdout, result.stderr, result.truncated

    def _tap(self, app_id: int, index: int, moved: _MovedIn | None) -> GranuleTap | None:
        """What streams the run's output; a moved rank's goes on after what it wrote before."""
        if self._streamer is None:
            return None
        base = (0, 0) if moved is None else (len(moved.package.stdout),
                                             len(moved.package.stderr))
        return self._streamer.tap(app_id, index, base)

    def _depart(self, rank: MpiRank, batch: Batch, io: GranuleIO, result: RunResult,
                times: tuple[float, float]) -> RankLeft | Outcome:
        """Send a suspended rank to its new worker; a failure to do so breaks its world.
        `times` are when it first started (clock) and its deadline (monotonic)."""
        started, deadline = times
        departure = rank.moves.departure
        suspended = result.outcome
        assert departure is not None and isinstance(suspended, Suspended)
        assert self._worlds is not None
        self._worlds.moved_away(rank.world, rank.rank)
        leave = departure.leave
        decision = leave.decision
        frozen = isinstance(decision, Freeze)  # a thaw sets its placement later
        placement = decision.placement if isinstance(decision, Start) else batch.placement
        package = RankPackage(
            batch=dataclasses.replace(batch, placement=placement, peers=leave.decision.peers,
                                      indices=(rank.rank,)),
            index=rank.rank, epoch=departure.epoch, stack_pointer=suspended.stack_pointer,
            area=suspended.area, record=leave.record, stdout=result.stdout,
            stderr=result.stderr, output=io.output(), started=started,
            seconds_left=max(0.0, deadline - time.monotonic()), frozen=frozen,
            clock=time.monotonic_ns() - io.clock_base, left_at=time.time_ns(),
            truncated=result.truncated,
        )
        try:
            self._send_rank(leave.host, transfer.encode(package, suspended.memory))
        except (FaabricError, GuestFault, OSError) as error:
            reason = f"rank {rank.rank} could not move to worker {leave.host}: {error}"
            rank.world.break_(reason)
            return Failed(reason)
        return RankLeft(batch.app_id, rank.rank, departure.epoch, leave.host)

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

    def _join(self, module: LoadedModule, batch: Batch, index: int, timeout: float,
              moved: _MovedIn | None) -> MpiRank | None:
        if self._worlds is None or not self._uses_mpi(module):
            return None
        placement = batch.placement or (self._host,) * batch.spec.size
        membership = Membership(batch.app_id, placement, batch.peers,
                                batch.spec.migrate_every)
        world = self._worlds.join(membership, index, timeout, moved_in=moved is not None)
        rank = MpiRank(world, index, self._host, self._worlds.migrations(batch.app_id))
        if moved is not None:
            package = moved.package
            decision = Start(package.batch.placement, package.batch.peers)
            rank.moves.arrival = Arrival(package.epoch, package.record, decision)
        return rank

    def _uses_mpi(self, module: LoadedModule) -> bool:
        found = self._mpi_modules.get(module.digest)
        if found is None:
            found = any(i.module == MPI_MODULE for i in module.imports)
            self._mpi_modules[module.digest] = found
        return found


def _cannot_send(host: str, parts: tuple[bytes | memoryview, ...]) -> None:
    raise GuestFault("this worker cannot send ranks to other workers")


@dataclass(frozen=True, slots=True)
class _MovedIn:
    """A rank another worker sent here, and its suspended instance."""

    package: RankPackage
    suspended: Suspended


def _name_thread(outcome: Outcome | Suspended, tids: list[int]) -> Outcome:
    """A part's trap names its thread by number within the part (1, 2, ...): name it by its
    OpenMP thread number instead."""
    if isinstance(outcome, Suspended):  # threads never suspend (not movable)
        return Failed("an OpenMP thread cannot migrate")
    if isinstance(outcome, Trapped):
        number, found, rest = outcome.message.partition(" trapped: ")
        if found and number.startswith("thread "):
            index = int(number.removeprefix("thread ")) - 1
            if 0 <= index < len(tids):
                return Trapped(f"OpenMP thread {tids[index]} trapped: {rest}")
    return outcome


def _joined(package: RankPackage, output: tuple[bytes, bytes], truncated: bool,
            limit: int) -> tuple[bytes, bytes, bool]:
    """stdout and stderr of a moved rank: those of before its move, then its own here, cut
    to `limit` each; and whether anything was cut, here or before."""
    out, err = package.stdout + output[0], package.stderr + output[1]
    cut = truncated or package.truncated or len(out) > limit or len(err) > limit
    return out[:limit], err[:limit], cut


def _run_spec(spec: AppSpec) -> RunSpec:
    return RunSpec(
        argv=(spec.program, *spec.args),
        env=spec.env,
        timeout=spec.timeout,
        memory_limit=spec.memory_limit,
    )

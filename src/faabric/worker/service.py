"""A worker host: registers with the planner, runs the granules it is sent, reports results.

The worker keeps one control connection to the planner, opened by proving it knows the
cluster token (and checking that the planner does too). A reader loop takes `RunBatch`
messages and queues each granule on a pool of slot threads; a keep-alive thread proves the
worker is alive; each slot thread sends a `Report` when its granule ends, through one
`Outbox`, so reports that finish together share a write. Keep-alives and reports go after
the worker's counters (`WorkerCounters`, for the planner's metrics). If the planner goes
away the worker tries to re-register for `reconnect_for` seconds, then gives up. Running a
granule is the runner's business; this module never touches wasm.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faabric import __version__
from faabric.errors import (
    AuthError,
    BrokenError,
    ClosedError,
    FaabricError,
    TimeoutError_,
    TransportError,
)
from faabric.granule import transfer
from faabric.granule.transfer import RankLeft, RankPackage
from faabric.messages.control import (
    CONTROL_CODEC,
    Goodbye,
    KeepAlive,
    MigrationCancel,
    MigrationClaim,
    MigrationFreeze,
    MigrationOffer,
    MigrationPoints,
    MigrationStart,
    MigrationWithdrawn,
    OutputChunk,
    RankMoved,
    Refused,
    Register,
    Registered,
    Report,
    RunBatch,
    ScaleGranted,
    ScaleRefused,
    ScaleRelease,
    ScaleRequest,
    StopApp,
    TeamKeptLocal,
    TeamResized,
    ThawApp,
    WorkerCounters,
)
from faabric.messages.types import Batch, Cancelled, Failed, GranuleResult
from faabric.mpi.migration import CalledOff, Decision, Freeze, Start
from faabric.transport.auth import CONTROL, connect_handshake
from faabric.transport.framing import FramedSocket, connect
from faabric.transport.limits import CONTROL_MAX_FRAME
from faabric.transport.outbox import Outbox
from faabric.wasm.host import GuestFault
from faabric.worker.ledger import GranuleLedger
from faabric.worker.parked import ParkedRanks
from faabric.worker.scaling import ScaleClient

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 10.0
FromPlanner = (
    MigrationOffer | MigrationWithdrawn | MigrationStart | MigrationCancel | MigrationFreeze
)
ToPlanner = (
    KeepAlive | Report | ScaleRequest | ScaleRelease | TeamResized | TeamKeptLocal
    | MigrationPoints | MigrationClaim | RankMoved | OutputChunk
)
NOT_STARTED = "the app was stopped before this granule started"


class Runner(Protocol):
    """Runs one granule; must never raise for anything the guest does."""

    def run(self, batch: Batch, index: int) -> GranuleResult | RankLeft:
        """Run granule `index` of `batch` until it ends here (or migrates)."""
        ...

    def resume(self, package: RankPackage, memory: memoryview) -> GranuleResult | RankLeft:
        """Carry on with a rank another worker moved here."""
        ...

    def stop(self, app_id: int, reason: str) -> None:
        """Make the app's running granules end soon (blocked calls fail with `reason`)."""
        ...


class Courier(Protocol):
    """How ranks of frozen apps reach their new hosts (the data plane)."""

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None: ...

    def send_rank(self, host: str, parts: tuple[bytes | memoryview, ...]) -> None: ...


class Migrating(Protocol):
    """Where the planner's migration messages for the MPI worlds here go (mpi.Worlds)."""

    def offered(self, app_id: int, epoch: int) -> None: ...

    def withdrawn(self, app_id: int, epoch: int) -> None: ...

    def decided(self, app_id: int, epoch: int, decision: Decision) -> None: ...


@dataclass(frozen=True, slots=True)
class _Resume:
    """A slot task: carry on with a rank moved here."""

    package: RankPackage
    memory: memoryview


Task = tuple[Batch, int] | _Resume | None  # None: the slot thread ends


@dataclass(frozen=True, slots=True)
class PlannerAddress:
    """Where the planner's control port is."""

    host: str
    control_port: int


class RegistrationRefused(FaabricError):
    """The planner refused this worker (e.g. its name is taken)."""


class Worker:
    """One worker host. `serve()` blocks until `stop()` or until the planner is lost for good."""

    def __init__(
        self,
        *,
        name: str,
        slots: int,
        runner: Runner,
        locate_planner: Callable[[], PlannerAddress],
        reconnect_for: float,
        token: str,
        data_address: str = "",
        migrating: Migrating | None = None,
        courier: Courier | None = None,
        max_frame: int = CONTROL_MAX_FRAME,
        counters: Callable[[], WorkerCounters] | None = None,
    ) -> None:
        self.name = name
        self.slots = slots
        self._runner = runner
        self._locate = locate_planner
        self._reconnect_for = reconnect_for
        self._token = token
        self._data_address = data_address
        self._migrating = migrating
        self._courier = courier
        self._max_frame = max_frame  # of frames from the planner
        self._counters = counters  # read before each keep-alive and report, for metrics
        self._counting = threading.Lock()  # counters are read and queued in one step
        self.parked = ParkedRanks()
        self.incarnation = secrets.token_hex(8)  # a restarted worker is another incarnation
        self.granules = GranuleLedger()
        self.scaling = ScaleClient(self._send)
        self._tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._conn: FramedSocket | None = None
        self._outbox: Outbox | None = None  # to the planner, on self._conn
        self._conn_lock = threading.Lock()
        self._stopped_apps: set[int] = set()
        self._threads = [
            threading.Thread(target=self._slot_loop, name=f"slot-{i}", daemon=True)
            for i in range(slots)
        ]

    def serve(self) -> None:
        """Register, then serve batches until stopped.

        Raises:
            FaabricError: the planner refused the worker or stayed unreachable.
        """
        for thread in self._threads:
            thread.start()
        conn, interval = self._register()
        threading.Thread(target=self._keepalive_loop, args=(interval,), daemon=True).start()
        while not self._stopping.is_set():
            try:
                self._read_loop(conn)
            except ClosedError:
                break
            except TransportError as exc:
                if self._stopping.is_set():
                    break
                log.warning("lost the planner: %s; reconnecting", exc)
                self.granules.disconnected()
                self.scaling.disconnected()
                conn, _ = self._reconnect()
                # The planner lost this worker (or restarted): the apps kept frozen here ended.
                if dropped := self.parked.drop_all():
                    log.warning("dropped %d frozen ranks: their apps ended", dropped)

    def stop(self, reason: str = "shutting down") -> None:
        """Deregister and stop serving. Running granules are abandoned."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._conn_lock:
            conn = self._conn
        if conn is not None:
            try:
                conn.send(Goodbye(reason))
            except TransportError:
                pass
            conn.close()
        for _ in self._threads:
            self._tasks.put(None)

    # -- connection ---------------------------------------------------------------------------

    def _register(self) -> tuple[FramedSocket, float]:
        address = self._locate()
        sock = connect(address.host, address.control_port, timeout=REGISTER_TIMEOUT)
        try:
            connect_handshake(sock, self._token, CONTROL, me="worker",
                              peer=f"the planner at {address.host}:{address.control_port}")
        except FaabricError:
            sock.close()
            raise
        conn = FramedSocket(sock, CONTROL_CODEC, max_frame=self._max_frame)
        conn.send(Register(self.name, self.slots, __version__, self._data_address,
                           self.incarnation, self.granules.running()))
        try:
            answer = conn.recv(REGISTER_TIMEOUT)
        except TimeoutError_ as exc:
            conn.close()
            raise BrokenError("the planner did not answer the registration") from exc
        if isinstance(answer, Refused):
            conn.close()
            raise RegistrationRefused(f"the planner refused this worker: {answer.reason}")
        if not isinstance(answer, Registered):
            conn.close()
            raise BrokenError(f"the planner answered {type(answer).__name__} to a registration")
        with self._conn_lock:
            self._conn = conn
            self._outbox = Outbox(self.name, conn)
        log.info("registered as %s with %d slots", self.name, self.slots)
        for result in self.granules.connected():  # ended while the planner was away
            self.granules.report(result, self._report)
        return conn, answer.keepalive_interval

    def _reconnect(self) -> tuple[FramedSocket, float]:
        deadline = time.monotonic() + self._reconnect_for
        delay = 0.1
        while not self._stopping.is_set():
            try:
                return self._register()
            except (RegistrationRefused, AuthError):
                raise  # trying again would not change the answer
            except FaabricError as exc:
                if time.monotonic() + delay > deadline:
                    raise BrokenError(
                        f"lost the planner and could not reconnect within "
                        f"{self._reconnect_for:g} s: {exc}"
                    ) from exc
            self._stopping.wait(delay)
            delay = min(delay * 2, 2.0)
        raise ClosedError("the worker is stopping")

    def _read_loop(self, conn: FramedSocket) -> None:
        while True:
            message = conn.recv(timeout=None)
            match message:
                case RunBatch(batch):
                    for index in batch.indices:
                        self.granules.taken(batch.app_id, index)
                        self._tasks.put((batch, index))
                case StopApp(app_id):
                    # Granules not started yet are skipped; running ones are told to stop.
                    with self._conn_lock:
                        self._stopped_apps.add(app_id)
                    self._runner.stop(app_id, "the app was stopped")
                    self.parked.drop(app_id)
                case ThawApp(app_id, epoch, placement, peers):
                    threading.Thread(target=self._thaw, args=(app_id, epoch, placement, peers),
                                     name=f"thaw-{app_id}", daemon=True).start()
                case ScaleGranted() | ScaleRefused():
                    self.scaling.answered(message)
                case (MigrationOffer() | MigrationWithdrawn() | MigrationStart()
                      | MigrationCancel() | MigrationFreeze()):
                    self._migration(message)
                case Goodbye(reason):
                    raise BrokenError(f"the planner said goodbye ({reason})")
                case Refused(reason):  # another worker registered under this name
                    raise RegistrationRefused(f"the planner dropped this worker: {reason}")
                case _:
                    log.warning("unexpected %s from the planner", type(message).__name__)

    def _migration(self, message: FromPlanner) -> None:
        worlds = self._migrating
        if worlds is None:
            log.warning("a migration message for a worker without MPI worlds")
            return
        match message:
            case MigrationOffer(app_id, epoch):
                worlds.offered(app_id, epoch)
            case MigrationWithdrawn(app_id, epoch):
                worlds.withdrawn(app_id, epoch)
            case MigrationStart(app_id, epoch, placement, peers):
                worlds.decided(app_id, epoch, Start(placement, peers))
            case MigrationCancel(app_id, epoch, reason):
                worlds.decided(app_id, epoch, CalledOff(reason))
            case MigrationFreeze(app_id, epoch, park, peers):
                worlds.decided(app_id, epoch, Freeze(park, peers))

    # -- what the MPI worlds here tell the planner (mpi.worlds.PlannerLink) ---------------

    def points(self, app_id: int) -> None:
        """The app's rank 0 reached its first migration point here."""
        self._send(MigrationPoints(app_id))

    def claim(self, app_id: int, epoch: int) -> None:
        """The app takes migration offer `epoch`."""
        self._send(MigrationClaim(app_id, epoch))

    def send_output(self, chunk: OutputChunk) -> None:
        """Pass on bytes a running granule printed (dropped while the planner is away: the
        granule's result still holds them)."""
        self._send(chunk)

    def take_rank(self, payload: memoryview) -> None:
        """A rank another worker moved here (a MOVE frame): run it on a slot thread (the
        planner holds a slot here for it), or keep it if its app is being frozen."""
        package, memory = transfer.decode(payload)
        if package.frozen:
            self.parked.park(package, memory)
        else:
            self.granules.taken(package.batch.app_id, package.index)
            self._tasks.put(_Resume(package, memory))

    def _thaw(self, app_id: int, epoch: int, placement: tuple[str, ...],
              peers: tuple[tuple[str, str], ...]) -> None:
        """Send a frozen app's ranks to their new hosts, telling the planner of each one
        sent; a rank that cannot go (or is not kept here) fails, which ends the app."""
        thawed, missing = self.parked.thaw(app_id, epoch, placement, peers)
        failures = [(index, f"worker {self.name} does not keep it") for index in missing]
        if self._courier is not None:
            self._courier.learn(peers)
        for rank in thawed:
            try:
                if self._courier is None:
                    raise BrokenError("this worker cannot send ranks")
                self._courier.send_rank(rank.host, transfer.encode(rank.package, rank.memory))
            except (FaabricError, GuestFault, OSError) as error:
                failures.append((rank.package.index, f"cannot reach worker {rank.host}: {error}"))
                continue
            self._send(RankMoved(app_id, rank.package.index, epoch, rank.host))
        for index, why in failures:
            outcome = Failed(f"rank {index} could not be thawed: {why}")
            self._send(Report(GranuleResult(app_id, index, self.name, outcome)))

    def _keepalive_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            self._send(KeepAlive(), counted=True)

    def _send(self, message: ToPlanner, *, counted: bool = False) -> bool:
        """Send to the planner (`counted`: after the worker's counters); False if it is not
        connected or the send failed."""
        with self._conn_lock:
            outbox = self._outbox
        if outbox is None:
            return False
        if counted and self._counters is not None:
            with self._counting:  # queued in the order read: the planner never sees one drop
                outbox.put(self._counters())
                outbox.put(message)
        else:
            outbox.put(message)
        try:
            outbox.flush()  # sends ours too, or another thread sending now will
            return True
        except TransportError as exc:
            log.debug("could not send %s: %s", type(message).__name__, exc)
            return False

    def _report(self, report: Report) -> bool:
        return self._send(report, counted=True)

    # -- granules -----------------------------------------------------------------------------

    def _slot_loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            batch, index = (task.package.batch, task.package.index) if isinstance(
                task, _Resume) else task
            with self._conn_lock:
                stopped = batch.app_id in self._stopped_apps
            result: GranuleResult | RankLeft
            if stopped:
                result = GranuleResult(batch.app_id, index, self.name, Cancelled(NOT_STARTED))
            elif isinstance(task, _Resume):
                result = self._runner.resume(task.package, task.memory)
            else:
                result = self._runner.run(batch, index)
            if isinstance(result, RankLeft):
                self.granules.moved(result.app_id, result.index)
                self._send(RankMoved(result.app_id, result.index, result.epoch, result.to))
            else:
                self.granules.report(result, self._report)

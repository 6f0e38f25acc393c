"""The planner's I/O shell: feeds events to the pure `PlannerCore` and carries out its commands.

All state lives in the core; this class adds one lock around it, the table of clients
waiting for apps (woken by app id: push-based, no polling), the module store, and one outbox
per worker connection. Messages are queued under the lock, in the core's order, and written
outside it (several per write under load), so a slow worker cannot stall the planner. It
must not make scheduling decisions itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import select
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, assert_never

from faabric.errors import TransportError
from faabric.messages.control import (
    MigrationCancel,
    MigrationFreeze,
    MigrationOffer,
    MigrationStart,
    MigrationWithdrawn,
    Refused,
    Registered,
    RunBatch,
    ScaleGranted,
    ScaleRefused,
    StopApp,
    ThawApp,
    WorkerCounters,
)
from faabric.messages.types import AppInfo, AppSpec, Batch, GranuleResult, HostInfo
from faabric.planner._apps import AppEventKind, Statistics
from faabric.planner._waiters import WaiterTable
from faabric.planner.core import (
    AppCancelled,
    AppsSubmitted,
    AppView,
    Cancel,
    CancelMigration,
    Command,
    Dispatch,
    Disregard,
    Event,
    Finish,
    FreezeApp,
    GrantScale,
    GranuleFinished,
    HostAlive,
    HostEvicted,
    HostLeft,
    HostRegistered,
    MigrationClaimed,
    MigrationPointsReached,
    OfferMigration,
    PlannerCore,
    RankMovedAway,
    RefuseScale,
    Reject,
    Reset,
    ScaleReleased,
    ScaleRequested,
    StartMigration,
    TeamKeptOnHost,
    TeamSizeChanged,
    Thaw,
    Ticked,
    WithdrawMigration,
)
from faabric.planner.journal import Journal
from faabric.planner.modules import ModuleStore
from faabric.planner.output import OutputBuffers
from faabric.planner.restart import recover
from faabric.scheduling import Policy, bin_pack
from faabric.transport.framing import FramedSocket
from faabric.transport.outbox import Outbox

log = logging.getLogger(__name__)


class Observer(Protocol):
    """What learns of finished apps and of the counters workers report (metrics)."""

    def app_finished(self, view: AppView) -> None: ...

    def worker_counters(self, host: str, counters: WorkerCounters) -> None: ...


class PlannerService:
    """Thread-safe planner: the only object that touches the core."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        keepalive_timeout: float,
        retain_finished: int,
        max_module_bytes: int,
        migration_offer_timeout: float = 30.0,
        observer: Observer | None = None,
        policy: Policy = bin_pack,
        journal: Journal | None = None,
    ) -> None:
        self.keepalive_timeout = keepalive_timeout
        # The core keeps time on `clock` (monotonic); documents show Unix time.
        self.wall_offset = time.time() - clock()
        self._clock = clock
        self._journal = journal
        self.modules = ModuleStore(max_module_bytes)
        self.outputs = OutputBuffers()  # what running apps print, for clients following it
        self._core = PlannerCore(
            clock=clock,
            keepalive_timeout=keepalive_timeout,
            retain_finished=retain_finished,
            migration_offer_timeout=migration_offer_timeout,
            policy=policy,
        )
        self._lock = threading.Lock()
        self._waiters = WaiterTable()
        self._observer = observer
        self._connections: dict[str, FramedSocket] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._data_addresses: dict[str, str] = {}
        self._incarnations: dict[str, str] = {}
        self._app_ids = itertools.count(recover(self._core, journal, self.wall_offset,
                                                self._wall))

    # -- events from workers ------------------------------------------------------------------

    def register(
        self, name: str, slots: int, conn: FramedSocket, data_address: str = "",
        incarnation: str = "", running: tuple[tuple[int, int], ...] = (),
    ) -> str | None:
        """Add a worker; returns a refusal reason, or None if it was accepted.

        A worker registered under `name` already is lost first (its granules fail): it
        restarted (another `incarnation`; the old connection is refused, so a second worker
        of the same name stops) or reconnected. `running` are the granules the worker still
        runs: their apps are stopped there, their slots held until they report.
        `Registered` is sent under the lock, so it reaches the worker before any batch.
        """
        if slots < 1:
            return "a worker needs at least one slot"
        with self._lock:
            old = self._drop_registration(name, incarnation)
            try:
                conn.send(Registered(name, self.keepalive_timeout / 3))
            except TransportError as exc:
                return f"the connection failed: {exc}"
            self._connections[name] = conn
            self._outboxes[name] = Outbox(name, conn)
            self._data_addresses[name] = data_address
            self._incarnations[name] = incarnation
            event = HostRegistered(name, slots, running)
            outboxes = [*old[1], *self._route(self._core.handle(event))]
        if old[0] is not None:
            old[0].close()
        log.info("worker %s joined with %d slots%s", name, slots,
                 f", still running {len(running)} granules (stopped)" if running else "")
        self._flush(outboxes)
        return None

    def _drop_registration(
        self, name: str, incarnation: str
    ) -> tuple[FramedSocket | None, list[Outbox]]:
        """Under the lock: lose the worker registered as `name`, if any, because a worker
        of that name registers again. Returns its connection (to close once the lock is
        released) and the outboxes to flush."""
        if not self._core.has_host(name):
            return None, []
        restarted = self._incarnations.get(name) != incarnation
        reason = "it registered again, " + ("restarted" if restarted else "reconnected")
        conn = self._connections.pop(name, None)
        self._outboxes.pop(name, None)
        self._data_addresses.pop(name, None)
        if conn is not None and restarted:
            try:
                conn.send(Refused(f"a worker named {name} registered again"))
            except TransportError:
                pass
        log.warning("worker %s was lost: %s", name, reason)
        return conn, self._route(self._core.handle(HostLeft(name, reason)))

    def _wall(self) -> float:
        return self._clock() + self.wall_offset

    def host_alive(self, name: str) -> None:
        """A keep-alive arrived."""
        self._feed(HostAlive(name))

    def scale_requested(
        self, name: str, app_id: int, request_id: int, count: int, local: bool = False,
        up_to: bool = False,
    ) -> None:
        """Worker `name` asked for `count` more slots for app `app_id` (only its own with
        `local`, as many as are free with `up_to`); it is answered at once with
        `ScaleGranted` or `ScaleRefused`."""
        self._feed(ScaleRequested(app_id, request_id, count, name, local, up_to))

    def scale_released(self, name: str, app_id: int, count: int) -> None:
        """Worker `name` gave back `count` scale-change slots of app `app_id`."""
        self._feed(ScaleReleased(app_id, name, count))

    def team_resized(self, name: str, app_id: int, index: int, threads: int) -> None:
        """Granule `index` of elastic app `app_id` on worker `name` ran `threads` threads."""
        self._feed(TeamSizeChanged(app_id, index, name, threads))

    def team_kept_local(self, name: str, app_id: int, index: int, threads: int,
                        detail: str) -> None:
        """Granule `index` of app `app_id` on worker `name` runs its `threads`-thread team
        there alone from now on, because spanning workers did not pay (`detail`)."""
        self._feed(TeamKeptOnHost(app_id, index, name, threads, detail))

    def migration_points(self, name: str, app_id: int) -> None:
        """Worker `name` runs rank 0 of app `app_id`, which reached a migration point."""
        self._feed(MigrationPointsReached(app_id))

    def migration_claimed(self, name: str, app_id: int, epoch: int) -> None:
        """Worker `name` claims migration offer `epoch` of app `app_id`; every host involved
        is answered at once with `MigrationStart` or `MigrationCancel`."""
        self._feed(MigrationClaimed(app_id, epoch, name))

    def rank_moved(self, name: str, app_id: int, index: int, epoch: int, to: str) -> None:
        """Rank `index` of app `app_id` left worker `name` for worker `to`."""
        self._feed(RankMovedAway(app_id, index, epoch, name, to))

    def host_left(self, name: str, reason: str, conn: FramedSocket) -> None:
        """A worker said goodbye or its connection broke."""
        with self._lock:
            if self._connections.get(name) is not conn:
                return  # already removed (expired, or replaced)
            del self._connections[name]
            del self._outboxes[name]
            self._data_addresses.pop(name, None)
            outboxes = self._route(self._core.handle(HostLeft(name, reason)))
        conn.close()
        log.info("worker %s left: %s", name, reason, extra={"host": name})
        self._flush(outboxes)

    def granule_finished(self, result: GranuleResult, name: str) -> None:
        """Worker `name` reported a granule's result (which also proves it is alive)."""
        if result.host != name:  # the connection says who ran it, not the message
            result = dataclasses.replace(result, host=name)
        self._feed(GranuleFinished(result), HostAlive(name))

    def granule_output(self, name: str, app_id: int, index: int, stream: int, offset: int,
                       data: bytes) -> None:
        """Worker `name` passed on bytes a running granule printed (kept for followers)."""
        self.outputs.add(app_id, index, stream, offset, data)

    def tick(self) -> None:
        """Expire workers whose keep-alive lapsed and close their connections."""
        with self._lock:
            outboxes = self._route(self._core.handle(Ticked()))
            gone = [n for n in self._connections if not self._core.has_host(n)]
            conns = [self._connections.pop(n) for n in gone]
            for name in gone:
                del self._outboxes[name]
                self._data_addresses.pop(name, None)
        for name, conn in zip(gone, conns, strict=True):
            log.warning("worker %s expired: no keep-alive for %g s", name,
                        self.keepalive_timeout, extra={"host": name})
            conn.close()
        self._flush(outboxes)

    # -- requests from clients ----------------------------------------------------------------

    def submit(self, spec: AppSpec) -> int:
        """Accept an app; returns its id. Raises NotEnoughSlots if it can never fit."""
        return self.submit_all([spec])[0]

    def submit_all(self, specs: Sequence[AppSpec]) -> list[int]:
        """Accept several apps at once, in order; returns their ids (consecutive).

        Raises:
            NotEnoughSlots: one of them (the first with a size over `available`) can never
                fit; none of them was accepted.
        """
        with self._lock:
            ids = [next(self._app_ids) for _ in specs]
            commands = self._core.handle(AppsSubmitted(tuple(zip(ids, specs, strict=True))))
            rejects = [c for c in commands if isinstance(c, Reject)]
            if rejects:
                raise rejects[0].error()
            if self._journal is not None:
                self._journal.submitted(list(zip(ids, specs, strict=True)), self._wall())
            self.outputs.open(ids)
            outboxes = self._route(commands)
        self._flush(outboxes)
        return ids

    def wait(self, app_id: int, timeout: float, *, hangup: int | None = None) -> AppView | None:
        """The app's view once it has finished, or as it is when `timeout` runs out (or,
        with `hangup`, when that connection closes: see `wait_all`)."""
        return self.wait_all([app_id], timeout, hangup=hangup)[0]

    def wait_all(
        self, app_ids: Sequence[int], timeout: float, *, hangup: int | None = None
    ) -> list[AppView | None]:
        """The apps' views (None for unknown ids) once every one has finished, or as they
        are when `timeout` runs out. Woken by the last app to finish, not by polling. With
        `hangup` (the file descriptor of a client's socket), the wait also ends as soon as
        the client closes its end of the connection."""
        with self._lock:
            pending = [i for i in app_ids if not self._core.settled(i)]
            waiter = None
            if pending and timeout > 0:
                waiter = self._waiters.add(pending, with_fd=hangup is not None)
        if waiter is not None:
            if hangup is None:
                waiter.done.wait(timeout)
            else:
                _wait_either(waiter.wake_fd, hangup, timeout)
        with self._lock:
            if waiter is not None:
                self._waiters.remove(waiter)
            return [self._core.app(i) for i in app_ids]

    def cancel(self, app_id: int, reason: str) -> tuple[AppView | None, bool]:
        """Cancel the app (it finishes at once, see `AppCancelled`). Returns its view (None
        if it is unknown) and whether this call ended it (False if it had finished)."""
        with self._lock:
            ended = not self._core.settled(app_id)
            outboxes = self._route(self._core.handle(AppCancelled(app_id, reason)))
            view = self._core.app(app_id)
        if ended:
            log.info("app %d cancelled %s", app_id, reason, extra={"app": app_id})
        self._flush(outboxes)
        return view, ended

    def app(self, app_id: int) -> AppView | None:
        """The app's current view, or None if unknown."""
        with self._lock:
            return self._core.app(app_id)

    def hosts(self) -> list[HostInfo]:
        """Registered workers."""
        with self._lock:
            return self._core.hosts()

    def in_flight(self) -> list[AppInfo]:
        """Queued and running apps."""
        with self._lock:
            return self._core.in_flight()

    def gauges(self) -> tuple[list[HostInfo], Statistics, dict[AppEventKind, int]]:
        """Hosts, counts of apps and slots, and app events by kind, at one moment."""
        with self._lock:
            return self._core.hosts(), self._core.statistics(), self._core.event_counts()

    def worker_counters(self, name: str, counters: WorkerCounters) -> None:
        """Worker `name` reported its counters (for metrics)."""
        if self._observer is not None:
            self._observer.worker_counters(name, counters)

    def reset(self) -> None:
        """Forget every app (the journal too, but for the highest id); workers stay
        registered."""
        with self._lock:
            outboxes = self._route(self._core.handle(Reset()))
            if self._journal is not None:
                self._journal.forget_apps()
        self._flush(outboxes)
        self.outputs.clear()

    def evict(self, name: str) -> bool:
        """Announce worker `name` for eviction (again: nothing more happens); returns False
        if no worker of that name is registered."""
        with self._lock:
            if not self._core.has_host(name):
                return False
            outboxes = self._route(self._core.handle(HostEvicted(name)))
        self._flush(outboxes)
        return True

    def close_connections(self, reason: str) -> None:
        """Drop every worker connection (planner shutdown)."""
        with self._lock:
            conns = list(self._connections.values())
            self._connections.clear()
            self._outboxes.clear()
        for conn in conns:
            conn.close()
        log.info("closed %d worker connections: %s", len(conns), reason)

    # -- internals ----------------------------------------------------------------------------

    def _feed(self, *events: Event) -> None:
        with self._lock:
            outboxes = self._route([c for e in events for c in self._core.handle(e)])
        self._flush(outboxes)

    def _route(self, commands: Iterable[Command]) -> list[Outbox]:
        """Under the lock: wake the waiters of finished apps and queue each worker's messages
        in the core's order. Returns the outboxes to flush once the lock is released."""
        touched: dict[str, Outbox] = {}
        for command in commands:
            match command:
                case Finish(app_id):
                    self._waiters.finished(app_id)
                    self.outputs.finish(app_id)
                    self._observe_finished(app_id)
                    self._journal_finished(app_id)
                    continue
                case Reject():
                    continue  # answered by the caller
                case Disregard(host, what):
                    log.warning("ignored a message of worker %s: %s", host, what)
                    continue
                case Dispatch(host, batch):
                    message: object = RunBatch(self._with_peers(batch))
                case Cancel(host, app_id):
                    message = StopApp(app_id)
                case GrantScale(host, request_id, placement):
                    peers = tuple((h, self._data_addresses.get(h, ""))
                                  for h, _ in placement if h != host)
                    message = ScaleGranted(request_id, placement, peers)
                case RefuseScale(host, request_id, reason, free):
                    message = ScaleRefused(request_id, reason, free)
                case OfferMigration(host, app_id, epoch):
                    message = MigrationOffer(app_id, epoch)
                case WithdrawMigration(host, app_id, epoch):
                    message = MigrationWithdrawn(app_id, epoch)
                case StartMigration(host, app_id, epoch, placement, involved):
                    peers = tuple((h, self._data_addresses.get(h, "")) for h in involved)
                    message = MigrationStart(app_id, epoch, placement, peers)
                case CancelMigration(host, app_id, epoch, reason):
                    message = MigrationCancel(app_id, epoch, reason)
                case FreezeApp(host, app_id, epoch, park):
                    peers = ((park, self._data_addresses.get(park, "")),)
                    message = MigrationFreeze(app_id, epoch, park, peers)
                case Thaw(host, app_id, epoch, placement):
                    peers = tuple((h, self._data_addresses.get(h, ""))
                                  for h in sorted(set(placement)))
                    message = ThawApp(app_id, epoch, placement, peers)
                case _:
                    assert_never(command)
            outbox = self._outboxes.get(host)
            if outbox is not None:  # else the host left meanwhile; the core knows
                outbox.put(message)
                touched[host] = outbox
        return list(touched.values())

    def _journal_finished(self, app_id: int) -> None:
        view = self._core.app(app_id) if self._journal is not None else None
        if self._journal is not None and view is not None:  # None: dropped by a reset
            self._journal.finished(app_id, view.results, self._wall())

    def _observe_finished(self, app_id: int) -> None:
        """Under the lock: tell the observer of an app the core just finished (not of those
        a reset dropped)."""
        if self._observer is None:
            return
        view = self._core.app(app_id)
        if view is not None:
            self._observer.app_finished(view)

    def _with_peers(self, batch: Batch) -> Batch:
        """The batch with the data-plane addresses of the app's hosts, for multi-host apps.
        Called with the lock held."""
        hosts = set(batch.placement)
        if len(hosts) < 2:
            return batch
        peers = tuple((h, self._data_addresses.get(h, "")) for h in sorted(hosts))
        return dataclasses.replace(batch, peers=peers)

    def _flush(self, outboxes: Iterable[Outbox]) -> None:
        for outbox in outboxes:
            try:
                outbox.flush()
            except TransportError as exc:
                self.host_left(outbox.name, f"cannot send it work: {exc}", outbox.conn)


def _wait_either(wake_fd: int, hangup: int, timeout: float) -> None:
    """Block until `wake_fd` is readable, the peer of socket `hangup` has closed its end (or
    the socket failed), or `timeout` seconds have passed."""
    poller = select.poll()
    poller.register(wake_fd, select.POLLIN)
    poller.register(hangup, select.POLLRDHUP)  # POLLHUP and POLLERR are always reported
    poller.poll(math.ceil(timeout * 1000))

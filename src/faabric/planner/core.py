"""The planner's state machine: host membership, slots, the app queue, results.

Sans-IO (faabric: src/planner/Planner.cpp, minus the locking and RPC). `PlannerCore.handle`
takes one event (a past-tense fact) and returns the commands (imperatives) the I/O shell must
carry out; queries return frozen snapshots. It must not do I/O, start threads, sleep, read
the real clock (the clock is injected) or lock: the shell serialises every call.

Invariants, checked by `validate()`: a host's used slots are exactly the placed granules on it
that have no result yet; 0 <= used <= slots; the queue holds exactly the QUEUED apps, in
submission order, and only its head may start (no overtaking).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from faabric.errors import InternalError, NotEnoughSlots
from faabric.messages.types import (
    AppInfo,
    AppSpec,
    AppState,
    Batch,
    Failed,
    GranuleResult,
    HostInfo,
)
from faabric.planner._apps import AppRecord, AppView, Statistics
from faabric.planner._hosts import HostTable
from faabric.scheduling import NoCapacity, Placed, Policy, bin_pack

__all__ = [
    "NO_HOST",
    "AppSubmitted",
    "AppView",
    "Command",
    "Dispatch",
    "Event",
    "Finish",
    "GranuleFinished",
    "HostAlive",
    "HostLeft",
    "HostRegistered",
    "PlannerCore",
    "Reject",
    "Reset",
    "Statistics",
    "Ticked",
]

# -- events: what happened ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostRegistered:
    """A worker joined with `slots` slots. Its name must not be registered already."""

    name: str
    slots: int


@dataclass(frozen=True, slots=True)
class HostAlive:
    """A worker sent a keep-alive. Unknown names are ignored."""

    name: str


@dataclass(frozen=True, slots=True)
class HostLeft:
    """A worker deregistered or its connection was lost. Unknown names are ignored."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class AppSubmitted:
    """A client submitted an app; the shell chose its (unused) id."""

    app_id: int
    spec: AppSpec


@dataclass(frozen=True, slots=True)
class GranuleFinished:
    """A worker reported a granule's result."""

    result: GranuleResult


@dataclass(frozen=True, slots=True)
class Ticked:
    """Time passed: expire hosts whose keep-alive is overdue."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Drop every app and the queue; hosts stay, with all slots free."""


Event = HostRegistered | HostAlive | HostLeft | AppSubmitted | GranuleFinished | Ticked | Reset

# -- commands: what the shell must do -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send `batch` to worker `host` to run."""

    host: str
    batch: Batch


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the app: it needs more slots than the whole cluster has. Nothing was recorded."""

    app_id: int
    requested: int
    available: int

    def error(self) -> NotEnoughSlots:
        """The exception to give the client."""
        return NotEnoughSlots(self.requested, self.available)


@dataclass(frozen=True, slots=True)
class Finish:
    """The app is done: wake its waiters; `PlannerCore.app` has its results.

    After `Reset` it is also sent for every dropped in-flight app; `PlannerCore.app` then
    returns None for it.
    """

    app_id: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop the app's granules still running on worker `host`; their slots free as they report."""

    host: str
    app_id: int


Command = Dispatch | Reject | Finish | Cancel

# A granule that never ran on any host (its app failed while queued) is reported with this host.
NO_HOST = ""


class PlannerCore:
    """The planner's state: feed it events with `handle`, carry out the commands it returns.

    Args:
        clock: returns the current time in seconds (monotonic); read once per event.
        keepalive_timeout: a host silent for longer than this is expired on the next `Ticked`.
        retain_finished: how many finished apps stay queryable (most recent first); apps
            finished by the latest `handle` call are always kept until the next one.
        policy: the placement policy for new apps.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        keepalive_timeout: float,
        retain_finished: int = 10_000,
        policy: Policy = bin_pack,
    ) -> None:
        if keepalive_timeout <= 0:
            raise ValueError(f"keepalive_timeout must be positive, got {keepalive_timeout}")
        if retain_finished < 0:
            raise ValueError(f"retain_finished must be >= 0, got {retain_finished}")
        self._clock = clock
        self._timeout = keepalive_timeout
        self._retain = retain_finished
        self._policy = policy
        self._hosts = HostTable()
        self._apps: dict[int, AppRecord] = {}
        self._queue: deque[int] = deque()  # QUEUED app ids, in submission order
        self._finished: deque[int] = deque()  # FINISHED app ids, oldest first

    # -- the one mutator --------------------------------------------------------------------

    def handle(self, event: Event) -> list[Command]:
        """Apply one event and return the commands to carry out, in order.

        Raises:
            InternalError: the event breaks a precondition the shell must ensure (a host
                name registered twice, an app id reused, an app of size < 1).
        """
        now = self._clock()
        match event:
            case HostRegistered(name, slots):
                self._hosts.add(name, slots, now)
                commands = self._start_queued(now)
            case HostAlive(name):
                self._hosts.touch(name, now)
                commands = []
            case HostLeft(name, reason):
                commands = self._lose([(name, reason)], now) if name in self._hosts else []
            case AppSubmitted(app_id, spec):
                commands = self._submit(app_id, spec, now)
            case GranuleFinished(result):
                commands = self._record(result, now)
            case Ticked():
                commands = self._expire(now)
            case Reset():
                commands = self._reset()
            case _:
                assert_never(event)
        self._forget_old(sum(isinstance(command, Finish) for command in commands))
        return commands

    # -- event handlers ---------------------------------------------------------------------

    def _submit(self, app_id: int, spec: AppSpec, now: float) -> list[Command]:
        if app_id in self._apps:
            raise InternalError(f"app id {app_id} is already in use")
        if spec.size < 1:
            raise InternalError(f"app {app_id} has size {spec.size}")
        total = self._hosts.total_slots()
        if spec.size > total:
            return [Reject(app_id=app_id, requested=spec.size, available=total)]
        app = AppRecord(app_id=app_id, spec=spec, submitted=now)
        self._apps[app_id] = app
        if not self._queue:
            placement = self._policy(self._hosts.capacity(), spec.size)
            if isinstance(placement, Placed):
                return self._start(app, placement, now)
        self._queue.append(app_id)
        return []

    def _record(self, result: GranuleResult, now: float) -> list[Command]:
        granule = (result.app_id, result.index)
        app = self._apps.get(result.app_id)
        if app is None:
            # Dropped (reset or retention): the granule's slot is free all the same.
            self._hosts.release(result.host, granule)
            return self._start_queued(now)
        host = app.placement.get(result.index)
        if host is None:
            return []  # never placed: not a result we asked for
        self._hosts.release(host, granule)
        app.cancelled.discard(result.index)
        commands: list[Command] = []
        if app.state is AppState.RUNNING and result.index not in app.results:
            app.results[result.index] = result  # the first result wins
            if app.complete:
                commands.append(self._finish(app, now))
        return commands + self._start_queued(now)

    def _expire(self, now: float) -> list[Command]:
        silent = self._hosts.silent_since(now, self._timeout)
        lost = [(name, f"no keep-alive from {name} for {idle:.1f} s") for name, idle in silent]
        return self._lose(lost, now) if lost else []

    def _lose(self, lost: list[tuple[str, str]], now: float) -> list[Command]:
        # Remove every lost host before starting anything, so nothing lands on a dying host.
        hit: dict[int, str] = {}
        for name, reason in lost:
            outcome = Failed(f"worker {name} was lost: {reason}")
            for app_id, index in self._hosts.remove(name):
                app = self._apps.get(app_id)
                if app is None:
                    continue
                app.cancelled.discard(index)
                if index not in app.results:
                    app.results[index] = GranuleResult(app_id, index, name, outcome)
                    hit.setdefault(app_id, name)
        commands: list[Command] = []
        for app_id, name in sorted(hit.items()):
            commands += self._abandon(self._apps[app_id], name, now)
        return commands + self._fail_oversized(now) + self._start_queued(now)

    def _abandon(self, app: AppRecord, lost_host: str, now: float) -> list[Command]:
        """End an app that lost a granule: its other running granules are cancelled."""
        if app.state is not AppState.RUNNING:
            return []
        outcome = Failed(f"cancelled: another granule of the app was lost with {lost_host}")
        hosts: set[str] = set()
        for index, host in app.placement.items():
            if index not in app.results:
                app.results[index] = GranuleResult(app.app_id, index, host, outcome)
                app.cancelled.add(index)  # its slot stays held until the worker reports
                hosts.add(host)
        cancels: list[Command] = [Cancel(host, app.app_id) for host in sorted(hosts)]
        return [self._finish(app, now), *cancels]

    def _fail_oversized(self, now: float) -> list[Command]:
        total = self._hosts.total_slots()
        oversized = [self._apps[i] for i in self._queue if self._apps[i].spec.size > total]
        commands: list[Command] = []
        for app in oversized:
            self._queue.remove(app.app_id)
            outcome = Failed(str(NotEnoughSlots(app.spec.size, total)))
            for index in range(app.spec.size):
                app.results[index] = GranuleResult(app.app_id, index, NO_HOST, outcome)
            commands.append(self._finish(app, now))
        return commands

    def _reset(self) -> list[Command]:
        dropped = sorted(i for i, app in self._apps.items() if app.state is not AppState.FINISHED)
        self._apps.clear()
        self._queue.clear()
        self._finished.clear()
        self._hosts.release_all()
        return [Finish(app_id) for app_id in dropped]

    # -- scheduling ---------------------------------------------------------------------------

    def _start_queued(self, now: float) -> list[Command]:
        # Strict FIFO: start the head while it fits; stop at the first that does not.
        commands: list[Command] = []
        while self._queue:
            app = self._apps[self._queue[0]]
            placement = self._policy(self._hosts.capacity(), app.spec.size)
            if isinstance(placement, NoCapacity):
                break
            self._queue.popleft()
            commands += self._start(app, placement, now)
        return commands

    def _start(self, app: AppRecord, placement: Placed, now: float) -> list[Command]:
        if len(placement.hosts) != app.spec.size:
            raise InternalError(f"policy placed {len(placement.hosts)} of {app.spec.size}")
        by_host: dict[str, list[int]] = {}
        for index, host in enumerate(placement.hosts):
            self._hosts.claim(host, (app.app_id, index))
            app.placement[index] = host
            by_host.setdefault(host, []).append(index)
        app.state = AppState.RUNNING
        app.started = now
        return [
            Dispatch(host, Batch(app.app_id, app.spec, tuple(indices)))
            for host, indices in by_host.items()
        ]

    def _finish(self, app: AppRecord, now: float) -> Finish:
        app.state = AppState.FINISHED
        app.finished = now
        self._finished.append(app.app_id)
        return Finish(app.app_id)

    def _forget_old(self, just_finished: int) -> None:
        keep = max(self._retain, just_finished)
        while len(self._finished) > keep:
            del self._apps[self._finished.popleft()]

    # -- queries ------------------------------------------------------------------------------

    def hosts(self) -> list[HostInfo]:
        """Every live host with its slots, sorted by name."""
        return self._hosts.infos()

    def host_names(self) -> set[str]:
        """Names of every live host."""
        return self._hosts.names()

    def has_host(self, name: str) -> bool:
        """Whether a host of that name is registered."""
        return name in self._hosts

    def in_flight(self) -> list[AppInfo]:
        """Queued and running apps, by app id."""
        busy = (app for app in self._apps.values() if app.state is not AppState.FINISHED)
        return [app.info() for app in sorted(busy, key=lambda app: app.app_id)]

    def app(self, app_id: int) -> AppView | None:
        """A snapshot of one app, or None if it is unknown, rejected or no longer retained."""
        app = self._apps.get(app_id)
        return None if app is None else app.view()

    def statistics(self) -> Statistics:
        """Counts of hosts, slots and apps by state."""
        states = [app.state for app in self._apps.values()]
        return Statistics(
            hosts=len(self._hosts.names()),
            total_slots=self._hosts.total_slots(),
            used_slots=self._hosts.used_slots(),
            queued=states.count(AppState.QUEUED),
            running=states.count(AppState.RUNNING),
            finished=states.count(AppState.FINISHED),
        )

    def validate(self) -> None:
        """Check every invariant; raise InternalError naming the first that fails."""
        _check(self._apps, self._queue, self._finished, self._hosts)


def _check(
    apps: dict[int, AppRecord], queue: deque[int], finished: deque[int], hosts: HostTable
) -> None:
    expected: dict[str, set[tuple[int, int]]] = {name: set() for name in hosts.names()}
    for app in apps.values():
        _check_app(app)
        for index, host in app.placement.items():
            if index in app.results and index not in app.cancelled:
                continue
            if host not in expected:
                raise InternalError(f"app {app.app_id} granule {index} is on lost host {host}")
            expected[host].add((app.app_id, index))
    for info in hosts.infos():
        # Granules of apps dropped from the record may still hold slots until they report.
        held = {g for g in hosts.held(info.name) if g[0] in apps}
        if held != expected[info.name]:
            raise InternalError(f"host {info.name} slot accounting is wrong")
        if not 0 <= info.used <= info.slots:
            raise InternalError(f"host {info.name} uses {info.used} of {info.slots} slots")
    queued = [i for i, app in apps.items() if app.state is AppState.QUEUED]
    if len(set(queue)) != len(queue) or set(queue) != set(queued):
        raise InternalError(f"queue {list(queue)} does not match queued apps {queued}")
    done = [i for i, app in apps.items() if app.state is AppState.FINISHED]
    if len(set(finished)) != len(finished) or set(finished) != set(done):
        raise InternalError(f"finished list {list(finished)} does not match {done}")


def _check_app(app: AppRecord) -> None:
    size = app.spec.size
    placed = set(app.placement)
    ok = {
        AppState.QUEUED: not placed and not app.results and app.started is None,
        AppState.RUNNING: placed == set(range(size)) and not app.complete,
        AppState.FINISHED: app.complete and app.finished is not None,
    }[app.state]
    if not ok or not set(app.results) <= set(range(size)):
        raise InternalError(f"app {app.app_id} is inconsistent in state {app.state}")
    # Apps failed while queued have results but no placement; others only for placed granules.
    if placed and not set(app.results) <= placed:
        raise InternalError(f"app {app.app_id} has results for unplaced granules")

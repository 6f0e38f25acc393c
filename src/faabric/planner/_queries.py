"""Read-only queries of the planner core: frozen snapshots of hosts, apps and counts, and the
check of every invariant.

`CoreQueries` is a base class of `PlannerCore`, kept apart so that the state machine's module
stays short; it reads the state `PlannerCore` sets up and must never change it (no event
handling, no commands, no I/O). `placed_on` says which worker may report on a granule.
"""

from __future__ import annotations

from collections import Counter, deque

from faabric.messages.types import AppInfo, AppState, HostInfo
from faabric.planner import _invariants
from faabric.planner._apps import AppEventKind, AppRecord, AppView, Statistics, Thawing
from faabric.planner._hosts import HostTable
from faabric.planner._migration import Migrations
from faabric.planner._spot import Evictions


class CoreQueries:
    """The queries of `PlannerCore` (see there)."""

    _hosts: HostTable
    _apps: dict[int, AppRecord]
    _queue: deque[int]  # QUEUED app ids, in submission order
    _finished: deque[int]  # FINISHED app ids, oldest first
    _moves: Migrations
    _spot: Evictions
    _tally: Counter[AppEventKind]  # app events by kind since the core was made

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
        """Queued, running and frozen apps, by app id."""
        busy = (app for app in self._apps.values() if app.state is not AppState.FINISHED)
        return [app.info() for app in sorted(busy, key=lambda app: app.app_id)]

    def app(self, app_id: int) -> AppView | None:
        """A snapshot of one app, or None if it is unknown, rejected or no longer retained."""
        app = self._apps.get(app_id)
        return None if app is None else app.view()

    def settled(self, app_id: int) -> bool:
        """Whether waiting for the app is over: it finished, or is unknown (never submitted,
        rejected, reset or no longer retained). Cheaper than `app`."""
        app = self._apps.get(app_id)
        return app is None or app.state is AppState.FINISHED

    def statistics(self) -> Statistics:
        """Counts of hosts, slots and apps by state."""
        states = [app.state for app in self._apps.values()]
        scaled = sum(sum(app.scaled.values()) for app in self._apps.values())
        return Statistics(
            hosts=len(self._hosts.names()),
            total_slots=self._hosts.total_slots(),
            used_slots=self._hosts.used_slots(),
            queued=states.count(AppState.QUEUED),
            running=states.count(AppState.RUNNING),
            finished=states.count(AppState.FINISHED),
            scaled_slots=scaled,
            reserved_slots=self._moves.reserved(self._apps),
            frozen=states.count(AppState.FROZEN),
        )

    def event_counts(self) -> dict[AppEventKind, int]:
        """How many app events of each kind happened since the core was made (a reset does
        not clear them): migrations offered, started, completed..., freezes, thaws."""
        return dict(self._tally)

    def placed_on(self, app: AppRecord, index: int, host: str) -> bool:
        """Whether worker `host` may report on granule `index` of `app`: the planner placed
        it there or is moving it there, or `host` is the park sending it on after a thaw."""
        if index not in app.placement:
            return False
        if isinstance(app.freeze, Thawing) and host == app.freeze.park:
            return True
        return host in self._moves.holders(app, index)

    def validate(self) -> None:
        """Check every invariant; raise InternalError naming the first that fails."""
        _invariants.check(
            self._apps, self._queue, self._finished, self._hosts, self._moves.movable(),
            self._spot.frozen(),
        )


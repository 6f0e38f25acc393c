"""The planner's state machine: host membership, slots, the app queue, scale changes, results,
migrations.

Sans-IO (faabric: src/planner/Planner.cpp, minus the locking and RPC). `PlannerCore.handle`
takes one event (a past-tense fact) and returns the commands (imperatives) the I/O shell must
carry out; queries return frozen snapshots. It must not do I/O, start threads, sleep, read
the real clock (the clock is injected) or lock: the shell serialises every call.

Invariants are listed and checked in `_invariants.py` (`validate()`); events and commands
are defined in `_events.py` and re-exported here; migration steps live in `_migration.py`,
evictions, freezes and thaws in `_spot.py`, the read-only queries in `_queries.py`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Collection
from typing import assert_never

from faabric.errors import ConfigError, InternalError, NotEnoughSlots
from faabric.messages.types import (
    AppSpec,
    AppState,
    Batch,
    Cancelled,
    Failed,
    GranuleResult,
    Outcome,
)
from faabric.planner._apps import AppEvent, AppEventKind, AppRecord, AppView, Statistics
from faabric.planner._events import (
    NO_HOST,
    AppCancelled,
    AppsRecovered,
    AppsSubmitted,
    AppSubmitted,
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
    RankMovedAway,
    RecoveredApp,
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
from faabric.planner._hosts import HostTable
from faabric.planner._migration import Migrations
from faabric.planner._queries import CoreQueries
from faabric.planner._rejoin import recover, rejoined
from faabric.planner._spot import Evictions
from faabric.scheduling import NoCapacity, Placed, Policy, bin_pack, policy_for

__all__ = [
    "NO_HOST", "AppCancelled", "AppEvent", "AppEventKind", "AppSubmitted", "AppView",
    "AppsRecovered", "AppsSubmitted", "Cancel", "CancelMigration", "Command", "Dispatch",
    "Disregard", "Event", "Finish", "FreezeApp", "GrantScale", "GranuleFinished", "HostAlive",
    "HostEvicted", "HostLeft", "HostRegistered", "MigrationClaimed", "MigrationPointsReached",
    "OfferMigration", "PlannerCore", "RankMovedAway", "RecoveredApp", "RefuseScale", "Reject",
    "Reset", "ScaleReleased", "ScaleRequested", "StartMigration", "Statistics",
    "TeamKeptOnHost", "TeamSizeChanged", "Thaw", "Ticked", "WithdrawMigration",
]


class PlannerCore(CoreQueries):
    """The planner's state: feed it events with `handle`, carry out the commands it returns.

    Args:
        clock: returns the current time in seconds (monotonic); read once per event.
        keepalive_timeout: a host silent for longer than this is expired on the next `Ticked`.
        retain_finished: how many finished apps stay queryable (most recent first); apps
            finished by the latest `handle` call are always kept until the next one.
        policy: places new apps and scale changes, and decides migrations, for every app
            that does not name its own (`AppSpec.policy`).
        migration_offer_timeout: a migration offer unclaimed for longer than this is
            withdrawn on the next `Ticked`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        keepalive_timeout: float,
        retain_finished: int = 10_000,
        policy: Policy = bin_pack,
        migration_offer_timeout: float = 30.0,
    ) -> None:
        if keepalive_timeout <= 0:
            raise ValueError(f"keepalive_timeout must be positive, got {keepalive_timeout}")
        if retain_finished < 0:
            raise ValueError(f"retain_finished must be >= 0, got {retain_finished}")
        if migration_offer_timeout <= 0:
            raise ValueError(
                f"migration_offer_timeout must be positive, got {migration_offer_timeout}"
            )
        self._clock = clock
        self._timeout = keepalive_timeout
        self._retain = retain_finished
        self._policy = policy
        # Apps unknown here may hold slots too: granules a rejoining worker still runs.
        self._hosts = HostTable(lambda i: app.spec.user if (app := self._apps.get(i)) else "")
        self._moves = Migrations(self._hosts, migration_offer_timeout)
        self._spot = Evictions(self._hosts, self._moves)
        self._apps: dict[int, AppRecord] = {}
        self._queue: deque[int] = deque()  # QUEUED app ids, in submission order
        self._finished: deque[int] = deque()  # FINISHED app ids, oldest first
        self._tally: Counter[AppEventKind] = Counter()  # app events by kind, ever (not reset)

    # -- the one mutator --------------------------------------------------------------------

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands to carry out, in order. Raises InternalError
        if the event breaks a precondition the shell must ensure (e.g. an app id reused)."""
        now = self._clock()
        match event:
            case HostRegistered():
                commands = self._joined(event, now)
            case HostAlive(name):
                self._hosts.touch(name, now)
                commands = []
            case HostLeft(name, reason):
                commands = self._lose([(name, reason)], now) if name in self._hosts else []
            case AppSubmitted(app_id, spec):
                commands = self._submit_all(((app_id, spec),), now)
            case AppsSubmitted(apps):
                commands = self._submit_all(apps, now)
            case GranuleFinished(result):
                commands = self._record(result, now)
            case ScaleRequested():
                commands = self._scale(event, now)
            case ScaleReleased(app_id, host, count):
                commands = self._release_scale(app_id, host, count, now)
            case TeamSizeChanged():
                commands = self._resized(event, now)
            case TeamKeptOnHost():
                commands = self._kept_local(event, now)
            case MigrationPointsReached(app_id):
                self._moves.points_reached(self._apps.get(app_id))
                commands = self._offer(now)
            case MigrationClaimed():  # of a freeze, or of a migration
                owned = self._spot.owns(self._apps.get(event.app_id))
                commands = (self._spot if owned else self._moves).claim(self._apps, event, now)
            case RankMovedAway():  # to a park, or to a new host
                owned = self._spot.owns(self._apps.get(event.app_id))
                freed = (self._spot.parked if owned else self._moves.moved)(self._apps, event, now)
                commands = self._reschedule(now) if freed else []
            case Ticked():
                commands = self._expire(now)
            case Reset():
                commands = self._reset()
            case HostEvicted(name):
                commands = self._evict(name, now)
            case AppCancelled(app_id, reason):
                commands = self._cancel(app_id, reason, now)
            case AppsRecovered(apps):
                commands = recover(self._apps, self._finished, apps, now)
            case _:
                assert_never(event)
        self._forget_old(sum(isinstance(command, Finish) for command in commands))
        return commands

    # -- event handlers ---------------------------------------------------------------------

    def _joined(self, event: HostRegistered, now: float) -> list[Command]:
        self._hosts.add(event.name, event.slots, now)
        stops = rejoined(self._apps, self._hosts, event.name, event.slots, event.running)
        return stops + self._reschedule(now)

    def _submit_all(self, apps: tuple[tuple[int, AppSpec], ...], now: float) -> list[Command]:
        ids = [app_id for app_id, _ in apps]
        if len(set(ids)) != len(ids) or any(app_id in self._apps for app_id in ids):
            raise InternalError(f"app ids {ids} reuse an id")
        total = self._hosts.usable_slots()
        policies: list[Policy] = []
        for app_id, spec in apps:
            if spec.size < 1:
                raise InternalError(f"app {app_id} has size {spec.size}")
            policies.append(self._app_policy(spec))  # an unknown name is the shell's to refuse
            if spec.size > total:
                return [Reject(app_id=app_id, requested=spec.size, available=total)]
        commands: list[Command] = []
        for (app_id, spec), policy in zip(apps, policies, strict=True):
            commands += self._submit(app_id, spec, policy, now)
        return commands

    def _submit(self, app_id: int, spec: AppSpec, policy: Policy, now: float) -> list[Command]:
        self._apps[app_id] = AppRecord(app_id=app_id, spec=spec, submitted=now, policy=policy,
                                       tally=self._tally)
        self._queue.append(app_id)
        return self._start_queued(now) if len(self._queue) == 1 else []

    def _record(self, result: GranuleResult, now: float) -> list[Command]:
        granule = (result.app_id, result.index)
        app = self._apps.get(result.app_id)
        if app is None:
            # Dropped (reset or retention): the granule's slot is free all the same.
            self._hosts.release(result.host, granule)
            return self._reschedule(now)
        if not self.placed_on(app, result.index, result.host):  # not a result we asked for
            what = f"the result of granule {result.index} of app {app.app_id}"
            return [Disregard(result.host, f"{what}, which it does not run")]
        # Where it runs, and where it was moving to: a granule with a result holds no slot.
        for host in self._moves.holders(app, result.index):
            self._hosts.release(host, granule)
        commands = self._moves.granule_ended(app, result.index, result.host, now)
        commands += self._spot.granule_ended(app, result.index, now)
        app.cancelled.discard(result.index)
        if app.state is AppState.RUNNING and result.index not in app.results:
            app.results[result.index] = result  # the first result wins
            if app.complete:  # nothing left to freeze, if a freeze was under way
                self._spot.drop(app, now, f"rank {result.index} ended, the last to")
                commands.append(self._finish(app, now))
            elif self._spot.freezing(app):  # the rank could not go to its park
                why = f"rank {result.index} ended while the app was being frozen"
                commands += self._abandon(app, result.host, now, why)
        return commands + self._reschedule(now)

    def _scale(self, event: ScaleRequested, now: float) -> list[Command]:
        """Answer a scale request at once from the free slots: it never joins the queue. It
        first withdraws the app's open migration offer (which reserves slots for ranks only)."""
        app = self._apps.get(event.app_id)
        host, request_id = event.host, event.request_id
        if event.count < 1:
            return [RefuseScale(host, request_id, f"asked for {event.count} slots", 0)]
        if app is None or app.state is not AppState.RUNNING:
            return [RefuseScale(host, request_id, f"app {event.app_id} is not running", 0)]
        withdrawn = self._moves.scaling(app, now)
        return [*withdrawn, self._grant(app, event)]

    def _grant(self, app: AppRecord, event: ScaleRequested) -> Command:
        host, request_id, count = event.host, event.request_id, event.count
        running: dict[str, int] = dict(app.scaled)
        for index, where in app.placement.items():
            if index not in app.results:
                running[where] = running.get(where, 0) + 1
        capacity = self._hosts.capacity()
        if event.local:
            capacity = [slots for slots in capacity if slots.name == host]
        if event.up_to:  # an elastic fork: whatever is free, up to count
            count = min(count, sum(max(0, c.slots - c.used) for c in capacity))
            if count == 0:
                return GrantScale(host, request_id, ())
        placement = app.policy.place(capacity, count, running)
        if isinstance(placement, NoCapacity):
            if event.up_to:  # the policy places fewer than are free: grant none
                return GrantScale(host, request_id, ())
            reason = f"{count} slots asked, {placement.free} free"
            return RefuseScale(host, request_id, reason, placement.free)
        granted: dict[str, int] = {}
        for where in placement.hosts:
            granted[where] = granted.get(where, 0) + 1
        for where, n in granted.items():
            self._hosts.grant(where, app.app_id, n)
            app.scaled[where] = app.scaled.get(where, 0) + n
        return GrantScale(host, request_id, tuple(granted.items()))

    def _release_scale(self, app_id: int, host: str, count: int, now: float) -> list[Command]:
        app = self._apps.get(app_id)
        if app is None or host not in app.scaled:
            return []  # finished (which released everything), reset, or never granted
        freed = self._hosts.revoke(host, app_id, count)
        app.scaled[host] -= freed
        if app.scaled[host] == 0:
            del app.scaled[host]
        return self._reschedule(now) if freed else []

    def _resized(self, event: TeamSizeChanged, now: float) -> list[Command]:
        app = self._apps.get(event.app_id)
        if app is None or app.state is not AppState.RUNNING:
            return []
        if not self.placed_on(app, event.index, event.host):
            return [self._stray_team(event)]
        app.resized(event.index, event.host, event.threads, now)
        return []

    def _kept_local(self, event: TeamKeptOnHost, now: float) -> list[Command]:
        app = self._apps.get(event.app_id)
        if app is None or app.state is not AppState.RUNNING:
            return []
        if not self.placed_on(app, event.index, event.host):
            return [self._stray_team(event)]
        app.kept_local(event.index, event.host, event.threads, event.detail, now)
        return []

    @staticmethod
    def _stray_team(event: TeamSizeChanged | TeamKeptOnHost) -> Disregard:
        what = f"a team report of granule {event.index} of app {event.app_id}"
        return Disregard(event.host, f"{what}, which it does not run")

    def _expire(self, now: float) -> list[Command]:
        silent = self._hosts.silent_since(now, self._timeout)
        lost = [(name, f"no keep-alive from {name} for {idle:.1f} s") for name, idle in silent]
        commands = self._lose(lost, now) if lost else []
        # Then stale offers (lost hosts already withdrew theirs). Their apps are not offered
        # again in the same event: the slots go to the queue and to other apps first.
        withdrawn, expired = self._moves.expire(self._apps, now)
        if withdrawn:
            commands += withdrawn + self._reschedule(now, expired)
        return commands

    def _lose(self, lost: list[tuple[str, str]], now: float) -> list[Command]:
        # Remove every lost host before starting anything, so nothing lands on a dying host.
        # Migrations let go of the lost hosts first (a lost new host ends its app).
        names = {name for name, _ in lost}
        commands, hit = self._moves.hosts_lost(self._apps, names, now)
        ended, parked = self._spot.hosts_lost(self._apps, dict(lost), now)
        commands += [self._finish(app, now) for app in ended]
        hit.update(parked)
        for name, reason in lost:
            outcome = Failed(f"worker {name} was lost: {reason}")
            granules, scaled = self._hosts.remove(name)
            for app_id in scaled:  # threads of a running app were lost: the app ends too
                del self._apps[app_id].scaled[name]
                hit.setdefault(app_id, name)
            for app_id, index in granules:
                app = self._apps.get(app_id)
                if app is None:
                    continue
                app.cancelled.discard(index)
                if index not in app.results:
                    app.results[index] = GranuleResult(app_id, index, name, outcome)
                    hit.setdefault(app_id, name)
        for app_id, name in sorted(hit.items()):
            commands += self._abandon(self._apps[app_id], name, now)
        return commands + self._fail_oversized(now) + self._reschedule(now)

    def _abandon(
        self, app: AppRecord, lost_host: str, now: float, why: str = "",
        outcome: Outcome | None = None,
    ) -> list[Command]:
        """End an app that lost a granule (or, with `why`, could not be frozen or was
        cancelled): its other granules end as `outcome` (by default, failed as cancelled)
        and are stopped on the hosts they run on, those they were moving to, and the park
        keeping those already frozen."""
        if app.state is not AppState.RUNNING:
            return []
        reason = why or f"worker {lost_host} was lost"
        commands, hosts = self._moves.drop(app, now, reason)
        parked = self._spot.drop(app, now, reason)
        why = why or f"another granule of the app was lost with {lost_host}"
        outcome = outcome or Failed(f"cancelled: {why}")
        for index, host in app.placement.items():
            if index not in app.results:
                app.results[index] = GranuleResult(app.app_id, index, host, outcome)
                if index not in parked:
                    app.cancelled.add(index)  # its slot stays held until the worker reports
                hosts.add(host)
        cancels: list[Command] = [Cancel(host, app.app_id) for host in sorted(hosts)]
        return [*commands, self._finish(app, now), *cancels]

    def _fail_oversized(self, now: float) -> list[Command]:
        total = self._hosts.usable_slots()
        oversized = [self._apps[i] for i in self._queue if self._apps[i].spec.size > total]
        return [self._fail_queued(app, Failed(str(NotEnoughSlots(app.spec.size, total))), now)
                for app in oversized]

    def _fail_queued(self, app: AppRecord, outcome: Outcome, now: float) -> Finish:
        """End a queued app: it leaves the queue and every granule ends as `outcome`."""
        self._queue.remove(app.app_id)
        for index in range(app.spec.size):
            app.results[index] = GranuleResult(app.app_id, index, NO_HOST, outcome)
        return self._finish(app, now)

    def _cancel(self, app_id: int, reason: str, now: float) -> list[Command]:
        """A client cancelled the app: it finishes now, its granules cancelled (those still
        running keep their slots until their workers confirm they stopped)."""
        app = self._apps.get(app_id)
        if app is None or app.state is AppState.FINISHED:
            return []  # unknown, or over already: nothing to stop
        outcome = Cancelled(reason)
        if app.state is AppState.QUEUED:
            return [self._fail_queued(app, outcome, now), *self._reschedule(now)]
        park = self._spot.cancelled(app, outcome)  # ranks kept frozen, not sent on yet
        stop: list[Command] = [Cancel(park, app_id)] if park and park in self._hosts else []
        if app.state is AppState.FROZEN:
            commands = [self._finish(app, now), *stop]
        else:
            commands = [*self._abandon(app, NO_HOST, now, f"cancelled {reason}", outcome), *stop]
        return commands + self._reschedule(now)

    def _reset(self) -> list[Command]:
        # Granules still running are stopped (within a fraction of a second on their workers).
        dropped = sorted(i for i, app in self._apps.items() if app.state is not AppState.FINISHED)
        cancels: list[Command] = []
        for app_id in dropped:
            app = self._apps[app_id]
            hosts = {h for i, h in app.placement.items() if i not in app.results}
            hosts |= self._moves.destinations(app)
            cancels += [Cancel(h, app_id) for h in sorted(hosts)]
        self._apps.clear()
        self._queue.clear()
        self._finished.clear()
        self._moves.clear()
        self._spot.clear()
        self._hosts.release_all()
        return [*(Finish(app_id) for app_id in dropped), *cancels]

    # -- scheduling ---------------------------------------------------------------------------

    def _reschedule(self, now: float, skip: Collection[int] = ()) -> list[Command]:
        """Slots may have freed up: thaw frozen apps, start queued apps, then offer
        evacuations and (queue empty) migrations to the apps not in `skip`."""
        return self._spot.thaw(self._apps, now) + self._start_queued(now) + self._offer(now, skip)

    def _offer(self, now: float, skip: Collection[int] = ()) -> list[Command]:
        # Called after the queue took what fits: an app still queued does not fit in the free
        # slots, so offers may reserve some of them; `_start_queued` withdraws the offers as
        # soon as the queue's head would fit without them.
        commands = self._spot.evacuate(self._apps, now, skip)
        return commands + self._moves.offer(self._apps, now, skip)

    def _evict(self, name: str, now: float) -> list[Command]:
        if not self._hosts.evict(name):
            return []  # unknown, or announced already
        commands = self._spot.evicted(self._apps, name, now)
        return commands + self._fail_oversized(now) + self._reschedule(now)

    def _app_policy(self, spec: AppSpec) -> Policy:
        try:
            return policy_for(spec.policy, spec.user, self._policy)
        except ConfigError as exc:
            raise InternalError(str(exc)) from None

    def _start_queued(self, now: float) -> list[Command]:
        # Strict FIFO: start the head while it fits; stop at the first that does not. Open
        # migration offers give their reserved slots back to a head that does not fit.
        commands: list[Command] = []
        while self._queue:
            app = self._apps[self._queue[0]]
            placement = self._place(app)
            if isinstance(placement, NoCapacity):
                offered = self._moves.yielding_slots(self._apps)
                if not offered or self._hosts.free_slots() + offered < app.spec.size:
                    break  # the offers' slots would not make it fit: they stay
                commands += self._moves.withdraw_offers(self._apps, now, "an app is queued")
                continue
            self._queue.popleft()
            commands += self._start(app, placement, now)
        return commands

    def _place(self, app: AppRecord) -> Placed | NoCapacity:
        free, size = self._hosts.free_slots(), app.spec.size
        if free < size:  # no policy can place it (a cheap test: this runs on every result)
            return NoCapacity(requested=size, free=free)
        return app.policy.place(self._hosts.capacity(), size)

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
            Dispatch(host, Batch(app.app_id, app.spec, tuple(indices), tuple(placement.hosts)))
            for host, indices in by_host.items()
        ]

    def _finish(self, app: AppRecord, now: float) -> Finish:
        self._moves.forget(app.app_id)  # callers dropped its migration, if any
        for host, count in app.scaled.items():  # a finished app releases everything
            self._hosts.revoke(host, app.app_id, count)
        app.scaled.clear()
        app.state = AppState.FINISHED
        app.finished = now
        self._finished.append(app.app_id)
        return Finish(app.app_id)

    def _forget_old(self, just_finished: int) -> None:
        keep = max(self._retain, just_finished)
        while len(self._finished) > keep:
            del self._apps[self._finished.popleft()]

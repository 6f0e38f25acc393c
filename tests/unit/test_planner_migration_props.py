"""Property test: random sequences of planner events, migrations, evictions, freezes and thaws
included, keep every invariant (`validate()` after each event), send migration and freeze
messages only to live hosts, and leak no slot: once every granule has reported, every host is
empty again.

Each drawn action is read against the core's current state (which apps run, which offer is
open, which ranks are moving or going to their park), so claims, moves and parks mostly name
real things, with wrong epochs and hosts mixed in.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import event, given, settings
from hypothesis import strategies as st

from faabric.messages.types import AppSpec, AppState, Exited, GranuleResult
from faabric.planner.core import (
    AppEventKind,
    AppSubmitted,
    CancelMigration,
    Command,
    Event,
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
    Reset,
    ScaleReleased,
    ScaleRequested,
    StartMigration,
    Thaw,
    Ticked,
    WithdrawMigration,
)

NAMES = ("h0", "h1", "h2", "h3", "h4", "h5")
MIGRATION_COMMANDS = (
    OfferMigration, WithdrawMigration, StartMigration, CancelMigration, FreezeApp, Thaw
)


class Driver:
    """Feeds events to a core and remembers what a worker would: offers, starts, grants."""

    def __init__(self) -> None:
        self.now = 0.0
        self.core = PlannerCore(
            clock=lambda: self.now, keepalive_timeout=40.0, migration_offer_timeout=10.0
        )
        self.next_app = 1
        self.offered: dict[int, int] = {}  # app -> last epoch offered
        self.started: dict[int, tuple[int, tuple[str, ...]]] = {}  # app -> (epoch, placement)
        self.granted: dict[tuple[int, str], int] = {}  # (app, host) -> scale slots
        self.points: set[int] = set()  # apps told to have reached a migration point
        self.freezing: dict[int, tuple[int, str]] = {}  # app -> (epoch, park) of its freeze
        self.parked: dict[int, set[int]] = {}  # app -> ranks reported parked
        self.thawed = 0

    def feed(self, event: Event) -> None:
        commands = self.core.handle(event)
        self.core.validate()
        self._learn(commands)
        self._check_slots()

    def _learn(self, commands: list[Command]) -> None:
        live = self.core.host_names()
        for command in commands:
            if isinstance(command, MIGRATION_COMMANDS):
                assert command.host in live, command
            if isinstance(command, OfferMigration):
                view = self.core.app(command.app_id)
                assert view is not None and view.placement[0][1] == command.host
                self.offered[command.app_id] = command.epoch
            elif isinstance(command, StartMigration):
                self.started[command.app_id] = (command.epoch, command.placement)
            elif isinstance(command, FreezeApp):
                self.freezing[command.app_id] = (command.epoch, command.park)
            elif isinstance(command, Thaw):
                assert self.freezing.pop(command.app_id)[1] == command.host, command
                self.parked.pop(command.app_id, None)
                evicting = {h.name for h in self.core.hosts() if h.evicting}
                assert evicting.isdisjoint(command.placement), command
                self.thawed += 1
            elif isinstance(command, GrantScale):
                for host, count in command.placement:
                    key = (command.request_id, host)
                    self.granted[key] = self.granted.get(key, 0) + count

    def _check_slots(self) -> None:
        hosts = self.core.hosts()
        assert all(0 <= h.used <= h.slots for h in hosts), hosts
        stats = self.core.statistics()
        assert stats.used_slots == sum(h.used for h in hosts)
        assert stats.reserved_slots >= 0 and stats.scaled_slots >= 0

    # -- reading an action against the current state ---------------------------------------

    def running(self) -> list[int]:
        return [a.app_id for a in self.core.in_flight() if a.state is AppState.RUNNING]

    def act(self, op: int, x: int, y: int) -> None:
        ACTIONS[op % len(ACTIONS)](self, x, y)

    def drain(self) -> None:
        """Every granule reports where the planner thinks it is, until nothing runs."""
        for _ in range(50):
            for app_id in range(1, self.next_app):
                view = self.core.app(app_id)
                if view is None:
                    continue
                reported = {r.index for r in view.results}
                for index, host in view.placement:
                    if view.state is AppState.FINISHED or index not in reported:
                        self.feed(done(app_id, index, host))
            if not self.core.in_flight():
                return
            self.feed(Ticked())  # keep-alives lapse: hosts go, the queue fails or starts
            self.now += 50.0


def done(app_id: int, index: int, host: str) -> GranuleFinished:
    return GranuleFinished(GranuleResult(app_id, index, host, Exited(0)))


def _pick(items: list[int] | list[str], x: int) -> int | str | None:
    return items[x % len(items)] if items else None


def register(d: Driver, x: int, y: int) -> None:
    name = NAMES[x % len(NAMES)]
    if not d.core.has_host(name):
        d.feed(HostRegistered(name, 1 + y % 4))


def leave(d: Driver, x: int, y: int) -> None:
    name = _pick(sorted(d.core.host_names()), x)
    if isinstance(name, str):
        d.feed(HostLeft(name, "gone"))


def alive(d: Driver, x: int, y: int) -> None:
    for name in sorted(d.core.host_names()):
        d.feed(HostAlive(name))


def submit(d: Driver, x: int, y: int) -> None:
    spec = AppSpec(module="ab" * 32, size=1 + x % 6, migrate_every=0 if y % 5 == 0 else 1)
    d.feed(AppSubmitted(d.next_app, spec))
    d.next_app += 1
    if y % 2:  # it reaches a migration point at once (if it runs)
        points(d, d.next_app - 2, 1)


def result(d: Driver, x: int, y: int) -> None:
    # Mostly granules of apps that do not move: they free the slots the others move to.
    others = [i for i in d.running() if i not in d.points]
    app_id = _pick(others if others and y % 4 else d.running(), x)
    view = d.core.app(app_id) if isinstance(app_id, int) else None
    if view is None:
        return
    index, host = view.placement[y % len(view.placement)]
    started = d.started.get(view.app_id)
    if started is not None and y % 3 == 0:
        host = started[1][index]  # it may already run on its new host
    d.feed(done(view.app_id, index, host))


def finish(d: Driver, x: int, y: int) -> None:
    """Every rank of an app that does not move reports: many slots free at once."""
    others = [i for i in d.running() if i not in d.points]
    view = d.core.app(others[x % len(others)]) if others else None
    if view is not None:
        for index, host in view.placement:
            d.feed(done(view.app_id, index, host))


def points(d: Driver, x: int, y: int) -> None:
    app_id = _pick(d.running(), x) if y % 10 else 1 + x % d.next_app  # mostly running apps
    if isinstance(app_id, int):
        d.points.add(app_id)
        d.feed(MigrationPointsReached(app_id))


def claim(d: Driver, x: int, y: int) -> None:
    open_ = [i for i in sorted(d.offered) if (v := d.core.app(i)) and v.events
             and v.events[-1].kind is AppEventKind.OFFERED]
    app_id = _pick(open_ if open_ and y % 4 else sorted(d.offered), x)  # mostly open offers
    view = d.core.app(app_id) if isinstance(app_id, int) else None
    if view is None or not view.placement:
        return
    epoch = d.offered[view.app_id] + (0 if y % 4 else 1 - y % 3)
    host = view.placement[0][1] if y % 5 else str(_pick(sorted(d.core.host_names()), y))
    d.feed(MigrationClaimed(view.app_id, epoch, host))


def move(d: Driver, x: int, y: int) -> None:
    app_id = _pick(sorted(d.started), x)
    view = d.core.app(app_id) if isinstance(app_id, int) else None
    if view is None:
        return
    epoch, placement = d.started[view.app_id]
    reported = {r.index for r in view.results}
    moving = [i for i, h in view.placement if h != placement[i] and i not in reported]
    rank = _pick(moving, y)
    if isinstance(rank, int):
        wrong = 1 if y % 7 == 0 else 0
        d.feed(RankMovedAway(view.app_id, rank, epoch + wrong, view.placement[rank][1],
                             placement[rank]))


def evict(d: Driver, x: int, y: int) -> None:
    name = _pick(sorted(d.core.host_names()), x) if y % 6 else NAMES[x % len(NAMES)]
    if isinstance(name, str):
        d.feed(HostEvicted(name))


def park(d: Driver, x: int, y: int) -> None:
    """A rank of a freezing app reaches its park (or, now and then, a wrong one); one time
    in three every rank left does."""
    app_id = _pick(sorted(d.freezing), x)
    view = d.core.app(app_id) if isinstance(app_id, int) else None
    if view is None:
        return
    epoch, to = d.freezing[view.app_id]
    parked = d.parked.setdefault(view.app_id, set())
    left = [i for i, _ in view.placement if i not in parked]
    picked = left if y % 3 == 0 else [int(_pick(left, y) if left and y % 5 else y)]
    for index in picked:
        index %= len(view.placement)
        wrong = 1 if y % 7 == 0 else 0
        if not wrong:
            parked.add(index)
        host = dict(view.placement)[index]
        d.feed(RankMovedAway(view.app_id, index, epoch + wrong, host, to))


def tick(d: Driver, x: int, y: int) -> None:
    d.now += x % 25
    d.feed(Ticked())


def scale(d: Driver, x: int, y: int) -> None:
    app_id = _pick(d.running(), x)
    view = d.core.app(app_id) if isinstance(app_id, int) else None
    if view is not None:
        d.feed(ScaleRequested(view.app_id, view.app_id, 1 + y % 3, view.placement[0][1]))


def release(d: Driver, x: int, y: int) -> None:
    keys = sorted(d.granted)
    if keys:
        app_id, host = keys[x % len(keys)]
        d.feed(ScaleReleased(app_id, host, 1 + y % 3))


def reset(d: Driver, x: int, y: int) -> None:
    if x % 8 == 0:
        d.feed(Reset())
        d.offered.clear()
        d.started.clear()
        d.granted.clear()
        d.points.clear()
        d.freezing.clear()
        d.parked.clear()


# Weighted by repetition.
ACTIONS: list[Callable[[Driver, int, int], None]] = [
    register, register, leave, alive, submit, result, finish, finish, points, points,
    claim, claim, claim, move, move, move, move, tick, scale, release, reset,
    evict, park, park, park,
]

actions = st.lists(
    st.tuples(st.integers(0, len(ACTIONS) - 1), st.integers(0, 999), st.integers(0, 999)),
    min_size=30,
    max_size=150,
)


@settings(max_examples=500, deadline=None)
@given(actions)
def test_random_events_keep_invariants_and_leak_no_slot(
    steps: list[tuple[int, int, int]],
) -> None:
    driver = Driver()
    for name in NAMES[:2]:
        driver.feed(HostRegistered(name, 2))
    submit(driver, 3, 1)  # app 1: four ranks over h1, h0, at a migration point: a host
    for op, x, y in steps:  # joining (h2 or h3) is offered it

        driver.act(op, x, y)
    driver.drain()
    assert all(h.used == 0 for h in driver.core.hosts()), driver.core.hosts()
    assert driver.core.statistics().reserved_slots == 0
    kinds = {str(e.kind) for i in range(1, driver.next_app) if (v := driver.core.app(i))
             for e in v.events}
    for kind in sorted(kinds):
        event(kind)


def test_a_long_migrating_run_moves_apps() -> None:
    """The generator reaches the interesting states: a fixed walk through them."""
    driver = Driver()
    for name, slots in (("h0", 2), ("h1", 2)):
        driver.feed(HostRegistered(name, slots))
    submit(driver, 3, 1)  # app 1: four ranks over h1, h0
    driver.feed(MigrationPointsReached(1))
    driver.feed(HostRegistered("h2", 4))
    assert driver.offered == {1: 1}
    claim(driver, 0, 1)
    assert driver.started[1] == (1, ("h2",) * 4)
    for y in (1, 2, 3, 4):  # a y divisible by 7 would report a wrong epoch
        move(driver, 0, y)
    view = driver.core.app(1)
    assert view is not None and view.migrations == 1
    driver.drain()
    assert all(h.used == 0 for h in driver.core.hosts())


def test_a_long_freezing_run_freezes_and_thaws() -> None:
    """The generator reaches freezes and thaws: a fixed walk through them."""
    driver = Driver()
    for name, slots in (("h0", 2), ("h1", 2)):
        driver.feed(HostRegistered(name, slots))
    submit(driver, 1, 1)  # app 1: two ranks on h1, at a migration point
    submit(driver, 1, 0)  # app 2: two ranks on h0
    evict(driver, 1, 1)  # h1: no room on h0, so app 1 is offered a freeze
    claim(driver, 0, 1)
    assert driver.freezing == {1: (1, "h0")}
    for y in (0, 1):
        park(driver, 0, y + 1)
    view = driver.core.app(1)
    assert view is not None and view.state is AppState.FROZEN
    finish(driver, 0, 0)  # app 2 ends: app 1 thaws on h0
    assert driver.thawed == 1 and driver.freezing == {}
    driver.drain()
    assert all(h.used == 0 for h in driver.core.hosts())

"""The planner core's invariants, checked by `PlannerCore.validate()` (tests call it after
every event). Read-only: it must never repair or change the state it checks.

* A host's used slots are exactly the placed granules on it that have no result yet (or were
  cancelled and not yet confirmed) and are not parked, plus the granules reserving a slot
  there to move to it, plus the scale-change slots running apps hold there;
  0 <= used <= slots. A frozen app holds no slot, a freezing one none for its parked ranks.
* A granule holds at most two slots, and two only while it is moving: its app is running
  with a migration open (`Offered` or `Committed`) that moves it to a host other than its
  own, and it has no result.
* An open migration belongs to a running app that may move (reached a migration point,
  `migrate_every` > 0), has a placement of the app's size and a known epoch. An offer is the
  latest epoch, of an app with every rank running and no scale-change slots, and moves
  exactly the ranks whose host differs. Offers may be open while apps are queued: the
  queue's head did not fit in the free slots when they were made, and they are withdrawn
  as soon as it would fit without them (not checked here: it needs the placement).
* Only running apps hold scale-change slots, each a positive count on a live host, and the
  app's record and the host table agree on them.
* A freeze offered or under way belongs to a running app that may move, with no migration
  open, no result and a known epoch; its parked ranks are placed on its park, a live host.
  A FROZEN app has every rank placed on its park (a live host), no result, and may not move.
* A host being evicted gains no slot holder: its granules and scale-change slots are among
  those it had when the eviction was announced.
* A host's count of slots per user (for the compact policy) matches its holders' apps.
* The queue holds exactly the QUEUED apps, once each; the finished list exactly the FINISHED;
  the frozen list exactly the FROZEN, oldest freeze first.
"""

from __future__ import annotations

from collections import Counter, deque

from faabric.errors import InternalError
from faabric.messages.types import AppState
from faabric.planner._apps import AppRecord, Freezing, Frozen, Offered, Thawing
from faabric.planner._hosts import Granule, HostTable


def check(
    apps: dict[int, AppRecord],
    queue: deque[int],
    finished: deque[int],
    hosts: HostTable,
    movable: frozenset[int] = frozenset(),
    frozen: tuple[int, ...] = (),
) -> None:
    """Raise InternalError naming the first invariant that does not hold."""
    names = hosts.names()
    granules: dict[str, set[Granule]] = {name: set() for name in names}
    scaled: dict[str, dict[int, int]] = {name: {} for name in names}
    for app in apps.values():
        _check_app(app)
        _check_move(app, movable)
        _check_freeze(app, movable, names)
        for index, host in _holdings(app):
            if host not in granules:
                raise InternalError(f"app {app.app_id} granule {index} is on lost host {host}")
            granules[host].add((app.app_id, index))
        for host, count in app.scaled.items():
            if host not in scaled:
                raise InternalError(f"app {app.app_id} holds scale slots on lost host {host}")
            scaled[host][app.app_id] = count
    for info in hosts.infos():
        # Granules of apps dropped from the record may still hold slots until they report.
        held = {g for g in hosts.held(info.name) if g[0] in apps}
        if held != granules[info.name] or hosts.scaled(info.name) != scaled[info.name]:
            raise InternalError(f"host {info.name} slot accounting is wrong")
        if not 0 <= info.used <= info.slots:
            raise InternalError(f"host {info.name} uses {info.used} of {info.slots} slots")
        _check_eviction(hosts, info.name)
        _check_users(apps, hosts, info.name)
    _check_movable(apps, movable)
    queued = [i for i, app in apps.items() if app.state is AppState.QUEUED]
    if len(set(queue)) != len(queue) or set(queue) != set(queued):
        raise InternalError(f"queue {list(queue)} does not match queued apps {queued}")
    done = [i for i, app in apps.items() if app.state is AppState.FINISHED]
    if len(set(finished)) != len(finished) or set(finished) != set(done):
        raise InternalError(f"finished list {list(finished)} does not match {done}")
    _check_frozen_list(apps, frozen)


def _check_app(app: AppRecord) -> None:
    size = app.spec.size
    placed = set(app.placement)
    ok = {
        AppState.QUEUED: not placed and not app.results and app.started is None,
        AppState.RUNNING: placed == set(range(size)) and not app.complete,
        AppState.FROZEN: placed == set(range(size)) and not app.results,
        AppState.FINISHED: app.complete and app.finished is not None,
    }[app.state]
    if not ok or not set(app.results) <= set(range(size)):
        raise InternalError(f"app {app.app_id} is inconsistent in state {app.state}")
    # Apps failed while queued have results but no placement; others only for placed granules.
    if placed and not set(app.results) <= placed:
        raise InternalError(f"app {app.app_id} has results for unplaced granules")
    if app.scaled and app.state is not AppState.RUNNING:
        raise InternalError(f"app {app.app_id} holds scale slots in state {app.state}")
    if any(count < 1 for count in app.scaled.values()):
        raise InternalError(f"app {app.app_id} holds a non-positive scale slot count")


def _holdings(app: AppRecord) -> list[tuple[int, str]]:
    """(granule index, host) for every slot the app's granules should hold."""
    freeze = app.freeze
    parked = set(app.placement) if isinstance(freeze, Frozen) else (
        set(app.placement) - freeze.moving if isinstance(freeze, Freezing) else set())
    held = [
        (index, host)
        for index, host in app.placement.items()
        if index not in parked and (index not in app.results or index in app.cancelled)
    ]
    if app.move is not None:
        held += [(index, app.move.placement[index]) for index in app.move.moving]
    per_granule = Counter(index for index, _ in held)
    if len(set(held)) != len(held) or any(n > 2 for n in per_granule.values()):
        raise InternalError(f"app {app.app_id} has a granule holding a slot twice")
    return held


def _check_move(app: AppRecord, movable: frozenset[int]) -> None:
    move = app.move
    if move is None:
        return
    size = app.spec.size
    ok = (
        app.state is AppState.RUNNING
        and app.app_id in movable
        and 1 <= move.epoch <= app.last_epoch
        and len(move.placement) == size
        and bool(move.moving)
        and move.moving <= set(range(size))
        and all(i not in app.results and move.placement[i] != app.placement[i]
                for i in move.moving)
    )
    if not ok:
        raise InternalError(f"app {app.app_id} has an inconsistent migration {move}")
    if isinstance(move, Offered):
        differ = {i for i in range(size) if move.placement[i] != app.placement[i]}
        fresh = move.epoch == app.last_epoch and not app.results and not app.scaled
        if not fresh or move.moving != differ:
            raise InternalError(f"app {app.app_id} has an inconsistent offer {move}")
    elif not move.moving <= set(move.ranks):
        raise InternalError(f"app {app.app_id} moves ranks it did not claim: {move}")


def _check_movable(apps: dict[int, AppRecord], movable: frozenset[int]) -> None:
    for app_id in movable:
        app = apps.get(app_id)
        if app is None or app.state is not AppState.RUNNING or app.spec.migrate_every < 1:
            raise InternalError(f"app {app_id} may move but is not a running movable app")


def _check_freeze(app: AppRecord, movable: frozenset[int], live: set[str]) -> None:
    freeze = app.freeze
    if freeze is None:
        if app.state is AppState.FROZEN:
            raise InternalError(f"app {app.app_id} is frozen without a park")
        return
    if isinstance(freeze, Thawing):
        ok = (
            app.state is AppState.RUNNING
            and app.move is None
            and freeze.park in live
            and bool(freeze.pending)
            and all(index not in app.results for index in freeze.pending)
            and 1 <= freeze.epoch <= app.last_epoch
        )
    elif isinstance(freeze, Frozen):
        ok = (
            app.state is AppState.FROZEN
            and app.app_id not in movable
            and freeze.park in live
            and set(app.placement.values()) == {freeze.park}
        )
    else:
        ok = (
            app.state is AppState.RUNNING
            and app.app_id in movable
            and app.move is None
            and not app.results
            and 1 <= freeze.epoch <= app.last_epoch
        )
        if isinstance(freeze, Freezing):
            parked = set(range(app.spec.size)) - freeze.moving
            ok = ok and freeze.park in live and bool(freeze.moving) and all(
                app.placement[index] == freeze.park for index in parked)
        else:
            ok = ok and freeze.epoch == app.last_epoch
    if not ok:
        raise InternalError(f"app {app.app_id} has an inconsistent freeze {freeze}")


def _check_eviction(hosts: HostTable, name: str) -> None:
    eviction = hosts.eviction(name)
    if eviction is None:
        return
    before = dict(eviction.scaled)
    scaled = hosts.scaled(name)
    if not hosts.held(name) <= eviction.held or any(
        count > before.get(app_id, 0) for app_id, count in scaled.items()
    ):
        raise InternalError(f"host {name} took new slot holders while being evicted")


def _check_frozen_list(apps: dict[int, AppRecord], frozen: tuple[int, ...]) -> None:
    expected = [i for i, app in apps.items() if app.state is AppState.FROZEN]
    if len(set(frozen)) != len(frozen) or set(frozen) != set(expected):
        raise InternalError(f"frozen list {list(frozen)} does not match {expected}")
    times = [freeze.at for i in frozen if isinstance(freeze := apps[i].freeze, Frozen)]
    if times != sorted(times):
        raise InternalError(f"frozen list {list(frozen)} is not oldest freeze first")


def _check_users(apps: dict[int, AppRecord], hosts: HostTable, name: str) -> None:
    held = hosts.held(name)
    if any(app_id not in apps for app_id, _ in held):
        return  # granules of dropped apps still report: their users are not known here
    expected = Counter(apps[app_id].spec.user for app_id, _ in held)
    for app_id, count in hosts.scaled(name).items():
        expected[apps[app_id].spec.user] += count
    if hosts.users(name) != dict(expected):
        raise InternalError(f"host {name} counts {hosts.users(name)} slots per user")

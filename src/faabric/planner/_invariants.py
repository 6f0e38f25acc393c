"""The planner core's invariants, checked by `PlannerCore.validate()` (tests call it after
every event). Read-only: it must never repair or change the state it checks.

* A host's used slots are exactly the placed granules on it that have no result yet (or were
  cancelled and not yet confirmed), plus the scale-change slots running apps hold there;
  0 <= used <= slots.
* Only running apps hold scale-change slots, each a positive count on a live host, and the
  app's record and the host table agree on them.
* The queue holds exactly the QUEUED apps, once each; the finished list exactly the FINISHED.
"""

from __future__ import annotations

from collections import deque

from faabric.errors import InternalError
from faabric.messages.types import AppState
from faabric.planner._apps import AppRecord
from faabric.planner._hosts import Granule, HostTable


def check(
    apps: dict[int, AppRecord], queue: deque[int], finished: deque[int], hosts: HostTable
) -> None:
    """Raise InternalError naming the first invariant that does not hold."""
    names = hosts.names()
    granules: dict[str, set[Granule]] = {name: set() for name in names}
    scaled: dict[str, dict[int, int]] = {name: {} for name in names}
    for app in apps.values():
        _check_app(app)
        for index, host in app.placement.items():
            if index in app.results and index not in app.cancelled:
                continue
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
    if app.scaled and app.state is not AppState.RUNNING:
        raise InternalError(f"app {app.app_id} holds scale slots in state {app.state}")
    if any(count < 1 for count in app.scaled.values()):
        raise InternalError(f"app {app.app_id} holds a non-positive scale slot count")

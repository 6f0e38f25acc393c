"""Restarts in the planner core: apps recovered from the journal, and the granules a worker
says it still runs when it registers (after the planner restarted, or after the planner had
declared it lost).

Neither kind is the planner's to run any more: recovered apps are recorded as finished (those
that were in flight fail with `RESTARTED`), and every granule a registering worker still runs
keeps its slot until the worker reports it, while the worker is told to stop its app. Part of
the pure planner core: no I/O, no clock, no locking. It must not place or start anything.
"""

from __future__ import annotations

from collections import deque

from faabric.errors import InternalError
from faabric.messages.types import AppState, Failed, GranuleResult
from faabric.planner._apps import AppRecord
from faabric.planner._events import NO_HOST, Cancel, Command, RecoveredApp
from faabric.planner._hosts import HostTable

RESTARTED = "the planner restarted while the app ran"


def recover(
    apps: dict[int, AppRecord], finished: deque[int], recovered: tuple[RecoveredApp, ...],
    now: float,
) -> list[Command]:
    """Record the journal's apps as finished, in order: an app in flight fails, every
    granule without a result with `RESTARTED`. Nothing is to be done: returns no command."""
    for entry in recovered:
        if entry.app_id in apps:
            raise InternalError(f"app {entry.app_id} is recovered twice")
        record = AppRecord(app_id=entry.app_id, spec=entry.spec, submitted=entry.submitted)
        record.results = {r.index: r for r in entry.results if 0 <= r.index < entry.spec.size}
        for index in range(entry.spec.size):
            if index not in record.results:
                outcome = Failed(RESTARTED)
                record.results[index] = GranuleResult(entry.app_id, index, NO_HOST, outcome)
        record.state = AppState.FINISHED
        record.finished = now if entry.finished is None else entry.finished
        apps[entry.app_id] = record
        finished.append(entry.app_id)
    return []


def rejoined(
    apps: dict[int, AppRecord], hosts: HostTable, name: str, slots: int,
    running: tuple[tuple[int, int], ...],
) -> list[Command]:
    """Worker `name` (just added to `hosts` with `slots` slots) still runs `running`: each
    granule holds a slot there until reported (up to `slots`), and each app is stopped
    there. Returns the `Cancel`s."""
    stop: set[int] = set()
    claimed = 0
    for app_id, index in sorted(set(running)):
        stop.add(app_id)
        if claimed >= slots:
            continue  # more than it has slots for: stopped, not counted
        app = apps.get(app_id)
        if app is not None and not _stale(app, index, name):
            continue  # the app placed it elsewhere (or not yet): its record is left alone
        if app is not None:
            for other in range(app.spec.size):  # never placed (it was recovered): no host
                app.placement.setdefault(other, NO_HOST)
            app.placement[index] = name
            app.cancelled.add(index)
        hosts.claim(name, (app_id, index))  # unknown apps: freed when the worker reports
        claimed += 1
    return [Cancel(name, app_id) for app_id in sorted(stop)]


def _stale(app: AppRecord, index: int, name: str) -> bool:
    """Whether granule `index` of `app` has its answer already and is (or may be recorded
    as) on `name`, so that its slot there can be held under the app's record."""
    if index not in app.results or app.state is not AppState.FINISHED:
        return False
    if not 0 <= index < app.spec.size or index in app.cancelled:
        return False
    return app.placement.get(index, NO_HOST) in (NO_HOST, name)

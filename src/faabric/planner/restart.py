"""A planner starting on its journal: what it tells its core about the apps recorded there,
and the first app id it may hand out.

Called once, by `PlannerService` while it is being built (before any other event). It must
not keep state or touch connections: the journal records what happened, the core decides
what it means (`AppsRecovered`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from faabric.planner.core import AppsRecovered, PlannerCore, RecoveredApp
from faabric.planner.journal import Journal

log = logging.getLogger(__name__)


def recover(core: PlannerCore, journal: Journal | None, wall_offset: float,
            wall: Callable[[], float]) -> int:
    """Feed the journal's apps to `core` (times on the journal are Unix times, `wall_offset`
    ahead of the core's clock); the apps that were in flight end failed, and are recorded so.
    Returns the first app id to hand out: past every id ever used."""
    if journal is None:
        # No record of the ids used before: start past any an earlier planner could have
        # handed out (fewer than one per microsecond since it started).
        return int(time.time() * 1e6)
    apps = journal.load()
    core.handle(AppsRecovered(tuple(
        RecoveredApp(a.app_id, a.spec, a.submitted - wall_offset,
                     None if a.finished is None else a.finished - wall_offset, a.results)
        for a in apps)))
    for app in apps:
        view = core.app(app.app_id)
        if app.finished is None and view is not None:
            journal.finished(app.app_id, view.results, wall())
            log.warning("app %d was in flight when the planner stopped: it failed",
                        app.app_id)
    return journal.last_id() + 1

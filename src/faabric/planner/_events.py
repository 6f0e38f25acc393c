"""What the planner core is told (events, past tense) and what it answers (commands, imperative).

Plain frozen values; `PlannerCore.handle` takes one `Event` and returns a list of `Command`s.
This module holds data only: no logic beyond building an error, no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from faabric.errors import NotEnoughSlots
from faabric.messages.types import AppSpec, Batch, GranuleResult

# -- events: what happened ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostRegistered:
    """A worker joined with `slots` slots. Its name must not be registered already.

    `running` lists the granules (app id, index) the worker says it still runs or has not
    reported yet (it rejoins after the planner restarted or had declared it lost): none of
    them is the planner's any more, so each keeps its slot until the worker reports it, and
    the worker is told to stop their apps."""

    name: str
    slots: int
    running: tuple[tuple[int, int], ...] = ()


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
class AppsSubmitted:
    """A client submitted several apps at once, as (unused id, spec) pairs in order.

    All or nothing: if any app is larger than the whole cluster, the answer is one `Reject`
    for the first such app and none of them is recorded.
    """

    apps: tuple[tuple[int, AppSpec], ...]


@dataclass(frozen=True, slots=True)
class GranuleFinished:
    """A worker reported a granule's result."""

    result: GranuleResult


@dataclass(frozen=True, slots=True)
class ScaleRequested:
    """Worker `host` asks for `count` more slots for running app `app_id` (e.g. the threads
    of an OpenMP team). `request_id` is the worker's own, echoed in the answer. With `local`
    only `host`'s own free slots may be granted; with `up_to` the answer is a grant of
    min(count, free slots), possibly none, never a refusal (an elastic OpenMP fork)."""

    app_id: int
    request_id: int
    count: int
    host: str
    local: bool = False
    up_to: bool = False


@dataclass(frozen=True, slots=True)
class ScaleReleased:
    """Worker `host` gives back `count` of the scale-change slots app `app_id` holds there
    (a team shrank or ended). Releasing more than is held frees what is held."""

    app_id: int
    host: str
    count: int


@dataclass(frozen=True, slots=True)
class TeamSizeChanged:
    """Granule `index` of app `app_id`, on worker `host`, ran an elastic parallel region with
    `threads` threads, not as many as its previous one. Unknown or finished apps are
    ignored."""

    app_id: int
    index: int
    host: str
    threads: int


@dataclass(frozen=True, slots=True)
class TeamKeptOnHost:
    """Granule `index` of app `app_id`, on worker `host`, runs its `threads`-thread OpenMP
    team on `host` alone from now on, because spanning workers did not pay (`detail`: what
    was measured). Unknown or finished apps are ignored."""

    app_id: int
    index: int
    host: str
    threads: int
    detail: str


@dataclass(frozen=True, slots=True)
class MigrationPointsReached:
    """Rank 0 of app `app_id` reached its first migration point: the app can be moved."""

    app_id: int


@dataclass(frozen=True, slots=True)
class MigrationClaimed:
    """Every rank of app `app_id` waits at a migration point and the worker `host` of its
    rank 0 claims offer `epoch`. Answered with `StartMigration` (the reserved placement is
    committed) or `CancelMigration` (stale epoch, no offer, the app or a host is gone)."""

    app_id: int
    epoch: int
    host: str


@dataclass(frozen=True, slots=True)
class RankMovedAway:
    """Worker `host` handed rank `index` of app `app_id` to worker `to` under migration
    `epoch`: the rank's slot on `host` is free and it now runs on `to`."""

    app_id: int
    index: int
    epoch: int
    host: str
    to: str


@dataclass(frozen=True, slots=True)
class Ticked:
    """Time passed: expire hosts whose keep-alive is overdue, and migration offers left
    unclaimed for too long."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Drop every app and the queue; hosts stay, with all slots free."""


@dataclass(frozen=True, slots=True)
class AppCancelled:
    """A client cancelled app `app_id`: it ends at once, its granules failing as
    `Cancelled(reason)`, and the workers running them are told to stop them. Unknown and
    finished apps are ignored (cancelling twice changes nothing)."""

    app_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class HostEvicted:
    """Worker `name` was announced for eviction (a spot VM about to be taken away): it gets
    no new granules, and the apps with ranks there are offered a move, or a freeze. Unknown
    names and repeated announcements are ignored."""

    name: str


@dataclass(frozen=True, slots=True)
class RecoveredApp:
    """An app the planner's journal knew of when the planner started. Times are on the
    core's clock; `finished` is None for an app that was in flight (it ends at once,
    failed); `results` are those recorded (granules without one end failed)."""

    app_id: int
    spec: AppSpec
    submitted: float
    finished: float | None
    results: tuple[GranuleResult, ...] = ()


@dataclass(frozen=True, slots=True)
class AppsRecovered:
    """The planner (re)started with these apps in its journal, oldest first: they are
    recorded as finished; those that were in flight fail (`RecoveredApp`). Sent before any
    other event. Their ids must be unused."""

    apps: tuple[RecoveredApp, ...]


Event = (
    HostRegistered
    | HostAlive
    | HostLeft
    | AppSubmitted
    | AppsSubmitted
    | GranuleFinished
    | ScaleRequested
    | ScaleReleased
    | TeamSizeChanged
    | TeamKeptOnHost
    | MigrationPointsReached
    | MigrationClaimed
    | RankMovedAway
    | Ticked
    | Reset
    | HostEvicted
    | AppCancelled
    | AppsRecovered
)

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


@dataclass(frozen=True, slots=True)
class GrantScale:
    """Tell worker `host` its scale request was granted: `placement` is (host, slots) pairs,
    hosts already running the app first (empty for an up-to request when nothing is free).
    The slots stay held by the app until released or until the app finishes."""

    host: str
    request_id: int
    placement: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class RefuseScale:
    """Tell worker `host` its scale request was refused, at once (it never waits in the
    queue). `free` is how many slots the app could have had right now (0 if none)."""

    host: str
    request_id: int
    reason: str
    free: int


@dataclass(frozen=True, slots=True)
class OfferMigration:
    """Tell worker `host` (rank 0's) that placement `epoch` is reserved for app `app_id`."""

    host: str
    app_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class WithdrawMigration:
    """Tell worker `host` (rank 0's) that offer `epoch` of app `app_id` is gone."""

    host: str
    app_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class StartMigration:
    """Tell worker `host` to move app `app_id`'s ranks to `placement` (rank i on
    placement[i]) under `epoch`. Sent to every host of the old and the new placement;
    `involved` lists them all, sorted (the shell sends their data-plane addresses)."""

    host: str
    app_id: int
    epoch: int
    placement: tuple[str, ...]
    involved: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelMigration:
    """Tell worker `host` that the claim of `epoch` by app `app_id` is refused. Sent to
    every host the app runs on."""

    host: str
    app_id: int
    epoch: int
    reason: str


@dataclass(frozen=True, slots=True)
class FreezeApp:
    """Tell worker `host` (one of every host app `app_id` runs on), answering the claim of
    freeze `epoch`: every rank of the app suspends and goes to worker `park`, which keeps it
    without running it. Each old worker reports every rank as moved to `park` (a rank
    already on `park` too): its slot is freed."""

    host: str
    app_id: int
    epoch: int
    park: str


@dataclass(frozen=True, slots=True)
class Thaw:
    """Tell worker `host` (the park of frozen app `app_id`) to send the app's ranks to
    `placement` (rank i to placement[i]) under `epoch`, where they resume; their slots there
    are already the app's."""

    host: str
    app_id: int
    epoch: int
    placement: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Disregard:
    """Warn that a message of worker `host` was dropped: it spoke of a granule the planner
    did not place there (`what` says which, in words). Nothing changed."""

    host: str
    what: str


Command = (
    Dispatch
    | Reject
    | Finish
    | Cancel
    | GrantScale
    | RefuseScale
    | OfferMigration
    | WithdrawMigration
    | StartMigration
    | CancelMigration
    | FreezeApp
    | Thaw
    | Disregard
)

# A granule that never ran on any host (its app failed while queued) is reported with this host.
NO_HOST = ""

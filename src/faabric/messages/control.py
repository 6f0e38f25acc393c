"""Control-plane messages between a worker and the planner, and the codec that carries them.

A worker opens one connection to the planner's control port and keeps it for its life:
it registers, sends keep-alives, granule results and scale requests up; the planner sends
batches and the answers to scale requests down.
These are values only; `faabric.transport` moves them and the services act on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from faabric.messages.codec import Codec
from faabric.messages.types import (
    AppSpec,
    Batch,
    Cancelled,
    Exited,
    Failed,
    GranuleResult,
    TimedOut,
    Trapped,
)


@dataclass(frozen=True, slots=True)
class Register:
    """First message of a worker on each connection: who it is, how many granules it can
    run at once, and where other workers reach its data plane ("ip:port"). `incarnation` is
    random per worker process (a restarted worker has a new one); `running` lists the
    granules (app id, index) it still runs or has not reported, when it registers again
    after losing the planner: the planner stops their apps there."""

    name: str
    slots: int
    version: str
    data_address: str = ""
    incarnation: str = ""
    running: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Registered:
    """The planner accepted the worker; it must send a keep-alive every `keepalive_interval` s."""

    name: str
    keepalive_interval: float


@dataclass(frozen=True, slots=True)
class Refused:
    """The planner refused the registration (e.g. the name is taken); the worker must exit."""

    reason: str


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """The worker is still there."""


@dataclass(frozen=True, slots=True)
class WorkerCounters:
    """Worker -> planner: the bytes the worker sent since it started (each monotonic). Sent
    with keep-alives and before each `Report`, so the planner's metrics include a granule's
    traffic by the time its result arrives."""

    mpi_bytes_same_host: int = 0  # payload bytes of MPI sends to ranks on this worker
    mpi_bytes_cross_host: int = 0  # ... and to ranks on other workers
    snapshot_bytes: int = 0  # whole memory snapshots sent to start threads on other workers
    diff_bytes: int = 0  # team messages carrying memory diffs, sent either way
    rank_bytes: int = 0  # migrating or thawed ranks sent to other workers


@dataclass(frozen=True, slots=True)
class RunBatch:
    """Run these granules."""

    batch: Batch


@dataclass(frozen=True, slots=True)
class StopApp:
    """Stop the app's granules on this worker; each still sends a Report when it ends."""

    app_id: int


@dataclass(frozen=True, slots=True)
class Report:
    """A granule finished."""

    result: GranuleResult


@dataclass(frozen=True, slots=True)
class Goodbye:
    """The worker is shutting down cleanly (or the planner is)."""

    reason: str


# -- scale changes: a running app asks for more slots (e.g. the threads of an OpenMP team) --


@dataclass(frozen=True, slots=True)
class ScaleRequest:
    """Worker -> planner: app `app_id`, running here, wants `count` more slots now.

    `request_id` is chosen by the worker (unique among its requests in flight) and echoed in
    the answer, `ScaleGranted` or `ScaleRefused`, which comes at once: a scale request never
    waits for slots to free up. With `up_to` (an elastic OpenMP fork) the answer is always a
    `ScaleGranted` of as many of the `count` slots as are free now, possibly none.
    """

    app_id: int
    request_id: int
    count: int
    local: bool = False  # only slots on the asking worker (threads that share its memory)
    up_to: bool = False  # grant min(count, free slots) instead of refusing


@dataclass(frozen=True, slots=True)
class ScaleGranted:
    """Planner -> worker: all the slots asked for (for an `up_to` request: those free, maybe
    none), as (host name, slots) pairs summing to the count, hosts already running the app
    first. They stay the app's until released with
    `ScaleRelease` or until the app finishes. `peers` holds the data-plane address
    ("ip:port") of every host in `placement` other than the asking worker."""

    request_id: int
    placement: tuple[tuple[str, int], ...]
    peers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ScaleRefused:
    """Planner -> worker: nothing was granted. `free` is how many slots the app could have
    had right now (0 if the app is not running); the worker may ask again for fewer or run
    with what it has."""

    request_id: int
    reason: str
    free: int


@dataclass(frozen=True, slots=True)
class ScaleRelease:
    """Worker -> planner: give back `count` of the granted slots app `app_id` holds on this
    worker's host (a team shrank or ended). Extra counts and finished apps are ignored."""

    app_id: int
    count: int


@dataclass(frozen=True, slots=True)
class TeamResized:
    """Worker -> planner: granule `index` of elastic app `app_id` ran the parallel region
    that just ended with `threads` threads, not as many as its previous region (the first
    region is compared with 1). Recorded as a "resized" event of the app."""

    app_id: int
    index: int
    threads: int


@dataclass(frozen=True, slots=True)
class TeamKeptLocal:
    """Worker -> planner: granule `index` of app `app_id` runs its `threads`-thread team on
    its own worker from now on, because spanning hosts did not pay: `detail` says what was
    measured. Recorded as a "kept-local" event of the app."""

    app_id: int
    index: int
    threads: int
    detail: str


# -- migration: the planner moves ranks of a running MPI app (DIST_CHANGE) -----------------
#
# The planner reserves a better placement and offers it to the worker of rank 0
# (`MigrationOffer`). At the app's next migration point that worker claims it
# (`MigrationClaim`); the planner answers every host involved at once, old and new, with
# `MigrationStart` (the new placement, now committed) or `MigrationCancel`. Each moved rank's
# old worker hands the rank's state to its new one and reports `RankMoved`.


@dataclass(frozen=True, slots=True)
class MigrationPoints:
    """Worker -> planner: app `app_id`'s rank 0 runs here and has reached a migration point
    (sent once per app): the app can be moved, so the planner may offer it placements."""

    app_id: int


@dataclass(frozen=True, slots=True)
class MigrationOffer:
    """Planner -> the worker of rank 0: a better placement is reserved for the app under
    `epoch` (> 0, increasing per app); the app may claim it at its next migration point."""

    app_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class MigrationWithdrawn:
    """Planner -> the worker of rank 0: the offer `epoch` is gone (it expired unclaimed, or
    the app can no longer move there); a claim of it will be cancelled."""

    app_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class MigrationClaim:
    """Worker -> planner: every rank of app `app_id` is at a migration point and the app
    takes offer `epoch`. Answered with `MigrationStart` or `MigrationCancel` to every host
    of the app (and, for a start, to every host it moves to)."""

    app_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class MigrationStart:
    """Planner -> every host of the app's old and new placement: move the ranks so that
    rank `i` runs on `placement[i]`. `peers` holds the data-plane address of every host in
    either placement. The slots of the new placement are already the app's."""

    app_id: int
    epoch: int
    placement: tuple[str, ...]
    peers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MigrationCancel:
    """Planner -> every host of the app: the claim of `epoch` is refused; nothing moves and
    the ranks go on where they are."""

    app_id: int
    epoch: int
    reason: str


@dataclass(frozen=True, slots=True)
class RankMoved:
    """Worker -> planner: rank `index` of app `app_id` left this worker for `to` under
    migration `epoch`; its slot here is free."""

    app_id: int
    index: int
    epoch: int
    to: str


# -- spot hosts: an app on a host about to go, with no room elsewhere, is frozen -------------


@dataclass(frozen=True, slots=True)
class MigrationFreeze:
    """Planner -> every host of the app, answering its claim of `epoch`: every rank
    suspends and sends its state to worker `park`, which keeps it without running it (each
    old worker then reports `RankMoved(to=park)`). `peers` has `park`'s data-plane address."""

    app_id: int
    epoch: int
    park: str
    peers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ThawApp:
    """Planner -> the worker keeping a frozen app: send its ranks to `placement` (rank i to
    placement[i]) under migration `epoch`, where they resume. The slots are the app's
    already. `peers` has the data-plane address of every host in `placement`."""

    app_id: int
    epoch: int
    placement: tuple[str, ...]
    peers: tuple[tuple[str, str], ...] = ()


# -- output: what running granules print, streamed to the planner as it is produced --------


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """Worker -> planner: bytes granule `index` of app `app_id` wrote to `stream` (1 stdout,
    2 stderr), starting at byte `offset` of that stream (counted from the granule's first
    start, across moves). A granule's chunks of one stream come in order, each once, all
    before its `Report`; they hold at most the worker's output limit of each stream."""

    app_id: int
    index: int
    stream: int
    offset: int
    data: bytes


ControlMessage = (
    Register
    | Registered
    | Refused
    | KeepAlive
    | WorkerCounters
    | RunBatch
    | StopApp
    | Report
    | Goodbye
    | ScaleRequest
    | ScaleGranted
    | ScaleRefused
    | ScaleRelease
    | TeamResized
    | TeamKeptLocal
    | MigrationPoints
    | MigrationOffer
    | MigrationWithdrawn
    | MigrationClaim
    | MigrationStart
    | MigrationCancel
    | RankMoved
    | MigrationFreeze
    | ThawApp
    | OutputChunk
)

CONTROL_CODEC = Codec(
    [
        Register,
        Registered,
        Refused,
        KeepAlive,
        WorkerCounters,
        RunBatch,
        StopApp,
        Report,
        Goodbye,
        ScaleRequest,
        ScaleGranted,
        ScaleRefused,
        ScaleRelease,
        TeamResized,
        TeamKeptLocal,
        MigrationPoints,
        MigrationOffer,
        MigrationWithdrawn,
        MigrationClaim,
        MigrationStart,
        MigrationCancel,
        RankMoved,
        MigrationFreeze,
        ThawApp,
        OutputChunk,
        AppSpec,
        Batch,
        GranuleResult,
        Exited,
        Trapped,
        TimedOut,
        Failed,
        Cancelled,
    ]
)

"""The planner's record of one app, and the read-only views it hands out.

`AppRecord` is mutable and private to the planner core; `AppView`, `AppEvent` and
`Statistics` are frozen snapshots safe to give to other threads. The migration in progress
of an app (`Offered | Committed`) and its freeze (`FreezeOffered | Freezing | Frozen |
Thawing`) live
on its record, with the policy it runs under. No I/O, no clock, no scheduling decisions here.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum

from faabric.messages.types import AppInfo, AppSpec, AppState, GranuleResult
from faabric.scheduling import Policy, bin_pack

MAX_APP_EVENTS = 100  # per app; older events are dropped (an app offered often would grow)


class AppEventKind(StrEnum):
    """What happened to a running app's placement."""

    OFFERED = "offered"  # a better placement was reserved and offered to the app
    WITHDRAWN = "withdrawn"  # the offer was taken back (unclaimed, a rank ended, a host left)
    CANCELLED = "cancelled"  # a claim was refused (stale epoch, no offer)
    STARTED = "started"  # a claim was accepted: the ranks move
    MIGRATED = "migrated"  # every moving rank left its old host
    ABANDONED = "abandoned"  # a started migration ended with the app (a host was lost)
    EVICTED = "evicted"  # a host the app has ranks on was announced for eviction
    STRANDED = "stranded"  # it must leave an evicted host but can neither move nor freeze
    FROZEN = "frozen"  # every rank was parked: the app holds no slot until it is thawed
    THAWED = "thawed"  # the frozen app got slots again: its ranks go there from the park
    RESIZED = "resized"  # an elastic OpenMP team ran with a different number of threads
    KEPT_LOCAL = "kept-local"  # an OpenMP team runs on its granule's worker only from now on


@dataclass(frozen=True, slots=True)
class AppEvent:
    """One entry of an app's placement history.

    Attributes:
        time: planner clock time.
        kind: what happened.
        epoch: the migration epoch it concerns (per app, from 1); 0 for resized and
            kept-local.
        detail: one line a user can read.
        ranks: the ranks that move, ascending (empty for withdrawn, cancelled, abandoned);
            for resized and kept-local the granule whose team it is.
        hosts: for offered and started the old and new hosts of those ranks, for migrated
            their new hosts; sorted. For resized and kept-local the granule's host.
        threads: for resized, the team's new size; for kept-local, the team's size; None
            for the other kinds.
    """

    time: float
    kind: AppEventKind
    epoch: int
    detail: str
    ranks: tuple[int, ...] = ()
    hosts: tuple[str, ...] = ()
    threads: int | None = None


@dataclass(frozen=True, slots=True)
class Offered:
    """A better placement is reserved for the app and offered under `epoch`, not yet claimed.

    Each rank in `moving` holds a reserved slot on `placement[rank]` besides its own.
    """

    epoch: int
    at: float  # clock time of the offer
    placement: tuple[str, ...]
    moving: frozenset[int]


@dataclass(frozen=True, slots=True)
class Committed:
    """The app claimed offer `epoch`: ranks `ranks` move to `placement`. `moving` holds those
    that have not left their old host yet; each holds a slot there and one on
    `placement[rank]`."""

    epoch: int
    placement: tuple[str, ...]
    moving: frozenset[int]
    ranks: tuple[int, ...]


Move = Offered | Committed


@dataclass(frozen=True, slots=True)
class FreezeOffered:
    """The app must leave a host being evicted and fits nowhere else: a freeze is offered
    under `epoch` (at clock time `at`), not yet claimed. Nothing is reserved."""

    epoch: int
    at: float


@dataclass(frozen=True, slots=True)
class Freezing:
    """The app claimed freeze `epoch`: every rank goes to worker `park`. `moving` holds the
    ranks not parked yet; each still holds its slot where it runs, a parked one none."""

    epoch: int
    park: str
    moving: frozenset[int]


@dataclass(frozen=True, slots=True)
class Frozen:
    """Every rank is kept on worker `park`, not running, since clock time `at`; the app
    holds no slot."""

    epoch: int
    park: str
    at: float


@dataclass(frozen=True, slots=True)
class Thawing:
    """The frozen app got slots again under `epoch` (it runs, as far as slots go): worker
    `park` sends its ranks on; `pending` holds those not reported sent yet. If `park` is
    lost before, those ranks can never arrive and the app fails."""

    epoch: int
    park: str
    pending: frozenset[int]


Freeze = FreezeOffered | Freezing | Frozen | Thawing


@dataclass(frozen=True, slots=True)
class AppView:
    """A snapshot of one app: its placement, the results so far, and when things happened.

    Attributes:
        app_id: the id the shell chose at submission.
        spec: what was submitted.
        state: queued, running or finished.
        placement: (granule index, host name) pairs, by index; empty while queued.
        results: the results received so far, by index.
        submitted: clock time of submission.
        started: clock time the app was dispatched; None if it never was.
        finished: clock time the last result arrived; None while in flight.
        scaled: (host name, slots) granted by scale changes and still held, by host name.
        events: the app's placement history (offers, migrations), oldest first; the last
            `MAX_APP_EVENTS` only.
        migrations: how many migrations of the app completed.
    """

    app_id: int
    spec: AppSpec
    state: AppState
    placement: tuple[tuple[int, str], ...]
    results: tuple[GranuleResult, ...]
    submitted: float
    started: float | None
    finished: float | None
    scaled: tuple[tuple[str, int], ...] = ()
    events: tuple[AppEvent, ...] = ()
    migrations: int = 0


@dataclass(frozen=True, slots=True)
class Statistics:
    """Counts describing the planner at one moment, for logs and tests."""

    hosts: int
    total_slots: int
    used_slots: int
    queued: int
    running: int
    finished: int
    scaled_slots: int = 0  # slots held by running apps through scale changes
    reserved_slots: int = 0  # slots held on their new hosts by ranks waiting to move
    frozen: int = 0  # apps whose ranks are parked, holding no slot


@dataclass(slots=True)
class AppRecord:
    """The planner's mutable bookkeeping for one app."""

    app_id: int
    spec: AppSpec
    submitted: float
    state: AppState = AppState.QUEUED
    started: float | None = None
    finished: float | None = None
    placement: dict[int, str] = field(default_factory=dict)
    results: dict[int, GranuleResult] = field(default_factory=dict)
    # Granules failed as "cancelled" whose worker has not reported yet: they still hold a slot.
    cancelled: set[int] = field(default_factory=set)
    # Slots granted by scale changes and not yet released, by host name (running apps only).
    scaled: dict[str, int] = field(default_factory=dict)
    # The migration offered or under way (running apps only), the last epoch used, history.
    move: Move | None = None
    last_epoch: int = 0
    migrations: int = 0
    events: deque[AppEvent] = field(default_factory=lambda: deque(maxlen=MAX_APP_EVENTS))
    # The policy it runs under (its own or the cluster's, bound to its user), and its freeze.
    policy: Policy = bin_pack
    freeze: Freeze | None = None
    # Counts of events by kind, shared by every app of a planner (kept past the apps).
    tally: Counter[AppEventKind] = field(default_factory=Counter)

    def note(
        self,
        now: float,
        kind: AppEventKind,
        epoch: int,
        detail: str,
        ranks: tuple[int, ...] = (),
        hosts: tuple[str, ...] = (),
    ) -> None:
        """Add an entry to the app's placement history."""
        self.events.append(AppEvent(now, kind, epoch, detail, ranks, hosts))
        self.tally[kind] += 1

    def resized(self, index: int, host: str, threads: int, now: float) -> None:
        """Granule `index`'s elastic team, on `host`, now runs `threads` threads."""
        detail = f"resized: granule {index} on {host} runs {threads} thread" + (
            "s" if threads != 1 else "")
        self.events.append(AppEvent(now, AppEventKind.RESIZED, 0, detail, (index,), (host,),
                                    threads))
        self.tally[AppEventKind.RESIZED] += 1

    def kept_local(self, index: int, host: str, threads: int, detail: str, now: float) -> None:
        """Granule `index`'s `threads`-thread team runs on `host` alone from now on, because
        spanning hosts did not pay (`detail`: what was measured)."""
        line = f"kept-local: granule {index} on {host} runs its {threads}-thread team here"
        self.events.append(AppEvent(now, AppEventKind.KEPT_LOCAL, 0, f"{line}: {detail}",
                                    (index,), (host,), threads))
        self.tally[AppEventKind.KEPT_LOCAL] += 1

    @property
    def complete(self) -> bool:
        """Whether every granule has a result."""
        return len(self.results) == self.spec.size

    def view(self) -> AppView:
        """A frozen snapshot of this record."""
        return AppView(
            app_id=self.app_id,
            spec=self.spec,
            state=self.state,
            placement=tuple(sorted(self.placement.items())),
            results=tuple(result for _, result in sorted(self.results.items())),
            submitted=self.submitted,
            started=self.started,
            finished=self.finished,
            scaled=tuple(sorted(self.scaled.items())),
            events=tuple(self.events),
            migrations=self.migrations,
        )

    def info(self) -> AppInfo:
        """The status-listing summary of this record."""
        return AppInfo(
            app_id=self.app_id,
            program=self.spec.program,
            size=self.spec.size,
            state=self.state,
            placement=tuple(sorted(self.placement.items())),
            done=len(self.results),
            scaled=tuple(sorted(self.scaled.items())),
            migrations=self.migrations,
        )

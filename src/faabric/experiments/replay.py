"""A discrete-event replay of a job trace through the real planner core (`PlannerCore`, the
production code: placement, queue, migration offers and claims, scale grants, evictions,
freezes and thaws) in virtual time.

Simulated hosts register with the core; jobs are submitted at their arrival times; the
core's commands are carried out as a worker would: a `Dispatch` starts the app, whose end
time follows from its work and the speed of its current placement (`Calibration`); a
migrating app reports its first migration point once, claims each offer at its next point,
stands still for the migration pause, reports every moved rank, and continues at the new
placement's speed; an elastic OpenMP app asks for its host's free slots at every fork; a
frozen app stands still until thawed; an app the core ends because its host went away starts
again from scratch. It must not reach into the core's private state, read the real clock or
run anything: the core's answers alone decide placement."""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from faabric.errors import ConfigError, InternalError
from faabric.experiments.baselines import Baseline
from faabric.experiments.calibration import Calibration
from faabric.experiments.metrics import JobTimes, Meter, Outcome
from faabric.experiments.trace import Job, Kind
from faabric.messages.types import AppSpec, Exited, Failed, GranuleResult
from faabric.planner.core import (
    AppSubmitted,
    Cancel,
    CancelMigration,
    Command,
    Dispatch,
    Event,
    Finish,
    FreezeApp,
    GrantScale,
    GranuleFinished,
    HostEvicted,
    HostLeft,
    HostRegistered,
    MigrationClaimed,
    MigrationPointsReached,
    OfferMigration,
    PlannerCore,
    RankMovedAway,
    Reject,
    ScaleReleased,
    ScaleRequested,
    StartMigration,
    Thaw,
    WithdrawMigration,
)

MAX_RESTARTS = 100  # a job lost this often never finishes: the replay stops
MODULE = "0" * 64  # the apps run no module: the replay models their work


@dataclass(frozen=True, slots=True)
class Cluster:
    """The simulated cluster: `hosts` hosts of `slots` slots; apps reach a migration point
    every `migration_period` seconds of their run. With `evict_every` > 0, every that many
    seconds the `evict_fraction` of hosts registered longest ago is chosen, and taken away
    `evict_every` seconds later (a fresh host replaces each); a baseline with `notice`
    announces them to the core when chosen (spot VMs)."""

    hosts: int
    slots: int = 8
    migration_period: float = 60.0
    evict_every: float = 0.0
    evict_fraction: float = 0.25


class _Step(IntEnum):
    # Order of simultaneous events: ends free slots before arrivals take them.
    END = 0
    RESUME = 1
    POINT = 2
    FORK = 3
    EVICT = 4
    ARRIVE = 5


_VERSIONED = frozenset({_Step.END, _Step.POINT})  # RESUME and FORK are never superseded


@dataclass(frozen=True, slots=True)
class _Running:
    """The app runs at the speed of its placement."""


@dataclass(frozen=True, slots=True)
class _Moving:
    """Migration `epoch` is under way: the app stands still, its ranks go to `target`."""

    epoch: int
    target: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Freezing:
    """Freeze `epoch` is under way: the app stands still, its ranks go to `park`."""

    epoch: int
    park: str


@dataclass(frozen=True, slots=True)
class _Frozen:
    """Every rank waits on the park: the app holds no slot."""


@dataclass(frozen=True, slots=True)
class _Thawing:
    """The app was given slots again: it stands still for the pause of the thaw."""


_Phase = _Running | _Moving | _Freezing | _Frozen | _Thawing


@dataclass(slots=True)
class _Run:
    """A running app, as its workers see it (mutable: the replay's own bookkeeping)."""

    job: Job
    started: float
    placement: list[str]
    remaining: float  # seconds of work left at speed 1
    since: float  # when `remaining` was last brought up to date
    speed: float = 0.0  # work-seconds per virtual second (0 while migrating)
    pairs: int = 0
    version: int = 0  # bumps invalidate scheduled END and POINT steps
    phase: _Phase = _Running()
    offer: int | None = None  # epoch of the open offer
    reported: bool = False  # the first migration point was reported
    migrations: int = 0
    extra: int = 0  # elastic threads granted beyond the job's size


class Replay:
    """One replay of `jobs` on `cluster` under `baseline`; `run()` returns the `Outcome`.

    `core` is the planner core driven (its `validate()` may be called between steps).
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        cluster: Cluster,
        baseline: Baseline,
        calibration: Calibration,
    ) -> None:
        self._now = 0.0
        # Finished apps are not queried: keeping none spares the core's scans of every app
        # (an eviction's) time that grows with the trace.
        self.core = PlannerCore(clock=lambda: self._now, keepalive_timeout=math.inf,
                                policy=baseline.policy, migration_offer_timeout=math.inf,
                                retain_finished=0)
        self._jobs = {job.job_id: job for job in jobs}
        self._job_of = dict(self._jobs)  # app id -> job (a restarted job gets a new app id)
        self._next_id = max(self._jobs, default=0) + 1
        self._restarts: dict[int, int] = {}  # job id -> times its app was lost
        self._killed: dict[int, _Run] = {}  # apps the core ended, until their ranks report
        self._arrivals = len(self._jobs)
        self._live = [f"h{index:04d}" for index in range(cluster.hosts)]  # oldest first
        self._announced: list[str] = []
        self._notice = baseline.notice
        self._cluster = cluster
        self._migrate = baseline.migrate
        self._elastic = baseline.elastic
        self._cal = calibration
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self._runs: dict[int, _Run] = {}
        self._pending: deque[Event] = deque()
        self._done: list[JobTimes] = []
        self._rejected: list[int] = []
        self._meter = Meter()
        self.events = 0

    def run(self, check_every: int = 0) -> Outcome:
        """Replay every job to its end; with `check_every` > 0, call the core's `validate()`
        after every that-many steps."""
        for name in self._live:
            self._meter.host_up(name, self._cluster.slots)
            self._handle(HostRegistered(name, self._cluster.slots))
        for job in self._jobs.values():
            self._push(job.arrival, _Step.ARRIVE, job.job_id)
        if self._cluster.evict_every > 0:
            self._push(self._cluster.evict_every, _Step.EVICT, 1)
        steps = 0
        while self._heap:
            when, step, _, app_id, version = heapq.heappop(self._heap)
            self._meter.advance(when)
            self._now = when
            self._step(_Step(step), app_id, version)
            steps += 1
            if check_every and steps % check_every == 0:
                self.core.validate()
        if self._runs or self._meter.in_system:
            raise InternalError(f"replay ended with apps {sorted(self._runs)} unfinished")
        first = min((j.arrival for j in self._jobs.values()), default=0.0)
        return self._meter.outcome(self._done, first, self._rejected, self.events)

    # -- the event loop ---------------------------------------------------------------------

    def _push(self, when: float, step: _Step, app_id: int, version: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, step, self._seq, app_id, version))

    def _step(self, step: _Step, app_id: int, version: int) -> None:
        if step is _Step.EVICT:
            self._evict(app_id)
            return
        if step is _Step.ARRIVE:
            self._meter.in_system += 1
            self._arrivals -= 1
            self._handle(AppSubmitted(app_id, self._spec(self._jobs[app_id])))
            return
        run = self._runs.get(app_id)
        if run is None or (step in _VERSIONED and version != run.version):
            return  # stale: the app ended, or its speed changed since
        if step is _Step.END:
            self._end(app_id, run)
        elif step is _Step.FORK:
            self._fork(app_id, run)
        elif step is _Step.POINT:
            self._point(app_id, run)
        else:
            self._resume(app_id, run, version)

    def _spec(self, job: Job) -> AppSpec:
        elastic = self._elastic and job.kind is Kind.OPENMP
        every = 1 if self._migrate else 0
        return AppSpec(MODULE, job.size, migrate_every=every, elastic=elastic)

    def _handle(self, event: Event) -> None:
        """Feed `event` to the core and carry out its commands; events that carrying them
        out causes (a fork's scale request) are fed after the whole list, in order."""
        self._pending.append(event)
        if len(self._pending) > 1:
            return  # an outer call is draining
        while self._pending:
            self.events += 1
            for command in self.core.handle(self._pending[0]):
                self._carry_out(command)
            self._pending.popleft()

    def _carry_out(self, command: Command) -> None:
        match command:
            case Dispatch(_, batch) if batch.app_id not in self._runs:
                self._start(batch.app_id, batch.placement)
            case OfferMigration(_, app_id, epoch):
                self._offered(app_id, epoch)
            case WithdrawMigration(_, app_id, epoch) | CancelMigration(_, app_id, epoch, _):
                run = self._runs.get(app_id)
                if run is not None and run.offer == epoch:
                    run.offer = None
            case StartMigration(_, app_id, epoch, placement):
                self._migrating(app_id, epoch, placement)
            case GrantScale(_, app_id, granted):
                self._grown(app_id, sum(n for _, n in granted))
            case FreezeApp(_, app_id, epoch, park):
                self._freezing(app_id, epoch, park)
            case Thaw(park, app_id, epoch, placement):
                self._thaw(app_id, park, epoch, placement)
            case Finish(app_id) if app_id in self._runs:
                self._lost(app_id)
            case Cancel(host, app_id):
                self._cancelled(host, app_id)
            case Reject(app_id):
                self._rejected.append(app_id)
                self._meter.in_system -= 1
            case _:
                pass  # the end of an app the replay ended, other hosts' copies

    # -- apps -------------------------------------------------------------------------------

    def _start(self, app_id: int, placement: tuple[str, ...]) -> None:
        job = self._job_of[app_id]
        work = job.work * self._cal.compute_seconds_per_unit
        run = _Run(job, self._now, list(placement), work, self._now)
        self._runs[app_id] = run
        self._meter.take(run.placement)
        self._meter.running += 1
        self._set_speed(app_id, run)
        if self._migrate and job.kind is Kind.MPI:
            self._push(self._now + self._cluster.migration_period, _Step.POINT, app_id,
                       run.version)
        if self._elastic and job.kind is Kind.OPENMP:
            self._fork(app_id, run)

    def _set_speed(self, app_id: int, run: _Run) -> None:
        """Bring `remaining` up to now, price the current placement, reschedule the end."""
        run.remaining -= run.speed * (self._now - run.since)
        run.since = self._now
        size = run.job.size
        pairs = sum(n * (size - n) for n in Counter(run.placement).values()) // 2
        self._meter.crosshost += pairs - run.pairs
        run.pairs = pairs
        slowdown = 1.0 + self._cal.cross_host_pair_cost * pairs / size
        parallel = self._cal.speedup(size + run.extra) if run.job.kind is Kind.OPENMP else 1.0
        run.speed = parallel / slowdown
        run.version += 1
        self._push(self._now + max(run.remaining, 0.0) / run.speed, _Step.END, app_id,
                   run.version)

    def _end(self, app_id: int, run: _Run) -> None:
        del self._runs[app_id]
        self._give_back(run, run.placement)
        self._meter.running -= 1
        self._meter.crosshost -= run.pairs
        self._meter.in_system -= 1
        job_id = run.job.job_id
        self._done.append(JobTimes(job_id, run.job.arrival, run.started, self._now,
                                   run.migrations, self._restarts.get(job_id, 0)))
        if run.extra:  # the team's last region ended before its main thread
            self._handle(ScaleReleased(app_id, run.placement[0], run.extra))
        for index, host in enumerate(run.placement):
            self._handle(GranuleFinished(GranuleResult(app_id, index, host, Exited(0))))

    # -- migration --------------------------------------------------------------------------

    def _point(self, app_id: int, run: _Run) -> None:
        if run.offer is not None:
            self._handle(MigrationClaimed(app_id, run.offer, run.placement[0]))
        elif not run.reported:
            run.reported = True
            self._handle(MigrationPointsReached(app_id))

    def _offered(self, app_id: int, epoch: int) -> None:
        run = self._runs.get(app_id)
        if run is None:
            return
        run.offer = epoch
        period = self._cluster.migration_period
        points = math.floor((self._now - run.started) / period) + 1
        self._push(run.started + points * period, _Step.POINT, app_id, run.version)

    def _migrating(self, app_id: int, epoch: int, placement: tuple[str, ...]) -> None:
        run = self._runs.get(app_id)
        if run is None or run.phase == _Moving(epoch, placement):
            return  # one StartMigration per involved host: the first one counts
        run.offer = None
        run.phase = _Moving(epoch, placement)
        moved = sum(old != new for old, new in zip(run.placement, placement, strict=True))
        self._stand_still(run)
        self._push(self._now + self._cal.pause(moved), _Step.RESUME, app_id, epoch)

    def _resume(self, app_id: int, run: _Run, epoch: int) -> None:
        """A pause is over (`epoch` 0: a thaw's); a stale one (a move or freeze started
        during a thaw's pause) is ignored."""
        match run.phase:
            case _Thawing() if epoch == 0:
                run.phase = _Running()
                self._set_speed(app_id, run)
            case _Freezing(current, park) if current == epoch:
                self._parked(app_id, run, epoch, park)
            case _Moving(current, target) if current == epoch:
                self._moved(app_id, run, epoch, target)
            case _:
                pass

    def _moved(self, app_id: int, run: _Run, epoch: int, target: tuple[str, ...]) -> None:
        for index, (old, new) in enumerate(zip(run.placement, target, strict=True)):
            if old != new:
                run.placement[index] = new
                self._meter.give((old,))
                self._meter.take((new,))
                self._handle(RankMovedAway(app_id, index, epoch, old, new))
        run.phase = _Running()
        run.migrations += 1
        self._set_speed(app_id, run)

    # -- elastic OpenMP ---------------------------------------------------------------------

    def _fork(self, app_id: int, run: _Run) -> None:
        """A parallel region starts: ask for the main host's free slots, up to a full host
        (the request id is the app's: the grant comes back in this same call)."""
        want = self._cluster.slots - run.job.size - run.extra
        if want > 0:
            self._handle(ScaleRequested(app_id, app_id, want, run.placement[0], local=True,
                                        up_to=True))
        self._push(self._now + self._cluster.migration_period, _Step.FORK, app_id)

    def _grown(self, app_id: int, granted: int) -> None:
        run = self._runs.get(app_id)
        if run is None or granted == 0:
            return
        run.extra += granted
        self._meter.take([run.placement[0]] * granted)  # a local grant: the main host
        self._set_speed(app_id, run)

    # -- spot: evictions, freezes, thaws, lost apps -----------------------------------------

    def _evict(self, wave: int) -> None:
        """Take away the hosts chosen last wave (fresh ones replace them), then, while work
        remains, choose the next ones (announced to the core if the baseline has notice)."""
        for name in self._announced:
            fresh = f"{name.partition('.')[0]}.{wave}"
            self._live.append(fresh)
            self._meter.host_up(fresh, self._cluster.slots)
            self._handle(HostRegistered(fresh, self._cluster.slots))
            self._handle(HostLeft(name, "evicted"))
            self._meter.host_down(name)
        self._announced = []
        if not (self._meter.in_system or self._arrivals):
            return
        count = math.ceil(len(self._live) * self._cluster.evict_fraction)
        self._announced, self._live = self._live[:count], self._live[count:]
        if self._notice:
            for name in self._announced:
                self._handle(HostEvicted(name))
        self._push(self._now + self._cluster.evict_every, _Step.EVICT, wave + 1)

    def _freezing(self, app_id: int, epoch: int, park: str) -> None:
        run = self._runs.get(app_id)
        if run is None or run.phase == _Freezing(epoch, park):
            return  # one FreezeApp per host of the app: the first one counts
        run.offer, run.phase = None, _Freezing(epoch, park)
        self._stand_still(run)
        self._push(self._now + self._cal.pause(run.job.size), _Step.RESUME, app_id, epoch)

    def _parked(self, app_id: int, run: _Run, epoch: int, park: str) -> None:
        """Every rank reached the park: the app is frozen and holds no slot."""
        old, run.placement = run.placement, [park] * run.job.size
        run.phase = _Frozen()
        self._stand_still(run)
        self._give_back(run, old)
        self._meter.running -= 1
        self._meter.crosshost -= run.pairs
        run.pairs = 0
        for index, host in enumerate(old):
            self._handle(RankMovedAway(app_id, index, epoch, host, run.placement[index]))

    def _thaw(self, app_id: int, park: str, epoch: int, placement: tuple[str, ...]) -> None:
        """The park sends every rank on at once; the app runs again after the pause."""
        run = self._runs[app_id]
        run.placement, run.phase = list(placement), _Thawing()
        self._meter.take(placement)
        self._meter.running += 1
        self._push(self._now + self._cal.pause(run.job.size), _Step.RESUME, app_id)
        for index, host in enumerate(placement):
            self._handle(RankMovedAway(app_id, index, epoch, park, host))

    def _stand_still(self, run: _Run) -> None:
        run.remaining -= run.speed * (self._now - run.since)
        run.since = self._now
        run.speed = 0.0
        run.version += 1  # the end moves: it is rescheduled on resume

    def _give_back(self, run: _Run, placement: Sequence[str]) -> None:
        """The app's granules on `placement` and its elastic threads free their slots."""
        self._meter.give(placement)
        self._meter.give([placement[0]] * run.extra)

    def _lost(self, app_id: int) -> None:
        """The core ended a running or frozen app (a host it needed went away): its job
        starts again from scratch, as a new app submitted now."""
        run = self._runs.pop(app_id)
        self._killed[app_id] = run
        if not isinstance(run.phase, _Frozen):  # it holds slots
            self._give_back(run, run.placement)
            self._meter.running -= 1
        self._meter.crosshost -= run.pairs
        job = run.job
        self._restarts[job.job_id] = self._restarts.get(job.job_id, 0) + 1
        if self._restarts[job.job_id] > MAX_RESTARTS:
            raise ConfigError(f"job {job.job_id} was lost with its hosts {MAX_RESTARTS} times: "
                              "it cannot finish under these evictions (shorter work?)")
        new_id, self._next_id = self._next_id, self._next_id + 1
        self._job_of[new_id] = job
        self._handle(AppSubmitted(new_id, self._spec(job)))

    def _cancelled(self, host: str, app_id: int) -> None:
        """A worker stops the app's granules on `host` and reports them."""
        run = self._killed.get(app_id)
        if run is None:
            return
        failed = Failed("cancelled")
        for index, where in enumerate(run.placement):
            if where == host:
                self._handle(GranuleFinished(GranuleResult(app_id, index, host, failed)))

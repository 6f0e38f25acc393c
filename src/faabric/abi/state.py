"""What a running granule's host functions share: its I/O (`GranuleIO`), for MPI ranks its
world, and for thread-capable granules their OpenMP team's distributed region (`TeamContext`).

One `GranuleState` is attached to each instance (and to every thread instance of it); each
family of host functions takes the part it needs and stops the guest with a clear message
if that part is missing. This module must not import wasmtime.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from faabric.messages.types import Batch
from faabric.mpi.migration import Leave, Migrations, Start
from faabric.mpi.moving import RankRecord
from faabric.mpi.world import LocalWorld
from faabric.snapshot import MemfdImage
from faabric.threads.part_region import PartRegion
from faabric.threads.regions import MainRegion
from faabric.threads.span_choice import SpanChoice
from faabric.wasm.host import GuestFault, HostCall

OUTPUT_LIMIT = 64 << 20  # bytes of faabric_write_output kept per granule


@dataclass(slots=True)
class GranuleIO:
    """What one running granule reads and writes through the host interface;
    `clock_base` is the host's monotonic time (ns) at which its monotonic clock reads 0."""

    index: int
    count: int
    input: bytes = b""
    output_limit: int = OUTPUT_LIMIT
    _output: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    clock_base: int = field(default_factory=time.monotonic_ns)

    def append_output(self, data: bytes) -> None:
        with self._lock:
            if len(self._output) + len(data) > self.output_limit:
                raise GuestFault(
                    f"output exceeds the limit of {self.output_limit} bytes per granule"
                )
            self._output += data

    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)


@dataclass(slots=True)
class MemoryWindow:
    """The last seen base and size of a rank's linear memory. A memory never moves and only
    grows, so a pointer inside the window needs no fresh look-up (abi/mpi.py)."""

    base: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class Arrival:
    """A rank that moved here: the migration it moved under and the state it brought."""

    epoch: int
    record: RankRecord
    decision: Start


@dataclass(frozen=True, slots=True)
class Departure:
    """A rank leaving at migration point `epoch`: where to, and what it takes along."""

    epoch: int
    leave: Leave


@dataclass(slots=True)
class RankMoves:
    """A rank's migration in flight: set when it leaves from a point, or before it resumes
    here after one."""

    departure: Departure | None = None
    arrival: Arrival | None = None


@dataclass(frozen=True, slots=True)
class MpiRank:
    """The granule is rank `rank` of `world`, on the worker named `host`; `migrations` is
    the world's migration protocol here."""

    world: LocalWorld
    rank: int
    host: str
    migrations: Migrations
    window: MemoryWindow = field(default_factory=MemoryWindow, compare=False)
    moves: RankMoves = field(default_factory=RankMoves, compare=False)


@dataclass(frozen=True, slots=True)
class TeamPlan:
    """Where the threads of an n-thread team run: `local` here (the granule's own thread
    included), `remote` as (worker, threads) pairs. `available` is how many threads the
    cluster had slots for (n, unless the team runs here oversubscribed)."""

    local: int
    available: int
    remote: tuple[tuple[str, int], ...] = ()


@dataclass(slots=True)
class SentMemory:
    """The memory as last sent to other workers, which keep it as snapshot `key`; `hosts`
    are the workers that have it."""

    key: str
    image: MemfdImage
    hosts: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Timing:
    """A run of region `region` (outlined function, team size) started at `started`
    (time.monotonic), across hosts (`spanning`) or as the trial on one host."""

    region: tuple[int, int]
    started: float
    spanning: bool


@dataclass(slots=True)
class TeamContext:
    """A thread-capable granule's team: its plans per team size, the distributed region it
    is in, if any (a `MainRegion` on the granule's worker, a `PartRegion` elsewhere), and on
    the granule's worker the memory its parts last received and the team sizes that could
    not be spread (they run here). `deadline` is the granule's, on `time.monotonic`.
    `may_span` is False for a module whose atomic instructions were not rewritten to work
    across hosts (built by an older faabric): its teams always run on one host. `choices`
    holds, per region (outlined function, team size), whether spanning pays, and `timing`
    the run of a region being timed now."""

    batch: Batch
    index: int
    deadline: float
    region: MainRegion | PartRegion | None = None
    plans: dict[int, TeamPlan] = field(default_factory=dict)
    sent: SentMemory | None = None
    local_only: set[int] = field(default_factory=set)
    may_span: bool = True
    choices: dict[tuple[int, int], SpanChoice] = field(default_factory=dict)
    timing: Timing | None = None


@dataclass(frozen=True, slots=True)
class GranuleState:
    """Per-granule state seen by host functions: granule `io.index` of app `app_id`."""

    app_id: int
    io: GranuleIO
    mpi: MpiRank | None = None
    team: TeamContext | None = None


def state_of(call: HostCall) -> GranuleState:
    state = call.state
    if not isinstance(state, GranuleState):
        raise GuestFault("no granule state is attached to this instance")
    return state

"""Value types that cross process boundaries: apps, batches, granule results, hosts.

Every type here is a frozen dataclass made only of ints, floats, strings, bytes, tuples and
other types of this module, so the codec can carry it without special cases. Nothing here
does I/O or knows about sockets, wasm or the planner's bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_GRANULE_TIMEOUT = 300.0
DEFAULT_MEMORY_LIMIT = 1 << 30


@dataclass(frozen=True, slots=True)
class AppSpec:
    """What a client asks to run: `size` granules of one WebAssembly module.

    Attributes:
        module: sha256 hex digest of the module's bytes (modules are content-addressed).
        size: number of granules; each runs the module's `_start` with its own index.
        program: argv[0] the guest sees, usually the source file's name.
        args: argv[1:].
        env: environment variables, as (name, value) pairs.
        input: bytes the guest reads with `faabric_read_input`.
        timeout: wall-clock seconds a granule may run before it is stopped.
        memory_limit: bytes of linear memory a granule may grow to.
        migrate_every: an MPI app may be moved at every this-many-th `MPI_Barrier` on its
            world communicator (and at each `faabric_migration_point()`); 0: never moved.
        elastic: OpenMP parallel regions whose team size the program left open get as many
            threads as their worker has free slots at each fork (docs/openmp.md).
        user: who submitted it (the compact policy never puts two users' apps on one
            host); empty if unknown.
        policy: the scheduling policy that places and moves it (`bin-pack`, `compact`,
            `spot`); empty: the cluster's.
    """

    module: str
    size: int
    program: str = "main"
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    input: bytes = b""
    timeout: float = DEFAULT_GRANULE_TIMEOUT
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    migrate_every: int = 1
    elastic: bool = False
    user: str = ""
    policy: str = ""


@dataclass(frozen=True, slots=True)
class Batch:
    """The granules of one app that the planner placed on one host.

    Attributes:
        indices: the granules to run on this host.
        placement: the host name of every granule of the app, by index (MPI's rank map).
        peers: (host name, data-plane address "ip:port") of the hosts in `placement`.
    """

    app_id: int
    spec: AppSpec
    indices: tuple[int, ...]
    placement: tuple[str, ...] = ()
    peers: tuple[tuple[str, str], ...] = ()


# -- how a granule ended: a tagged union -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exited:
    """The guest returned from `_start` (code 0) or called `exit(code)`."""

    code: int


@dataclass(frozen=True, slots=True)
class Trapped:
    """The guest trapped (out-of-bounds access, unreachable, stack overflow...)."""

    message: str


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The granule ran longer than its timeout and was interrupted."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Failed:
    """The granule could not run or its host was lost; `reason` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The granule was stopped from outside while it ran (e.g. its app was stopped)."""

    reason: str


Outcome = Exited | Trapped | TimedOut | Failed | Cancelled

# Exit statuses for outcomes that are not a guest exit, chosen to match shell conventions.
TRAP_STATUS = 134
TIMEOUT_STATUS = 124
FAILURE_STATUS = 1
CANCEL_STATUS = 143  # as for a process ended by SIGTERM


def exit_status(outcome: Outcome) -> int:
    """The process-style exit status of an outcome: the guest's code, or a conventional one."""
    match outcome:
        case Exited(code):
            return code
        case Trapped():
            return TRAP_STATUS
        case TimedOut():
            return TIMEOUT_STATUS
        case Failed():
            return FAILURE_STATUS
        case Cancelled():
            return CANCEL_STATUS


def describe(outcome: Outcome) -> str:
    """One line a user can read, e.g. `exited with 3` or `trapped: out of bounds memory access`."""
    match outcome:
        case Exited(code):
            return f"exited with {code}"
        case Trapped(message):
            return f"trapped: {message}"
        case TimedOut(seconds):
            return f"timed out after {seconds:g} s"
        case Failed(reason):
            return f"failed: {reason}"
        case Cancelled(reason):
            return f"cancelled: {reason}"


@dataclass(frozen=True, slots=True)
class GranuleResult:
    """Everything a granule produced, reported by its worker to the planner. `stdout` and
    `stderr` hold at most the worker's output limit each; `truncated` says the granule
    wrote more to either (the rest was dropped)."""

    app_id: int
    index: int
    host: str
    outcome: Outcome
    stdout: bytes = b""
    stderr: bytes = b""
    output: bytes = b""
    started: float = 0.0
    finished: float = 0.0
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A registered worker host as the planner sees it; `evicting` once it was announced for
    eviction (it gets no new granules and its apps are moved away or frozen)."""

    name: str
    slots: int
    used: int
    evicting: bool = False


class AppState(StrEnum):
    """Where an app is in its life: waiting for slots, running, frozen (its ranks kept on a
    worker without running, holding no slot, until there is room again), or done."""

    QUEUED = "queued"
    RUNNING = "running"
    FROZEN = "frozen"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class AppInfo:
    """The planner's view of one app, for status listings."""

    app_id: int
    program: str
    size: int
    state: AppState
    placement: tuple[tuple[int, str], ...] = field(default=())  # (granule index, host name)
    done: int = 0
    scaled: tuple[tuple[str, int], ...] = ()  # (host name, slots granted by scale changes)
    migrations: int = 0  # how many times the planner moved its ranks

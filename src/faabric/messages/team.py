"""Messages between the hosts of one OpenMP team that spans hosts (worker to worker).

The main host (where the granule runs) starts a part of a parallel region on another worker
with `TeamStart`, carrying its memory: a whole snapshot the first time, afterwards the diff
against the snapshot that worker keeps for the granule. The part's threads synchronise
through `TeamRequest`s (each may carry the memory writes made since the last
synchronisation), answered by `TeamReply` or, once the region broke, `TeamRefused`; a part
ends with `TeamDone`. `TeamStop` ends a part early; `TeamForget` lets the worker drop the
granule's snapshot. Frozen values only; this module does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from faabric.messages.codec import Codec
from faabric.messages.types import (
    AppSpec,
    Batch,
    Cancelled,
    Exited,
    Failed,
    Outcome,
    TimedOut,
    Trapped,
)
from faabric.snapshot import WIRE_TYPES, Diff, Snapshot


class TeamOp(IntEnum):
    """What a thread of a part asks the main host for."""

    BARRIER = 1  # the part's threads all arrived; value: unused
    ACQUIRE = 2  # key: the lock; value: unused
    TRY_ACQUIRE = 3
    RELEASE = 4
    SINGLE = 5  # value: the single's sequence number
    ORDERED_WAIT = 6  # key: loop number; value: the iteration to wait for
    ORDERED_PASS = 7  # key: loop number; value: the next iteration allowed
    ATOMIC = 8  # key: the address; value: the instruction's code; a, b: its operands
    APPLY = 9  # only `deferred`: ignored-result atomic operations to do, no answer


@dataclass(frozen=True, slots=True)
class RegionId:
    """One distributed parallel region: the main host's name and its own number for it."""

    host: str
    number: int


@dataclass(frozen=True, slots=True)
class Member:
    """A thread of a part: OpenMP thread `tid`, started as `table[entry](arg)` on a stack
    whose top is `stack_top` (all guest addresses in the snapshot)."""

    tid: int
    arg: int
    stack_top: int


@dataclass(frozen=True, slots=True)
class TeamStart:
    """Main -> part host: run `members` of region `region` of granule `index` of `batch`'s
    app on its memory: `image` is either the whole memory (to keep as snapshot `base`) or a
    diff to merge into the snapshot already kept as `base`. `exclude` ranges are never
    synchronised. `origin_address` is the main host's data plane; the granule has
    `seconds_left` before its timeout."""

    region: RegionId
    origin_address: str
    seconds_left: float
    batch: Batch
    index: int
    entry: int
    members: tuple[Member, ...]
    exclude: tuple[tuple[int, int], ...]
    base: str
    image: Snapshot | Diff


@dataclass(frozen=True, slots=True)
class TeamRequest:
    """Part host -> main: thread `thread` of the part on `host` asks `op`; `diff` holds the
    part's writes since its last synchronisation (for ops that publish). An ATOMIC request
    has operands `a` and `b` and, when it repeats a spin, the answer seen last as `hint`.
    `deferred` holds the part's batched atomic operations whose results were ignored, as
    (code, address, operand) triples, done before the request."""

    region: RegionId
    host: str
    request_id: int
    op: TeamOp
    thread: int
    key: int
    value: int
    diff: Diff | None = None
    a: int = 0
    b: int = 0
    hint: int | None = None
    deferred: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class TeamReply:
    """Main -> part host: request `request_id` may go on; `value` is its answer and `diffs`
    the other hosts' writes to apply first, as the part's `ticket`-th delivery (None: nothing
    delivered)."""

    region: RegionId
    request_id: int
    value: int
    ticket: int | None = None
    diffs: tuple[Diff, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamRefused:
    """Main -> part host: request `request_id` failed, the region broke for `reason`."""

    region: RegionId
    request_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class TeamDone:
    """Part host -> main: the part's threads ended with `outcome`; `diff` holds its last
    writes."""

    region: RegionId
    host: str
    outcome: Outcome
    stdout: bytes
    stderr: bytes
    diff: Diff | None = None


@dataclass(frozen=True, slots=True)
class TeamStop:
    """Main -> part host: stop the part's threads (the region or its granule ended)."""

    region: RegionId
    reason: str


@dataclass(frozen=True, slots=True)
class TeamForget:
    """Main -> part host: the granule whose memory is kept as snapshot `base` ended."""

    base: str


TeamMessage = (
    TeamStart | TeamRequest | TeamReply | TeamRefused | TeamDone | TeamStop | TeamForget
)

TEAM_CODEC = Codec(
    [
        RegionId,
        Member,
        TeamStart,
        TeamRequest,
        TeamReply,
        TeamRefused,
        TeamDone,
        TeamStop,
        TeamForget,
        AppSpec,
        Batch,
        Exited,
        Trapped,
        TimedOut,
        Failed,
        Cancelled,
        *WIRE_TYPES,
    ]
)

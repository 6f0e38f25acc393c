"""The `faabric_mpi.*` imports of toolchain/lib/mpi/fmpi_host.h: a rank's door to its world.

Each function checks the guest's pointers and arguments, turns guest offsets into host
addresses and calls the rank's `LocalWorld`. Argument errors MPI defines (a bad rank or tag)
return the header's error codes; bad pointers, timeouts and failures of other ranks stop the
guest with a message. This module must not implement matching or transport.
"""

from __future__ import annotations

from collections.abc import Callable

from faabric.abi.state import Departure, MpiRank, state_of
from faabric.mpi import memory, rma
from faabric.mpi.matching import ANY, Envelope, Pattern
from faabric.mpi.migration import Leave
from faabric.wasm.host import (
    U32_MASK,
    GuestFault,
    GuestMemory,
    HostCall,
    HostFunction,
    ValKind,
)

IMPORT_MODULE = "faabric_mpi"
MAX_SEGMENTS = 1 << 20  # (offset, length) pairs one RMA operation may name
I32: ValKind = "i32"


def _rank(call: HostCall) -> MpiRank:
    found = state_of(call).mpi
    if found is None:
        raise GuestFault("this granule is not an MPI rank")
    return found


def _request(mem: GuestMemory, ptr: int) -> int:
    return mem.base + mem.check(ptr, memory.REQUEST_SIZE, "MPI request")


def _address(call: HostCall, me: MpiRank, ptr: int, length: int, what: str) -> int:
    """The host address of guest `[ptr, ptr+length)`; GuestFault if it is outside memory."""
    window = me.window
    offset = ptr & U32_MASK
    if length >= 0 and offset + length <= window.size:
        return window.base + offset
    mem = call.memory()  # the memory may have grown since: look again
    window.base, window.size = mem.base, mem.size
    return mem.base + mem.check(ptr, length, what)


def init(call: HostCall) -> int:
    me = _rank(call)
    me.world.mark(me.rank, initialised=True)
    return 0


def finalize(call: HostCall) -> int:
    me = _rank(call)
    me.world.mark(me.rank, finalised=True)
    return 0


def rank(call: HostCall) -> int:
    return _rank(call).rank


def size(call: HostCall) -> int:
    return _rank(call).world.layout.size


def host_of(call: HostCall, other: int) -> int:
    layout = _rank(call).world.layout
    if not 0 <= other < layout.size:
        return -1
    return layout.hosts().index(layout.placement[other])


def host_count(call: HostCall) -> int:
    return len(_rank(call).world.layout.hosts())


def processor_name(call: HostCall, buf: int, cap: int) -> int:
    name = _rank(call).host.encode()
    call.memory().write(buf, name[: max(cap, 0)], "processor name buffer")
    return len(name)


def abort(call: HostCall, code: int) -> None:
    me = _rank(call)
    me.world.break_(f"rank {me.rank} called MPI_Abort({code})")


def isend(call: HostCall, ctx: int, dest: int, tag: int, buf: int, length: int, sync: int,
          req: int) -> int:
    me = _rank(call)
    if not 0 <= ctx < rma.RESERVED_CTX:
        raise GuestFault(f"MPI context {ctx} is reserved for the host")
    if not 0 <= dest < me.world.layout.size:
        return memory.E_RANK
    if tag < 0:
        return memory.E_TAG
    if length < 0:
        return memory.E_COUNT
    address = _address(call, me, buf, length, "send buffer")
    request = _address(call, me, req, memory.REQUEST_SIZE, "MPI request")
    envelope = Envelope(ctx, me.rank, tag, length)
    me.world.isend(me.rank, envelope, dest, address, bool(sync), request)
    return memory.OK


def irecv(call: HostCall, ctx: int, source: int, tag: int, buf: int, cap: int, req: int) -> int:
    me = _rank(call)
    if not (source == ANY or 0 <= source < me.world.layout.size):
        return memory.E_RANK
    if tag < ANY:
        return memory.E_TAG
    if cap < 0:
        return memory.E_COUNT
    address = _address(call, me, buf, cap, "receive buffer")
    request = _address(call, me, req, memory.REQUEST_SIZE, "MPI request")
    me.world.irecv(me.rank, Pattern(ctx, source, tag), address, cap, request)
    return memory.OK


def iprobe(call: HostCall, ctx: int, source: int, tag: int, blocking: int, status: int) -> int:
    me = _rank(call)
    if not (source == ANY or 0 <= source < me.world.layout.size):
        raise GuestFault(f"MPI_Probe from rank {source}, which is not in the world")
    found = me.world.iprobe(me.rank, Pattern(ctx, source, tag), bool(blocking),
                            _request(call.memory(), status))
    return int(found)


def cancel(call: HostCall, req: int) -> int:
    me = _rank(call)
    return int(me.world.cancel(me.rank, _request(call.memory(), req)))


def completions(call: HostCall) -> int:
    me = _rank(call)
    return me.world.completions(me.rank)


def wait_change(call: HostCall, seen: int) -> int:
    me = _rank(call)
    return me.world.wait_change(me.rank, seen)


def migration_epoch(call: HostCall, at_barrier: int) -> int:
    me = _rank(call)
    if me.rank != 0 or not call.movable:
        return 0
    return me.migrations.offered(bool(at_barrier))


def migrate(call: HostCall, epoch: int, area: int, size: int) -> int:
    me = _rank(call)
    if call.resuming():  # this rank moved here and its call stack is rebuilt
        arrival = me.moves.arrival
        if arrival is None:
            raise GuestFault("resumed from a migration that did not happen")
        me.moves.arrival = None
        me.world.put_rank(me.rank, arrival.record, call.memory().base)
        me.migrations.arrived(me.rank, arrival.epoch, arrival.decision)
        return 1
    if epoch <= 0:
        return 0
    mem = call.memory()
    mem.check(area, size, "migration area")
    outcome = me.migrations.enter(me.rank, epoch, mem.base)
    if isinstance(outcome, Leave):
        me.moves.departure = Departure(epoch, outcome)
        call.suspend(area, size)
        return 0
    return int(outcome.moved)


def win_expose(call: HostCall, win: int, base: int, length: int) -> int:
    me = _rank(call)
    if length < 0:
        return memory.E_COUNT
    address = _address(call, me, base, length, "window")
    me.world.rma.expose(me.rank, win, address, length)
    return memory.OK


def win_withdraw(call: HostCall, win: int) -> int:
    me = _rank(call)
    me.world.rma.withdraw(me.rank, win)
    return memory.OK


def rma_op(call: HostCall, kind: int, win: int, target: int, segs: int, nsegs: int,
           data: int, req: int) -> int:
    me = _rank(call)
    if not 0 <= target < me.world.layout.size:
        return memory.E_RANK
    if kind not in (rma.PUT, rma.GET) or not 0 <= nsegs <= MAX_SEGMENTS:
        return memory.E_COUNT
    raw = memory.read(_address(call, me, segs, 8 * nsegs, "RMA segments"), 8 * nsegs)
    try:
        segments = rma.Segments.parse(raw)
    except ValueError:
        return memory.E_COUNT
    address = _address(call, me, data, segments.total, "RMA buffer")
    request = _address(call, me, req, memory.REQUEST_SIZE, "MPI request")
    me.world.rma.operate(me.rank, kind, win, target, segments, address, request)
    return memory.OK


def win_lock(call: HostCall, win: int, target: int, kind: int, acquire: int, req: int) -> int:
    me = _rank(call)
    if not 0 <= target < me.world.layout.size:
        return memory.E_RANK
    request = _address(call, me, req, memory.REQUEST_SIZE, "MPI request")
    me.world.rma.lock(me.rank, win, target, kind, bool(acquire), request)
    return memory.OK


def _fn(
    name: str, params: int, impl: Callable[..., int | None], result: bool = True
) -> HostFunction:
    return HostFunction(IMPORT_MODULE, name, (I32,) * params, (I32,) if result else (), impl)


MPI_FUNCTIONS: tuple[HostFunction, ...] = (
    _fn("fmpi_init", 0, init),
    _fn("fmpi_finalize", 0, finalize),
    _fn("fmpi_rank", 0, rank),
    _fn("fmpi_size", 0, size),
    _fn("fmpi_host_of", 1, host_of),
    _fn("fmpi_host_count", 0, host_count),
    _fn("fmpi_processor_name", 2, processor_name),
    _fn("fmpi_abort", 1, abort, result=False),
    _fn("fmpi_isend", 7, isend),
    _fn("fmpi_irecv", 6, irecv),
    _fn("fmpi_iprobe", 5, iprobe),
    _fn("fmpi_cancel", 1, cancel),
    _fn("fmpi_completions", 0, completions),
    _fn("fmpi_wait_change", 1, wait_change),
    _fn("fmpi_migration_epoch", 1, migration_epoch),
    _fn("fmpi_migrate", 3, migrate),
    _fn("fmpi_win_expose", 3, win_expose),
    _fn("fmpi_win_withdraw", 1, win_withdraw),
    _fn("fmpi_rma", 7, rma_op),
    _fn("fmpi_win_lock", 5, win_lock),
)

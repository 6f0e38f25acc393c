"""The guest's clocks: WASI `clock_time_get`, answered by faabric so that time never jumps.

wasmtime counts a WASI monotonic clock from the moment the instance's WASI context was made,
so a rank resumed on another worker after a migration would see its monotonic clock (and
`MPI_Wtime`) jump back to zero. faabric answers the call itself: the monotonic clock is the
host's, counted from the granule's start (`GranuleIO.clock_base`, which a moved rank
carries), and the real-time clock is the host's wall clock. Process and thread CPU-time
clocks are not available, as under wasmtime. This module must not know about migration.
"""

from __future__ import annotations

import time

from faabric.abi.state import state_of
from faabric.wasm.host import HostCall, HostFunction

WASI_MODULE = "wasi_snapshot_preview1"
REALTIME, MONOTONIC = 0, 1
ERRNO_SUCCESS, ERRNO_INVAL = 0, 28


def clock_time_get(call: HostCall, clock: int, precision: int, out: int) -> int:
    """Write the time of `clock` in nanoseconds (u64) at guest address `out`."""
    del precision  # the host's clocks are as precise as they get
    if clock == REALTIME:
        now = time.time_ns()
    elif clock == MONOTONIC:
        now = time.monotonic_ns() - state_of(call).io.clock_base
    else:
        return ERRNO_INVAL
    call.memory().write(out, (now & (2**64 - 1)).to_bytes(8, "little"), "clock result")
    return ERRNO_SUCCESS


CLOCK_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction(WASI_MODULE, "clock_time_get", ("i32", "i64", "i32"), ("i32",),
                 clock_time_get),
)

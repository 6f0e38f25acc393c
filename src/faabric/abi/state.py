"""What a running granule's host functions share: its I/O (`GranuleIO`) and, for MPI
ranks, its world.

One `GranuleState` is attached to each instance (and to every thread instance of it); each
family of host functions takes the part it needs and stops the guest with a clear message
if that part is missing. This module must not import wasmtime.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from faabric.mpi.world import LocalWorld
from faabric.wasm.host import GuestFault, HostCall

OUTPUT_LIMIT = 64 << 20  # bytes of faabric_write_output kept per granule


@dataclass(slots=True)
class GranuleIO:
    """What one running granule reads and writes through the host interface."""

    index: int
    count: int
    input: bytes = b""
    output_limit: int = OUTPUT_LIMIT
    _output: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
class MpiRank:
    """The granule is rank `rank` of `world`, on the worker named `host`."""

    world: LocalWorld
    rank: int
    host: str
    window: MemoryWindow = field(default_factory=MemoryWindow, compare=False)


@dataclass(frozen=True, slots=True)
class GranuleState:
    """Per-granule state seen by host functions: granule `io.index` of app `app_id`."""

    app_id: int
    io: GranuleIO
    mpi: MpiRank | None = None


def state_of(call: HostCall) -> GranuleState:
    state = call.state
    if not isinstance(state, GranuleState):
        raise GuestFault("no granule state is attached to this instance")
    return state

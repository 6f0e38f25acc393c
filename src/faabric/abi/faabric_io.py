"""The `faabric.*` imports of toolchain/include/faabric.h: input, output, granule index/count.

`GranuleIO` is the per-granule state these functions act on; `FAABRIC_FUNCTIONS` lists them
for `faabric.wasm.Launcher`. Every guest pointer goes through a bounds-checked `GuestMemory`,
so a bad pointer ends the granule with a message instead of touching host memory. This module
must not import wasmtime or know how granules are scheduled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from faabric.wasm.host import GuestFault, HostCall, HostFunction

OUTPUT_LIMIT = 64 << 20  # bytes of faabric_write_output kept per granule
IMPORT_MODULE = "faabric"


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


def _io(call: HostCall) -> GranuleIO:
    state = call.state
    io = getattr(state, "io", state)
    if not isinstance(io, GranuleIO):
        raise GuestFault("no granule state is attached to this instance")
    return io


def input_size(call: HostCall) -> int:
    return len(_io(call).input)


def read_input(call: HostCall, buf: int, length: int) -> int:
    data = _io(call).input
    if length < 0:
        raise GuestFault(f"negative length ({length})")
    chunk = data[: min(length, len(data))]
    call.memory().write(buf, chunk, "input buffer")
    return len(chunk)


def write_output(call: HostCall, buf: int, length: int) -> None:
    _io(call).append_output(call.memory().read(buf, length, "output buffer"))


def granule_index(call: HostCall) -> int:
    return _io(call).index


def granule_count(call: HostCall) -> int:
    return _io(call).count


FAABRIC_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction(IMPORT_MODULE, "faabric_input_size", (), ("i32",), input_size),
    HostFunction(IMPORT_MODULE, "faabric_read_input", ("i32", "i32"), ("i32",), read_input),
    HostFunction(IMPORT_MODULE, "faabric_write_output", ("i32", "i32"), (), write_output),
    HostFunction(IMPORT_MODULE, "faabric_granule_index", (), ("i32",), granule_index),
    HostFunction(IMPORT_MODULE, "faabric_granule_count", (), ("i32",), granule_count),
)

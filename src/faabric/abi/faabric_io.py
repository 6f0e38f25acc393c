"""The `faabric.*` imports of toolchain/include/faabric.h: input, output, granule index/count.

`GranuleIO` (in `state.py`) is what these functions act on; `FAABRIC_FUNCTIONS` lists them
for `faabric.wasm.Launcher`. Every guest pointer goes through a bounds-checked `GuestMemory`,
so a bad pointer ends the granule with a message instead of touching host memory. This module
must not import wasmtime or know how granules are scheduled.
"""

from __future__ import annotations

from faabric.abi.state import GranuleIO, state_of
from faabric.wasm.host import GuestFault, HostCall, HostFunction

IMPORT_MODULE = "faabric"


def _io(call: HostCall) -> GranuleIO:
    return state_of(call).io


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

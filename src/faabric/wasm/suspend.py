"""Suspending a running instance into plain values, and resuming it in another instance.

Modules rewritten by binaryen's asyncify (toolchain/movable.py) can unwind their call stack
into an area of linear memory from inside a host call and rebuild it later. A suspended
instance is then its linear memory, its stack pointer and where that area lies: enough to
resume it, inside the same host call, in a fresh instance of the same module on any host.
This module must not decide when to suspend (faabric.abi does) or move the bytes.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy
import wasmtime

from faabric.wasm.host import GuestFault

START_UNWIND = "asyncify_start_unwind"
STOP_UNWIND = "asyncify_stop_unwind"
START_REWIND = "asyncify_start_rewind"
STOP_REWIND = "asyncify_stop_rewind"
STACK_POINTER = "__stack_pointer"
REQUIRED = frozenset({START_UNWIND, STOP_UNWIND, START_REWIND, STOP_REWIND, STACK_POINTER})
AREA_HEADER = 8  # the area starts with two i32s: where saved data ends now, where it may end
PAGE = 65536


@dataclass(frozen=True, slots=True)
class Suspended:
    """An instance stopped inside a host call, as values.

    Attributes:
        memory: its whole linear memory.
        stack_pointer: the value of its `__stack_pointer` global.
        area: guest address of the unwind area holding its call stack.
    """

    memory: bytes | bytearray | memoryview
    stack_pointer: int
    area: int


def is_movable(module: Any) -> bool:
    """Whether a compiled `wasmtime.Module` can be suspended and resumed."""
    return {export.name for export in module.exports} >= REQUIRED


def area_header(area: int, size: int) -> bytes:
    """The header asyncify expects at the start of an unwind area of `size` bytes."""
    return (area + AREA_HEADER).to_bytes(4, "little") + (area + size).to_bytes(4, "little")


def capture(store: Any, raw_instance: Any, area: int) -> Suspended:
    """After the instance's entry call returned because it unwound: end the unwind and take
    its memory and stack pointer."""
    exports: Any = wasmtime.Instance._from_raw(raw_instance).exports(store)
    exports[STOP_UNWIND](store)
    memory = exports["memory"]
    size = memory.data_len(store)
    data = numpy.empty(size, dtype=numpy.uint8)  # not touched: memmove fills it
    # ctypes.memmove releases the GIL (string_at would hold it for the whole copy, seconds
    # for a large memory, stalling every other thread of the worker, keep-alives included).
    ctypes.memmove(data.ctypes.data, memory.data_ptr(store), size)
    return Suspended(data.data, int(exports[STACK_POINTER].value(store)), area)


def restore(store: Any, raw_instance: Any, suspended: Suspended) -> None:
    """Give a fresh instance the suspended one's memory and stack pointer and start the
    rewind: its entry call then runs straight back into the host call it left from.

    Raises:
        GuestFault: the memory cannot grow to the suspended size (its limit is lower).
    """
    exports: Any = wasmtime.Instance._from_raw(raw_instance).exports(store)
    memory = exports["memory"]
    have = memory.data_len(store)
    want = len(suspended.memory)
    if want > have:
        try:
            memory.grow(store, -(-(want - have) // PAGE))
        except wasmtime.WasmtimeError as error:
            raise GuestFault(f"cannot grow memory to {want} bytes to resume: {error}") from None
    data = suspended.memory
    source = data if isinstance(data, bytes) else (ctypes.c_char * want).from_buffer(data)
    ctypes.memmove(memory.data_ptr(store), source, want)
    exports[STACK_POINTER].set_value(store, wasmtime.Val.i32(suspended.stack_pointer))
    exports[START_REWIND](store, suspended.area)

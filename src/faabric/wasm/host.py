"""The contract between the wasm layer and the host functions higher layers implement.

A `HostFunction` names one import (module, name, i32/i64 signature) and a Python `impl`
called as `impl(call, *args)`. `call.state` is the per-instance object given to
`Launcher.run`; `call.memory()` is a bounds-checked view of the guest's linear memory;
`call.threads()` starts sibling instances of a thread-capable module. An impl ends the guest
with a clear message by raising `GuestFault`. This module must not import
wasmtime: the layers above use these types without touching the engine.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

ValKind = Literal["i32", "i64"]
U32_MASK = 0xFFFF_FFFF


class GuestFault(Exception):
    """Raised by a host function to stop the guest: it passed a bad pointer or argument."""


class ThreadExit(GuestFault):
    """Raised (through `HostCall.end_thread`) to end the calling thread normally."""


class Threads(Protocol):
    """The sibling instances of a granule whose module shares its memory."""

    @property
    def running(self) -> int:
        """Threads started and not yet ended, the main instance not counted."""
        ...

    def spawn(self, function: int, arg: int, stack_top: int) -> int:
        """Run `__indirect_function_table[function](arg)` in a new instance on a new thread
        with `__stack_pointer` = `stack_top`; returns the new thread's number (1, 2, ...)."""
        ...


class SharedMemoryAccess(Protocol):
    """A shared memory as the host sees it outside any one call."""

    def now(self) -> GuestMemory:
        """The memory as it is now (it may grow)."""
        ...

    def grow(self, size: int) -> None:
        """Grow it to at least `size` bytes (GuestFault if it cannot)."""
        ...


class HostCall(Protocol):
    """What a host function sees of the instance calling it."""

    @property
    def state(self) -> object:
        """The object given to `Launcher.run` for this instance."""
        ...

    def memory(self) -> GuestMemory:
        """The caller's linear memory, as it is now (it may grow between calls)."""
        ...

    def threads(self) -> Threads:
        """The caller's team; GuestFault if its module is not thread-capable."""
        ...

    @property
    def thread_number(self) -> int:
        """0 in the main instance, the number `Threads.spawn` returned in the others."""
        ...

    def end_thread(self) -> None:
        """End the calling thread as if its entry function had returned (raises ThreadExit)."""
        ...

    def write_output(self, stream: int, data: bytes) -> None:
        """Append `data` to the granule's stdout (1) or stderr (2), as if it wrote it."""
        ...

    def grow_memory(self, size: int) -> None:
        """Grow the granule's shared memory to at least `size` bytes (GuestFault if it
        cannot)."""
        ...

    @property
    def movable(self) -> bool:
        """Whether the caller can be suspended (`suspend`) and resumed elsewhere."""
        ...

    def suspend(self, area: int, size: int) -> None:
        """Once this host call returns, unwind the caller's call stack into guest memory
        `[area, area + size)`; its run then ends as suspended instead of exiting. GuestFault
        if the caller is not movable."""
        ...

    def resuming(self) -> bool:
        """True (once) in the host call a resumed instance re-enters: the rewind ends here
        and the call returns as if it had never left."""
        ...


@dataclass(frozen=True, slots=True)
class HostFunction:
    """One function the host provides to guests under `module`.`name`."""

    module: str
    name: str
    params: tuple[ValKind, ...]
    results: tuple[ValKind, ...]
    impl: Callable[..., int | None]

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class GuestMemory:
    """A bounds-checked window on a guest's linear memory at one moment.

    `base` is the host address of byte 0 and `size` the current length. Guest pointers
    arrive as signed i32 values; they are read as unsigned 32-bit offsets.
    """

    base: int
    size: int

    def check(self, ptr: int, length: int, what: str = "buffer") -> int:
        """The offset of `[ptr, ptr+length)` if it lies inside memory, else GuestFault."""
        offset = ptr & U32_MASK
        if length < 0:
            raise GuestFault(f"{what} has a negative length ({length})")
        if offset + length > self.size:
            raise GuestFault(
                f"{what} at {offset:#x} of {length} bytes lies outside the guest's memory"
                f" ({self.size} bytes)"
            )
        return offset

    def read(self, ptr: int, length: int, what: str = "buffer") -> bytes:
        offset = self.check(ptr, length, what)
        return ctypes.string_at(self.base + offset, length)

    def write(self, ptr: int, data: bytes, what: str = "buffer") -> None:
        offset = self.check(ptr, len(data), what)
        ctypes.memmove(self.base + offset, data, len(data))

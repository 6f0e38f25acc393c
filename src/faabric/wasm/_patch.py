"""A fix for wasmtime-py 50.0.1: `SharedMemory` cannot be linked or sized.

Two ctypes mistakes in `wasmtime/_sharedmemory.py` pass a pointer-to-pointer where the C API
wants the pointer, so `Linker.define(..., shared_memory)` and `SharedMemory.size()` fail.
`apply()` replaces those two methods on the class, once, when `faabric.wasm` is imported. It
must not touch anything else in wasmtime; remove it when the upstream fix ships.
"""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

_MARK = "_faabric_patched"


def _as_extern(self: Any) -> Any:
    union = ffi.wasmtime_extern_union(sharedmemory=self.ptr())
    return ffi.wasmtime_extern_t(ffi.WASMTIME_EXTERN_SHAREDMEMORY, union)


def _size(self: Any) -> int:
    return int(ffi.wasmtime_sharedmemory_size(self.ptr()))


def apply() -> None:
    """Patch `wasmtime.SharedMemory` in place (idempotent)."""
    cls: Any = wasmtime.SharedMemory
    if getattr(cls, _MARK, False):
        return
    cls._as_extern = _as_extern
    cls.size = _size
    setattr(cls, _MARK, True)

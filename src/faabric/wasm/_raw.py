"""Thin wrappers over wasmtime's raw C bindings, for the hot and thread-sensitive paths.

wasmtime-py's `Linker.define_func` / `Func.__call__` cost 10-30 µs per call and pass Python
exceptions between threads through one module-global slot. The unchecked C API used here
costs 1-3 µs and returns traps as values, so concurrent granules cannot see each other's
errors. The calls made on every host call (finding the caller's store and memory) keep the
GIL instead of handing it to another thread and back. Nothing outside `faabric.wasm` may
use this module.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi

from faabric.wasm._store import NO_FINALIZER, keeping_gil
from faabric.wasm.host import GuestFault, GuestMemory, HostFunction

RawCallback = Callable[[Any, Any, Any, int], int]
# Short calls made on every host call or instance start: they keep the GIL (see _store).
_context_get_data = keeping_gil(bindings._wasmtime_context_get_data)
_caller_context = keeping_gil(bindings._wasmtime_caller_context)
_export_get = keeping_gil(bindings._wasmtime_instance_export_get)
_memory_data_size = keeping_gil(bindings._wasmtime_memory_data_size)
_shared_data = keeping_gil(bindings._wasmtime_sharedmemory_data)
_shared_data_size = keeping_gil(bindings._wasmtime_sharedmemory_data_size)
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}


def func_type(function: HostFunction) -> Any:
    """The wasmtime FuncType of a host function."""
    return wasmtime.FuncType(
        [_VALTYPES[kind]() for kind in function.params],
        [_VALTYPES[kind]() for kind in function.results],
    )


def new_trap(message: str) -> int:
    """A fresh wasm trap carrying `message`, as the address a raw callback returns."""
    text = message.encode(errors="replace")
    trap = ffi.wasmtime_trap_new(ctypes.create_string_buffer(text), len(text))
    address: int | None = ctypes.cast(trap, ctypes.c_void_p).value
    return address or 0


def define_unchecked(linker: Any, function: HostFunction, callback: Any, ty: Any) -> None:
    """Define `function` in `linker` with a raw callback (made by `make_callback`)."""
    module = function.module.encode()
    name = function.name.encode()
    error = bindings._wasmtime_linker_define_func_unchecked(
        linker.ptr(), module, len(module), name, len(name), ty.ptr(), callback, None,
        NO_FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def make_callback(function: HostFunction, dispatch: Callable[[Any, Any], Any]) -> Any:
    """Wrap `function.impl` as an unchecked wasmtime callback.

    `dispatch(caller, context)` returns the HostCall for the calling instance. Any exception
    becomes a trap whose message names the function; nothing propagates into wasmtime.
    """
    impl = function.impl
    label = function.qualified
    kinds = function.params
    result = function.results[0] if function.results else None

    def callback(env: Any, caller: Any, raw: Any, count: int) -> int:
        try:
            call = dispatch(caller, _caller_context(caller))
            args = [raw[i].i32 if kind == "i32" else raw[i].i64 for i, kind in enumerate(kinds)]
            value = impl(call, *args)
            if result == "i32":
                raw[0].i32 = int(value or 0)
            elif result == "i64":
                raw[0].i64 = int(value or 0)
            return 0
        except GuestFault as fault:
            return new_trap(f"{label}: {fault}")
        except BaseException as error:  # must not unwind into wasmtime
            return new_trap(f"{label} failed in the host: {error!r}")

    return bindings.wasmtime_func_unchecked_callback_t(callback)


def context_key(context: Any) -> int:
    """The integer faabric stored in a store's data slot (0 if none)."""
    value: Any = _context_get_data(context)
    return int(value or 0)


def _kind(item: Any) -> int:
    """An extern's kind as an int (ctypes reads the c_uint8 field as one; the stubs disagree)."""
    return int(item.kind)


@dataclass(frozen=True, slots=True)
class MemoryHandle:
    """An instance's exported memory, found once: wasmtime never moves a 32-bit memory (it
    reserves the whole 4 GiB range), so only its size must be read again on later calls."""

    item: Any  # wasmtime_extern_t holding the memory
    base: int

    def view(self, context: Any) -> GuestMemory:
        size = _memory_data_size(context, ctypes.byref(self.item.of.memory))
        return GuestMemory(self.base, int(size))


def caller_memory(caller: Any, context: Any) -> MemoryHandle:
    """The calling instance's exported (unshared) `memory`."""
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_caller_export_get(caller, b"memory", 6, ctypes.byref(item))
    if not found:
        raise GuestFault("the module does not export its memory")
    if _kind(item) != ffi.WASMTIME_EXTERN_MEMORY.value:
        ffi.wasmtime_extern_delete(ctypes.byref(item))
        raise GuestFault("the module's memory export is not a plain memory")
    memory = ctypes.byref(item.of.memory)
    base = ctypes.cast(ffi.wasmtime_memory_data(context, memory), ctypes.c_void_p).value
    return MemoryHandle(item, base or 0)


def shared_memory_view(shared: Any) -> GuestMemory:
    """A view of a SharedMemory as it is now."""
    base = ctypes.cast(_shared_data(shared.ptr()), ctypes.c_void_p).value
    return GuestMemory(base or 0, int(_shared_data_size(shared.ptr())))


def export_func(store: Any, instance: Any, name: str) -> Any | None:
    """The exported function `name` of `instance` (a raw `wasmtime_instance_t`), or None."""
    item = ffi.wasmtime_extern_t()
    raw_name = name.encode()
    found = _export_get(store._context(), ctypes.byref(instance), raw_name, len(raw_name),
                        ctypes.byref(item))
    if not found:
        return None
    if _kind(item) != ffi.WASMTIME_EXTERN_FUNC.value:
        ffi.wasmtime_extern_delete(ctypes.byref(item))
        return None
    return item.of.func


def caller_call(caller: Any, context: Any, name: str, *args: int) -> bool:
    """Call the calling instance's exported function `name` with i32 `args` and no results,
    from inside a host call; False if it exports no such function.

    Raises:
        wasmtime.Trap, wasmtime.WasmtimeError: the call failed.
    """
    item = ffi.wasmtime_extern_t()
    raw_name = name.encode()
    if not ffi.wasmtime_caller_export_get(caller, raw_name, len(raw_name), ctypes.byref(item)):
        return False
    if _kind(item) != ffi.WASMTIME_EXTERN_FUNC.value:
        ffi.wasmtime_extern_delete(ctypes.byref(item))
        return False
    slots = (ffi.wasmtime_val_raw_t * max(1, len(args)))()
    for i, value in enumerate(args):
        slots[i].i32 = value
    _call_in(context, item.of.func, slots)
    return True


def export_memory_address(store: Any, instance: Any, name: str) -> int | None:
    """Where the exported (unshared) memory `name` of `instance` (a raw
    `wasmtime_instance_t`) starts in the host's address space, or None if there is none."""
    item = ffi.wasmtime_extern_t()
    raw_name = name.encode()
    context = store._context()
    found = _export_get(context, ctypes.byref(instance), raw_name, len(raw_name),
                        ctypes.byref(item))
    if not found:
        return None
    if _kind(item) != ffi.WASMTIME_EXTERN_MEMORY.value:
        ffi.wasmtime_extern_delete(ctypes.byref(item))
        return None
    base = ctypes.cast(ffi.wasmtime_memory_data(context, ctypes.byref(item.of.memory)),
                       ctypes.c_void_p).value
    return base or None


def call_i32_arg(store: Any, func: Any, value: int) -> None:
    """Call a `(i32) -> ()` function (the caller checked the type); raise as wasmtime-py does."""
    slots = (ffi.wasmtime_val_raw_t * 1)()
    slots[0].i32 = value
    _call(store, func, slots)


def call_no_args(store: Any, func: Any) -> None:
    """Call a `() -> ()` function; raise ExitTrap / Trap / WasmtimeError as wasmtime-py does."""
    _call(store, func, (ffi.wasmtime_val_raw_t * 1)())


def _call(store: Any, func: Any, slots: Any) -> None:
    _call_in(store._context(), func, slots)


def _call_in(context: Any, func: Any, slots: Any) -> None:
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_func_call_unchecked(
        context, ctypes.byref(func), slots, len(slots), ctypes.byref(trap)
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)

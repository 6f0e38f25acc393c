"""Making the Store of one instance, and instantiating into it, through wasmtime's raw C API.

An instance's store needs a WASI context (argv, environment, stdout and stderr files), a
memory limit and faabric's data key. wasmtime-py spends about fifteen
ctypes calls on that, and ctypes releases and re-takes the GIL around each one: with several
slot threads in one process, every call can become a hand-off to another thread. Here the
short calls (microseconds, never calling back into Python) go through prototypes that keep
the GIL, argv and environment arrays are built once per distinct spec (`WasiArgs`), and the
result is an ordinary `wasmtime.Store`. Calls that may take long — instantiation, running
the guest, deleting a store — still release the GIL. Nothing outside faabric.wasm may use
this module; it must not know what a granule or a host function is.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import wasmtime
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi

NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_UNLIMITED = -1


def keeping_gil(function: Any) -> Any:
    """The same C function, called without releasing the GIL (for short calls only)."""
    prototype = ctypes.PYFUNCTYPE(function.restype, *function.argtypes)
    address = ctypes.cast(function, ctypes.c_void_p).value
    if address is None:
        raise ImportError(f"wasmtime has no {function.__name__}")
    return prototype(address)


_store_new = keeping_gil(bindings._wasmtime_store_new)
_store_context = keeping_gil(bindings._wasmtime_store_context)
_store_limiter = keeping_gil(bindings._wasmtime_store_limiter)
_config_new = keeping_gil(bindings._wasi_config_new)
_config_delete = keeping_gil(bindings._wasi_config_delete)
_set_argv = keeping_gil(bindings._wasi_config_set_argv)
_set_env = keeping_gil(bindings._wasi_config_set_env)
_set_stdout = keeping_gil(bindings._wasi_config_set_stdout_file)
_set_stderr = keeping_gil(bindings._wasi_config_set_stderr_file)
_set_wasi = keeping_gil(bindings._wasmtime_context_set_wasi)
_pre_instantiate = bindings._wasmtime_instance_pre_instantiate  # may take long: releases


class _Strings:
    """A C array of NUL-terminated strings, kept alive as long as this object."""

    def __init__(self, strings: Sequence[str]) -> None:
        self._encoded = [s.encode() for s in strings]
        array = (ctypes.c_char_p * len(self._encoded))(*self._encoded)
        self._array = array
        self.count = len(self._encoded)
        self.pointer = ctypes.cast(array, ctypes.POINTER(ctypes.POINTER(ctypes.c_char)))


class WasiArgs:
    """A run's WASI argv and environment as C arrays, built once, reused by every store."""

    def __init__(self, argv: Sequence[str], env: Sequence[tuple[str, str]]) -> None:
        self._argv = _Strings(argv)
        self._names = _Strings([name for name, _ in env])
        self._values = _Strings([value for _, value in env])

    def configure(self, config: Any) -> None:
        if not _set_argv(config, self._argv.count, self._argv.pointer):
            raise wasmtime.WasmtimeError("failed to configure argv")
        if not _set_env(config, self._names.count, self._names.pointer, self._values.pointer):
            raise wasmtime.WasmtimeError("failed to configure environment")


def _wasi_config(args: WasiArgs, stdout: bytes, stderr: bytes) -> Any:
    config = _config_new()
    try:
        args.configure(config)
        if not _set_stdout(config, stdout):
            raise wasmtime.WasmtimeError("failed to set stdout file")
        if not _set_stderr(config, stderr):
            raise wasmtime.WasmtimeError("failed to set stderr file")
    except BaseException:
        _config_delete(config)
        raise
    return config


def new_store(
    engine: Any, key: int, args: WasiArgs, outputs: tuple[bytes, bytes], memory_limit: int,
) -> Any:
    """A `wasmtime.Store` whose data is `key`, with WASI writing stdout and stderr to the
    two paths of `outputs`, and `memory_limit` bytes of linear memory at most."""
    config = _wasi_config(args, *outputs)
    ptr = _store_new(engine.ptr(), key, NO_FINALIZER)
    store: Any = wasmtime.Store.__new__(wasmtime.Store)
    store._set_ptr(ptr)  # from here on the wrapper deletes the store when it is dropped
    context = _store_context(ptr)
    store._Store__context = context
    store.engine = engine
    error = _set_wasi(context, config)  # takes the config, even when it fails
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    _store_limiter(ptr, memory_limit, _UNLIMITED, _UNLIMITED, _UNLIMITED, _UNLIMITED)
    return store


def instantiate(pre: Any, store: Any) -> Any:
    """Instantiate an `InstancePre` in `store`; returns the raw `wasmtime_instance_t`.

    Raises:
        wasmtime.Trap: the module's start function trapped.
        wasmtime.WasmtimeError: instantiation failed (or the start function exited).
    """
    instance = ffi.wasmtime_instance_t()
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = _pre_instantiate(pre.ptr(), store._context(), ctypes.byref(instance),
                             ctypes.byref(trap))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)
    return instance

"""Running one instance of a compiled module to completion: the granule's sandbox.

A `Launcher` owns one Linker (WASI plus the host functions it was given, defined once through
wasmtime's raw API) and an `InstancePre` per module, so starting an instance costs a Store, a
WASI context and the instantiation itself. Per-instance host state is found through the
store's data slot. `run` turns everything the guest does into an `Outcome`; it raises only for
faabric's own bugs. This module must not know what the host functions mean (faabric.abi does)
or who asked for the run (faabric.granule does).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from faabric.errors import FaabricError, ModuleError
from faabric.messages.types import Exited, Failed, Outcome, TimedOut, Trapped
from faabric.wasm import _raw
from faabric.wasm.cache import ENTRY_POINT, LoadedModule
from faabric.wasm.capture import OUTPUT_LIMIT, MemoryFile
from faabric.wasm.engine import WasmEngine
from faabric.wasm.host import GuestMemory, HostFunction

WASI_MODULE = "wasi_snapshot_preview1"
PAGE = 65536
_NUMBERED = re.compile(r"^\d+:\s*")
DEFAULT_LIMIT = 1 << 30


@dataclass(frozen=True, slots=True)
class RunSpec:
    """How to run one instance: WASI argv/env, wall-clock timeout, memory limit in bytes."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    timeout: float = 300.0
    memory_limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class RunResult:
    """How the instance ended and what it wrote to stdout and stderr."""

    outcome: Outcome
    stdout: bytes
    stderr: bytes


@dataclass(slots=True)
class _Live:
    """A running instance as its host functions see it (implements host.HostCall)."""

    state: object
    shared: Any = None
    caller: Any = field(default=None)
    context: Any = field(default=None)

    def memory(self) -> GuestMemory:
        if self.shared is not None:
            return _raw.shared_memory_view(self.shared)
        return _raw.caller_memory(self.caller, self.context)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A module checked against the linker: its InstancePre, or None if it imports shared
    memory (each run then links its own memory)."""

    pre: Any


class Launcher:
    """Instantiates modules with WASI and `functions`, and runs their `_start`."""

    def __init__(
        self, engine: WasmEngine, functions: Sequence[HostFunction],
        output_limit: int = OUTPUT_LIMIT,
    ) -> None:
        self._engine = engine
        self.output_limit = output_limit
        self._functions = tuple(functions)
        self._provided = {(f.module, f.name) for f in self._functions}
        self._live: dict[int, _Live] = {}
        self._keys = itertools.count(1)
        self._bindings = [
            (f, _raw.make_callback(f, self._dispatch), _raw.func_type(f)) for f in self._functions
        ]
        self._linker = self._new_linker()
        self._prepared: dict[str, _Prepared] = {}
        self._lock = threading.Lock()

    def _new_linker(self) -> Any:
        linker = wasmtime.Linker(self._engine.wasmtime)
        linker.define_wasi()
        for function, callback, ty in self._bindings:
            _raw.define_unchecked(linker, function, callback, ty)
        return linker

    def _dispatch(self, caller: Any, context: Any) -> _Live:
        live = self._live[_raw.context_key(context)]
        live.caller = caller
        live.context = context
        return live

    def run(self, module: LoadedModule, spec: RunSpec, state: object) -> RunResult:
        """Run `module`'s `_start` in a fresh sandbox; `state` is what host functions see."""
        stdout, stderr = MemoryFile("stdout"), MemoryFile("stderr")
        try:
            try:
                outcome = self._run(module, spec, _Live(state), stdout, stderr)
            except FaabricError as error:
                outcome = Failed(str(error))
            limit = self.output_limit
            return RunResult(outcome, stdout.read(limit), stderr.read(limit))
        finally:
            stdout.close()
            stderr.close()

    def _run(
        self, module: LoadedModule, spec: RunSpec, live: _Live, out: MemoryFile,
        err: MemoryFile,
    ) -> Outcome:
        pre = self._prepare(module)
        store = wasmtime.Store(self._engine.wasmtime)
        wasi = wasmtime.WasiConfig()
        wasi.argv = list(spec.argv)
        wasi.env = [list(pair) for pair in spec.env]
        wasi.stdout_file = out.path
        wasi.stderr_file = err.path
        store.set_wasi(wasi)
        store.set_limits(memory_size=spec.memory_limit)
        key = next(self._keys)
        _raw.set_context_key(store, key)
        self._live[key] = live
        try:
            store.set_epoch_deadline(self._engine.ticks_for(spec.timeout))
            return self._execute(module, pre, store, spec, live, err)
        finally:
            del self._live[key]

    def _execute(
        self, module: LoadedModule, pre: Any, store: Any, spec: RunSpec, live: _Live,
        err: MemoryFile,
    ) -> Outcome:
        try:
            if pre is None:
                instance = self._instantiate_shared(module, store, spec, live)
            else:
                instance = pre.instantiate(store)
        except wasmtime.Trap as trap:
            return _ended(trap, spec, err)
        except wasmtime.WasmtimeError as error:
            return Failed(f"the module cannot be instantiated: {cause_of(str(error))}")
        start = _raw.export_func(store, instance, ENTRY_POINT)
        if start is None:
            return Failed(f"the module has no {ENTRY_POINT} entry point")
        try:
            _raw.call_no_args(store, start)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as ended:
            return _ended(ended, spec, err)
        return Exited(0)

    def _instantiate_shared(
        self, module: LoadedModule, store: Any, spec: RunSpec, live: _Live
    ) -> Any:
        wanted = module.shared_memory
        assert wanted is not None
        limit_pages = spec.memory_limit // PAGE
        maximum = limit_pages if wanted.maximum is None else min(wanted.maximum, limit_pages)
        if wanted.minimum > maximum:
            raise ModuleError(
                f"the module needs {wanted.minimum * PAGE} bytes of memory, more than its limit"
                f" of {spec.memory_limit}"
            )
        memory_type = wasmtime.MemoryType(wasmtime.Limits(wanted.minimum, maximum), shared=True)
        live.shared = wasmtime.SharedMemory(self._engine.wasmtime, memory_type)
        linker = self._new_linker()
        linker.define(store, "env", "memory", live.shared)
        return linker.instantiate(store, module.handle)

    def _prepare(self, module: LoadedModule) -> Any:
        """The module's InstancePre (None for a shared-memory module); ModuleError if unlinkable."""
        found = self._prepared.get(module.digest)
        if found is None:
            with self._lock:
                found = self._prepared.get(module.digest)
                if found is None:
                    found = _Prepared(self._link(module))
                    self._prepared[module.digest] = found
        return found.pre

    def _link(self, module: LoadedModule) -> Any:
        for item in module.imports:
            if item.module == WASI_MODULE or (item.module, item.name) in self._provided:
                continue
            if module.shared_memory is not None and item.qualified == "env.memory":
                continue
            raise ModuleError(
                f"the module imports {item.qualified}, which faabric does not provide"
            )
        if module.shared_memory is not None:
            return None
        try:
            return self._linker.instantiate_pre(module.handle)
        except wasmtime.WasmtimeError as error:
            raise ModuleError(f"the module cannot be linked: {cause_of(str(error))}") from None


def _ended(error: Exception, spec: RunSpec, err: MemoryFile) -> Outcome:
    """The outcome of a call that ended in an error: exit, timeout or trap.

    Traps raised by host functions reach us as plain WasmtimeErrors; they count as traps.
    """
    if isinstance(error, wasmtime.ExitTrap):
        return Exited(error.code)
    text = str(error)
    if isinstance(error, wasmtime.Trap) and error.trap_code == wasmtime.TrapCode.INTERRUPT:
        return TimedOut(spec.timeout)
    err.append_note(f"\n[faabric] {text.strip()}\n")
    return Trapped(cause_of(text))


def cause_of(message: str) -> str:
    """The one line that says what went wrong in a multi-line wasmtime error or trap."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    if "Caused by:" in lines:
        causes = lines[lines.index("Caused by:") + 1 :]
        if causes:
            return _NUMBERED.sub("", causes[-1])
    return lines[0]

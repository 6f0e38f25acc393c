"""Running one instance of a compiled module to completion: the granule's sandbox.

A `Launcher` owns one Linker (WASI plus the host functions it was given, defined once through
wasmtime's raw API) and an `InstancePre` per module, so starting an instance costs a Store, a
WASI context and the instantiation itself (made by `_store`, with argv/env arrays cached per
spec and stdout/stderr memfds reused from run to run). Per-instance host state is found
through the store's data slot. A `Watchdog` asks each instance's `Watch` once a slice
whether it goes on (cancellation, timeout, its team ending) and, if not, raises the instance's
stop flag: it traps at its next function entry or loop iteration (stopcheck.py). A thread-capable
module's run gets a `Team`, so the guest can start threads on its shared memory. `run` turns
everything the guest does into an `Outcome`; it raises only for faabric's own bugs. This
module must not know what the host functions mean (faabric.abi does) or who asked for the
run (faabric.granule does).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import wasmtime

from faabric.errors import FaabricError, ModuleError
from faabric.messages.types import Cancelled, Exited, Failed, Outcome, TimedOut, Trapped
from faabric.wasm import _raw, _store, suspend
from faabric.wasm._live import (
    DEFAULT_LIMIT,
    PAGE,
    Output,
    RunSpec,
    _Granule,
    _Live,
    _SharedAccess,
    cause_of,
)
from faabric.wasm.cache import ENTRY_POINT, LoadedModule
from faabric.wasm.capture import OUTPUT_LIMIT, CapturePool, OutputTap, PipeFile
from faabric.wasm.engine import WasmEngine
from faabric.wasm.host import GuestFault, HostFunction, SharedMemoryAccess
from faabric.wasm.interrupt import (
    DEFAULT_SLICE,
    Cancellation,
    CancelRequested,
    Clock,
    DeadlinePassed,
    TeamStopped,
    Verdict,
    Watch,
    Watchdog,
)
from faabric.wasm.stopcheck import START_EXPORT, STOP_EXPORT, raise_stop
from faabric.wasm.suspend import Suspended
from faabric.wasm.team import Member, Team

__all__ = ["DEFAULT_LIMIT", "Launcher", "RunResult", "RunSpec", "cause_of"]

WASI_MODULE = "wasi_snapshot_preview1"
ARGS_MEMORY = 256  # distinct argv/environment pairs whose WASI arrays are kept


@dataclass(frozen=True, slots=True)
class RunResult:
    """How the instance ended (or that it was suspended inside a host call, to be resumed
    elsewhere) and what it wrote to stdout and stderr: at most the launcher's output limit
    of each, `truncated` if either had more (the rest was dropped)."""

    outcome: Outcome | Suspended
    stdout: bytes
    stderr: bytes
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A module checked against the linker: its InstancePre, or None if it imports shared
    memory (each run then links its own memory)."""

    pre: Any


class Launcher:
    """Instantiates modules with WASI and `functions`, and runs their `_start`."""

    def __init__(
        self, engine: WasmEngine, functions: Sequence[HostFunction],
        output_limit: int = OUTPUT_LIMIT, *, slice_seconds: float = DEFAULT_SLICE,
        clock: Clock = time.monotonic,
    ) -> None:
        self._engine = engine
        self.output_limit = output_limit
        self._slice = slice_seconds
        self._clock = clock
        self._functions = tuple(functions)
        self._provided = {(f.module, f.name) for f in self._functions}
        self._live: dict[int, _Live] = {}
        self._keys = itertools.count(1)
        self._bindings = [
            (f, _raw.make_callback(f, self._dispatch), _raw.func_type(f)) for f in self._functions
        ]
        self._watchdog = Watchdog(slice_seconds)
        self._linker = self._new_linker()
        self._prepared: dict[str, _Prepared] = {}
        self._lock = threading.Lock()
        self._captures = CapturePool()
        self._args: dict[tuple[object, ...], _store.WasiArgs] = {}
        self._no_team = threading.Event()  # never set: the team_stop of runs without threads
        self._movables: dict[str, bool] = {}  # module digest -> whether it can be suspended

    def _new_linker(self) -> Any:
        linker = wasmtime.Linker(self._engine.wasmtime)
        linker.define_wasi()
        linker.allow_shadowing = True  # host functions may replace WASI's (e.g. its clocks)
        for function, callback, ty in self._bindings:
            _raw.define_unchecked(linker, function, callback, ty)
        return linker

    def _dispatch(self, caller: Any, context: Any) -> _Live:
        live = self._live[_raw.context_key(context)]
        live.caller = caller
        live.context = context
        return live

    def _guard(self, key: int, store: Any, instance: Any, live: _Live) -> None:
        """Have the watchdog stop this instance (a raw `wasmtime_instance_t`) when its watch
        says so: the verdict is noted, then its stop flag raised."""
        address = _raw.export_memory_address(store, instance, STOP_EXPORT)
        if address is None:
            raise ModuleError(f"the module has no {STOP_EXPORT} memory (it was not compiled "
                              "by faabric.wasm.cache)")

        def stop(verdict: Verdict) -> None:
            live.verdict = verdict
            raise_stop(address)

        self._watchdog.watch(key, live.granule.watch, stop)

    def _release(self, key: int) -> None:
        """Forget a store's instance: from now on nothing stops it or finds it."""
        self._watchdog.forget(key)
        self._live.pop(key, None)

    def run(
        self, module: LoadedModule, spec: RunSpec, state: object,
        before_release: Callable[[], None] | None = None, *,
        cancel: Cancellation | None = None, resume: Suspended | None = None,
        tap: OutputTap | None = None,
    ) -> RunResult:
        """Run `module`'s `_start` in a fresh sandbox; `state` is what host functions see.

        `before_release` is called once the guest has stopped but while its memory still
        exists, so that other threads holding pointers into it can let go of them. Cancelling
        `cancel` stops the run within about one slice; its outcome is then `Cancelled`. With
        `resume`, the instance carries on from where that suspended one stopped. `tap`
        follows the run's stdout and stderr while it goes on.
        """
        threaded = module.shared_memory is not None
        pair = None if threaded else self._captures.take()
        stdout: Output
        stderr: Output
        stdout, stderr = (PipeFile("stdout"), PipeFile("stderr")) if pair is None else pair
        watch = Watch(self._clock() + spec.timeout, cancel or Cancellation(),
                      threading.Event() if threaded else self._no_team, self._clock,
                      self._slice)
        granule = _Granule(module, spec, state, watch, stdout, stderr, self._wasi_args(spec),
                           movable=self._movable(module), resume=resume)
        if tap is not None:
            tap.attach(stdout, stderr)
        try:
            outcome: Outcome | Suspended
            try:
                outcome = self._run(granule, before_release)
            except FaabricError as error:
                outcome = Failed(str(error))
            return _collect(outcome, stdout, stderr, self.output_limit)
        finally:
            if tap is not None:  # after _collect drained the pipes, before the files go
                tap.detach()
            if pair is None:
                stdout.close()
                stderr.close()
            else:
                self._captures.give_back(pair)

    def run_members(
        self, module: LoadedModule, spec: RunSpec, state: object, size: int,
        restore: Callable[[SharedMemoryAccess], None], members: Sequence[tuple[int, int, int]],
        before_release: Callable[[], None], *, cancel: Cancellation,
    ) -> RunResult:
        """Run threads of a thread-capable module without its `_start`: a fresh shared memory
        of `size` bytes is filled by `restore`, then each (function, arg, stack top) of
        `members` runs on its own thread. Ends when all have returned (or one failed);
        `before_release` sees the memory after the threads stopped."""
        if module.shared_memory is None:
            return RunResult(Failed("the module is not thread-capable"), b"", b"")
        stdout, stderr = PipeFile("stdout"), PipeFile("stderr")
        watch = Watch(self._clock() + spec.timeout, cancel, threading.Event(), self._clock,
                      self._slice)
        granule = _Granule(module, spec, state, watch, stdout, stderr, self._wasi_args(spec))
        store, key = self._new_store(_Live(granule))  # only to define the memory in
        try:
            try:
                self._prepare(module)
                team = self._share_memory(granule, size)
                granule.linker.define(store, "env", "memory", granule.shared)
                restore(_SharedAccess(granule))
                for function, arg, stack_top in members:
                    team.spawn(function, arg, stack_top)
                outcome = team.wait_all(watch, spec.timeout) or Exited(0)
                before_release()
            except (FaabricError, GuestFault) as error:
                outcome = Failed(str(error))
            finally:
                if granule.team is not None:
                    granule.team.stop_all()
            # One byte past the limit is kept: the output of these threads is added to their
            # granule's, so that the granule's own stream overflows and reports the truncation.
            return _collect(outcome, stdout, stderr, self.output_limit + 1)
        finally:
            del self._live[key]
            stdout.close()
            stderr.close()

    def _wasi_args(self, spec: RunSpec) -> _store.WasiArgs:
        """The WASI argv/environment arrays of `spec`, built once per distinct pair."""
        key = (spec.argv, spec.env)
        found = self._args.get(key)
        if found is None:
            if len(self._args) >= ARGS_MEMORY:
                self._args.clear()
            found = self._args[key] = _store.WasiArgs(spec.argv, spec.env)
        return found

    def _movable(self, module: LoadedModule) -> bool:
        found = self._movables.get(module.digest)
        if found is None:
            found = self._movables[module.digest] = suspend.is_movable(module.handle)
        return found

    def _run(
        self, granule: _Granule, before_release: Callable[[], None] | None
    ) -> Outcome | Suspended:
        pre = self._prepare(granule.module)
        live = _Live(granule)
        store, key = self._new_store(live)
        outcome: Outcome | Suspended | None = None
        try:
            outcome = self._execute(pre, store, key, live)
        finally:
            if granule.team is not None:
                granule.team.stop_all()
            self._release(key)
            if before_release is not None:
                before_release()
        team = granule.team
        if team is None:
            assert outcome is not None
            return outcome
        if isinstance(outcome, Suspended):
            return Failed("a thread-capable module cannot be suspended")
        if outcome is not None:
            team.conclude(outcome)
        return team.outcome or Exited(0)

    def _new_store(self, live: _Live) -> tuple[Any, int]:
        """A store for one instance of the run, with WASI and limits."""
        granule = live.granule
        key = next(self._keys)
        outputs = (granule.out.path.encode(), granule.err.path.encode())
        store = _store.new_store(
            self._engine.wasmtime, key, granule.args, outputs, granule.spec.memory_limit
        )
        self._live[key] = live
        return store, key

    def _execute(
        self, pre: Any, store: Any, key: int, live: _Live
    ) -> Outcome | Suspended | None:
        """Instantiate and run `_start` in the main instance (or resume the granule's
        suspended one); None if its team stopped it."""
        granule = live.granule
        try:
            if pre is None:
                instance = self._instantiate_shared(store, granule)._instance
            else:
                instance = _store.instantiate(pre, store)
        except wasmtime.Trap as trap:
            return self._ended(trap, live)
        except wasmtime.WasmtimeError as error:
            return Failed(f"the module cannot be instantiated: {cause_of(str(error))}")
        start = _raw.export_func(store, instance, ENTRY_POINT)
        if start is None:
            return Failed(f"the module has no {ENTRY_POINT} entry point")
        self._guard(key, store, instance, live)
        try:
            _call_start(store, instance)
            if granule.resume is not None:
                suspend.restore(store, instance, granule.resume)
                live.rewinding = True
            _raw.call_no_args(store, start)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as ended:
            return self._ended(ended, live)
        except GuestFault as fault:
            return Failed(str(fault))
        if live.suspended_at is not None:
            try:
                return suspend.capture(store, instance, live.suspended_at)
            except wasmtime.Trap:  # asyncify found its area overrun
                return Trapped(f"the call stack at the migration point does not fit its "
                               f"{live.suspended_size} byte unwind area")
        return Exited(0)

    def _ended(self, error: BaseException, live: _Live) -> Outcome | None:
        """How an instance's call that ended in an error ends the granule (None: it does not).

        Traps raised by host functions reach us as plain WasmtimeErrors; they count as traps.
        """
        granule = live.granule
        match live.verdict:
            case CancelRequested(reason):
                return Cancelled(reason)
            case DeadlinePassed():
                return TimedOut(granule.spec.timeout)
            case TeamStopped():
                return None
        if isinstance(error, wasmtime.ExitTrap):
            return Exited(error.code)
        if live.thread_exit:
            return None if live.number else Exited(0)
        text = str(error)
        if isinstance(error, wasmtime.Trap) and error.trap_code == wasmtime.TrapCode.INTERRUPT:
            return TimedOut(granule.spec.timeout)
        who = f"thread {live.number} trapped: " if live.number else ""
        granule.err.append_note(f"\n[faabric] {who}{text.strip()}\n")
        return Trapped(who + cause_of(text))

    def _instantiate_shared(self, store: Any, granule: _Granule) -> Any:
        self._share_memory(granule, 0)
        granule.linker.define(store, "env", "memory", granule.shared)
        return granule.linker.instantiate(store, granule.module.handle)

    def _share_memory(self, granule: _Granule, size: int) -> Team:
        """Make the granule's shared memory (at least `size` bytes), linker and team."""
        wanted = granule.module.shared_memory
        assert wanted is not None
        spec = granule.spec
        limit_pages = spec.memory_limit // PAGE
        maximum = limit_pages if wanted.maximum is None else min(wanted.maximum, limit_pages)
        minimum = max(wanted.minimum, -(-size // PAGE))
        if minimum > maximum:
            raise ModuleError(
                f"the module needs {minimum * PAGE} bytes of memory, more than its limit"
                f" of {spec.memory_limit}"
            )
        memory_type = wasmtime.MemoryType(wasmtime.Limits(minimum, maximum), shared=True)
        granule.shared = wasmtime.SharedMemory(self._engine.wasmtime, memory_type)
        granule.linker = self._new_linker()
        granule.team = Team(
            lambda number: self._new_member(granule, number), granule.watch.team_stop
        )
        return granule.team

    def _new_member(self, granule: _Granule, number: int) -> Member:
        """A thread's instance of the granule's module, on its shared memory."""
        live = _Live(granule, number)
        store, key = self._new_store(live)
        try:
            instance = granule.linker.instantiate(store, granule.module.handle)
            self._guard(key, store, instance._instance, live)
            _call_start(store, instance._instance)
        except BaseException:
            self._release(key)
            raise
        return Member(store, instance, lambda error: self._thread_ended(error, live),
                      lambda: self._release(key))

    def _thread_ended(self, error: BaseException | None, live: _Live) -> Outcome | None:
        if error is None:
            return None
        if isinstance(error, (wasmtime.Trap, wasmtime.WasmtimeError)):
            return self._ended(error, live)
        if isinstance(error, GuestFault):
            return Trapped(f"thread {live.number} trapped: {error}")
        return Failed(f"thread {live.number} failed in faabric: {error}")

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


def _call_start(store: Any, instance: Any) -> None:
    """Run the module's start function (exported by stopcheck.py), if it has one."""
    start = _raw.export_func(store, instance, START_EXPORT)
    if start is not None:
        _raw.call_no_args(store, start)


def _collect(outcome: Outcome | Suspended, stdout: Output, stderr: Output,
             limit: int) -> RunResult:
    out, err = stdout.read(limit), stderr.read(limit)
    return RunResult(outcome, out.data, err.data, truncated=bool(out.dropped or err.dropped))

"""Stop checks: every module gets a stop memory and a check at each function entry and loop,
and a running instance is stopped through it (timeouts, cancellation) with no epochs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import wasmtime

from faabric.messages.types import Cancelled, Exited, TimedOut
from faabric.wasm import Cancellation, Launcher, ModuleCache, RunSpec, WasmEngine
from faabric.wasm.interrupt import DeadlinePassed, Verdict, Watch, Watchdog
from faabric.wasm.stopcheck import START_EXPORT, STOP_EXPORT, add_stop_checks, check_code

SPIN = '(module (func (export "_start") (loop $l (br $l))))'
TAIL_RECURSION = '(module (func $f (export "_start") (return_call $f)))'
SPIN_IN_START = """(module (func $s (loop $l (br $l))) (start $s) (func (export "_start")))"""
START_SETS_MEMORY = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $init (i32.store (i32.const 0) (i32.const 7)))
  (start $init)
  (func (export "_start") (call $exit (i32.load (i32.const 0)))))"""


def _run(engine: WasmEngine, modules: ModuleCache, data: bytes, spec: RunSpec,
         cancel: Cancellation | None = None) -> object:
    launcher = Launcher(engine, (), slice_seconds=0.05)
    return launcher.run(modules.get(modules.add(data)), spec, None, cancel=cancel).outcome


def test_checks_go_at_function_entries_and_loop_heads() -> None:
    plain = wasmtime.wat2wasm('(module (memory 1) (func (export "f") (loop (loop (nop)))) '
                              '(func (export "g")))')
    checked = add_stop_checks(plain)
    assert checked.count(check_code(1)) == 4  # 2 functions + 2 loops; memory 1 is the stop one
    module = wasmtime.Module(wasmtime.Engine(), checked)
    exports = {item.name: item.type for item in module.exports}
    assert isinstance(exports[STOP_EXPORT], wasmtime.MemoryType)
    assert START_EXPORT not in exports


def test_a_module_that_exports_the_stop_name_is_refused() -> None:
    taken = wasmtime.wat2wasm(f'(module (memory (export "{STOP_EXPORT}") 1))')
    with pytest.raises(ValueError, match=STOP_EXPORT):
        add_stop_checks(taken)


@pytest.mark.parametrize("text", [SPIN, TAIL_RECURSION, SPIN_IN_START])
def test_code_without_host_calls_times_out(
    engine: WasmEngine, modules: ModuleCache, text: str
) -> None:
    outcome = _run(engine, modules, wasmtime.wat2wasm(text), RunSpec(("spin",), timeout=0.2))
    assert outcome == TimedOut(0.2)


def test_a_start_function_still_runs_before_start(
    engine: WasmEngine, modules: ModuleCache
) -> None:
    outcome = _run(engine, modules, wasmtime.wat2wasm(START_SETS_MEMORY), RunSpec(("s",)))
    assert outcome == Exited(7)


def test_a_pure_compute_loop_is_cancelled(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    cancel = Cancellation()
    timer = threading.Timer(0.2, cancel.cancel, ("by client",))
    timer.start()
    try:
        outcome = _run(engine, modules, guests["loop"], RunSpec(("loop",), timeout=30), cancel)
    finally:
        timer.cancel()
    assert outcome == Cancelled("by client")


def _watch(seconds: float, slice_seconds: float) -> Watch:
    return Watch(time.monotonic() + seconds, Cancellation(), threading.Event(), time.monotonic,
                 slice_seconds)


def test_the_watchdog_wakes_early_for_a_watch_due_before_its_next_round() -> None:
    watchdog = Watchdog(slice_seconds=5.0)
    stopped: list[tuple[int, object]] = []
    done = threading.Event()

    def stop(key: int) -> Callable[[Verdict], None]:
        return lambda verdict: (stopped.append((key, verdict)), done.set())

    watchdog.watch(1, _watch(100.0, 5.0), stop(1))
    time.sleep(0.05)  # the thread now sleeps a full 5 s round
    started = time.monotonic()
    watchdog.watch(2, _watch(0.05, 5.0), stop(2))
    assert done.wait(2.0)
    assert time.monotonic() - started < 1.0
    assert stopped == [(2, DeadlinePassed())]
    watchdog.forget(1)


def test_relaxed_simd_is_decoded() -> None:
    relaxed = wasmtime.wat2wasm(
        '(module (func (export "f") (param v128 v128 v128) (result v128) (loop) '
        "(f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))))")
    assert add_stop_checks(relaxed).count(check_code(0)) == 2  # entry + loop; no memory before

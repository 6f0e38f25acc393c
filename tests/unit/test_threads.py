"""Threads of a granule and interrupting running wasm: how a threaded granule ends,
cancellation within a slice, timeouts, and the slice verdicts themselves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faabric.abi import FAABRIC_FUNCTIONS
from faabric.messages.types import Cancelled, Exited, Failed, TimedOut, Trapped
from faabric.threads import ThreadPolicy, thread_functions
from faabric.toolchain import build
from faabric.wasm import Cancellation, Launcher, ModuleCache, RunSpec, WasmEngine
from faabric.wasm.interrupt import CancelRequested, DeadlinePassed, TeamStopped, Watch
from faabric.wasm.launcher import RunResult

GUESTS = Path(__file__).resolve().parent.parent / "guests"
THREADED = {"pthread_ends": ("-pthread",), "omp_unsupported": ("-fopenmp",)}


@pytest.fixture(scope="module")
def threaded(guest_dir: Path) -> dict[str, bytes]:
    return {
        name: build(GUESTS / f"{name}.c", flags=flags, cache_dir=guest_dir).read_bytes()
        for name, flags in THREADED.items()
    }


@pytest.fixture
def launcher(engine: WasmEngine) -> Iterator[Launcher]:
    yield Launcher(engine, (*FAABRIC_FUNCTIONS, *thread_functions(ThreadPolicy(2))))


def _run(
    launcher: Launcher, modules: ModuleCache, data: bytes, spec: RunSpec,
    cancel: Cancellation | None = None,
) -> RunResult:
    return launcher.run(modules.get(modules.add(data)), spec, None, cancel=cancel)


def test_a_trapping_thread_fails_the_granule_by_number(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    result = _run(launcher, modules, threaded["pthread_ends"], RunSpec(("t", "trap")))
    assert result.outcome == Trapped("thread 1 trapped: wasm trap: out of bounds memory access")
    assert b"thread 1 trapped" in result.stderr


def test_exit_in_a_thread_ends_the_granule(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    result = _run(launcher, modules, threaded["pthread_ends"], RunSpec(("t", "exit")))
    assert result.outcome == Exited(3)


def test_returning_from_main_stops_running_threads(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    started = time.monotonic()
    result = _run(launcher, modules, threaded["pthread_ends"], RunSpec(("t", "return")))
    assert result.outcome == Exited(0)
    assert result.stdout == b"main returns\n"
    assert time.monotonic() - started < 1.0


def test_pthread_exit_in_main_waits_for_the_other_threads(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    result = _run(launcher, modules, threaded["pthread_ends"], RunSpec(("t", "mainexit")))
    assert (result.outcome, result.stdout) == (Exited(0), b"thread still ran\n")


def test_cancel_stops_every_thread_within_a_slice(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    cancel = Cancellation()
    cancelled_at: list[float] = []

    def cancel_soon() -> None:
        time.sleep(0.3)
        cancelled_at.append(time.monotonic())
        cancel.cancel("the app was stopped")

    threading.Thread(target=cancel_soon).start()
    result = _run(launcher, modules, threaded["pthread_ends"], RunSpec(("t", "spin")), cancel)
    assert result.outcome == Cancelled("the app was stopped")
    assert time.monotonic() - cancelled_at[0] < 0.25


def test_cancel_stops_a_plain_module(
    launcher: Launcher, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    cancel = Cancellation()
    threading.Timer(0.2, cancel.cancel, ("stop",)).start()
    started = time.monotonic()
    result = _run(launcher, modules, guests["loop"], RunSpec(("loop",)), cancel)
    assert result.outcome == Cancelled("stop")
    assert time.monotonic() - started < 0.45


def test_a_threaded_timeout_is_still_a_timeout(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    result = _run(launcher, modules, threaded["pthread_ends"], RunSpec(("t", "spin"), timeout=0.3))
    assert result.outcome == TimedOut(0.3)


def test_an_absent_openmp_entry_point_is_named(
    launcher: Launcher, modules: ModuleCache, threaded: dict[str, bytes]
) -> None:
    result = _run(launcher, modules, threaded["omp_unsupported"], RunSpec(("u",)))
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason.startswith("the module imports env.__kmpc_")
    assert result.outcome.reason.endswith(", which faabric does not provide")


def test_watch_verdicts_in_order() -> None:
    now = [10.0]
    cancel, stop = Cancellation(), threading.Event()
    watch = Watch(deadline=12.0, cancel=cancel, team_stop=stop, clock=lambda: now[0], slice=0.1)
    assert watch.verdict() is None
    assert watch.next_slice() == pytest.approx(0.1)
    now[0] = 11.95
    assert watch.next_slice() == pytest.approx(0.05)
    stop.set()
    assert watch.verdict() == TeamStopped()
    now[0] = 12.0
    assert watch.verdict() == DeadlinePassed()
    cancel.cancel("first")
    cancel.cancel("second")
    assert watch.verdict() == CancelRequested("first")
    assert cancel.reason == "first"

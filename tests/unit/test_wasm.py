"""Module cache, engine and launcher: loading, rejecting and running modules."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from conftest import BlobStore

from faabric.errors import ModuleError
from faabric.messages.types import Exited, Failed, TimedOut, Trapped
from faabric.wasm import (
    GuestFault,
    GuestMemory,
    Launcher,
    ModuleCache,
    RunSpec,
    WasmEngine,
    module_digest,
)
from faabric.wasm import cache as cache_module
from faabric.wasm.capture import Captured, MemoryFile
from faabric.wasm.launcher import cause_of


def _no_fetch(digest: str) -> bytes:
    raise AssertionError(f"fetched {digest}")


def test_non_wasm_bytes_are_rejected(engine: WasmEngine, tmp_path: Path) -> None:
    cache = ModuleCache(engine, tmp_path, _no_fetch)
    with pytest.raises(ModuleError, match=r"^not a WebAssembly module$"):
        cache.add(b"#!/bin/sh\necho hi\n")


def test_invalid_wasm_reports_the_first_line(engine: WasmEngine, tmp_path: Path) -> None:
    cache = ModuleCache(engine, tmp_path, _no_fetch)
    with pytest.raises(ModuleError, match=r"^the module cannot be compiled: ") as caught:
        cache.add(b"\0asm\x01\0\0\0\x01\xff")
    assert "\n" not in str(caught.value)


def test_module_without_start_is_rejected(guests: dict[str, bytes], modules: ModuleCache) -> None:
    with pytest.raises(ModuleError) as caught:
        modules.add(guests["library"])
    assert str(caught.value) == (
        "the module has no _start entry point (was it built as a library?)"
    )


def test_fetched_bytes_must_match_the_digest(
    engine: WasmEngine, guests: dict[str, bytes], tmp_path: Path
) -> None:
    cache = ModuleCache(engine, tmp_path, lambda digest: guests["noop"])
    with pytest.raises(ModuleError, match="wrong contents"):
        cache.get("0" * 64)


def test_malformed_digest_is_rejected(engine: WasmEngine, tmp_path: Path) -> None:
    cache = ModuleCache(engine, tmp_path, _no_fetch)
    with pytest.raises(ModuleError, match="not a module digest"):
        cache.get("../../etc/passwd")


def test_fetch_failure_is_a_module_error(engine: WasmEngine, tmp_path: Path) -> None:
    cache = ModuleCache(engine, tmp_path, BlobStore().fetch)
    with pytest.raises(ModuleError, match="cannot fetch module"):
        cache.get("ab" * 32)


def test_native_code_is_reused_across_caches(
    engine: WasmEngine, blobs: BlobStore, guests: dict[str, bytes], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = module_digest(guests["hello"])
    first = ModuleCache(engine, tmp_path, blobs.fetch)
    first.get(digest)
    assert blobs.fetches == 1
    assert first.native_path(digest).is_file()

    def no_compile(*args: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(cache_module, "compile_module", no_compile)
    second = ModuleCache(engine, tmp_path, _no_fetch)
    loaded = second.get(digest)
    assert loaded.digest == digest
    assert second.get(digest) is loaded  # and then from memory


def test_concurrent_gets_compile_once(
    engine: WasmEngine, blobs: BlobStore, guests: dict[str, bytes], tmp_path: Path
) -> None:
    cache = ModuleCache(engine, tmp_path, blobs.fetch)
    digest = module_digest(guests["hello"])
    results = []
    barrier = threading.Barrier(6)

    def get() -> None:
        barrier.wait()
        results.append(cache.get(digest))

    threads = [threading.Thread(target=get) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert blobs.fetches == 1
    assert all(result is results[0] for result in results)


def _launch(
    engine: WasmEngine, modules: ModuleCache, data: bytes, spec: RunSpec
) -> tuple[object, bytes, bytes]:
    launcher = Launcher(engine, ())
    result = launcher.run(modules.get(modules.add(data)), spec, None)
    return result.outcome, result.stdout, result.stderr


def test_launcher_outcomes(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    assert _launch(engine, modules, guests["exit_code"], RunSpec(("x", "5")))[0] == Exited(5)
    exit_ = _launch(engine, modules, guests["exit_code"], RunSpec(("x", "9", "exit")))
    assert exit_[0] == Exited(9)
    trapped, out, err = _launch(engine, modules, guests["trap"], RunSpec(("trap",)))
    assert trapped == Trapped("wasm trap: out of bounds memory access")
    assert out == b"about to trap\n"
    assert b"wasm backtrace" in err  # the full text goes to stderr, not the outcome


def test_launcher_timeout(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    outcome, _, _ = _launch(engine, modules, guests["loop"], RunSpec(("loop",), timeout=0.2))
    assert outcome == TimedOut(0.2)


def test_unknown_import_fails_with_its_name(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    outcome, _, _ = _launch(engine, modules, guests["unknown_import"], RunSpec(("u",)))
    assert outcome == Failed("the module imports env.not_provided, which faabric does not provide")


def test_memory_limit_stops_growth(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    outcome, out, _ = _launch(
        engine, modules, guests["oom"], RunSpec(("oom",), memory_limit=8 << 20)
    )
    assert outcome == Exited(3)
    allocated = int(out.split()[1])
    assert 4 <= allocated < 8


def test_memory_limit_below_the_module_minimum(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    outcome, _, _ = _launch(engine, modules, guests["noop"], RunSpec(("noop",), memory_limit=1))
    assert isinstance(outcome, Failed)
    assert "\n" not in outcome.reason


def test_guest_memory_bounds() -> None:
    memory = GuestMemory(base=0, size=100)
    assert memory.check(90, 10) == 90
    with pytest.raises(GuestFault, match="outside the guest's memory"):
        memory.check(91, 10)
    with pytest.raises(GuestFault, match="outside"):
        memory.check(-1, 1)  # a negative i32 is a pointer near 4 GiB
    with pytest.raises(GuestFault, match="negative length"):
        memory.check(0, -5)


def test_output_past_the_limit_is_dropped_and_flagged_not_noted(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    launcher = Launcher(engine, (), output_limit=10)
    module = modules.get(modules.add(guests["hello"]))
    result = launcher.run(module, RunSpec(("hello", "a", "b")), None)
    assert isinstance(result.outcome, Failed)  # hello imports faabric.*, not provided here
    trap = modules.get(modules.add(guests["trap"]))
    result = launcher.run(trap, RunSpec(("trap",)), None)
    assert (result.stdout, result.truncated) == (b"about to t", True)
    assert b"[faabric]" in result.stderr  # faabric's own notes are kept past the limit
    exact = Launcher(engine, (), output_limit=len(b"about to trap\n"))
    assert exact.run(trap, RunSpec(("trap",)), None).truncated is False


def test_a_capture_keeps_the_first_bytes_and_counts_the_rest() -> None:
    stream = MemoryFile("stdout")
    try:
        os.write(stream.fd, b"0123456789" * 2)
        stream.append_note("!")
        assert stream.read(5) == Captured(b"01234!", 15)
        assert stream.read(20) == Captured(b"0123456789" * 2 + b"!", 0)
        assert stream.read(0) == Captured(b"!", 20)
    finally:
        stream.close()


def test_reused_output_files_start_empty(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    # One launcher reuses its stdout/stderr memfds from run to run (one run at a time here).
    launcher = Launcher(engine, ())
    trap = modules.get(modules.add(guests["trap"]))
    noop = modules.get(modules.add(guests["noop"]))
    first = launcher.run(trap, RunSpec(("trap",)), None)
    assert first.stdout == b"about to trap\n" and b"[faabric]" in first.stderr
    quiet = launcher.run(noop, RunSpec(("noop",)), None)
    assert (quiet.outcome, quiet.stdout, quiet.stderr) == (Exited(0), b"", b"")
    again = launcher.run(trap, RunSpec(("trap",)), None)
    assert (again.stdout, again.stderr) == (first.stdout, first.stderr)


def test_concurrent_runs_keep_their_own_output(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    launcher = Launcher(engine, ())
    trap = modules.get(modules.add(guests["trap"]))
    noop = modules.get(modules.add(guests["noop"]))
    wrong: list[object] = []

    def run(module: object, expected: bytes) -> None:
        for _ in range(30):
            result = launcher.run(module, RunSpec(("g",)), None)  # type: ignore[arg-type]
            if result.stdout != expected:
                wrong.append(result.stdout)

    threads = [threading.Thread(target=run, args=(trap, b"about to trap\n")),
               threading.Thread(target=run, args=(noop, b""))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_cause_of_picks_the_cause_line() -> None:
    text = "error while executing at wasm backtrace:\n  0: f\n\nCaused by:\n    wasm trap: boom\n"
    assert cause_of(text) == "wasm trap: boom"
    assert cause_of("single line") == "single line"
    assert cause_of("") == "unknown error"


def test_engine_close_is_idempotent() -> None:
    with WasmEngine() as engine:
        assert engine.fingerprint
    engine.close()

"""GranuleRunner: every way a granule can end, its I/O, and many granules at once."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import BlobStore

from faabric.granule import GranuleRunner
from faabric.messages.types import AppSpec, Batch, Exited, Failed, TimedOut, Trapped
from faabric.wasm import ModuleCache, WasmEngine, module_digest


@pytest.fixture
def runner(engine: WasmEngine, modules: ModuleCache) -> GranuleRunner:
    return GranuleRunner(engine, modules, "host-a")


def _one(app_id: int, spec: AppSpec) -> Batch:
    return Batch(app_id, spec, (0,))


def _spec(guests: dict[str, bytes], name: str, **fields: object) -> AppSpec:
    fields.setdefault("size", 1)
    return AppSpec(module=module_digest(guests[name]), program=name, **fields)  # type: ignore[arg-type]


def test_hello_sees_index_argv_env_and_captures_streams(
    runner: GranuleRunner, guests: dict[str, bytes]
) -> None:
    spec = _spec(guests, "hello", size=4, args=("one", "two"), env=(("GREETING", "hi"),))
    result = runner.run(Batch(7, spec, (2,)), 2)
    assert result.outcome == Exited(0)
    assert result.stdout == (
        b"granule 2 of 4\nargv[0]=hello\nargv[1]=one\nargv[2]=two\nGREETING=hi\n"
    )
    assert result.stderr == b"to stderr\n"
    assert (result.app_id, result.index, result.host) == (7, 2, "host-a")
    assert 0 < result.started <= result.finished


def test_output_over_the_limit_is_cut_and_flagged(
    engine: WasmEngine, modules: ModuleCache, guests: dict[str, bytes]
) -> None:
    small = GranuleRunner(engine, modules, "host-a", output_limit=9)
    result = small.run(_one(1, _spec(guests, "hello", size=2)), 0)
    assert (result.outcome, result.stdout, result.truncated) == (
        Exited(0), b"granule 0", True)
    assert result.stderr == b"to stderr"  # each stream has the limit; the rest is dropped
    roomy = GranuleRunner(engine, modules, "host-a", output_limit=1 << 10)
    assert roomy.run(_one(1, _spec(guests, "hello", size=2)), 0).truncated is False


def test_exit_codes(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    assert runner.run(_one(1, _spec(guests, "exit_code", args=("0",))), 0).outcome == Exited(0)
    assert runner.run(_one(1, _spec(guests, "exit_code", args=("42",))), 0).outcome == Exited(42)
    exited = runner.run(_one(1, _spec(guests, "exit_code", args=("3", "exit"))), 0)
    assert exited.outcome == Exited(3)


def test_trap(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    result = runner.run(_one(1, _spec(guests, "trap")), 0)
    assert result.outcome == Trapped("wasm trap: out of bounds memory access")
    assert result.stdout == b"about to trap\n"


def test_timeout(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    began = time.monotonic()
    result = runner.run(_one(1, _spec(guests, "loop", timeout=0.3)), 0)
    assert result.outcome == TimedOut(0.3)
    assert 0.25 < time.monotonic() - began < 2.0


def test_input_to_output(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    result = runner.run(_one(1, _spec(guests, "echo_input", input=b"payload \x00\xff")), 0)
    assert result.outcome == Exited(0)
    assert result.output == b"10:payload \x00\xff"
    empty = runner.run(_one(1, _spec(guests, "echo_input")), 0)
    assert empty.output == b"0:"


def test_bad_pointer_ends_the_granule_with_a_clear_message(
    runner: GranuleRunner, guests: dict[str, bytes]
) -> None:
    result = runner.run(_one(1, _spec(guests, "echo_input", args=("bad",), input=b"x" * 10)), 0)
    assert isinstance(result.outcome, Trapped)
    assert result.outcome.message.startswith(
        "faabric.faabric_read_input: input buffer at 0xffffff00 of 10 bytes lies outside"
    )


def test_memory_limit(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    result = runner.run(_one(1, _spec(guests, "oom", memory_limit=16 << 20)), 0)
    assert result.outcome == Exited(3)
    assert 8 <= int(result.stdout.split()[1]) < 16


def test_unknown_module_and_unknown_import_fail(
    runner: GranuleRunner, guests: dict[str, bytes]
) -> None:
    missing = runner.run(_one(1, AppSpec(module="f" * 64, size=1)), 0)
    assert isinstance(missing.outcome, Failed)
    assert "cannot fetch module" in missing.outcome.reason
    unknown = runner.run(_one(1, _spec(guests, "unknown_import")), 0)
    assert unknown.outcome == Failed(
        "the module imports env.not_provided, which faabric does not provide"
    )


def test_thread_capable_build_runs(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    result = runner.run(_one(1, _spec(guests, "threads")), 0)
    assert result.outcome == Exited(0)
    assert result.stdout == b"sum=4950\n"
    small = runner.run(_one(1, _spec(guests, "threads", memory_limit=65536)), 0)
    assert isinstance(small.outcome, Failed)


def test_eight_granules_on_four_threads(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    spec = _spec(guests, "hello", size=8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda index: runner.run(Batch(5, spec, (index,)), index), range(8))
        )
    for index, result in enumerate(results):
        assert result.outcome == Exited(0)
        assert result.stdout.startswith(f"granule {index} of 8\n".encode())


def test_concurrent_mixed_outcomes(runner: GranuleRunner, guests: dict[str, bytes]) -> None:
    specs = [
        (_spec(guests, "echo_input", input=b"abc"), Exited(0)),
        (_spec(guests, "trap"), Trapped("wasm trap: out of bounds memory access")),
        (_spec(guests, "exit_code", args=("4",)), Exited(4)),
        (_spec(guests, "echo_input", args=("bad",)), None),
    ] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda item: runner.run(_one(1, item[0]), 0), specs))
    for (_, expected), result in zip(specs, results, strict=True):
        if expected is None:
            assert isinstance(result.outcome, Trapped)
        else:
            assert result.outcome == expected


def test_granule_start_is_fast(
    runner: GranuleRunner, guests: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(guests, "noop")
    runner.run(_one(1, spec), 0)  # compile and link once
    times = []
    for _ in range(200):
        began = time.perf_counter()
        result = runner.run(_one(1, spec), 0)
        times.append(time.perf_counter() - began)
        assert result.outcome == Exited(0)
    median = statistics.median(times)
    with capsys.disabled():
        print(f"\ngranule start-to-exit (noop, cached module): median {median * 1e6:.0f} us")
    assert median < 0.005  # the goal is < 1 ms; leave room for a busy test machine


def test_native_cache_shared_by_a_second_worker(
    engine: WasmEngine, blobs: BlobStore, guests: dict[str, bytes], modules: ModuleCache,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    spec = _spec(guests, "hello")
    assert GranuleRunner(engine, modules, "a").run(Batch(1, spec, (0,)), 0).outcome == Exited(0)
    fetches = blobs.fetches
    cache_dir = modules.native_path(spec.module).parent
    again = ModuleCache(engine, cache_dir, blobs.fetch)
    assert GranuleRunner(engine, again, "b").run(Batch(1, spec, (0,)), 0).outcome == Exited(0)
    assert blobs.fetches == fetches


def test_a_moved_rank_keeps_the_output_limit_across_its_move() -> None:
    from faabric.granule.runner import _joined
    from faabric.granule.transfer import RankPackage
    from faabric.mpi.moving import RankRecord

    record = RankRecord(posted=(), arrived=(), tokens=(), completions=0, next_token=0)
    batch = Batch(9, AppSpec("ab" * 32, 1), (0,))
    before = RankPackage(batch, 0, 1, 0, 0, record, b"abcd", b"e", b"", 1.0, 30.0)
    assert _joined(before, (b"fg", b"h"), False, 8) == (b"abcdfg", b"eh", False)
    assert _joined(before, (b"fghij", b""), False, 8) == (b"abcdfghi", b"e", True)
    cut = RankPackage(batch, 0, 1, 0, 0, record, b"abcd", b"", b"", 1.0, 30.0, truncated=True)
    assert _joined(cut, (b"", b""), False, 8) == (b"abcd", b"", True)  # cut before it moved

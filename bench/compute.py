"""Compute kernels as wasm granules against the same C built natively.

`kernels/triad.c` (STREAM triad) and `kernels/dgemm.c` (naive ikj dgemm) time their own
kernel with clock_gettime(CLOCK_MONOTONIC) and print "seconds <median per repetition>", so
process start and module compilation are excluded. Each is built three ways:

* wasm: faabric's toolchain with its default flags, run as a granule in this process
  (`GranuleRunner.run`, the code path a worker slot uses);
* wasm+simd128: the same toolchain with `-msimd128` passed as a user flag (the toolchain
  does not add it; `simd_in_toolchain` reports what it does pass);
* native: `clang-16 -O2`, a plain Linux binary;
* diagnostic: the wasm+simd128 module on a default wasmtime engine (no epoch interruption).

Each program runs `runs` times; the figure is the median of the printed per-run medians.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import KERNEL_DIR, build_native, build_wasm

KERNELS = {"triad": ("triad.c", ["16777216", "10"]), "dgemm": ("dgemm.c", ["384", "10"])}
QUICK_ARGS = {"triad": ["4194304", "10"], "dgemm": ["256", "5"]}


@dataclass(frozen=True, slots=True)
class KernelResult:
    name: str
    args: tuple[str, ...]
    wasm: float  # seconds per kernel repetition
    wasm_simd: float
    native: float
    simd_no_epoch: float  # wasm+simd128 on a default wasmtime engine (no epoch checks)


def simd_in_toolchain() -> bool:
    """Whether faabric's compiler command line enables wasm SIMD (-msimd128)."""
    from faabric.toolchain.driver import command_line

    cmd = command_line(Path("clang-16"), ["kernel.c", "-o", "kernel.wasm"], cxx=False)
    return any(arg in ("-msimd128", "-mrelaxed-simd") for arg in cmd)


def _parse(stdout: bytes | str) -> float:
    text = stdout.decode() if isinstance(stdout, bytes) else stdout
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "seconds":
            return float(value)
    raise RuntimeError(f"the kernel printed no 'seconds' line: {text!r}")


def measure(*, runs: int, cache_dir: Path, native_dir: Path, quick: bool) -> list[KernelResult]:
    from faabric.granule import GranuleRunner
    from faabric.messages.types import AppSpec, Batch, Exited
    from faabric.wasm import ModuleCache, WasmEngine, module_digest

    results = []
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp, WasmEngine() as engine:
        blobs: dict[str, bytes] = {}
        modules = ModuleCache(engine, Path(tmp), fetch=blobs.__getitem__)
        runner = GranuleRunner(engine, modules, host="bench")

        def run_wasm(data: bytes, name: str, args: list[str]) -> float:
            digest = module_digest(data)
            blobs[digest] = data
            spec = AppSpec(module=digest, size=1, program=name, args=tuple(args))
            modules.get(digest)  # compile before timing anything
            times = []
            for _ in range(runs):
                result = runner.run(Batch(1, spec, (0,)), 0)
                if result.outcome != Exited(0):
                    raise RuntimeError(f"{name}: {result.outcome} {result.stderr!r}")
                times.append(_parse(result.stdout))
            return statistics.median(times)

        for name, (source, args) in KERNELS.items():
            args = QUICK_ARGS[name] if quick else args
            path = KERNEL_DIR / source
            binary = build_native(path, native_dir)
            native = statistics.median(
                _parse(subprocess.run([str(binary), *args], check=True,
                                      capture_output=True).stdout)
                for _ in range(runs)
            )
            wasm = run_wasm(build_wasm(path, cache_dir), name, args)
            simd = run_wasm(build_wasm(path, cache_dir, ["-msimd128"]), name, args)
            simd_data = build_wasm(path, cache_dir, ["-msimd128"])
            plain = statistics.median(_run_plain(simd_data, name, args) for _ in range(runs))
            results.append(KernelResult(name, tuple(args), wasm, simd, native, plain))
    return results


def _run_plain(data: bytes, name: str, args: list[str]) -> float:
    """Diagnostic: run on a default-configured wasmtime engine, without faabric's epoch
    interruption, to show how much of the gap the per-loop epoch checks cost."""
    import wasmtime

    engine = wasmtime.Engine(wasmtime.Config())
    module = wasmtime.Module(engine, data)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.NamedTemporaryFile(prefix="faabric-bench-") as out:
        wasi = wasmtime.WasiConfig()
        wasi.argv = [name, *args]
        wasi.stdout_file = out.name
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as exit_:
            if exit_.code != 0:
                raise RuntimeError(f"{name} exited with {exit_.code}") from None
        return _parse(Path(out.name).read_text())

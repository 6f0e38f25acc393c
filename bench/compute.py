"""Compute kernels as wasm granules against the same C built natively.

`kernels/{dgemm,spmv,stencil,triad}.c` (naive ikj dgemm, CSR sparse matrix-vector product,
5-point Jacobi sweep, STREAM triad) time their own kernel with
clock_gettime(CLOCK_MONOTONIC) and print "seconds <median per repetition>", so process start
and module compilation are excluded. Each is run three ways, interleaved run by run:

* wasm: faabric's toolchain with its default flags, run as a granule in this process
  (`GranuleRunner.run`, the code path a worker slot uses, stop checks included);
* native: `clang-16 -O2`, a plain Linux binary;
* diagnostics: the same module, without faabric's stop checks, on a bare wasmtime engine,
  once with wasmtime's epoch interruption (the interruption scheme faabric used before) and
  once with no interruption at all.

The figure is the median of the printed per-run medians. `python -m bench.compute [--quick]`
prints the table alone.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import KERNEL_DIR, build_native, build_wasm

KERNELS = {
    "dgemm": ("dgemm.c", ["384", "10"]),
    "spmv": ("spmv.c", ["400000", "10"]),
    "stencil": ("stencil.c", ["1024", "20"]),
    "triad": ("triad.c", ["16777216", "10"]),
}
QUICK_ARGS = {"dgemm": ["256", "5"], "spmv": ["200000", "5"], "stencil": ["512", "10"],
              "triad": ["4194304", "10"]}
FAR_DEADLINE = 1 << 40  # epoch ticks: the epoch diagnostic never reaches it


@dataclass(frozen=True, slots=True)
class KernelResult:
    name: str
    args: tuple[str, ...]
    wasm: float  # seconds per kernel repetition, faabric's granule
    native: float
    epoch: float  # the module without stop checks, on wasmtime with epoch interruption
    unchecked: float  # the module without stop checks, on wasmtime with no interruption


def default_flags() -> list[str]:
    """The flags faabric's compiler command line adds for an ordinary C program."""
    from faabric.toolchain.driver import command_line

    cmd = command_line(Path("clang-16"), ["kernel.c", "-o", "kernel.wasm"], cxx=False)
    return [arg for arg in cmd[1:] if arg.startswith(("-O", "-m", "-f"))]


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
            result = runner.run(Batch(1, spec, (0,)), 0)
            if result.outcome != Exited(0):
                raise RuntimeError(f"{name}: {result.outcome} {result.stderr!r}")
            return _parse(result.stdout)

        for name, (source, args) in KERNELS.items():
            args = QUICK_ARGS[name] if quick else args
            path = KERNEL_DIR / source
            binary = build_native(path, native_dir)
            data = build_wasm(path, cache_dir)
            modules.get(modules.add(data))  # compile before timing anything
            epoch, bare = _Bare(data, epoch=True), _Bare(data, epoch=False)
            times: dict[str, list[float]] = {"wasm": [], "native": [], "epoch": [], "bare": []}
            for _ in range(runs):
                times["native"].append(_parse(subprocess.run(
                    [str(binary), *args], check=True, capture_output=True).stdout))
                times["wasm"].append(run_wasm(data, name, args))
                times["epoch"].append(epoch.run(name, args))
                times["bare"].append(bare.run(name, args))
            med = {key: statistics.median(values) for key, values in times.items()}
            results.append(KernelResult(name, tuple(args), med["wasm"], med["native"],
                                        med["epoch"], med["bare"]))
    return results


class _Bare:
    """Diagnostic: a module compiled as it is (no stop checks) on a bare wasmtime engine,
    with or without wasmtime's epoch interruption."""

    def __init__(self, data: bytes, *, epoch: bool) -> None:
        import wasmtime

        config = wasmtime.Config()
        config.epoch_interruption = epoch
        config.wasm_threads = True
        config.shared_memory = True
        self._epoch = epoch
        self._engine: Any = wasmtime.Engine(config)
        self._module: Any = wasmtime.Module(self._engine, data)

    def run(self, name: str, args: list[str]) -> float:
        import wasmtime

        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        store = wasmtime.Store(self._engine)
        if self._epoch:
            store.set_epoch_deadline(FAR_DEADLINE)
        with tempfile.NamedTemporaryFile(prefix="faabric-bench-") as out:
            wasi = wasmtime.WasiConfig()
            wasi.argv = [name, *args]
            wasi.stdout_file = out.name
            store.set_wasi(wasi)
            instance = linker.instantiate(store, self._module)
            try:
                instance.exports(store)["_start"](store)
            except wasmtime.ExitTrap as exit_:
                if exit_.code != 0:
                    raise RuntimeError(f"{name} exited with {exit_.code}") from None
            return _parse(Path(out.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compute")
    parser.add_argument("--quick", action="store_true", help="smaller kernels")
    parser.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    options = parser.parse_args()
    print(f"faabric cc adds: {' '.join(default_flags())}; native: clang-16 -O2")
    print("kernel (args) | faabric wasm | native | ratio | epoch checks [diag] | ratio | "
          "no checks [diag] | ratio")
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp:
        for k in measure(runs=options.runs, cache_dir=Path(tmp) / "wasm",
                         native_dir=Path(tmp) / "native", quick=options.quick):
            print(f"{k.name} ({' '.join(k.args)}) | {k.wasm * 1e3:.2f} ms | "
                  f"{k.native * 1e3:.2f} ms | {k.wasm / k.native:.2f}x | "
                  f"{k.epoch * 1e3:.2f} ms | {k.epoch / k.native:.2f}x | "
                  f"{k.unchecked * 1e3:.2f} ms | {k.unchecked / k.native:.2f}x", flush=True)


if __name__ == "__main__":
    main()

"""OpenMP programs as wasm granules against the same C built natively with clang-16 -fopenmp.

Each kernel in `kernels/omp_*.c` times itself and prints "seconds <median>" (and the fork/join
kernel "loop <seconds per block of regions>"), so process start and compilation are excluded.
The wasm side runs in this process through `GranuleRunner` with the thread host functions
(the code path a worker slot uses); the native side is `clang-16 -O2 -fopenmp` (libomp).
Both run with the same OMP_NUM_THREADS. Without libomp the native figures are NaN ("skipped").
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import KERNEL_DIR, NATIVE_CC, Row, build_wasm, fmt_time, versus

KERNELS = {
    "forkjoin": ("omp_forkjoin.c", ["10000", "5"]),
    "triad": ("omp_triad.c", ["16777216", "10"]),
    "dgemm": ("omp_dgemm.c", ["384", "5"]),
}
QUICK_ARGS = {"forkjoin": ["2000", "3"], "triad": ["4194304", "5"], "dgemm": ["256", "3"]}


@dataclass(frozen=True, slots=True)
class Measured:
    """One kernel at one team size: seconds (per region or repetition), wasm and native."""

    kernel: str
    args: tuple[str, ...]
    threads: int
    wasm: dict[str, float]
    native: dict[str, float]


def _parse(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in ("seconds", "loop"):
            values[key] = float(value)
    if "seconds" not in values:
        raise RuntimeError(f"the kernel printed no 'seconds' line: {text!r}")
    return values


def _median(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def _build_native(source: Path, out_dir: Path) -> Path | None:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}-omp"
    done = subprocess.run([NATIVE_CC, "-O2", "-fopenmp", str(source), "-o", str(target)],
                          capture_output=True, check=False)
    return target if done.returncode == 0 else None


def _run_native(binary: Path | None, args: list[str], threads: int) -> dict[str, float]:
    if binary is None:
        return {"seconds": math.nan, "loop": math.nan}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True,
                          env=env)
    return _parse(done.stdout)


def measure(*, runs: int, cache_dir: Path, native_dir: Path, quick: bool) -> list[Measured]:
    from faabric.granule import GranuleRunner
    from faabric.messages.types import AppSpec, Batch, Exited
    from faabric.threads import ThreadPolicy, thread_functions
    from faabric.threads.team_functions import TeamFunctions
    from faabric.wasm import ModuleCache, WasmEngine, module_digest

    results = []
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp, WasmEngine() as engine:
        blobs: dict[str, bytes] = {}
        modules = ModuleCache(engine, Path(tmp), fetch=blobs.__getitem__)
        runner = GranuleRunner(engine, modules, host="bench", extra_functions=(
            *thread_functions(ThreadPolicy(2)), *TeamFunctions().functions()))

        def run_wasm(data: bytes, name: str, args: list[str], threads: int) -> dict[str, float]:
            digest = module_digest(data)
            blobs[digest] = data
            spec = AppSpec(module=digest, size=1, program=name, args=tuple(args),
                           env=(("OMP_NUM_THREADS", str(threads)),))
            modules.get(digest)  # compile before timing anything
            samples = []
            for _ in range(runs):
                result = runner.run(Batch(1, spec, (0,)), 0)
                if result.outcome != Exited(0):
                    raise RuntimeError(f"{name}: {result.outcome} {result.stderr!r}")
                samples.append(_parse(result.stdout.decode()))
            return _median(samples)

        for name, (source, args) in KERNELS.items():
            args = QUICK_ARGS[name] if quick else args
            path = KERNEL_DIR / source
            wasm = build_wasm(path, cache_dir, ["-fopenmp"])
            binary = _build_native(path, native_dir)
            for threads in (1, 2):
                native = _median([_run_native(binary, args, threads) for _ in range(runs)])
                results.append(Measured(name, tuple(args), threads,
                                        run_wasm(wasm, name, args, threads), native))
    return results


def rows(measured: list[Measured]) -> list[Row]:
    """Table rows: each kernel at 1 and 2 threads against native libomp."""
    peer = "native clang-16 -fopenmp"
    out = []
    for m in measured:
        if m.kernel == "forkjoin":
            goal = "<= 50 µs" if m.threads == 2 else ""
            row = versus(f"OpenMP empty region fork/join, {m.threads} thread(s)",
                         m.wasm["seconds"], peer, m.native["seconds"], fmt=fmt_time, goal=goal)
            if m.threads == 2:
                row = Row(row.benchmark, row.faabric, row.peer, row.peer_value, row.ratio,
                          goal, m.wasm["seconds"] <= 50e-6)
            out.append(row)
            out.append(versus(f"OpenMP loop of {int(m.args[0]):,} regions, {m.threads} thread(s)",
                              m.wasm["loop"], peer, m.native["loop"], fmt=fmt_time))
        else:
            out.append(versus(f"OpenMP {m.kernel}, {m.threads} thread(s)", m.wasm["seconds"],
                              peer, m.native["seconds"], fmt=fmt_time))
    return out


def speedups(measured: list[Measured]) -> list[str]:
    """Notes on the 2-thread speedup of each compute kernel, wasm and native."""
    by = {(m.kernel, m.threads): m for m in measured}
    notes = []
    for kernel in ("triad", "dgemm"):
        one, two = by.get((kernel, 1)), by.get((kernel, 2))
        if one and two:
            notes.append(
                f"OpenMP {kernel} speedup 1 -> 2 threads: wasm "
                f"{one.wasm['seconds'] / two.wasm['seconds']:.2f}x, native "
                f"{one.native['seconds'] / two.native['seconds']:.2f}x."
            )
    return notes

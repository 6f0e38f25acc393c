"""What making MPI programs movable costs: the same kernel with and without binaryen's asyncify.

`kernels/mpi_compute.c` (compute, then MPI_Barrier, per iteration; it times only the compute
and prints "seconds <median per iteration>") is built two ways from one command line:

* movable: `faabric.toolchain.build`, the shipped path (clang, then `make_movable`: wasm-opt
  --asyncify on the call paths to `faabric_mpi.fmpi_migrate`, then -O2 without inlining
  functions called once into their callers);
* plain: the same clang command line (`driver.command_line`, same libraries, same stand-in
  for clang's own wasm-opt run) without that step.

Each runs as a 1-rank MPI granule in this process (`GranuleRunner` with a local `Worlds`,
the code path a worker slot uses); a 1-rank world never calls the migration import, so the
figures are the price of the instrumentation alone. Builds alternate within each round and
the result is the median over rounds of the kernel's own medians. This module must not
change the toolchain or the runtime, nor use a planner or worker processes.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import KERNEL_DIR, Row, fmt_time, versus

SOURCE = KERNEL_DIR / "mpi_compute.c"
DGEMM_N = {False: "384", True: "256"}  # by quick
CALLS = "10000000"
ITERATIONS = {False: "7", True: "5"}
KINDS = ("dgemm-fn", "dgemm-inline", "calls", "calls-indirect")
GOAL = 1.05
DESCRIBE = {
    "dgemm-fn": "naive dgemm in a noinline function called from main's loop",
    "dgemm-inline": "naive dgemm written in main's loop",
    "calls": "10^7 direct calls from main to a small noinline function",
    "calls-indirect": "10^7 calls from main through a function pointer",
}


@dataclass(frozen=True, slots=True)
class MovableCost:
    """One kernel: seconds per iteration (median) for each build, and the builds' sizes."""

    kind: str
    args: tuple[str, ...]
    seconds: dict[str, float]  # build name -> seconds per iteration
    sizes: dict[str, int]  # build name -> module bytes
    rounds: int

    @property
    def ratio(self) -> float:
        return self.seconds["movable"] / self.seconds["plain"]


class _NoNetwork:
    """The data plane of a world whose ranks are all in this process: never used."""

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        pass

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        raise RuntimeError(f"the 1-rank world failed: {reason}")


def build_all(cache_dir: Path) -> dict[str, bytes]:
    """The kernel's modules by build name (see the module docstring)."""
    from faabric.toolchain import build
    from faabric.toolchain.movable import MIGRATE_IMPORT, module_imports

    out = cache_dir / "migration"
    out.mkdir(parents=True, exist_ok=True)
    builds = {"movable": build(SOURCE, cache_dir=cache_dir).read_bytes(),
              "plain": _plain(cache_dir, out / "plain.wasm").read_bytes()}
    if MIGRATE_IMPORT not in module_imports(builds["plain"]):
        raise RuntimeError("mpi_compute does not import the migration call: nothing to measure")
    for name, data in builds.items():
        if (b"asyncify_start_unwind" in data) != (name != "plain"):
            raise RuntimeError(f"the {name} build of mpi_compute is not what it should be")
    return builds


def _clang(args: list[str], cache_dir: Path, link: bool) -> None:
    from faabric.toolchain.driver import (
        command_line,
        environment,
        find_compiler,
        link_libraries,
    )
    from faabric.toolchain.movable import stand_in_tools

    libraries = link_libraries([], cache_dir / "libs") if link else []
    cmd = command_line(find_compiler(False).path, args, False, libraries,
                       stand_in_tools(cache_dir))
    done = subprocess.run(cmd, capture_output=True, text=True, env=environment(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")


def _plain(cache_dir: Path, target: Path) -> Path:
    _clang([str(SOURCE), "-o", str(target)], cache_dir, link=True)
    return target


def _parse(stdout: bytes) -> float:
    for line in stdout.decode().splitlines():
        key, _, value = line.partition(" ")
        if key == "seconds":
            return float(value)
    raise RuntimeError(f"mpi_compute printed no 'seconds' line: {stdout!r}")


def measure_movable_cost(runs: int, cache_dir: Path, quick: bool) -> list[MovableCost]:
    """Every kernel of mpi_compute.c, `runs` rounds, each round running every build once."""
    from faabric.granule import GranuleRunner
    from faabric.messages.types import AppSpec, Batch, Exited
    from faabric.mpi.worlds import Worlds
    from faabric.wasm import ModuleCache, WasmEngine, module_digest

    builds = build_all(cache_dir)
    app_ids = itertools.count(1)  # a world is per app: every run is a new app
    results = []
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp, WasmEngine() as engine:
        blobs = {module_digest(data): data for data in builds.values()}
        modules = ModuleCache(engine, Path(tmp), fetch=blobs.__getitem__)
        worlds = Worlds("bench", _NoNetwork())  # type: ignore[arg-type]
        runner = GranuleRunner(engine, modules, host="bench", worlds=worlds)
        digests = {name: module_digest(data) for name, data in builds.items()}
        for digest in digests.values():
            modules.get(digest)  # compile before timing anything

        def run(digest: str, args: tuple[str, ...]) -> float:
            spec = AppSpec(module=digest, size=1, program="mpi_compute", args=args)
            result = runner.run(Batch(next(app_ids), spec, (0,)), 0)
            if getattr(result, "outcome", None) != Exited(0):
                raise RuntimeError(f"mpi_compute {' '.join(args)}: {result}")
            return _parse(result.stdout)  # type: ignore[union-attr]

        for kind in KINDS:
            args = (kind, DGEMM_N[quick] if kind.startswith("dgemm") else CALLS,
                    ITERATIONS[quick])
            results.append(_rounds(kind, args, digests, builds, runs, run))
    return results


def _rounds(kind: str, args: tuple[str, ...], digests: dict[str, str],
            builds: dict[str, bytes], runs: int,
            run: Callable[[str, tuple[str, ...]], float]) -> MovableCost:
    samples: dict[str, list[float]] = {name: [] for name in digests}
    for _ in range(runs):
        for name, digest in digests.items():
            samples[name].append(run(digest, args))
    return MovableCost(kind, args, {n: statistics.median(s) for n, s in samples.items()},
                       {n: len(builds[n]) for n in digests}, runs)


def fmt_bytes(size: float) -> str:
    return f"{size:,.0f} B"


def rows(results: list[MovableCost]) -> list[Row]:
    """Per kernel: movable against plain (goal <= 1.05x); and the module's size, which is
    the same for every kernel."""
    out = []
    for r in results:
        what = f"movable MPI {r.kind} {r.args[1]}: asyncify"
        out.append(versus(what, r.seconds["movable"], "same build without asyncify",
                          r.seconds["plain"], fmt=fmt_time, goal=f"<= {GOAL:.2f}x",
                          limit=GOAL))
    if results:
        sizes = results[0].sizes
        out.append(versus("movable MPI mpi_compute.wasm size", sizes["movable"],
                          "same build without asyncify", sizes["plain"], fmt=fmt_bytes))
    return out


def notes(results: list[MovableCost]) -> list[str]:
    if not results:
        return []
    return [f"movable MPI: 1-rank granules in-process, median of {results[0].rounds} rounds "
            "(builds alternate within a round) of each run's median iteration; kernels: "
            + "; ".join(f"{k} = {DESCRIBE[k]}" for k in KINDS) + "."]


if __name__ == "__main__":  # a quick look without the rest of the suite: QUICK=1 python -m ...
    import os

    from bench.common import render_text

    with tempfile.TemporaryDirectory() as tmp:
        quick = os.environ.get("QUICK", "0") != "0"
        measured = measure_movable_cost(7 if quick else 11, Path(tmp), quick)
        print(render_text(rows(measured)))
        print("\n".join(notes(measured)))

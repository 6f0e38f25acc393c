"""`python -m bench.calibrate [--quick] [-o FILE]`: measures the cost model of `faabric
experiment` on a planner and worker processes on this machine and writes it as the
calibration file that the replay reads (default src/faabric/experiments/calibration.json).

* compute_seconds_per_unit: one unit of trace work is one step of `kernels/calib_step.c` at
  N = 1024 and 8 MiB per pair, done by one rank: a naive 1024 x 1024 dgemm (2^30
  multiply-adds), MPI_Alltoall of 8 MiB with every rank, MPI_Allreduce of one double. Its
  median seconds with 2 ranks on one worker (one core each).
* cross_host_pair_cost: the same step at 4 ranks, all on one worker against 2+2 on two
  (blockers, `kernels/hold.c`, force the split), alternating; 2+2 has 4 cross-host pairs, so
  cost = (split / together - 1) x size / pairs, as the replay prices it.
* openmp_speedup: `kernels/omp_dgemm.c` at 1..8 threads on one worker of 8 slots (a blocker
  fills the other worker, so teams cannot span); speed-up against 1 thread, made
  non-decreasing (the raw values are kept in `_provenance`).
* migration_pause_seconds and _per_mib: a least-squares line through the median pause of one
  moved MPI rank (bench/moves.py's measurement) at 2 or 3 memory sizes.
* rank_memory_mib: the linear memory of a calib_step rank at 4 ranks (what a move sends).

Every value is a median of several runs. Before each run it waits (up to a budget) until
other processes use less than 0.3 cores, as this machine may be shared, and a run during
which they used more is done again (a few times at most). `_provenance` keeps
the date, command, machine, faabric version, the cores other processes used meanwhile and
every raw measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bench.common import BENCH_DIR, KERNEL_DIR, build_wasm
from bench.moves import _pause_run
from bench.moves_cluster import LONG_MS, BenchError, MoveCluster, stdout_of

OUTPUT = BENCH_DIR.parent / "src" / "faabric" / "experiments" / "calibration.json"
UNIT_N = 1024  # the dgemm of one step: UNIT_N^3 = 2^30 multiply-adds
PAIR_BYTES = 8 << 20  # what every rank sends every other rank per step
UNIT_RANKS = 2  # ranks of the compute run, all on one worker (one core each here)
PAIR_RANKS = 4  # ranks of the cross-host runs: together, and 2+2
STEPS = {False: 4, True: 2}  # by quick: steps per run (the kernel's median)
RUNS = {False: 3, True: 1}
OMP_N, OMP_REPS = 768, {False: 3, True: 3}
THREADS = range(1, 9)
OMP_SLOTS = 8
PAUSE_MIB = {False: (16, 128, 512), True: (16, 128)}
APP_TIMEOUT = 600.0
T = TypeVar("T")
QUIET_CORES = 0.3  # before a run, wait until other processes use less than this many cores
QUIET_WINDOW = 0.5  # seconds over which that is measured
QUIET_BUDGET = {False: 60.0, True: 10.0}  # seconds of such waiting in all
RETRIES = {False: 8, True: 2}  # runs done again because other processes took the cores


def build(cache: Path) -> dict[str, bytes]:
    """The kernels by program name, built with faabric's toolchain."""
    kernels = {name: build_wasm(KERNEL_DIR / f"{name}.c", cache)
               for name in ("calib_step", "hold", "mpi_pause")}
    kernels["omp_dgemm"] = build_wasm(KERNEL_DIR / "omp_dgemm.c", cache, ["-fopenmp"])
    return kernels


class Record:
    """Raw measurements by field, and the cores other processes used in each phase."""

    def __init__(self, quick: bool) -> None:
        self.raw: dict[str, dict[str, Any]] = {}
        self.others: dict[str, float] = {}
        self.failures: list[str] = []
        self.budget = QUIET_BUDGET[quick]
        self.waited = 0.0
        self.retries = RETRIES[quick]
        self.discarded: list[str] = []
        self.disturbed: list[str] = []  # runs kept although other processes took the cores

    def quiet(self, cluster: MoveCluster) -> None:
        """Wait, within the budget, until other processes leave the cores alone (this
        machine may be shared: their load lengthens every time measured)."""
        start = time.monotonic()
        while self.waited + time.monotonic() - start < self.budget:
            busy, mine = cluster.cpu_seconds()
            time.sleep(QUIET_WINDOW)
            busy_after, mine_after = cluster.cpu_seconds()
            if (busy_after - busy) - (mine_after - mine) < QUIET_CORES * QUIET_WINDOW:
                break
        self.waited += time.monotonic() - start

    @contextlib.contextmanager
    def phase(self, cluster: MoveCluster, what: str) -> Iterator[None]:
        """Record the cores other processes used while the block ran, as `what`."""
        since = _usage(cluster)
        yield
        self.others[what] = _others(cluster, since)

    def run(self, cluster: MoveCluster, what: str, call: Callable[[], T]) -> tuple[T, float]:
        """Wait for quiet, then `call()`: its result and the cores other processes used;
        a run they disturbed is done again while the retries last."""
        while True:
            self.quiet(cluster)
            since = _usage(cluster)
            result = call()
            others = _others(cluster, since)
            if others <= QUIET_CORES:
                return result, others
            if self.retries <= 0:
                self.disturbed.append(f"{what}: other processes used {others} cores")
                return result, others
            self.retries -= 1
            self.discarded.append(f"{what}: {result!r} while other processes used {others} "
                                  "cores")


def _usage(cluster: MoveCluster) -> tuple[float, float, float]:
    return (*cluster.cpu_seconds(), time.monotonic())


def _others(cluster: MoveCluster, since: tuple[float, float, float]) -> float:
    """Cores used by processes other than this one and its workers since `since`."""
    busy, mine, start = since
    busy_after, mine_after, now = _usage(cluster)
    return round(((busy_after - busy) - (mine_after - mine)) / (now - start), 2)


# -- MPI: the unit and the cross-host pairs --------------------------------------------------


def _step(cluster: MoveCluster, size: int, steps: int, split: bool) -> dict[str, float]:
    """One calib_step run: its printed step, compute and memory values; `split`: half of
    the ranks on each worker, else all on one."""
    args = (UNIT_N, steps, PAIR_BYTES)
    if split:
        doc, _ = cluster.split_start(PAIR_RANKS - size // 2, LONG_MS, "calib_step", size, *args)
    else:
        cluster.settle()
        doc = cluster.submit("calib_step", size, *args)
    hosts = Counter(p["host"] for p in doc["placement"])
    if len(hosts) != (2 if split else 1):
        raise BenchError(f"calib_step x{size} placed {dict(hosts)}")
    done = cluster.finish(doc["app_id"], APP_TIMEOUT)
    values = {}
    for line in stdout_of(done).splitlines():
        key, _, value = line.partition(" ")
        if key in ("step", "compute", "memory"):
            values[key] = float(value)
    if set(values) != {"step", "compute", "memory"}:
        raise BenchError(f"calib_step printed {stdout_of(done)!r}")
    return values


def measure_mpi(cluster: MoveCluster, quick: bool, record: Record) -> None:
    """The unit (2 ranks on one worker) and the 4-rank runs together and 2+2, alternating."""
    steps = STEPS[quick]
    runs: dict[str, list[dict[str, float]]] = {"unit": [], "together": [], "split": []}
    for _ in range(RUNS[quick]):
        for what, size, split in (("unit", UNIT_RANKS, False), ("together", PAIR_RANKS, False),
                                  ("split", PAIR_RANKS, True)):
            try:
                values, others = record.run(cluster, f"calib_step {what}",
                                            lambda s=size, x=split: _step(cluster, s, steps, x))
                runs[what].append({**values, "others": others})
            except BenchError as error:
                record.failures.append(f"calib_step {what}: {error}")
    for what, got in runs.items():
        if not got:
            raise BenchError(f"no calib_step run {what} succeeded: {record.failures}")
    record.raw["compute_seconds_per_unit"] = {
        "kernel": f"calib_step.c {UNIT_N} {steps} {PAIR_BYTES}", "ranks": UNIT_RANKS,
        "placement": "all on one worker", "step_seconds": [r["step"] for r in runs["unit"]],
        "compute_seconds": [r["compute"] for r in runs["unit"]],
        "other_processes_cores": [r["others"] for r in runs["unit"]]}
    record.raw["cross_host_pair_cost"] = {
        "kernel": f"calib_step.c {UNIT_N} {steps} {PAIR_BYTES}", "ranks": PAIR_RANKS,
        "pairs": _pairs((PAIR_RANKS // 2, PAIR_RANKS - PAIR_RANKS // 2)),
        "one_worker_step_seconds": [r["step"] for r in runs["together"]],
        "two_workers_step_seconds": [r["step"] for r in runs["split"]],
        "other_processes_cores": {"one_worker": [r["others"] for r in runs["together"]],
                                  "two_workers": [r["others"] for r in runs["split"]]}}
    record.raw["rank_memory_mib"] = {
        "kernel": f"calib_step.c at {PAIR_RANKS} ranks",
        "linear_memory_mib": [r["memory"] for r in runs["together"] + runs["split"]]}


def _pairs(counts: tuple[int, ...]) -> int:
    """Cross-host rank pairs of an app with `counts` ranks per host (as the replay counts)."""
    size = sum(counts)
    return sum(n * (size - n) for n in counts) // 2


# -- OpenMP: speed-up by team size ------------------------------------------------------------


def measure_openmp(cluster: MoveCluster, quick: bool, record: Record) -> None:
    """omp_dgemm at every team size, rounds alternating over the sizes."""
    cluster.settle()
    cluster.submit("hold", OMP_SLOTS, LONG_MS)  # fills one worker: the teams stay on the other
    args = (OMP_N, OMP_REPS[quick])
    seconds: dict[str, list[float]] = {str(k): [] for k in THREADS}
    others: dict[str, list[float]] = {str(k): [] for k in THREADS}

    def run(threads: int) -> float:
        doc = cluster.submit("omp_dgemm", 1, *args, env={"OMP_NUM_THREADS": str(threads)})
        done = cluster.finish(doc["app_id"], APP_TIMEOUT)
        values = dict(line.split(" ", 1) for line in stdout_of(done).splitlines() if " " in line)
        return float(values["seconds"])

    for _ in range(RUNS[quick]):
        for threads in THREADS:
            value, busy = record.run(cluster, f"omp_dgemm {threads} threads",
                                     lambda k=threads: run(k))
            seconds[str(threads)].append(value)
            others[str(threads)].append(busy)
    cluster.settle()
    record.raw["openmp_speedup"] = {
        "kernel": f"omp_dgemm.c {OMP_N} {OMP_REPS[quick]}",
        "placement": f"one worker of {OMP_SLOTS} slots", "seconds_by_threads": seconds,
        "other_processes_cores": others}


# -- migration: pause against memory ----------------------------------------------------------


def measure_pauses(cluster: MoveCluster, quick: bool, record: Record) -> None:
    """bench/moves.py's pause of one moved rank (1 of 2) at each memory size."""
    pauses: dict[int, list[float]] = {mib: [] for mib in PAUSE_MIB[quick]}
    others: dict[int, list[float]] = {mib: [] for mib in PAUSE_MIB[quick]}
    for _ in range(RUNS[quick]):
        for mib in PAUSE_MIB[quick]:
            try:
                run, busy = record.run(cluster, f"pause {mib} MiB",
                                       lambda m=mib: _pause_run(cluster, m).pause)
                pauses[mib].append(run)
                others[mib].append(busy)
            except BenchError as error:
                record.failures.append(f"pause {mib} MiB: {error}")
    measured = {mib: runs for mib, runs in pauses.items() if runs}
    if len(measured) < 2:
        raise BenchError(f"pauses measured at fewer than 2 sizes: {record.failures}")
    record.raw["migration_pause"] = {
        "kernel": "mpi_pause.c (bench/moves.py), 2 ranks 1+1, one moves",
        "pause_seconds_by_mib": {str(mib): runs for mib, runs in measured.items()},
        "other_processes_cores": {str(mib): others[mib] for mib in measured}}


# -- the model from the raw measurements ------------------------------------------------------


def model(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The calibration's fields from the raw measurements (medians), with the derivations
    added to `raw` (what was clamped or made monotone)."""
    unit = statistics.median(raw["compute_seconds_per_unit"]["step_seconds"])
    pair = raw["cross_host_pair_cost"]
    together = statistics.median(pair["one_worker_step_seconds"])
    split = statistics.median(pair["two_workers_step_seconds"])
    cost = (split / together - 1) * pair["ranks"] / pair["pairs"]
    pair["median_ratio"] = round(split / together, 4)
    if cost < 0:
        pair["clamped"] = f"measured {cost:.4f} < 0: written as 0"
    speedup = _speedup(raw["openmp_speedup"])
    intercept, slope = _fit(raw["migration_pause"])
    memory = statistics.median(raw["rank_memory_mib"]["linear_memory_mib"])
    return {
        "compute_seconds_per_unit": _round(unit),
        "cross_host_pair_cost": _round(max(cost, 0.0)),
        "openmp_speedup": speedup,
        "migration_pause_seconds": _round(intercept),
        "migration_pause_seconds_per_mib": _round(slope),
        "rank_memory_mib": _round(memory),
    }


def _speedup(raw: dict[str, Any]) -> list[float]:
    medians = {int(k): statistics.median(v) for k, v in raw["seconds_by_threads"].items()}
    measured = [medians[1] / medians[k] for k in sorted(medians)]
    table, best = [1.0], 1.0
    for value in measured[1:]:
        best = max(best, value)
        table.append(round(best, 3))
    raw["measured_speedup"] = [round(v, 3) for v in measured]
    return table


def _fit(raw: dict[str, Any]) -> tuple[float, float]:
    """Least squares of the median pauses against MiB, with an intercept >= 0 (through the
    origin when the free fit's intercept is negative), and a slope >= 0."""
    points = {int(k): statistics.median(v) for k, v in raw["pause_seconds_by_mib"].items()}
    xs, ys = list(points), list(points.values())
    slope, intercept = statistics.linear_regression(xs, ys)
    raw["median_pause_by_mib"] = {str(k): round(v, 4) for k, v in points.items()}
    raw["free_fit"] = {"seconds": round(intercept, 5), "seconds_per_mib": round(slope, 7)}
    if intercept < 0:
        intercept = 0.0
        slope = sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
        raw["fit"] = "through the origin (the free fit's intercept is negative)"
    if slope < 0:
        slope, intercept = 0.0, statistics.mean(ys)
        raw["fit"] = "a flat line at the mean (the pauses do not grow with memory)"
    return intercept, slope


def _round(value: float) -> float:
    return float(f"{value:.4g}")


# -- the file ---------------------------------------------------------------------------------


def document(values: dict[str, Any], record: Record, quick: bool, seconds: float,
             argv: list[str]) -> dict[str, Any]:
    """The calibration file: the description, the values, and `_provenance`."""
    return {"_doc": describe(), **values, "_provenance": {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["python -m bench.calibrate", *argv]),
        "quick": quick,
        "seconds": round(seconds, 1),
        "machine": _machine(),
        "faabric": _version(),
        "other_processes_cores": record.others,
        "waited_for_quiet_seconds": round(record.waited, 1),
        "failed_runs": record.failures,
        "runs_done_again": record.discarded,
        "runs_kept_although_disturbed": record.disturbed,
        "fields": record.raw,
    }}


def describe() -> str:
    return (
        "Cost model of `faabric experiment`, measured by `python -m bench.calibrate` on a "
        "planner and worker processes on the machine in _provenance, which also keeps every "
        "raw measurement (medians of runs are written). One unit of trace work = one step of "
        f"bench/kernels/calib_step.c (N={UNIT_N}, PAIR_BYTES={PAIR_BYTES}) by one rank: a "
        f"naive {UNIT_N}x{UNIT_N} dgemm ({UNIT_N ** 3:,} multiply-adds), MPI_Alltoall of "
        f"{PAIR_BYTES / (1 << 20):g} MiB with every rank and an MPI_Allreduce; "
        "compute_seconds_per_unit is its time with "
        f"{UNIT_RANKS} ranks on one worker. cross_host_pair_cost: the same step at "
        f"{PAIR_RANKS} ranks, all on one worker against 2+2 on two, (split / together - 1) "
        "x size / pairs. On one machine the two 'hosts' are two worker processes sharing "
        f"the same cores ({PAIR_RANKS} ranks on {os.cpu_count()} vCPUs in this run) over TCP "
        "on loopback: the transport's "
        "cost, not a network's. openmp_speedup: bench/kernels/omp_dgemm.c at 1..8 threads on "
        f"one worker of {OMP_SLOTS} slots against 1 thread, made non-decreasing; it flattens "
        "at the machine's core count. migration_pause_seconds and _per_mib: a line through "
        "the pause of one moved MPI rank (bench/moves.py) at several memory sizes. "
        "rank_memory_mib: a calib_step rank's linear memory. Run the calibration on your own "
        "hosts: the numbers describe this machine only.")


def _machine() -> dict[str, Any]:
    model_name = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": model_name, "platform": platform.platform(),
            "python": platform.python_version(), "load_average": os.getloadavg()[0]}


def _version() -> dict[str, str]:
    import faabric

    out = {"version": faabric.__version__}
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        head = subprocess.run(["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short",
                               "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(BENCH_DIR.parent), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout
        out["commit"] = head.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    return out


def write(path: Path, doc: dict[str, Any]) -> None:
    """Check `doc` with the replay's own reader, then write it."""
    from faabric.experiments.calibration import parse_calibration

    text = json.dumps(doc, indent=2) + "\n"
    parse_calibration(text, str(path))
    path.write_text(text)


# -- the command ------------------------------------------------------------------------------


def measure(cache: Path, quick: bool) -> Record:
    """Every raw measurement, on clusters of two worker processes."""
    kernels = build(cache)
    record = Record(quick)
    say(f"MPI: the unit ({UNIT_RANKS} ranks) and {PAIR_RANKS} ranks together vs 2+2")
    with MoveCluster(PAIR_RANKS, kernels) as cluster, record.phase(cluster, "mpi"):
        measure_mpi(cluster, quick, record)
    say(f"OpenMP: omp_dgemm at {THREADS[0]}..{THREADS[-1]} threads")
    with MoveCluster(OMP_SLOTS, kernels) as cluster, record.phase(cluster, "openmp"):
        measure_openmp(cluster, quick, record)
    say(f"migration: pause of a moved rank at {', '.join(map(str, PAUSE_MIB[quick]))} MiB")
    with MoveCluster(2, kernels) as cluster, record.phase(cluster, "migration"):
        measure_pauses(cluster, quick, record)
    return record


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m bench.calibrate",
        description="Measure the cost model of `faabric experiment` on this machine and write "
        "the calibration file.")
    parser.add_argument("--quick", action="store_true", help="fewer runs (about a minute)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT,
                        help=f"calibration file to write (default {OUTPUT})")
    ns = parser.parse_args(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="faabric-calibrate-") as tmp:
        try:
            record = measure(Path(tmp), ns.quick)
        except BenchError as error:
            print(f"calibrate: {error}", file=sys.stderr)
            return 1
    values = model(record.raw)
    doc = document(values, record, ns.quick, time.monotonic() - started, args)
    write(ns.output, doc)
    for name, value in values.items():
        print(f"{name} = {value}")
    for what in record.disturbed:
        print(f"warning: {what} (of {os.cpu_count()}) in a run that was kept: its value is "
              "slower than this machine can do (run again when it is quiet)", file=sys.stderr)
    print(f"wrote {ns.output} in {time.monotonic() - started:.0f} s")
    return 0


def say(what: str) -> None:
    print(f"[calibrate] {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

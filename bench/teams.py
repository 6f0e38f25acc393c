"""OpenMP teams that span hosts, end to end, on a planner + 2 worker processes x 2 slots.

With OMP_NUM_THREADS=4 a granule's worker (2 slots) runs threads 0-1 and the planner grants
the other worker's slots for threads 2-3: every parallel region snapshots the wasm memory at
the fork, ships it to the other worker, which restores it; synchronisations go through the
main host with diffs of the dirty pages; the join merges the other worker's writes. The
kernel `kernels/omp_span.c` times itself with omp_get_wtime (process start, compilation and
the memory fill are outside the clock):

1. `region MIB REPS`: MIB MiB of incompressible bytes, then REPS regions, each an `omp for`
   writing one byte in every 100th page (1 % of the pages) plus a reduction; the median
   seconds per region, i.e. snapshot + ship + restore + dirty collection + diff + merge;
2. `sync N REPS`: N barriers, then N critical sections per thread (lock hand-overs), in one
   region at the kernel's own small memory; the median seconds per barrier and per critical
   section entered;
3. `kernels/omp_kernels.c capture N REPS`: the team's last thread (on the other worker when
   the team spans) does N `omp atomic capture` increments of a shared counter, each a round
   trip to the main host; seconds per operation, the median over REPS launches.

Each against the same wasm at OMP_NUM_THREADS=2 (one worker, no spanning) and the same C
built natively with clang-16 -O2 -fopenmp at 4 threads. A warm-up run compiles the module on
both workers first. Each 4-thread run is checked to have spanned: its app document must list
slots granted on the other worker, and no worker may log that the team fell back to one host
(otherwise the row says so). The planner's keep-alive timeout is raised to 120 s: a worker
forking a region of ~1 GiB could miss its keep-alives for longer than the default 5 s and be
dropped mid-run. `python -m bench.teams [--quick]` prints just these rows.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import omp_kernels
from bench.common import KERNEL_DIR, NATIVE_CC, Row, build_wasm, fmt_time, render_text, versus
from bench.procs import ProcessCluster, process_cluster

SPAN, ALONE = 4, 2  # team sizes: across the 2 workers, and within one
SIZES_MIB, QUICK_SIZES_MIB = (64, 1024), (64, 256)
STEP_MIB = 16  # a size that does not fit the module's memory is retried this much smaller
FALLBACKS = ("could not spread a team", "runs a team of", "has no slots here")
TIMEOUT = 1800.0  # seconds a granule may run
KEEPALIVE = 120.0  # the planner's keep-alive timeout (see the module's docstring)
NATIVE_CAPTURES = 100_000  # `omp atomic capture` operations timed natively
POLL = 0.05  # seconds between looks at the running app (its granted slots)
NATIVE_PEER = f"native {NATIVE_CC} -fopenmp, {SPAN} threads"
ALONE_PEER = f"wasm {ALONE} threads, 1 worker"


@dataclass(frozen=True, slots=True)
class Measured:
    """One kernel mode at one size: the printed values of each side (None: not run)."""

    what: str  # "region", "sync" or "capture"
    size: int  # MiB (region) or operations per thread (sync, capture)
    span: dict[str, float]
    alone: dict[str, float]
    native: dict[str, float] | None
    spanned: bool


def _parse(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in ("team", "check", "seconds", "barrier", "critical"):
            values[key] = float(value)
    return values


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _native_binary(out_dir: Path) -> Path | None:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "omp_span"
    done = subprocess.run([NATIVE_CC, "-O2", "-fopenmp", str(KERNEL_DIR / "omp_span.c"), "-o",
                           str(target)], capture_output=True, check=False)
    return target if done.returncode == 0 else None


def _run_native(binary: Path | None, args: list[str]) -> dict[str, float] | None:
    if binary is None:
        return None
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True,
                          env=dict(os.environ, OMP_NUM_THREADS=str(SPAN)))
    return _parse(done.stdout)


class Runner:
    """Runs the kernel on the cluster and checks where its team ran."""

    def __init__(self, cluster: ProcessCluster, wasm: bytes) -> None:
        from faabric.planner.client import PlannerClient

        self.cluster = cluster
        self.client = PlannerClient(cluster.url, token=cluster.token, timeout=120)
        self.digest = self.client.upload_module(wasm)

    def run(self, args: list[str], threads: int) -> tuple[dict[str, float] | None, bool]:
        """(the kernel's values, whether its team spanned both workers); None: out of memory."""
        seen = len(self.cluster.log)
        doc = self.client.submit({"module": self.digest, "size": 1, "program": "omp_span",
                                  "args": args, "env": {"OMP_NUM_THREADS": str(threads),
                                                          "FAABRIC_SPAN": "always"},
                                  "timeout": TIMEOUT})
        deadline, elsewhere = time.monotonic() + TIMEOUT + 60, False
        while doc["finished"] is None and time.monotonic() < deadline:
            # the slots granted for the team are listed only while the app runs
            elsewhere |= any(s["host"] not in (p["host"] for p in doc["placement"])
                             for s in doc["scaled"] if s["slots"] > 0)
            time.sleep(POLL)
            doc = self.client.app(doc["app_id"])
        result = doc["results"][0]
        stdout, stderr = (_text(result[k]) for k in ("stdout", "stderr"))
        if doc["status"] == 3 and "cannot allocate" in stderr:
            return None, False
        if doc["status"] != 0:
            raise RuntimeError(f"omp_span {' '.join(args)} at {threads} threads: "
                               f"{result['outcome']['message']}: {stderr[-2000:]}")
        values = _parse(stdout)
        if values.get("team") != threads:
            raise RuntimeError(f"omp_span ran a team of {values.get('team')}, not {threads}")
        fell_back = any(f in line for line in self.cluster.log[seen:] for f in FALLBACKS)
        return values, elsewhere and not fell_back

    def close(self) -> None:
        self.client.close()


def _region(runner: Runner, native: Path | None, mib: int, reps: int,
            notes: list[str]) -> Measured | None:
    """The region kernel at `mib` MiB, or the largest size below it that fits the memory."""
    asked = mib
    while mib > 0:
        args = ["region", str(mib), str(reps)]
        span, spanned = runner.run(args, SPAN)
        if span is not None:
            break
        mib -= STEP_MIB
    else:
        notes.append(f"teams: no region size up to {asked} MiB fits a granule's memory")
        return None
    if mib != asked:
        from faabric.toolchain.driver import THREADED_MAX_MEMORY

        notes.append(f"teams: {asked} MiB does not fit a thread-capable module (its shared "
                     f"memory is capped at {THREADED_MAX_MEMORY >> 20} MiB by faabric cc's "
                     f"--max-memory, stacks and heap included): measured {mib} MiB instead.")
    alone, _ = runner.run(args, ALONE)
    if alone is None:
        raise RuntimeError(f"omp_span region {mib} fitted at {SPAN} threads, not {ALONE}")
    theirs = _run_native(native, args)
    if theirs is not None and theirs["check"] != span["check"]:
        notes.append(f"teams: region {mib} MiB checksum differs from native "
                     f"({span['check']:.0f} vs {theirs['check']:.0f}): writes were lost")
    return Measured("region", mib, span, alone, theirs, spanned)


def _sync(runner: Runner, native: Path | None, ops: int, reps: int) -> Measured:
    args = ["sync", str(ops), str(reps)]
    span, spanned = runner.run(args, SPAN)
    alone, _ = runner.run(args, ALONE)
    assert span is not None and alone is not None
    for team, got in ((SPAN, span), (ALONE, alone)):
        if got["check"] != ops * team * reps:
            raise RuntimeError(f"omp_span sync at {team} threads counted {got['check']:.0f} "
                               f"critical sections, not {ops * team * reps}")
    return Measured("sync", ops, span, alone, _run_native(native, args), spanned)


def _capture(cluster: ProcessCluster, cache_dir: Path, native_dir: Path, ops: int,
             reps: int) -> Measured:
    """`omp atomic capture` round trips from the other worker (bench/kernels/omp_kernels.c)."""
    wasm = build_wasm(omp_kernels.SOURCE, cache_dir, ["-fopenmp"])
    native = omp_kernels.native_binary(native_dir)
    args = ["capture", str(ops), "1"]  # one timed run a launch (see bench/omp_kernels.py)
    ours = omp_kernels.Runner(cluster, {"capture": wasm})
    try:
        span = omp_kernels.repeated(lambda: ours.run("capture", args, SPAN), reps)
        alone = omp_kernels.repeated(lambda: ours.run("capture", args, ALONE), reps)
    finally:
        ours.close()
    for team, got in ((SPAN, span), (ALONE, alone)):
        if got.error or got.values.get("check") != 2 * ops:
            raise RuntimeError(f"omp_kernels capture at {team} threads: {got.error or 'check '}"
                               f"{got.values.get('check')}, not {2 * ops}")
    # natively an operation takes nanoseconds: enough of them to be above the clock's tick
    many = ["capture", str(max(ops, NATIVE_CAPTURES)), "1"]
    theirs = omp_kernels.repeated(lambda: omp_kernels.run_native(native, many, SPAN), reps)
    return Measured("capture", ops, span.values, alone.values, theirs.values or None,
                    span.spanned)


def measure(cache_dir: Path, native_dir: Path, quick: bool, notes: list[str]) -> list[Measured]:
    """Both kernels on a fresh planner + 2 workers x 2 slots; the cluster is always stopped."""
    wasm = build_wasm(KERNEL_DIR / "omp_span.c", cache_dir, ["-fopenmp"])
    native = _native_binary(native_dir)
    if native is None:
        notes.append(f"teams: {NATIVE_CC} -fopenmp failed (libomp missing?): native skipped.")
    reps = 3 if quick else 5
    ops = 100 if quick else 400
    out: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="faabric-teams-") as tmp, \
            process_cluster(Path(tmp), {"span-a": 2, "span-b": 2}, KEEPALIVE) as cluster:
        runner = Runner(cluster, wasm)
        try:
            for _ in range(2):  # compiles the module on both workers (either may lead)
                runner.run(["sync", "2", "1"], SPAN)
            for mib in QUICK_SIZES_MIB if quick else SIZES_MIB:
                found = _region(runner, native, mib, reps, notes)
                out += [] if found is None else [found]
            out.append(_sync(runner, native, ops, reps))
            out.append(_capture(cluster, cache_dir, native_dir, ops, reps))
        finally:
            runner.close()
        errors = [line.strip() for line in cluster.log if "Traceback" in line]
        if errors:
            notes.append(f"teams: the workers logged {len(errors)} error(s), first: {errors[0]}")
    if not all(m.spanned for m in out):
        notes.append("teams: a 4-thread team did not span the 2 workers (see the rows marked "
                     "NOT SPANNED): those figures are of a team on one worker.")
    return out


def _label(mib: int) -> str:
    return f"{mib >> 10} GiB" if mib >= 1024 and mib % 1024 == 0 else f"{mib} MiB"


def rows(measured: list[Measured]) -> list[Row]:
    """Each figure of the spanning team against one worker's team and against native."""
    out = []
    for m in measured:
        where = f"{SPAN} threads on 2 workers" + ("" if m.spanned else " [NOT SPANNED]")
        if m.what == "region":
            items = [(f"cross-host region, {_label(m.size)} memory, 1 % of pages written + "
                      f"reduction, {where}", "seconds")]
        elif m.what == "capture":
            items = [(f"cross-host omp atomic capture from the other worker, per op, {where}",
                      "op")]
        else:
            items = [(f"cross-host barrier, {where}", "barrier"),
                     (f"cross-host critical section hand-over, {where}", "critical")]
        for name, key in items:
            out.append(versus(name, m.span[key], ALONE_PEER, m.alone[key], fmt=fmt_time))
            native = math.nan if m.native is None else m.native[key]
            out.append(versus(name, m.span[key], NATIVE_PEER, native, fmt=fmt_time))
    return out


def main(argv: list[str]) -> int:
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp:
        found = measure(Path(tmp) / "wasm", Path(tmp) / "native", "--quick" in argv, notes)
    print(render_text(rows(found)))
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

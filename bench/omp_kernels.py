"""OpenMP kernel families on teams that span 2 worker processes, against one worker and native.

`kernels/omp_kernels.c` (dgemm, stream, transpose, stencil, spmv, reduce, atomics, wavefront)
built with `faabric cc -fopenmp` runs on a planner + 2 workers x 2 slots at
OMP_NUM_THREADS=4 (threads 2-3 on the other worker; each run is checked to have spanned, as
in bench/teams.py) and at 2 (one worker); the same C built with clang-16 -O2 -fopenmp runs
at 2 and 4 threads. The kernel times itself (omp_get_wtime) and prints a check that does not
depend on the team size: every faabric check must equal native's (relative tolerance 1e-9),
or the row says WRONG CHECK.

Each configuration is REPS launches of the kernel, each timing one run of its region after
one warm-up run; the figure is the median over the launches. One launch per timed run
because a granule's region that spanned hosts twice is then tried on one worker and stays
there if that was faster (docs/openmp.md): a third run in the same granule would no longer
measure spanning. A launch whose app reports a `kept-local` event counts as not spanned.

A local row compares the atomics kernel at 2 threads on one worker built with `faabric cc`
(its atomic instructions routed through the runtime's helpers) with the same source linked
the same way but without that rewrite. `python -m bench.omp_kernels [--quick]` prints the rows.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import KERNEL_DIR, NATIVE_CC, Row, build_wasm, fmt_time, render_text, versus
from bench.procs import ProcessCluster, process_cluster

SOURCE = KERNEL_DIR / "omp_kernels.c"
SPAN, ALONE = 4, 2  # team sizes: across the 2 workers, and within one
# kernel -> (N, quick N); sizes small enough for a few minutes on 2 cores
SIZES = {
    "dgemm": (256, 128),
    "stream": (4_000_000, 1_000_000),
    "transpose": (1024, 512),
    "stencil": (1024, 512),
    "spmv": (200_000, 50_000),
    "reduce": (4_000_000, 1_000_000),
    "atomics": (4_000, 500),
    "wavefront": (128, 32),
}
LOCAL_ATOMICS = (1_000_000, 200_000)  # increments per thread for the routed/unrouted row
REPS, QUICK_REPS = 5, 3  # launches per configuration
GOALS = {  # spanning / one worker's 2 threads
    "dgemm": ("<= 0.67x (1.5x faster)", 1 / 1.5),
    "stream": ("<= 1.0x", 1.0),
    "transpose": ("<= 1.0x", 1.0),
    "stencil": ("<= 1.0x", 1.0),
}
ROUTED_GOAL = ("<= 1.2x unrouted", 1.2)
RTOL = 1e-9
# worker log lines saying a team (or some runs of its region) stayed on one worker
FALLBACKS = ("could not spread a team", "runs a team of", "has no slots here",
             "stays on this worker")
RUN_TIMEOUT = 300.0  # seconds a granule may run
KEEPALIVE = 120.0  # the planner's keep-alive timeout (as bench/teams.py)
POLL = 0.01  # seconds between looks at the running app until slots elsewhere are granted
ALONE_PEER = f"wasm {ALONE} threads, 1 worker"
NATIVE = f"native {NATIVE_CC} -fopenmp"


@dataclass(frozen=True, slots=True)
class Result:
    """One run: the kernel's printed values (empty when it failed), and where it ran."""

    values: dict[str, float] = field(default_factory=dict)
    spanned: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class Measured:
    """One kernel at one size in each configuration."""

    kernel: str
    n: int
    span: Result
    alone: Result
    native2: Result
    native4: Result


@dataclass(frozen=True, slots=True)
class Local:
    """The atomics kernel on one worker, routed and not, and natively (same team size)."""

    n: int
    routed: Result
    unrouted: Result
    native: Result


def parse(text: str) -> dict[str, float]:
    """`team=4 seconds=... check=...` -> {"team": 4.0, ...}."""
    values = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep:
            values[key] = float(value)
    return values


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def native_binary(out_dir: Path) -> Path | None:
    """The kernels built with clang-16 -O2 -fopenmp; None when that fails (no libomp)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "omp_kernels"
    done = subprocess.run([NATIVE_CC, "-O2", "-fopenmp", str(SOURCE), "-o", str(target)],
                          capture_output=True, check=False)
    return target if done.returncode == 0 else None


def run_native(binary: Path | None, args: list[str], threads: int) -> Result:
    if binary is None:
        return Result(error="not built")
    try:
        done = subprocess.run([str(binary), *args], capture_output=True, text=True,
                              check=False, env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
                              timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return Result(error=f"timed out after {RUN_TIMEOUT:g} s")
    if done.returncode != 0:
        return Result(error=f"status {done.returncode}: {done.stderr.strip()[-200:]}")
    return Result(parse(done.stdout))


def build_unrouted(cache_dir: Path) -> bytes:
    """The kernels linked as `faabric cc -fopenmp` links them, without the atomics rewrite
    (`finish_module` is not run): the program's atomic instructions stay instructions."""
    from faabric.toolchain.driver import command_line, environment, find_compiler, link_libraries
    from faabric.toolchain.movable import stand_in_tools

    cache_dir.mkdir(parents=True, exist_ok=True)
    flags = ["-fopenmp"]
    target = cache_dir / "omp_kernels-unrouted.wasm"
    compiler = find_compiler(cxx=False)
    libraries = link_libraries(flags, cache_dir / "libs")
    cmd = command_line(compiler.path, [*flags, str(SOURCE), "-o", str(target)], False,
                       libraries, stand_in_tools(cache_dir))
    done = subprocess.run(cmd, capture_output=True, text=True, env=environment(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {SOURCE.name} without the rewrite: {done.stderr}")
    return target.read_bytes()


class Runner:
    """Runs uploaded modules on the cluster and checks where their teams ran."""

    def __init__(self, cluster: ProcessCluster, modules: dict[str, bytes]) -> None:
        from faabric.planner.client import PlannerClient

        self.cluster = cluster
        self.client = PlannerClient(cluster.url, token=cluster.token, timeout=120)
        self.digests = {name: self.client.upload_module(wasm) for name, wasm in modules.items()}

    def _wait(self, doc: dict[str, Any], watch: bool) -> tuple[dict[str, Any], bool]:
        """The app's final document, and whether slots on another worker were granted (and
        no region was kept on one worker); `watch`: look for those slots."""
        deadline, elsewhere = time.monotonic() + RUN_TIMEOUT + 60, False
        while watch and doc["finished"] is None and time.monotonic() < deadline \
                and not elsewhere:
            # the slots granted for the team are listed only while the app runs
            elsewhere |= any(s["host"] not in (p["host"] for p in doc["placement"])
                             for s in doc["scaled"] if s["slots"] > 0)
            time.sleep(POLL)
            doc = self.client.app(doc["app_id"])
        if doc["finished"] is None:  # then no more polling, which would take CPU from it
            doc = self.client.wait_app(doc["app_id"], max(0.0, deadline - time.monotonic()))
        kept = any(e["kind"] == "kept-local" for e in doc.get("events", ()))
        return doc, elsewhere and not kept

    def run(self, module: str, args: list[str], threads: int) -> Result:
        seen = len(self.cluster.log)
        doc = self.client.submit({"module": self.digests[module], "size": 1,
                                  "program": "omp_kernels", "args": args,
                                  "env": {"OMP_NUM_THREADS": str(threads)},
                                  "timeout": RUN_TIMEOUT})
        doc, elsewhere = self._wait(doc, threads > ALONE)
        if doc["finished"] is None:
            return Result(error=f"no answer after {RUN_TIMEOUT + 60:g} s")
        result = doc["results"][0]
        if doc["status"] != 0:
            stderr = _text(result["stderr"]).strip()
            return Result(error=f"{result['outcome']['message']} {stderr[-300:]}".strip())
        values = parse(_text(result["stdout"]))
        if values.get("team") != threads:
            return Result(values, error=f"ran a team of {values.get('team')}")
        fell_back = any(f in line for line in self.cluster.log[seen:] for f in FALLBACKS)
        return Result(values, elsewhere and not fell_back)

    def close(self) -> None:
        self.client.close()


@contextmanager
def runner(cache_dir: Path, modules: dict[str, bytes]) -> Iterator[Runner]:
    """A planner + 2 workers x 2 slots with `modules` uploaded and compiled on both workers."""
    with tempfile.TemporaryDirectory(prefix="faabric-kernels-") as tmp, \
            process_cluster(Path(tmp), {"span-a": 2, "span-b": 2}, KEEPALIVE) as cluster:
        ours = Runner(cluster, modules)
        try:
            for _ in range(2):  # compiles the module on both workers (either may lead)
                ours.run("routed", ["reduce", "1000", "1"], SPAN)
            yield ours
        finally:
            ours.close()


def same_check(ours: Result, theirs: Result) -> bool | None:
    """Whether both checks agree (relative tolerance RTOL); None if either is missing."""
    if "check" not in ours.values or "check" not in theirs.values:
        return None
    a, b = ours.values["check"], theirs.values["check"]
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0)


def repeated(launch: Callable[[], Result], count: int) -> Result:
    """`count` launches: the median seconds (and op), spanned only if every launch spanned;
    the first failure, or an error if the launches' checks differ."""
    got = [launch() for _ in range(count)]
    failed = next((g for g in got if g.error), None)
    if failed is not None:
        return failed
    values = dict(got[0].values)
    for key in ("seconds", "op"):
        if key in values:
            values[key] = statistics.median(g.values[key] for g in got)
    checks = sorted({g.values.get("check", math.nan) for g in got})
    error = "" if len(checks) == 1 else f"checks differ between launches: {checks}"
    return Result(values, all(g.spanned for g in got), error)


def _kernel(ours: Runner, native: Path | None, kernel: str, n: int, launches: int) -> Measured:
    args = [kernel, str(n), "1"]
    span = repeated(lambda: ours.run("routed", args, SPAN), launches)
    alone = repeated(lambda: ours.run("routed", args, ALONE), launches)
    return Measured(kernel, n, span, alone,
                    repeated(lambda: run_native(native, args, ALONE), launches),
                    repeated(lambda: run_native(native, args, SPAN), launches))


def measure(cache_dir: Path, native_dir: Path, quick: bool,
            notes: list[str]) -> tuple[list[Measured], Local]:
    """Every kernel in the 4 configurations, and the routed/unrouted atomics pair; the
    cluster is always stopped."""
    routed = build_wasm(SOURCE, cache_dir, ["-fopenmp"])
    unrouted = build_unrouted(cache_dir / "unrouted")
    if b"faabric.atomics" not in routed or b"faabric.atomics" in unrouted:
        notes.append("kernels: the routed/unrouted builds are not marked as expected")
    native = native_binary(native_dir)
    if native is None:
        notes.append(f"kernels: {NATIVE_CC} -fopenmp failed (libomp missing?): native skipped.")
    reps = QUICK_REPS if quick else REPS
    out = []
    with runner(cache_dir, {"routed": routed, "unrouted": unrouted}) as ours:
        for kernel, sizes in SIZES.items():
            out.append(_kernel(ours, native, kernel, sizes[quick], reps))
        n = LOCAL_ATOMICS[quick]
        args = ["atomics", str(n), "1"]
        local = Local(n, repeated(lambda: ours.run("routed", args, ALONE), reps),
                      repeated(lambda: ours.run("unrouted", args, ALONE), reps),
                      repeated(lambda: run_native(native, args, ALONE), reps))
        errors = [line.strip() for line in ours.cluster.log if "Traceback" in line]
    if errors:
        notes.append(f"kernels: the workers logged {len(errors)} error(s), first: {errors[0]}")
    notes += problems(out, local)
    return out, local


def _problem(what: str, got: Result, peer: Result) -> list[str]:
    notes = [f"kernels: {what}: {got.error}"] if got.error else []
    if same_check(got, peer) is False:
        notes.append(f"kernels: {what}: check {got.values['check']!r} but native "
                     f"{peer.values['check']!r}")
    return notes


def problems(measured: list[Measured], local: Local) -> list[str]:
    """A note for every failed run, every team that did not span and every wrong check."""
    notes = []
    for m in measured:
        notes += _problem(f"{m.kernel} {m.n} at {SPAN} threads", m.span, m.native4)
        notes += _problem(f"{m.kernel} {m.n} at {ALONE} threads", m.alone, m.native2)
        if m.span.values and not m.span.spanned:
            notes.append(f"kernels: {m.kernel} {m.n}: the {SPAN}-thread team did not span")
    what = f"atomics {local.n} at {ALONE} threads"
    notes += _problem(f"{what}, routed", local.routed, local.native)
    notes += _problem(f"{what}, not routed", local.unrouted, local.native)
    return notes


def _seconds(got: Result) -> float:
    return got.values.get("seconds", math.nan)


def _row(name: str, got: Result, peer: str, theirs: Result, goal: tuple[str, float] | None,
         check: Result | None) -> Row:
    if check is not None and same_check(got, check) is False:
        name += " [WRONG CHECK]"
    text, limit = goal if goal is not None else ("", None)
    if got.error or "seconds" not in got.values:
        why = "timed out" if "timed out" in got.error or "no answer" in got.error else "failed"
        return Row(name, why, peer, fmt_time(_seconds(theirs)), None, text,
                   False if goal is not None else None)
    return versus(name, _seconds(got), peer, _seconds(theirs), fmt=fmt_time, goal=text,
                  limit=limit)


def rows(measured: list[Measured], local: Local | None) -> list[Row]:
    """Per kernel: spanning vs one worker and vs native 4 threads, one worker vs native 2."""
    out = []
    for m in measured:
        where = f"{SPAN} threads on 2 workers" + ("" if m.span.spanned else " [NOT SPANNED]")
        name = f"OpenMP {m.kernel} N={m.n:,}, {where}"
        out.append(_row(name, m.span, ALONE_PEER, m.alone, GOALS.get(m.kernel), m.native4))
        out.append(_row(name, m.span, f"{NATIVE}, {SPAN} threads", m.native4, None, m.native4))
        out.append(_row(f"OpenMP {m.kernel} N={m.n:,}, {ALONE} threads, 1 worker [diag]",
                        m.alone, f"{NATIVE}, {ALONE} threads", m.native2, None, m.native2))
    if local is not None:
        name = f"OpenMP atomics N={local.n:,}, {ALONE} threads, 1 worker, routed"
        out.append(_row(name, local.routed, "same, atomics not routed", local.unrouted,
                        ROUTED_GOAL, local.native))
        out.append(_row(name, local.routed, f"{NATIVE}, {ALONE} threads", local.native, None,
                        local.native))
    return out


def main(argv: list[str]) -> int:
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp:
        found, local = measure(Path(tmp) / "wasm", Path(tmp) / "native", "--quick" in argv,
                               notes)
    print(render_text(rows(found, local)))
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""MPI ranks moving between real worker processes while they run: the pause of a moving rank
against its memory size, and what pulling a split app onto one worker gains.

1. Pause. `kernels/mpi_pause.c`, 2 ranks with N MiB each, loops "spin 10 ms, MPI_Barrier,
   record the time". Two workers of 2 slots; a blocker (`kernels/hold.c`) holds one slot of
   each, so the app starts 1+1; the blocker of one worker ends during the loop, the planner
   offers to put both ranks there, and exactly one rank moves (memory, call stack, MPI
   state) at the next barrier. Pause = the gap between iterations that spans the move (the
   longest one, unless something else shares the cores) minus the median gap, on the rank
   that stays (the guest's CLOCK_MONOTONIC restarts on the moved rank's new worker), median
   over runs. The planner's events (offered, started, migrated; Unix time,
   like the guest's CLOCK_REALTIME: one machine, one clock) split it into claim, capture +
   send, and receive + resume. There is no peer: the ratio column stays empty.
2. Pull-together. `kernels/mpi_alltoall.c`, 4 ranks, MPI_Alltoall of 8 MiB per pair per
   iteration, on two workers of 4 slots with blockers of 2 slots on each (so 2+2). A run
   whose blockers outlive it gives the never-moved time T (the first one also calibrates);
   in the others one blocker ends at 20/40/60/80 % of T (the shortest never-moved run so
   far) and the app is pulled onto one worker, usually in two steps (3+1, then 4+0: the
   blocker's two granules end one after the other). Speed-up = median never-moved time /
   median moved time (planner start to finish).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import mmap
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Row, fmt_time, versus
from bench.moves_cluster import (
    LONG_MS,
    BenchError,
    MoveCluster,
    build_kernels,
    events_of,
    stdout_of,
)

PAUSE_MIB = {False: (16, 256, 1000), True: (16, 256)}  # 1000: the largest under 1 GiB
PAUSE_RUNS = 3
STEP_MS = 10
POINTS = (0.2, 0.4, 0.6, 0.8)
ORIGINAL = (3.24, 2.14, 1.49, 1.17)  # faabric (C++), 8 ranks 4+4 on 8-core VMs
PAIR_BYTES = 8 << 20
ITERATIONS = {False: 80, True: 40}
WORK = 200_000
ROUNDS = {False: 5, True: 2}
APP_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class PauseRun:
    pause: float  # seconds: the gap of the move - median gap, on the rank that stayed
    gap: float  # the median gap
    claim: float  # barrier entry -> planner accepted the claim ("started")
    send: float  # "started" -> "migrated" (the rank left its old worker: fences, capture, send)
    resume: float  # "migrated" -> the barrier returned (receive, instantiate, copy in, ready)
    clock_jump: float  # how far the moved rank's CLOCK_MONOTONIC went back
    longest: bool  # whether the gap of the move was the longest of the run


@dataclass
class Results:
    pauses: dict[int, list[PauseRun]] = field(default_factory=dict)  # MiB -> runs
    copies: dict[int, tuple[float, ...]] = field(default_factory=dict)
    never: list[float] = field(default_factory=list)  # seconds
    moved: dict[float, list[tuple[float, float, int]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    others: dict[str, float] = field(default_factory=dict)  # cores other processes used


def measure(cache_dir: Path, quick: bool) -> Results:
    kernels = build_kernels(cache_dir)
    out = Results()
    with MoveCluster(2, kernels) as cluster, _others(cluster, out, "pause"):
        for _ in range(PAUSE_RUNS):
            for mib in PAUSE_MIB[quick]:

                def pause(m: int = mib) -> None:
                    out.pauses.setdefault(m, []).append(_pause_run(cluster, m))

                _attempt(out, f"pause {mib} MiB", pause)
    for mib in PAUSE_MIB[quick]:
        out.copies[mib] = _copy_reference(mib << 20)
    with MoveCluster(4, kernels) as cluster, _others(cluster, out, "pull-together"):
        _pull(cluster, quick, out)
    return out


@contextlib.contextmanager
def _others(cluster: MoveCluster, out: Results, what: str) -> Iterator[None]:
    """Record how many cores processes other than this one and its workers used meanwhile."""
    busy, mine = cluster.cpu_seconds()
    start = time.monotonic()
    yield
    busy_after, mine_after = cluster.cpu_seconds()
    out.others[what] = ((busy_after - busy) - (mine_after - mine)) / (time.monotonic() - start)


def _attempt(out: Results, what: str, run: Callable[[], object]) -> None:
    try:
        run()
    except BenchError as error:
        out.failures.append(f"{what}: {error}")


def _pause_run(cluster: MoveCluster, mib: int) -> PauseRun:
    short_ms = 2000 + 5 * mib  # the loop starts after ~0.6 s + ~4 ms per MiB of setup
    iterations = (3000 + 8 * mib) // STEP_MS
    doc, _ = cluster.split_start(1, short_ms, "mpi_pause", 2, mib, iterations, STEP_MS)
    done = cluster.finish(doc["app_id"], APP_TIMEOUT)
    cluster.settle()
    lines = [line.split() for line in stdout_of(done).splitlines()]
    if sorted(" ".join(x) for x in lines if x[0] == "check") != ["check 0 OK", "check 1 OK"]:
        raise BenchError(f"a rank's memory changed: {[x for x in lines if x[0] == 'check']}")
    migrated = events_of(done, "migrated")
    moved = {rank for event in migrated for rank in event["ranks"]}
    if len(migrated) != 1 or len(moved) != 1:
        raise BenchError(f"expected one rank to move once: {done['events']}")
    stayer = 1 - moved.pop()
    mono = [float(x[3]) for x in lines if x[0] == "t" and x[1] == str(stayer)]
    real = [float(x[4]) for x in lines if x[0] == "t" and x[1] == str(stayer)]
    mover = [float(x[3]) for x in lines if x[0] == "t" and x[1] == str(1 - stayer)]
    gaps = [b - a for a, b in itertools.pairwise(mono)]
    started, left = events_of(done, "started")[0]["time"], migrated[0]["time"]
    k = next((i for i in range(len(gaps)) if real[i] < started < real[i + 1]), None)
    if k is None:
        raise BenchError("the rank did not move inside the timed loop (blocker timing)")
    entry = real[k] + STEP_MS / 1000
    median = statistics.median(gaps)
    jump = -min(0.0, *(b - a for a, b in itertools.pairwise(mover)))
    return PauseRun(gaps[k] - median, median, started - entry, left - started,
                    real[k + 1] - left, jump, gaps[k] >= max(gaps))


def _pull(cluster: MoveCluster, quick: bool, out: Results) -> None:
    args = (ITERATIONS[quick], PAIR_BYTES, WORK)
    check: list[str] = []
    try:
        calibration = _pull_run(cluster, args, None, check)
    except BenchError as error:
        out.failures.append(f"never moved (calibration): {error}")
        return
    offset = calibration[3]
    out.never.append(calibration[0])
    for round_ in range(ROUNDS[quick]):
        if round_:
            _attempt(out, "never moved", lambda: out.never.append(
                _pull_run(cluster, args, None, check)[0]))
        total = min(out.never)  # the least disturbed: a faster run must still be moved
        for point in POINTS:
            short_ms = (offset + point * total) * 1000

            def moved(p: float = point, ms: float = short_ms) -> None:
                seconds, offered, steps, _ = _pull_run(cluster, args, ms, check)
                out.moved.setdefault(p, []).append((seconds, offered, steps))

            _attempt(out, f"pulled at {point:.0%}", moved)


def _pull_run(cluster: MoveCluster, args: tuple[int, ...], short_ms: float | None,
              check: list[str]) -> tuple[float, float, int, float]:
    """(run time, first offer after the start, migrations, blocker start -> app start)."""
    doc, _ = cluster.split_start(2, short_ms or LONG_MS, "mpi_alltoall", 4, *args)
    done = cluster.finish(doc["app_id"], APP_TIMEOUT)
    cluster.settle()
    printed = [line for line in stdout_of(done).splitlines() if line.startswith("check")]
    if not check:
        check.extend(printed)
    if not printed or printed != check:
        raise BenchError(f"the app computed something else: {printed} != {check}")
    migrations = len(events_of(done, "migrated"))
    if (short_ms is None) != (migrations == 0):
        raise BenchError(f"{migrations} migrations in {done['finished'] - done['started']:.2f}"
                         f" s (blocker ends after {short_ms} ms): {done['events']}")
    offers = events_of(done, "offered")
    first = offers[0]["time"] - done["started"] if offers else 0.0
    return (done["finished"] - done["started"], first, migrations,
            done["started"] - doc["blocker_started"])


def _copy_reference(size: int) -> tuple[float, ...]:
    """The big steps of a move on plain buffers in this process (seconds): copy out of a
    touched memory into a new bytes (`ctypes.string_at`, as at capture), TCP over loopback
    into a new bytearray, copy into a new mapping (`ctypes.memmove`, as at resume), and the
    same copy again into that mapping, now touched (what the copies cost without faults)."""
    source = mmap.mmap(-1, size)
    address = ctypes.addressof(ctypes.c_char.from_buffer(source))
    ctypes.memset(address, 0x5A, size)
    start = time.perf_counter()
    data = ctypes.string_at(address, size)
    times = [time.perf_counter() - start]
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname()[:2])
        receiver, _ = server.accept()

    def receive() -> None:
        view, got = memoryview(bytearray(size)), 0
        while got < size:
            got += receiver.recv_into(view[got:], min(size - got, 1 << 30))

    with sender, receiver:
        thread = threading.Thread(target=receive, daemon=True)
        start = time.perf_counter()
        thread.start()
        sender.sendall(memoryview(data))
        thread.join(APP_TIMEOUT)
        times.append(time.perf_counter() - start)
    target = mmap.mmap(-1, size)
    target_address = ctypes.addressof(ctypes.c_char.from_buffer(target))
    for _ in range(2):
        start = time.perf_counter()
        ctypes.memmove(target_address, data, size)
        times.append(time.perf_counter() - start)
    return tuple(times)


def rows(res: Results) -> list[Row]:
    out = []
    for mib, runs in res.pauses.items():
        pause = statistics.median(r.pause for r in runs)
        out.append(Row(f"MPI migration pause, 1 of 2 ranks moves, {mib} MiB per rank",
                       fmt_time(pause), "none", "-", None, "", None))
    never = statistics.median(res.never) if res.never else None
    for point in POINTS:
        pulled = res.moved.get(point)
        if pulled:
            out.append(versus(f"MPI all-to-all, 4 ranks 2+2 pulled onto 1 worker at "
                              f"{point:.0%} of the run", statistics.median(r[0] for r in pulled),
                              "same app never moved (2+2)", never, fmt=fmt_time))
    return out


def notes(res: Results) -> list[str]:
    out = [f"MPI migration pause: ratio column empty (no peer); median of {PAUSE_RUNS} runs "
           f"of kernels/mpi_pause.c ({STEP_MS} ms spin + MPI_Barrier per iteration), 2 "
           "workers x 2 slots, 1+1, one rank moves."]
    for mib, runs in res.pauses.items():
        med = {k: statistics.median(getattr(r, k) for r in runs)
               for k in ("gap", "claim", "send", "resume", "clock_jump")}
        cap, tcp, into, touched = res.copies.get(mib, (float("nan"),) * 4)
        longest = sum(r.longest for r in runs)
        out.append(
            f"pause {mib} MiB: runs {', '.join(fmt_time(r.pause) for r in runs)} (the move's "
            f"gap was the longest in {longest} of {len(runs)}); median gap "
            f"{fmt_time(med['gap'])}; barrier entry -> claim accepted {fmt_time(med['claim'])}"
            f", -> rank left its worker (fences, capture, send) {fmt_time(med['send'])}, -> "
            f"barrier returned (receive, instantiate, copy in) {fmt_time(med['resume'])}; the "
            f"same steps on plain buffers in one process: copy out {fmt_time(cap)}, TCP "
            f"{fmt_time(tcp)}, copy in {fmt_time(into)} (new memory; into touched memory "
            f"{fmt_time(touched)}); the moved rank's CLOCK_MONOTONIC "
            f"went back {fmt_time(med['clock_jump'])}.")
    if res.never:
        pulls = []
        for point, original in zip(POINTS, ORIGINAL, strict=True):
            pulled = res.moved.get(point, [])
            if pulled:
                speed = statistics.median(res.never) / statistics.median(r[0] for r in pulled)
                at = statistics.median(r[1] for r in pulled) / statistics.median(res.never)
                steps = sorted({r[2] for r in pulled})
                pulls.append(f"{point:.0%}: {speed:.2f}x (offered at {at:.0%} of T, migrations "
                             f"per run {'/'.join(map(str, steps))}; original {original}x)")
        out.append(f"pull-together (kernels/mpi_alltoall.c, {PAIR_BYTES >> 20} MiB per pair, "
                   f"never moved T = {fmt_time(statistics.median(res.never))}, "
                   f"{len(res.never)} runs): speed-up never/moved at " + "; ".join(pulls)
                   + ". Original: 8 ranks 4+4 on 8-core VMs; here 4 ranks on 2 vCPUs share "
                   "2 cores wherever they run, so only the transport changes (TCP between "
                   "worker processes vs memory copies in one), not the cores.")
    out.append("moves: other processes used " + ", ".join(
        f"{cores:.2f} of {os.cpu_count()} cores during the {what} runs"
        for what, cores in res.others.items()) + " (not this process nor its workers).")
    out += [f"moves: run not counted: {failure}" for failure in res.failures]
    return out


if __name__ == "__main__":  # a quick look without the rest of the suite: QUICK=1 python -m ...
    import tempfile

    from bench.common import render_text

    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(Path(tmp), os.environ.get("QUICK", "0") != "0")
        print(render_text(rows(measured)))
        print("\n".join(notes(measured)))
